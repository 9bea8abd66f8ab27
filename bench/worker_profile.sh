#!/usr/bin/env bash
# Profile of one `worker run --until-caught-up` over the generated 2,000,000 lines in a
# 3-partition topic: perf record (299 Hz, DWARF call graphs), user + system CPU from GNU time,
# then the CPU split by stage (bench/perf_stages.py). Needs the services and perf.
#
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p sawmill-cli -p sawmill-worker
#   bench/worker_profile.sh BIN_DIR TAG [TOPIC]   # an existing TOPIC is reused (same partition split)
#
# Writes $BENCH_DIR/profile-TAG/{perf.data,time.txt,stages.txt}.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:?usage: bench/worker_profile.sh BIN_DIR TAG [TOPIC]}
TAG=${2:?usage: bench/worker_profile.sh BIN_DIR TAG [TOPIC]}
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
OUT=$DIR/profile-$TAG
mkdir -p "$OUT"
eval "$("$ROOT/deploy/local/services" env)"
FILE=$DIR/gen-2000000.log
[[ -s $FILE ]] || "$BIN/sawmill" generate --lines 2000000 --seed 1 --out "$FILE"
TOPIC=${3:-bench-profile-$$}
if [[ -z ${3:-} ]]; then
  "$BIN/sawmill" produce --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" \
    --reset --partitions 3 -q
fi
echo "topic $TOPIC; load $(cut -d' ' -f1-3 /proc/loadavg)"
SAWMILL_LOG=warn /usr/bin/time -v -o "$OUT/time.txt" perf record -q -F 299 --call-graph dwarf,16384 \
  -o "$OUT/perf.data" -- "$BIN/worker" run --bootstrap-servers "$SAWMILL_KAFKA" --etcd "$SAWMILL_ETCD" \
  --topic "$TOPIC" --pipeline "$TOPIC-$TAG" --output "$SAWMILL_HDFS/sawmill-bench/$TOPIC-$TAG" \
  --until-caught-up >/dev/null 2>&1
cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$OUT/time.txt")
grep -E 'Elapsed|Maximum resident' "$OUT/time.txt"
perf script -i "$OUT/perf.data" -F comm,ip,sym --inline 2>/dev/null \
  | python3 "$ROOT/bench/perf_stages.py" "$cpu" | tee "$OUT/stages.txt"
"$ROOT/deploy/local/services" hdfs-dfs -rm -r -f -skipTrash "/sawmill-bench/$TOPIC-$TAG" >/dev/null 2>&1 || true
