#!/usr/bin/env bash
# bench/produce.sh - `sawmill produce` (release) vs the original Python producer (kafka-python,
# one send per line: bench/produce_baseline.py), side by side on the same file and broker.
#
#   SAWMILL_KAFKA=127.0.0.1:9092 bench/produce.sh
#
# Env: SAWMILL_KAFKA (broker, default 127.0.0.1:9092), BENCH_DIR (default /var/tmp/sawmill-bench),
# LINES (generated file size, default 2000000), PY_LINES (slice given to both producers for the
# head-to-head ratio, default 200000: kafka-python is slow), PYTHON (default python3).
# Each run writes into a fresh topic created beforehand, so topic setup is not timed; times are
# wall clock for the whole process (connect, read, send, final flush), from /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROKER=${SAWMILL_KAFKA:-127.0.0.1:9092}
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
LINES=${LINES:-2000000}
PY_LINES=${PY_LINES:-200000}
PYTHON=${PYTHON:-python3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
SAWMILL=$CARGO_TARGET_DIR/release/sawmill
LOGS=$ROOT/../shared/data/access-logs
FILE=$DIR/gen-$((LINES / 1000000))m.log
[[ $LINES -lt 1000000 ]] && FILE=$DIR/gen-${LINES}.log
mkdir -p "$DIR"

(cd "$ROOT" && cargo build --release -q -p sawmill-cli)
"$PYTHON" -c 'import kafka' 2>/dev/null || { echo "needs kafka-python: pip install kafka-python" >&2; exit 1; }

if [[ ! -s $FILE ]]; then
  if ! "$SAWMILL" generate --lines "$LINES" --seed 1 --out "$FILE.tmp"; then
    echo "note: \`sawmill generate\` failed; concatenating the real logs in $LOGS instead" >&2
    : >"$FILE.tmp"
    # awk 1 adds the final newline some files lack, so files do not merge at the seams.
    while [[ $(wc -l <"$FILE.tmp") -lt $LINES ]]; do awk 1 "$LOGS"/*.log >>"$FILE.tmp"; done
    head -n "$LINES" "$FILE.tmp" >"$FILE.tmp2" && mv "$FILE.tmp2" "$FILE.tmp"
  fi
  mv "$FILE.tmp" "$FILE"
fi
SLICE=$DIR/$(basename "$FILE" .log)-head-$PY_LINES.log
[[ -s $SLICE ]] || head -n "$PY_LINES" "$FILE" >"$SLICE"

fresh_topic() { # name: (re)create an empty 3-partition topic
  "$SAWMILL" produce -q --bootstrap-servers "$BROKER" --topic "$1" --file "$SLICE" --limit 0 --reset --partitions 3
}
topic_count() { # name: messages in the topic (sum of end offsets), checked with kafka-python
  "$PYTHON" - "$BROKER" "$1" <<'PY'
import sys
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=sys.argv[1])
tps = [TopicPartition(sys.argv[2], p) for p in c.partitions_for_topic(sys.argv[2])]
print(sum(c.end_offsets(tps).values()))
PY
}
# run LABEL LINES TOPIC CMD...: times CMD, checks the topic holds LINES messages, prints lines/s
run() {
  local label=$1 lines=$2 topic=$3 log="$DIR/time-$1.txt"
  shift 3
  fresh_topic "$topic"
  /usr/bin/time -f '%e %M' -o "$log" "$@" >&2
  read -r secs rss_kb <"$log"
  local got
  got=$(topic_count "$topic")
  [[ $got -eq $lines ]] || { echo "$label: topic $topic holds $got messages, expected $lines" >&2; exit 1; }
  awk -v l="$label" -v n="$lines" -v s="$secs" -v r="$rss_kb" \
    'BEGIN { printf "%-34s %9d lines %7.2f s %10.0f lines/s  max RSS %4.0f MiB\n", l, n, s, n / s, r / 1024 }'
  echo "$lines $secs" >"$DIR/rate-$label.txt"
}

echo "file: $FILE ($(wc -l <"$FILE") lines, $(du -m "$FILE" | cut -f1) MiB); slice: $PY_LINES lines; broker $BROKER"
run sawmill-full "$(wc -l <"$FILE")" bench-sawmill-full \
  "$SAWMILL" produce -q --bootstrap-servers "$BROKER" --topic bench-sawmill-full --file "$FILE"
run sawmill-slice "$PY_LINES" bench-sawmill-slice \
  "$SAWMILL" produce -q --bootstrap-servers "$BROKER" --topic bench-sawmill-slice --file "$SLICE"
run python-slice "$PY_LINES" bench-python-slice \
  "$PYTHON" "$ROOT/bench/produce_baseline.py" --bootstrap-servers "$BROKER" --topic bench-python-slice --file "$SLICE"

rate() { awk '{ printf "%.0f", $1 / $2 }' "$DIR/rate-$1.txt"; }
full=$(rate sawmill-full) slice=$(rate sawmill-slice) py=$(rate python-slice)
awk -v f="$full" -v s="$slice" -v p="$py" 'BEGIN {
  printf "ratio sawmill/python, same %s-line slice: %.1fx; sawmill full file vs python: %.1fx\n", "'"$PY_LINES"'", s / p, f / p }'
