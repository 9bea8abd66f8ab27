#!/usr/bin/env bash
# bench/cluster.sh - the cluster end to end (release binaries): `coordinator serve` plus one, then
# two `worker join` processes on a generated topic, against the plain-consumer ceiling (one
# rdkafka consumer that only reads the topic: worker/examples/plain_consumer.rs); then the
# failover time from a worker's kill -9 to its partitions being consumed again.
#
#   eval "$(deploy/local/services env)"; bench/cluster.sh
#
# Env: SAWMILL_KAFKA / SAWMILL_ETCD / SAWMILL_HDFS (the services; defaults are the local ones),
# BENCH_DIR (default /var/tmp/sawmill-bench), LINES (default 2000000), PARTITIONS (default 6),
# WORKERS (the worker counts to run, default "1 2"), SHARD_ROWS (default 200000),
# SHARD_AGE_MS (default 2000), FAILOVER (1 to run the failover measurement, default 1),
# LIMIT_S (give up waiting for a run to catch up after this many seconds, default 600).
#
# Throughput: the topic is produced once (not timed). Each run uses a fresh pipeline (etcd
# subtree) and HDFS output root, starts the coordinator, then the workers; the clock runs from
# starting the workers until the coordinator's status shows every partition's committed offset
# (etcd) at its end offset (Kafka), i.e. every line parsed, written to Parquet on HDFS and
# committed. Joining, partition start-up and the last shard's age cut are inside the time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROKER=${SAWMILL_KAFKA:-127.0.0.1:9092}
ETCD=${SAWMILL_ETCD:-http://127.0.0.1:2379}
HDFS=${SAWMILL_HDFS:-hdfs://127.0.0.1:9000}
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
LINES=${LINES:-2000000}
PARTITIONS=${PARTITIONS:-6}
WORKERS=${WORKERS:-"1 2"}
SHARD_ROWS=${SHARD_ROWS:-200000}
SHARD_AGE_MS=${SHARD_AGE_MS:-2000}
FAILOVER=${FAILOVER:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
REL=$CARGO_TARGET_DIR/release
FILE=$DIR/gen-$((LINES / 1000000))m.log
[[ $LINES -lt 1000000 ]] && FILE=$DIR/gen-${LINES}.log
RUN=$DIR/cluster-$(date +%Y%m%d-%H%M%S)
mkdir -p "$DIR" "$RUN"

(cd "$ROOT" && cargo build --release -q -p sawmill-worker -p sawmill-coordinator -p sawmill-cli \
  --bins --example plain_consumer)
[[ -s $FILE ]] || { "$REL/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE.tmp" && mv "$FILE.tmp" "$FILE"; }

TOPIC=bench-cluster-$LINES-$PARTITIONS
echo "== producing $FILE into $TOPIC ($PARTITIONS partitions, not timed)"
"$REL/sawmill" produce -q --bootstrap-servers "$BROKER" --topic "$TOPIC" --partitions "$PARTITIONS" \
  --reset --file "$FILE"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

now() { date +%s.%N; }
# status HTTP: the coordinator's status document on stdout
status() { python3 -c 'import sys,urllib.request;print(urllib.request.urlopen("http://"+sys.argv[1]+"/api/v1/status",timeout=5).read().decode())' "$1"; }
# caught_up HTTP: exit 0 once every partition's committed offset equals its end offset
caught_up() {
  status "$1" 2>/dev/null | python3 -c '
import sys, json
d = json.load(sys.stdin)
ps = d["partitions"]
ok = ps and all(p["end_offset"] is not None and p["committed_offset"] == p["end_offset"] for p in ps)
sys.exit(0 if ok else 1)'
}

# wait_caught_up HTTP: polls until caught up; gives up (status saved, exit 1) after LIMIT_S seconds
wait_caught_up() {
  local start=$SECONDS
  until caught_up "$1"; do
    if (( SECONDS - start > ${LIMIT_S:-600} )); then
      status "$1" >"$RUN/stalled-status.json"
      echo "not caught up after ${LIMIT_S:-600}s: see $RUN/stalled-status.json and the logs in $RUN" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# start_coordinator NAME: starts a coordinator for pipeline NAME on free ports; sets GRPC, HTTP
start_coordinator() {
  local name=$1 out=$RUN/$1-coordinator.out
  SAWMILL_LOG=info "$REL/coordinator" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 \
    --bootstrap-servers "$BROKER" --etcd "$ETCD" --topic "$TOPIC" --pipeline "$name" \
    --output "$HDFS/sawmill-bench/$name" --shard-max-rows "$SHARD_ROWS" --shard-max-age-ms "$SHARD_AGE_MS" \
    >"$out" 2>"$RUN/$name-coordinator.log" &
  COORD_PID=$!
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q '^listening' "$out" 2>/dev/null && break; sleep 0.1; done
  GRPC=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$out")
  HTTP=$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$out")
  [[ -n $GRPC ]] || { echo "coordinator did not start: see $RUN/$name-coordinator.log" >&2; exit 1; }
  # Let it read the topic once, so the workers' clock does not include that.
  for _ in $(seq 1 50); do status "$HTTP" | grep -q '"end_offset":[0-9]' && break; sleep 0.1; done
}

# start_worker NAME ID: a `worker join` process; its pid is appended to PIDS
start_worker() {
  SAWMILL_LOG=info "$REL/worker" join --coordinator "$GRPC" --worker-id "$2" 2>"$RUN/$1-$2.log" &
  PIDS+=($!)
}

stop_all() { cleanup; PIDS=(); sleep 1; }
# cpu_s PID: user+system CPU seconds the process used so far
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
remove_output() { "$ROOT/deploy/local/services" hdfs-dfs -rm -r -f -skipTrash "/sawmill-bench/$1" >/dev/null 2>&1 || true; }

echo "== plain-consumer ceiling"
CEILING=$("$REL/examples/plain_consumer" "$BROKER" "$TOPIC" | tee "$RUN/ceiling.txt" | sed -n 's/.*lines_per_sec=\([0-9]*\).*/\1/p')
cat "$RUN/ceiling.txt"

for W in $WORKERS; do
  NAME=bench-w$W-$$-$RANDOM
  start_coordinator "$NAME"
  T0=$(now)
  for i in $(seq 1 "$W"); do start_worker "$NAME" "w$i"; done
  wait_caught_up "$HTTP"
  T1=$(now)
  python3 - "$W" "$LINES" "$T0" "$T1" "$CEILING" "$(cpu_s "$COORD_PID")" <<'PY' | tee -a "$RUN/results.txt"
import sys
w, lines, t0, t1, ceiling, ccpu = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
rate = lines / (t1 - t0)
print(f"workers={w} lines={lines} seconds={t1 - t0:.2f} lines_per_s={rate:.0f} ratio_to_ceiling={rate / ceiling:.3f} coordinator_cpu_s={ccpu:.2f}")
PY
  status "$HTTP" >"$RUN/$NAME-status.json"
  stop_all
  remove_output "$NAME"
done

if [[ $FAILOVER == 1 ]]; then
  echo "== failover: kill -9 one of two workers at about a third of the topic"
  NAME=bench-failover-$$-$RANDOM
  start_coordinator "$NAME"
  start_worker "$NAME" w1
  VICTIM_PID=${PIDS[-1]}
  start_worker "$NAME" w2
  # Wait until a third of the lines are committed and both workers own partitions.
  until status "$HTTP" | python3 -c '
import sys, json
d = json.load(sys.stdin)
done = sum(p["committed_offset"] or 0 for p in d["partitions"])
owners = {p["owner"] for p in d["partitions"] if p["state"] == "owned"}
sys.exit(0 if done * 3 >= int(sys.argv[1]) and owners == {"w1", "w2"} else 1)' "$LINES"; do sleep 0.1; done
  status "$HTTP" >"$RUN/failover-before.json"
  TKILL=$(now)
  kill -9 "$VICTIM_PID"; wait "$VICTIM_PID" 2>/dev/null || true
  # Poll until every partition w1 owned is owned by w2 under a new epoch.
  until status "$HTTP" | python3 -c '
import sys, json
before = {p["partition"]: p for p in json.load(open(sys.argv[1]))["partitions"]}
d = json.load(sys.stdin)
lost = [p for p, b in before.items() if b["owner"] == "w1"]
now = {p["partition"]: p for p in d["partitions"]}
sys.exit(0 if all(now[p]["owner"] == "w2" and now[p]["state"] == "owned" and now[p]["epoch"] > before[p]["epoch"] for p in lost) else 1)' "$RUN/failover-before.json"; do sleep 0.05; done
  TOWNED=$(now)
  wait_caught_up "$HTTP"
  status "$HTTP" >"$RUN/failover-after.json"
  stop_all
  python3 - "$RUN/failover-before.json" "$RUN/$NAME-w2.log" "$TKILL" "$TOWNED" <<'PY' | tee -a "$RUN/results.txt"
import sys, json, re, datetime
before = json.load(open(sys.argv[1]))
tkill, towned = float(sys.argv[3]), float(sys.argv[4])
lost = sorted(p["partition"] for p in before["partitions"] if p["owner"] == "w1")
resumed = {}
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(sys.argv[2], errors="replace"):
    line = ansi.sub("", line)
    m = re.match(r"(\S+Z)\s.*consuming partition partition=(\d+) offset=(\d+)", line)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
    p = int(m.group(2))
    if p in lost and t > tkill and p not in resumed:
        resumed[p] = t - tkill
print(f"failover: partitions {lost} of the killed worker; owned by the survivor (new epoch, seen in status) after {towned - tkill:.2f}s;"
      f" consumption resumed (survivor's consumer assigned them) after {max(resumed.values()) if len(resumed) == len(lost) else float('nan'):.2f}s"
      f" (per partition: { {p: round(s, 2) for p, s in sorted(resumed.items())} }); session timeout 3.0s, heartbeat 0.5s")
PY
  remove_output "$NAME"
fi
echo "== results in $RUN/results.txt"
