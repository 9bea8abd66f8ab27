#!/usr/bin/env bash
# bench/codecs.sh - the Parquet compression choice, measured: `sawmill run` (release) over the
# generated 2,000,000-line file once per codec, the codecs interleaved RUNS times, with the
# median wall time, its ratio to the default (zstd, level 1) and the bytes written under
# records/ + rejects/ (the shards a cluster would keep on HDFS).
#
#   bench/codecs.sh                      # BIN=<dir with a release `sawmill`>, RUNS=5
#
# Env: BIN (default $CARGO_TARGET_DIR/release, built if missing), BENCH_DIR (default
# /var/tmp/sawmill-bench), LINES (default 2000000), RUNS (default 5), CODECS (default
# "zstd zstd:3 snappy lz4 none").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
LINES=${LINES:-2000000}
RUNS=${RUNS:-5}
CODECS=${CODECS:-zstd zstd:3 snappy lz4 none}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
BIN=${BIN:-$CARGO_TARGET_DIR/release}
mkdir -p "$DIR"
[[ -x $BIN/sawmill ]] || (cd "$ROOT" && cargo build --release --locked -q -p sawmill-cli)
FILE=$DIR/gen-$LINES.log
[[ -s $FILE ]] || "$BIN/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE"
cat "$FILE" >/dev/null

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sawmill: $BIN/sawmill; input: $FILE ($(wc -c <"$FILE") bytes, $LINES lines); $RUNS runs per codec"
declare -A times bytes
for ((r = 1; r <= RUNS; r++)); do
  for c in $CODECS; do
    out=$DIR/codec-out
    rm -rf "$out"
    start=$(date +%s%N)
    "$BIN/sawmill" run "$FILE" --out "$out" --compression "$c" -q >/dev/null
    end=$(date +%s%N)
    times[$c]+="$(( (end - start) / 1000000 )) "
    bytes[$c]=$(du -sb "$out/records" "$out/rejects" | awk '{ s += $1 } END { print s }')
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(echo "${times[zstd]:-}" | median)
printf '%-8s %10s %10s %12s %10s\n' codec "median ms" "vs zstd" "shard bytes" "vs zstd"
for c in $CODECS; do
  m=$(echo "${times[$c]}" | median)
  awk -v c="$c" -v m="$m" -v b="${base:-$m}" -v s="${bytes[$c]}" -v z="${bytes[zstd]:-${bytes[$c]}}" \
    'BEGIN { printf "%-8s %10d %10.3f %12d %10.3f\n", c, m, m / b, s, s / z }'
done
