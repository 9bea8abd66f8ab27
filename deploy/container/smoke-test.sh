#!/usr/bin/env bash
# deploy/container/smoke-test.sh - run the images that build-images.sh made, on one internal
# podman network, and check that they work together. See deploy/container/README.md.
#
#   smoke-test.sh [--keep] [etcd] [kafka] [hdfs] [sawmill]   (default: all four)
#
#   etcd     etcd container healthy; etcdctl put/get from a second container over the network
#   kafka    broker healthy; a topic created, a message produced and consumed by client
#            containers through kafka:9092
#   hdfs     NameNode + DataNode healthy; `hdfs dfs -put` / `-cat` from a client container
#   sawmill  `getent hosts` of every service from the Sawmill image; coordinator/worker/sawmill
#            --help; with real binaries also end to end: `sawmill produce` of data/sample into
#            Kafka, `coordinator serve` (HEALTHCHECK: GET /healthz), `worker join`, until the
#            lag is 0 and Parquet files are in HDFS; then `sawmill status`
#
# The network is created with --internal: no route leaves it, so the containers reach each
# other (by name, through podman's DNS) and their own loopback, nothing else. Everything this
# script starts is named $SMOKE_PREFIX-* and removed at the end (unless --keep), with the
# network; the images stay.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
W=$HERE/runc-no-rlimits
P=${SMOKE_PREFIX:-sawmill-smoke}
NET=$P-net
TAG=${SAWMILL_IMAGE_TAG:-latest}
SAWMILL=localhost/sawmill:$TAG
ETCD=localhost/sawmill-etcd:$TAG
KAFKA=localhost/sawmill-kafka:$TAG
HADOOP=localhost/sawmill-hadoop:$TAG
HEALTH_TIMEOUT=${SMOKE_HEALTH_TIMEOUT:-180}

keep=0
declare -A WANT=()
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    etcd|kafka|hdfs|sawmill) WANT[$a]=1 ;;
    -h|--help) sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "smoke-test: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
(( ${#WANT[@]} )) || WANT=([etcd]=1 [kafka]=1 [hdfs]=1 [sawmill]=1)

# podman prints "unable to get systemd connection to add healthchecks" for every container
# with a HEALTHCHECK on a machine without systemd; the checks are run by hand below instead.
pm() { podman --runtime "$W" "$@" 2> >(grep -v 'systemd connection\|failed to connect to syslog' >&2); }

declare -a RESULTS=()
pass=0 fail=0
t_step=0
begin() { t_step=$(date +%s); echo "--- $*" >&2; }
ok()   { RESULTS+=("PASS $(( $(date +%s) - t_step ))s  $*"); pass=$((pass + 1)); echo "    ok: $*" >&2; }
bad()  { RESULTS+=("FAIL $(( $(date +%s) - t_step ))s  $*"); fail=$((fail + 1)); echo "    FAILED: $*" >&2; }

CREATED=()
cleanup() {
  (( keep )) && { echo "--keep: leaving ${CREATED[*]:-nothing} on $NET" >&2; return; }
  local c
  for c in "${CREATED[@]}"; do pm rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  podman network rm -f "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# run_daemon NAME ALIAS IMAGE [podman-run-args...] -- [command...]
run_daemon() {
  local name=$P-$1 alias=$2 image=$3; shift 3
  local -a opts=()
  while (( $# )) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  (( $# )) && shift
  pm rm -f -t 0 "$name" >/dev/null 2>&1 || true
  pm run -d --name "$name" --network "$NET" --network-alias "$alias" "${opts[@]}" "$image" "$@" >/dev/null
  CREATED+=("$name")
}

# client IMAGE [podman-run-args...] -- command...: a throw-away container on the network
client() {
  local image=$1; shift
  local -a opts=()
  while (( $# )) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  (( $# )) && shift
  pm run --rm -i --network "$NET" "${opts[@]}" "$image" "$@"
}

# wait_healthy NAME: `podman healthcheck run` until it passes (no systemd timers here)
wait_healthy() {
  local name=$P-$1 deadline=$(( $(date +%s) + HEALTH_TIMEOUT )) state
  while :; do
    state=$(podman inspect --format '{{.State.Status}}' "$name" 2>/dev/null || echo gone)
    if [[ $state != running ]]; then
      echo "    $name is $state; its last log lines:" >&2
      podman logs --tail 30 "$name" >&2 2>&1 || true
      return 1
    fi
    if pm healthcheck run "$name" >/dev/null 2>&1; then return 0; fi
    if (( $(date +%s) >= deadline )); then
      echo "    $name not healthy after ${HEALTH_TIMEOUT}s; last log lines:" >&2
      podman logs --tail 30 "$name" >&2 2>&1 || true
      return 1
    fi
    sleep 2
  done
}

for img in "$SAWMILL" "$ETCD" "$KAFKA" "$HADOOP"; do
  podman image exists "$img" || { echo "smoke-test: image $img missing; run build-images.sh all" >&2; exit 1; }
done

t0=$(date +%s)
podman network rm -f "$NET" >/dev/null 2>&1 || true
podman network create --internal "$NET" >/dev/null
echo "network $NET: $(podman network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}} internal={{.Internal}} dns={{.DNSEnabled}}' "$NET")" >&2

# Start every daemon first, so the JVMs warm up in parallel.
[[ -n ${WANT[etcd]:-} || -n ${WANT[sawmill]:-} ]] && run_daemon etcd etcd "$ETCD" --
[[ -n ${WANT[kafka]:-} || -n ${WANT[sawmill]:-} ]] && run_daemon kafka kafka "$KAFKA" \
  --hostname kafka -e KAFKA_ADVERTISED_HOST=kafka --
if [[ -n ${WANT[hdfs]:-} || -n ${WANT[sawmill]:-} ]]; then
  run_daemon namenode namenode "$HADOOP" -- namenode
  run_daemon datanode datanode "$HADOOP" -- datanode
fi

if [[ -n ${WANT[etcd]:-} || -n ${WANT[sawmill]:-} ]]; then
  begin etcd
  if wait_healthy etcd; then ok "etcd healthy (HEALTHCHECK: etcdctl endpoint health)"; else bad "etcd healthy"; fi
  begin etcdctl
  # shellcheck disable=SC2016  # expands inside the container
  if out=$(client "$ETCD" -- sh -c 'etcdctl --endpoints=http://etcd:2379 put /sawmill/smoke "hello from $(hostname)" >/dev/null &&
                                     etcdctl --endpoints=http://etcd:2379 get --print-value-only /sawmill/smoke') \
     && [[ $out == "hello from "* ]]; then
    ok "etcdctl put/get from another container via etcd:2379 ($out)"
  else
    bad "etcdctl put/get via etcd:2379: ${out:-no output}"
  fi
fi

if [[ -n ${WANT[kafka]:-} || -n ${WANT[sawmill]:-} ]]; then
  begin kafka
  if wait_healthy kafka; then ok "kafka healthy (HEALTHCHECK: TopicCommand --list)"; else bad "kafka healthy"; fi
  begin kafka-topic
  if client "$KAFKA" -- kafka topics --bootstrap-server kafka:9092 --create --topic smoke \
        --partitions 3 --replication-factor 1 >/dev/null \
     && out=$(client "$KAFKA" -- kafka topics --bootstrap-server kafka:9092 --describe --topic smoke) \
     && grep -q 'PartitionCount: 3' <<<"$out"; then
    ok "topic 'smoke' created and described from a client container via kafka:9092"
  else
    bad "kafka topic create/describe: ${out:-}"
  fi
  begin kafka-produce-consume
  if printf 'line-1\nline-2\n' | client "$KAFKA" -- kafka class org.apache.kafka.tools.ConsoleProducer \
        --bootstrap-server kafka:9092 --topic smoke >/dev/null \
     && out=$(client "$KAFKA" -- kafka class org.apache.kafka.tools.consumer.ConsoleConsumer \
        --bootstrap-server kafka:9092 --topic smoke --from-beginning --max-messages 2 --timeout-ms 30000 2>/dev/null) \
     && [[ $(sort <<<"$out" | tr '\n' ' ') == "line-1 line-2 " ]]; then
    ok "2 messages produced and consumed through kafka:9092"
  else
    bad "kafka produce/consume: got '${out:-}'"
  fi
fi

if [[ -n ${WANT[hdfs]:-} || -n ${WANT[sawmill]:-} ]]; then
  begin hdfs
  if wait_healthy namenode && wait_healthy datanode; then
    ok "namenode and datanode healthy (HEALTHCHECK: /jmx)"
  else
    bad "namenode/datanode healthy"
  fi
  begin hdfs-put
  expect="sawmill smoke $(date -Is)"
  if echo "$expect" | client "$HADOOP" -- hdfs dfs -put -f - /sawmill/smoke/hello.txt \
     && out=$(client "$HADOOP" -- hdfs dfs -cat /sawmill/smoke/hello.txt) \
     && [[ $out == "$expect" ]]; then
    ok "hdfs dfs -put/-cat from a client container via hdfs://namenode:9000 (block on the datanode)"
  else
    bad "hdfs dfs -put/-cat: got '${out:-}'"
  fi
fi

if [[ -n ${WANT[sawmill]:-} ]]; then
  begin dns
  # shellcheck disable=SC2016  # expands inside the container
  if out=$(client "$SAWMILL" -- sh -c 'for h in etcd kafka namenode datanode; do getent hosts $h || exit 1; done') ; then
    ok "getent hosts etcd kafka namenode datanode from the Sawmill image: $(awk '{print $2"="$1}' <<<"$out" | tr '\n' ' ')"
  else
    bad "getent hosts from the Sawmill image: ${out:-}"
  fi
  begin isolation
  if out=$(client "$SAWMILL" -- cat /proc/net/route) && ! awk 'NR > 1 && $2 == "00000000"' <<<"$out" | grep -q .; then
    ok "no default route inside the network (internal: only container-to-container and loopback)"
  else
    bad "the network has a default route: $out"
  fi
  begin binaries
  real=1
  for b in coordinator worker sawmill; do
    if out=$(client "$SAWMILL" -- "$b" --help 2>&1); then
      ok "$b --help in the image: $(head -1 <<<"$out" | cut -c1-70)"
      [[ -n $out ]] || real=0
    else
      bad "$b --help: $(tail -3 <<<"$out")"; real=0
    fi
  done
  if (( real )) && client "$SAWMILL" -- coordinator serve --help 2>/dev/null | grep -q -- '--http'; then
    begin produce
    sample=$REPO/data/sample/nasa_aug95_head.log
    lines=$(wc -l <"$sample")
    if out=$(client "$SAWMILL" -v "$REPO/data/sample:/data:ro" -- sawmill produce \
          --bootstrap-servers kafka:9092 --topic access-logs --partitions 3 \
          --file /data/nasa_aug95_head.log 2>&1); then
      ok "sawmill produce: $lines lines of data/sample into topic access-logs via kafka:9092"
    else
      bad "sawmill produce: $(tail -3 <<<"$out")"
    fi
    begin coordinator
    run_daemon coordinator coordinator "$SAWMILL" \
      -e SAWMILL_BOOTSTRAP_SERVERS=kafka:9092 -e SAWMILL_TOPIC=access-logs \
      -e SAWMILL_OUTPUT=hdfs://namenode:9000/sawmill/smoke-out -e SAWMILL_ETCD=http://etcd:2379 \
      -e SAWMILL_SHARD_MAX_AGE_MS=2000 -- \
      coordinator serve --listen 0.0.0.0:7000 --http 0.0.0.0:7001 --http-insecure
    if wait_healthy coordinator; then
      ok "coordinator serve healthy (HEALTHCHECK: GET /healthz on :7001)"
    else
      bad "coordinator serve healthy"
    fi
    begin worker
    run_daemon worker worker "$SAWMILL" -e SAWMILL_METRICS_LISTEN=0.0.0.0:9100 -- \
      worker join --coordinator coordinator:7000
    if wait_healthy worker; then
      ok "worker join healthy (HEALTHCHECK: GET /healthz on :9100)"
    else
      bad "worker join healthy"
    fi
    begin pipeline
    deadline=$(( $(date +%s) + HEALTH_TIMEOUT )) lag="" records=""
    while (( $(date +%s) < deadline )); do
      out=$(client "$SAWMILL" -- sawmill status --json --coordinator coordinator:7000 2>/dev/null) || out=""
      lag=$(grep -Eo '"total_lag": *-?[0-9]+' <<<"$out" | grep -Eo -- '-?[0-9]+$' || true)
      records=$(grep -Eo '"records": *[0-9]+' <<<"$out" | head -1 | grep -Eo '[0-9]+$' || true)
      [[ $lag == 0 && ${records:-0} -gt 0 ]] && break
      sleep 3
    done
    shards=$(client "$HADOOP" -- hdfs dfs -ls -R /sawmill/smoke-out 2>/dev/null | grep -c '\.parquet$' || true)
    if [[ $lag == 0 && ${records:-0} -gt 0 && ${shards:-0} -gt 0 ]]; then
      ok "pipeline: total lag 0, $records records merged, $shards Parquet files under hdfs://namenode:9000/sawmill/smoke-out"
    else
      bad "pipeline: lag=${lag:-?} records=${records:-?} parquet files=${shards:-0}"
      podman logs --tail 20 "$P-worker" >&2 2>&1 || true
    fi
    begin status
    if out=$(client "$SAWMILL" -- sawmill status --coordinator coordinator:7000 2>&1); then
      ok "sawmill status --coordinator coordinator:7000 answers ($(wc -l <<<"$out") lines)"
      while IFS= read -r l; do echo "      $l"; done <<<"$out" >&2
    else
      bad "sawmill status: $(tail -3 <<<"$out")"
    fi
  else
    echo "    (stand-in binaries: skipping coordinator serve / worker join)" >&2
  fi
fi

echo
printf '%s\n' "${RESULTS[@]}"
echo "$pass passed, $fail failed (in $(( $(date +%s) - t0 ))s)"
(( fail == 0 ))
