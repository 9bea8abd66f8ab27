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
# LIMIT_S (give up waiting for a run to catch up after this many seconds, default 600),
# BIN_DIR (run the binaries in this directory instead of building the tree's; MODE=compare only,
# the other modes also need the plain_consumer example).
#
# Throughput: the topic is produced once (not timed). Each run uses a fresh pipeline (etcd
# subtree) and HDFS output root, starts the coordinator, then the workers; the clock runs from
# starting the workers until the coordinator's status shows every partition's committed offset
# (etcd) at its end offset (Kafka), i.e. every line parsed, written to Parquet on HDFS and
# committed. Joining, partition start-up and the last shard's age cut are inside the time.
#
# MODE=compare (issue #14): the cluster path against `worker run --until-caught-up` on the same
# topic, RUNS times each (default 5), interleaved (the order alternates run by run), every
# process with its default settings (none of the SHARD_* overrides above). Each run gets a fresh
# pipeline and output root and is timed twice: from starting its processes until etcd holds every
# partition's next offset at the topic's end (polled every 10 ms by one process, the same
# criterion for both), and, for `worker run`, until it exits (bench/worker.sh's figure). The
# cluster run starts `coordinator serve`, then `worker join` as soon as the coordinator listens;
# its time runs from the coordinator's start (and is also given from the worker's). Prints each
# run, the medians and the ratio cluster / worker run. PARTITIONS defaults to 3 in this mode
# (bench/worker.sh's topic).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROKER=${SAWMILL_KAFKA:-127.0.0.1:9092}
ETCD=${SAWMILL_ETCD:-http://127.0.0.1:2379}
HDFS=${SAWMILL_HDFS:-hdfs://127.0.0.1:9000}
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
LINES=${LINES:-2000000}
MODE=${MODE:-scale}
if [[ $MODE == compare ]]; then PARTITIONS=${PARTITIONS:-3}; else PARTITIONS=${PARTITIONS:-6}; fi
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-"1 2"}
SHARD_ROWS=${SHARD_ROWS:-200000}
SHARD_AGE_MS=${SHARD_AGE_MS:-2000}
FAILOVER=${FAILOVER:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
# BIN_DIR: run these binaries (worker, coordinator, sawmill) instead of building the tree's.
REL=${BIN_DIR:-$CARGO_TARGET_DIR/release}
FILE=$DIR/gen-$((LINES / 1000000))m.log
[[ $LINES -lt 1000000 ]] && FILE=$DIR/gen-${LINES}.log
RUN=$DIR/cluster-$(date +%Y%m%d-%H%M%S)
mkdir -p "$DIR" "$RUN"

[[ -n ${BIN_DIR:-} ]] || (cd "$ROOT" && cargo build --release -q -p sawmill-worker -p sawmill-coordinator \
  -p sawmill-cli --bins --example plain_consumer)
[[ -s $FILE ]] || { "$REL/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE.tmp" && mv "$FILE.tmp" "$FILE"; }

TOPIC=bench-cluster-$LINES-$PARTITIONS
[[ $MODE == compare ]] && TOPIC=bench-compare-$LINES-$PARTITIONS
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

# etcd_waiter NAME: in the background, polls etcd (its JSON gateway) every 10 ms until every
# partition's next offset of pipeline NAME sums to LINES, then writes the wall time to
# $RUN/NAME.done. Returns once the poller runs (its start-up is not timed).
etcd_waiter() {
  rm -f "$RUN/$1.ready" "$RUN/$1.done"
  python3 - "$ETCD" "/sawmill/$1/partitions/" "$PARTITIONS" "$LINES" "$RUN/$1" <<'PY' &
import base64, json, sys, time, urllib.request
etcd, prefix, parts, lines, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
b64 = lambda s: base64.b64encode(s.encode()).decode()
end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
body = json.dumps({"key": b64(prefix), "range_end": b64(end)}).encode()
open(out + ".ready", "w").close()
deadline = time.time() + 600
while time.time() < deadline:
    try:
        kvs = json.load(urllib.request.urlopen(etcd + "/v3/kv/range", body, timeout=5)).get("kvs", [])
    except OSError:
        kvs = []
    nexts = [int(base64.b64decode(kv["value"])) for kv in kvs if base64.b64decode(kv["key"]).endswith(b"/next_offset")]
    if len(nexts) == parts and sum(nexts) == lines:
        open(out + ".done", "w").write(f"{time.time():.4f}\n")
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
  WAITER=$!
  until [[ -e $RUN/$1.ready ]]; do sleep 0.01; done
}

# wait_done NAME: waits for the waiter; sets TDONE, the wall time at which NAME was caught up
wait_done() {
  wait "$WAITER" || { echo "pipeline $1 not caught up after 600 s: see the logs in $RUN" >&2; exit 1; }
  TDONE=$(cat "$RUN/$1.done")
}

# compare_standalone I: one `worker run --until-caught-up` run; appends a result line
compare_standalone() {
  local name=cmp-s$1-$$ t0 texit tdone
  etcd_waiter "$name"
  t0=$(now)
  SAWMILL_LOG=info "$REL/worker" run --bootstrap-servers "$BROKER" --etcd "$ETCD" --topic "$TOPIC" \
    --pipeline "$name" --output "$HDFS/sawmill-bench/$name" --until-caught-up >"$RUN/$name.out" 2>"$RUN/$name.log"
  texit=$(now)
  wait_done "$name"; tdone=$TDONE
  echo "run=$1 path=worker-run seconds=$(python3 -c "print(f'{$tdone - $t0:.3f}')") exit_seconds=$(python3 -c "print(f'{$texit - $t0:.3f}')") load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RUN/results.txt"
  remove_output "$name"
}

# compare_cluster I: one coordinator + one worker run; appends a result line
compare_cluster() {
  local name=cmp-c$1-$$ out=$RUN/cmp-c$1-$$-coordinator.out t0 tw tdone
  etcd_waiter "$name"
  t0=$(now)
  SAWMILL_LOG=info "$REL/coordinator" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 \
    --bootstrap-servers "$BROKER" --etcd "$ETCD" --topic "$TOPIC" --pipeline "$name" \
    --output "$HDFS/sawmill-bench/$name" >"$out" 2>"$RUN/$name-coordinator.log" &
  PIDS+=($!)
  for _ in $(seq 1 1000); do grep -q '^listening' "$out" 2>/dev/null && break; sleep 0.01; done
  GRPC=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$out")
  [[ -n $GRPC ]] || { echo "coordinator did not start: see $RUN/$name-coordinator.log" >&2; exit 1; }
  tw=$(now)
  SAWMILL_LOG=info,sawmill_worker=debug "$REL/worker" join --coordinator "$GRPC" --worker-id w1 2>"$RUN/$name-w1.log" &
  PIDS+=($!)
  wait_done "$name"; tdone=$TDONE
  echo "run=$1 path=cluster seconds=$(python3 -c "print(f'{$tdone - $t0:.3f}')") from_worker_start=$(python3 -c "print(f'{$tdone - $tw:.3f}')") load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RUN/results.txt"
  stop_all
  remove_output "$name"
}

if [[ $MODE == compare ]]; then
  echo "== $RUNS runs each, interleaved, default settings; load $(cut -d' ' -f1-3 /proc/loadavg)"
  for i in $(seq 1 "$RUNS"); do
    if (( i % 2 )); then compare_standalone "$i"; compare_cluster "$i"; else compare_cluster "$i"; compare_standalone "$i"; fi
  done
  python3 - "$RUN/results.txt" <<'PY'
import statistics, sys
runs = [dict(kv.split("=") for kv in line.split()) for line in open(sys.argv[1]) if line.startswith("run=")]
med = lambda path, key: statistics.median(float(r[key]) for r in runs if r["path"] == path)
w, c = med("worker-run", "seconds"), med("cluster", "seconds")
print(f"median worker run (etcd caught up) {w:.3f} s, (exit) {med('worker-run', 'exit_seconds'):.3f} s; "
      f"median cluster {c:.3f} s (from the worker's start {med('cluster', 'from_worker_start'):.3f} s)")
print(f"ratio cluster / worker run: {c / w:.3f} (same criterion); {c / med('worker-run', 'exit_seconds'):.3f} (against worker run's exit)")
PY
  echo "== results in $RUN/results.txt"
  exit 0
fi

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
