#!/usr/bin/env bash
# End to end, one worker: Kafka → parse → aggregate → Parquet on HDFS → etcd commit, on a
# generated 2,000,000-line topic, beside a plain consumer that only reads the same topic (the
# ceiling). Needs the services: deploy/local/services up.
# Usage: bench/worker.sh [LINES] [PARTITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-2000000}
PARTS=${2:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
eval "$(deploy/local/services env)"
cargo build --release --locked -q -p sawmill-cli -p sawmill-worker --bins --examples
BIN=$CARGO_TARGET_DIR/release
DIR=/var/tmp/sawmill-bench; mkdir -p "$DIR"
FILE=$DIR/gen-$LINES.log
[[ -s $FILE ]] || "$BIN/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE"
TOPIC=bench-worker-$$
"$BIN/sawmill" produce --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" --reset --partitions "$PARTS" -q

echo "== plain consumer (ceiling)"
"$BIN/examples/plain_consumer" "$SAWMILL_KAFKA" "$TOPIC" | tee "$DIR/plain.txt"
echo "== worker run (1 worker, all partitions, until caught up)"
START=$(date +%s.%N)
SAWMILL_LOG=warn /usr/bin/time -f "peak_rss_kb=%M" "$BIN/worker" run --bootstrap-servers "$SAWMILL_KAFKA" \
  --etcd "$SAWMILL_ETCD" --topic "$TOPIC" --output "$SAWMILL_HDFS/sawmill-bench/$TOPIC" \
  --until-caught-up 2>&1 | tail -2
END=$(date +%s.%N)
python3 - "$LINES" "$START" "$END" "$DIR/plain.txt" <<'PY'
import sys
lines, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
plain = dict(kv.split("=") for kv in open(sys.argv[4]).read().split())
w = lines / (end - start)
p = float(plain["lines_per_sec"])
print(f"worker: {w:,.0f} lines/s; plain consumer: {p:,.0f} lines/s; ratio {w / p:.2f}")
PY
deploy/local/services hdfs-dfs -rm -r -f -skipTrash "/sawmill-bench/$TOPIC" >/dev/null 2>&1 || true
