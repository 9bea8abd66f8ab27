#!/usr/bin/env bash
# deploy/container/fleet-test.sh - a Sawmill fleet under load in real containers: etcd, Kafka,
# HDFS, one coordinator and workers from deploy/container/fleet.compose.yml, scaled 1 -> 3 -> 2
# while a generated topic is produced, one worker killed (SIGKILL) and restarted, one rolled
# (stopped, recreated from a new image tag, started). See deploy/container/README.md.
#
#   fleet-test.sh [--keep]          (images from build-images.sh all; podman-compose on PATH)
#
# Checks here: every partition owned by exactly one live worker at every status poll between
# settling and the next change; lag 0 and every line merged at the end; the producer succeeded.
# Measured: for each change, the time until every partition is owned again, balanced over the
# expected workers (printed as a table, and in $FLEET_RESULTS/figures.tsv).
# Left in $FLEET_RESULTS for deeper checks (tests/tests/fleet.rs): lines.log (the produced lines),
# output/ (the pipeline's output root copied out of HDFS), reference/ (`sawmill run` over
# lines.log), final-status.json.
#
# Settings (environment): FLEET_RESULTS [a new /tmp/sawmill-fleet.*], FLEET_LINES [200000],
# FLEET_PARTITIONS [6], FLEET_CHUNKS [24], FLEET_CHUNK_PAUSE (s) [2], FLEET_SESSION_TIMEOUT_MS
# [2000], FLEET_SETTLE_TIMEOUT (s) [90], SAWMILL_IMAGE_TAG [latest].
#
# Everything is named fleet-<pid>-*, labelled sawmill.fleet=fleet-<pid> (containers) or in the
# compose project fleet-<pid>, and removed at exit, pass or fail (unless --keep). The compose
# steps podman 4.3's compose cannot do are plain podman: waiting for health (no
# `podman wait --condition healthy` before 4.6, and no systemd timers), killing, restarting and
# rolling one chosen replica, and the probe/producer containers.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=fleet-$$
TAG=${SAWMILL_IMAGE_TAG:-latest}
LINES=${FLEET_LINES:-200000}
PARTITIONS=${FLEET_PARTITIONS:-6}
CHUNKS=${FLEET_CHUNKS:-24}
CHUNK_PAUSE=${FLEET_CHUNK_PAUSE:-2}
SETTLE_TIMEOUT=${FLEET_SETTLE_TIMEOUT:-90}
HEALTH_TIMEOUT=180
TOPIC=fleet
keep=0
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "fleet-test: unknown argument '$a'" >&2; exit 2 ;;
  esac
done

R=${FLEET_RESULTS:-$(mktemp -d /tmp/sawmill-fleet.XXXXXX)}
mkdir -p "$R"
# The containers run as their images' users (sawmill 10001, hadoop 10003) and write here.
chmod 0777 "$R"
SAWMILL=localhost/sawmill:$TAG
ROLL_IMAGE=localhost/sawmill:roll-$P
HADOOP=localhost/sawmill-hadoop:$TAG

# podman and podman-compose both read this: every container runs under the rlimit-less runc.
export CONTAINERS_CONF=$R/containers.conf
printf '[engine]\nruntime = "sawmill-runc"\n\n[engine.runtimes]\nsawmill-runc = ["%s"]\n' \
  "$HERE/runc-no-rlimits" >"$CONTAINERS_CONF"
# What fleet.compose.yml interpolates.
export SAWMILL_IMAGE=$SAWMILL SAWMILL_ETCD_IMAGE=localhost/sawmill-etcd:$TAG \
  SAWMILL_KAFKA_IMAGE=localhost/sawmill-kafka:$TAG SAWMILL_HADOOP_IMAGE=$HADOOP \
  SAWMILL_TOPIC=$TOPIC SAWMILL_PARTITIONS=$PARTITIONS SAWMILL_FLEET_NETWORK=$P-net \
  SAWMILL_SESSION_TIMEOUT_MS=${FLEET_SESSION_TIMEOUT_MS:-2000} SAWMILL_HEARTBEAT_INTERVAL_MS=250 \
  SAWMILL_SHARD_MAX_AGE_MS=2000 SAWMILL_RESTART=no SAWMILL_LOG=info
NET=$P-net

log() { printf '[fleet %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
now_ms() { date +%s%3N; }
# No systemd here: podman warns about health-check timers and syslog on every run.
quiet() { "$@" 2> >(grep -v 'systemd connection\|failed to connect to syslog\|CNI config' >&2); }
pm() { quiet podman "$@"; }
ip_of() { podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
compose() { quiet podman-compose -f "$HERE/fleet.compose.yml" -p "$P" "$@"; }

command -v podman >/dev/null || die "podman is not installed (deploy/container/build-images.sh installs it)"
command -v podman-compose >/dev/null || die "podman-compose is not installed: pip install podman-compose"
command -v python3 >/dev/null || die "python3 is needed for the status analysis"
for img in "$SAWMILL" "$SAWMILL_ETCD_IMAGE" "$SAWMILL_KAFKA_IMAGE" "$HADOOP"; do
  podman image exists "$img" || die "image $img missing: run deploy/container/build-images.sh all"
done

cleanup() {
  local rc=$?
  if (( keep )); then log "--keep: leaving project $P (network $NET) running; results in $R"; return; fi
  log "removing everything named $P (their logs: $R/logs/)"
  local ids c
  ids=$( { podman ps -aq --filter "label=sawmill.fleet=$P"; \
           podman ps -aq --filter "label=io.podman.compose.project=$P"; } 2>/dev/null | sort -u)
  mkdir -p "$R/logs"
  local name
  for c in $ids; do
    name=$(podman inspect --format '{{.Name}}' "$c" 2>/dev/null || echo "$c")
    podman logs "$c" >"$R/logs/$name.log" 2>&1 || true
    # On a failure the logs directory is gone with the machine (CI): show the Sawmill
    # containers' state and last lines here.
    if (( rc != 0 )) && [[ $name == *_worker_* || $name == *_coordinator_* ]]; then
      log "$name: $(podman inspect --format '{{.State.Status}} (exit {{.State.ExitCode}})' "$c" 2>/dev/null)"
      tail -n 15 "$R/logs/$name.log" | sed "s/^/  $name| /" >&2
    fi
  done
  # shellcheck disable=SC2086  # a list of ids
  [[ -z $ids ]] || podman rm -f -t 2 $ids >/dev/null 2>&1 || true
  podman network rm -f "$NET" >/dev/null 2>&1 || true
  podman volume ls -q 2>/dev/null | grep "^${P}_" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman rmi "$ROLL_IMAGE" >/dev/null 2>&1 || true
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_healthy() {  # wait_healthy CONTAINER: `podman healthcheck run` until it passes
  local c=$1 deadline=$(( $(date +%s) + HEALTH_TIMEOUT ))
  until pm healthcheck run "$c" >/dev/null 2>&1; do
    [[ $(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null) == running ]] \
      || { podman logs --tail 30 "$c" >&2 2>&1 || true; die "$c stopped"; }
    (( $(date +%s) < deadline )) || { podman logs --tail 30 "$c" >&2 2>&1 || true; die "$c not healthy after ${HEALTH_TIMEOUT}s"; }
    sleep 1
  done
}

t0=$(date +%s)
log "results in $R; project $P; $LINES lines into $PARTITIONS partitions in $CHUNKS chunks"

# ------------------------------------------------------------------ input
pm run --rm --network none -v "$R:/work" "$SAWMILL" \
  sawmill generate --lines "$LINES" --out /work/lines.log --malformed-fraction 0.01 >/dev/null
mkdir -p "$R/chunks"
split -n "l/$CHUNKS" -d -a 3 "$R/lines.log" "$R/chunks/part-"
[[ $(wc -l <"$R/lines.log") == "$LINES" ]] || die "generated $(wc -l <"$R/lines.log") lines, not $LINES"

# ------------------------------------------------------------------ services, coordinator
compose up -d etcd kafka namenode datanode >"$R/compose-up.log" 2>&1 \
  || { cat "$R/compose-up.log" >&2; die "podman-compose up of the services"; }
for s in etcd kafka namenode datanode; do wait_healthy "${P}_${s}_1"; done
[[ $(podman network inspect --format '{{.Internal}}' "$NET") == true ]] \
  || die "network $NET is not internal: the fleet must reach nothing outside it"
log "services healthy after $(( $(date +%s) - t0 ))s"
pm exec "${P}_kafka_1" kafka topics --create --topic "$TOPIC" --partitions "$PARTITIONS" \
  --replication-factor 1 >/dev/null
compose up -d --no-deps coordinator >>"$R/compose-up.log" 2>&1 \
  || { cat "$R/compose-up.log" >&2; die "podman-compose up coordinator"; }
wait_healthy "${P}_coordinator_1"

# The probe polls `sawmill status --json` every 250 ms inside the network and appends
# "<ms> <json>" lines that the host reads (the network stays internal: no published port).
# It reaches the coordinator through /etc/hosts: podman's DNS stalls for seconds while
# containers join or leave the network (README, quirk 10), and the timing must not include that.
pm run -d --name "$P-probe" --label "sawmill.fleet=$P" --network "$NET" -v "$R:/work" \
  --add-host "coordinator:$(ip_of "${P}_coordinator_1")" \
  "$SAWMILL" bash -c 'while :; do t=$(date +%s%3N);
    if s=$(sawmill status --json --coordinator coordinator:7000 2>/tmp/err); then
      printf "%s %s\n" "$t" "$s" >>/work/status.jsonl
    else echo "poll at $t failed after $(( $(date +%s%3N) - t )) ms: $(cat /tmp/err)" >&2; fi
    sleep 0.25; done' >/dev/null

# ------------------------------------------------------------------ events
: >"$R/events.tsv"
worker_id_prefix() { podman inspect --format '{{.Config.Hostname}}' "$1"; }
expect_workers() {  # expect_workers CONTAINER...: the hostnames the live worker ids start with
  local c
  EXPECTED=()
  for c in "$@"; do EXPECTED+=("$(worker_id_prefix "$c")"); done
}
# settled: the last status poll shows every partition owned, balanced over exactly the
# expected workers, each partition in exactly one live worker's heartbeat. Prints nothing.
settled() {
  tail -n 1 "$R/status.jsonl" 2>/dev/null | python3 "$HERE/fleet_status.py" settled "$PARTITIONS" "${EXPECTED[@]}"
}
# change NAME CMD CONTAINER...: record the start, run CMD (a shell string), then wait until the
# status is settled over the worker CONTAINERs; record the end.
change() {
  local name=$1 cmd=$2; shift 2
  local start; start=$(now_ms)
  eval "$cmd" || die "$name: $cmd failed"
  expect_workers "$@"
  local deadline=$(( $(date +%s) + SETTLE_TIMEOUT ))
  until settled; do
    (( $(date +%s) < deadline )) || { tail -n 1 "$R/status.jsonl" >&2; die "$name: not settled after ${SETTLE_TIMEOUT}s"; }
    sleep 0.1
  done
  printf '%s\t%s\t%s\t%s\n' "$name" "$start" "$(now_ms)" "${EXPECTED[*]}" >>"$R/events.tsv"
  log "$name: settled in $(( $(now_ms) - start )) ms over ${#EXPECTED[@]} workers"
}
hold() { sleep "${1:-4}"; }   # polls while nothing changes: the ownership check's samples

W=${P}_worker
produce_all() {
  # The broker's address in /etc/hosts: a failed name lookup would fail the producer, and a
  # retried chunk would put its lines in the topic twice.
  pm run -d --name "$P-producer" --label "sawmill.fleet=$P" --network "$NET" \
    --add-host "kafka:$(ip_of "${P}_kafka_1")" \
    -v "$R/chunks:/chunks:ro" -e "PAUSE=$CHUNK_PAUSE" "$SAWMILL" bash -c \
    'for f in /chunks/part-*; do
       sawmill produce -q --bootstrap-servers kafka:9092 --topic fleet --file "$f" || exit 1
       sleep "$PAUSE"; done' >/dev/null
}
produce_all
printf 'produce-start\t%s\n' "$(now_ms)" >"$R/producer.tsv"

# Scaling up is compose's own (existing replicas stay, new ones are added); podman-compose 1.6
# does not remove replicas on a smaller --scale, so scaling down stops one by hand.
change "start 0->1" 'compose up -d --no-deps worker >>"$R/compose-up.log" 2>&1' "${W}_1"
hold
change "scale up 1->3" 'compose up -d --no-deps --scale worker=3 worker >>"$R/compose-up.log" 2>&1' \
  "${W}_1" "${W}_2" "${W}_3"
hold
# A graceful stop (SIGTERM through tini): the worker commits its open shards and leaves.
change "scale down 3->2" 'pm stop -t 60 "${W}_3" >/dev/null && pm rm "${W}_3" >/dev/null' "${W}_1" "${W}_2"
hold
change "kill -9 worker (2->1)" 'pm kill -s KILL "${W}_2" >/dev/null' "${W}_1"
hold 2
change "restart killed (1->2)" 'pm start "${W}_2" >/dev/null' "${W}_1" "${W}_2"
hold
# Roll worker 1: stop it, recreate it from a new tag of the image (same settings, network and
# compose labels: `podman container clone`), start it.
podman tag "$SAWMILL" "$ROLL_IMAGE"
change "roll: stop old (2->1)" 'pm stop -t 60 "${W}_1" >/dev/null' "${W}_2"
pm container clone "${W}_1" "${W}_4" "$ROLL_IMAGE" >/dev/null
pm rm "${W}_1" >/dev/null
change "roll: start new tag (1->2)" 'pm start "${W}_4" >/dev/null' "${W}_2" "${W}_4"
[[ $(podman inspect --format '{{.ImageName}}' "${W}_4") == "$ROLL_IMAGE" ]] \
  || die "the rolled worker does not run $ROLL_IMAGE"
hold

# ------------------------------------------------------------------ drain
code=$(podman wait "$P-producer" 2>/dev/null | tail -1)
printf 'produce-end\t%s\n' "$(now_ms)" >>"$R/producer.tsv"
[[ $code == 0 ]] || { podman logs --tail 20 "$P-producer" >&2 2>&1 || true; die "the producer exited with $code"; }
log "producer done; waiting for lag 0 and $LINES lines merged"
deadline=$(( $(date +%s) + 240 ))
until tail -n 1 "$R/status.jsonl" | python3 "$HERE/fleet_status.py" done "$LINES"; do
  (( $(date +%s) < deadline )) || { tail -n 1 "$R/status.jsonl" >&2; die "not caught up after 240s"; }
  sleep 1
done
tail -n 1 "$R/status.jsonl" | cut -d' ' -f2- >"$R/final-status.json"
mkdir -p "$R/logs"
podman logs "$P-probe" >"$R/logs/$P-probe.log" 2>&1 || true
pm rm -f -t 0 "$P-probe" >/dev/null
# The coordinator writes the summary tables once more when it stops.
pm stop -t 30 "${P}_coordinator_1" >/dev/null
log "caught up after $(( $(date +%s) - t0 ))s; copying the output out of HDFS"
pm run --rm --network "$NET" -v "$R:/work" "$HADOOP" hdfs dfs -get "/sawmill/$TOPIC" /work/output
pm run --rm --network none -v "$R:/work" "$SAWMILL" sawmill run -q /work/lines.log --output /work/reference

python3 "$HERE/fleet_status.py" report "$PARTITIONS" "$R" | tee "$R/report.txt"
log "fleet test passed in $(( $(date +%s) - t0 ))s"
