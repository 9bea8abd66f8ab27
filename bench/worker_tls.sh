#!/usr/bin/env bash
# The cost of security on the end-to-end worker figure (bench/worker.sh's measurement: one
# `worker run --until-caught-up` of a generated topic, Kafka → parse → Parquet on HDFS → etcd),
# in one command, interleaved RUNS times:
#   plain      the plaintext services (deploy/local/services)
#   kafka-tls  Kafka over SASL_SSL (TLS + SCRAM-SHA-512) of the secure services; etcd and HDFS
#              plaintext: the cost of TLS on the Kafka path alone
#   secure     everything of the secure profile: Kafka SASL_SSL, etcd TLS + client certificate
#              + user, HDFS with Kerberos and `privacy` (RPC and block transfer encrypted)
# Prints each run and the ratios of the medians to plain. Needs both service sets:
#   deploy/local/services up; deploy/local/services-secure up
# (SAWMILL_SERVICES_DIR / SAWMILL_SERVICES_SECURE_DIR and their port offsets choose instances).
# Usage: RUNS=3 bench/worker_tls.sh [LINES] [PARTITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-2000000}
PARTS=${2:-3}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
[[ ${BUILD:-1} == 0 ]] || cargo build --release --locked -q -p sawmill-cli -p sawmill-worker --bins   # BUILD=0: binaries as they are
BIN=$CARGO_TARGET_DIR/release
DIR=/var/tmp/sawmill-bench; mkdir -p "$DIR"
FILE=$DIR/gen-$LINES.log
[[ -s $FILE ]] || "$BIN/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE"
deploy/local/services status >/dev/null || { echo "worker_tls: the plaintext services are not up" >&2; exit 1; }
deploy/local/services-secure status >/dev/null || { echo "worker_tls: the secure services are not up" >&2; exit 1; }
PLAIN_ENV=$(deploy/local/services env)
SECURE_ENV=$(deploy/local/services-secure env)
TOPIC=bench-tls-$$

# Each variant's topic is produced once; every run reads it under a fresh pipeline name (its
# own etcd offsets and output root), so each run consumes the whole topic.
( eval "$PLAIN_ENV"
  "$BIN/sawmill" produce --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" \
    --reset --partitions "$PARTS" -q )
( eval "$SECURE_ENV"
  "$BIN/sawmill" produce --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" \
    --reset --partitions "$PARTS" -q )

# run VARIANT N: one worker run; prints "VARIANT seconds peak_rss_kb"
run() {
  local variant=$1 n=$2 pipeline="$TOPIC-$1-$2" start end rss
  (
    case $variant in
      plain) eval "$PLAIN_ENV"; kafka=$SAWMILL_KAFKA ;;
      kafka-tls) eval "$SECURE_ENV"; kafka=$SAWMILL_KAFKA
                 # etcd and HDFS of the plaintext set; only Kafka's settings stay secure.
                 unset SAWMILL_ETCD_CA SAWMILL_ETCD_CERT SAWMILL_ETCD_KEY SAWMILL_ETCD_USER \
                       SAWMILL_ETCD_PASSWORD_FILE SAWMILL_HDFS_PRINCIPAL SAWMILL_HDFS_KEYTAB \
                       SAWMILL_HADOOP_CONF_DIR
                 eval "$(grep -E '^export SAWMILL_(ETCD|HDFS)=' <<<"$PLAIN_ENV")" ;;
      secure) eval "$SECURE_ENV"; kafka=$SAWMILL_KAFKA ;;
    esac
    start=$(date +%s.%N)
    rss=$(SAWMILL_LOG=warn /usr/bin/time -f "%M" "$BIN/worker" run --until-caught-up \
      --bootstrap-servers "$kafka" --etcd "$SAWMILL_ETCD" --topic "$TOPIC" --pipeline "$pipeline" \
      --output "$SAWMILL_HDFS/sawmill/bench-tls/$pipeline" 2>&1 >/dev/null | tail -1)
    end=$(date +%s.%N)
    echo "$variant $(python3 -c "print(f'{$end - $start:.3f}')") $rss"
  )
}

results=$DIR/worker_tls-$$.txt
: >"$results"
for n in $(seq 1 "$RUNS"); do
  for variant in plain kafka-tls secure; do
    line=$(run "$variant" "$n")
    echo "run $n: $line" >&2
    echo "$line" >>"$results"
  done
done
python3 - "$LINES" "$results" <<'PY'
import statistics, sys
lines = int(sys.argv[1])
runs = {}
for row in open(sys.argv[2]):
    variant, secs, rss = row.split()
    runs.setdefault(variant, []).append((float(secs), int(rss)))
base = statistics.median(s for s, _ in runs["plain"])
print(f"{'variant':<10} {'runs':>4} {'median s':>9} {'lines/s (median)':>17} {'range lines/s':>23} {'peak RSS MiB':>13} {'time vs plain':>13}")
for variant in ("plain", "kafka-tls", "secure"):
    secs = [s for s, _ in runs[variant]]
    med = statistics.median(secs)
    lo, hi = lines / max(secs), lines / min(secs)
    rss = max(r for _, r in runs[variant]) / 1024
    print(f"{variant:<10} {len(secs):>4} {med:>9.2f} {lines / med:>17,.0f} {f'{lo:,.0f} - {hi:,.0f}':>23} {rss:>13.0f} {med / base:>13.2f}")
PY
( eval "$PLAIN_ENV"; deploy/local/services hdfs-dfs -rm -r -f -skipTrash /sawmill/bench-tls >/dev/null 2>&1 || true )
( eval "$SECURE_ENV"; deploy/local/services-secure hdfs-dfs -rm -r -f -skipTrash /sawmill/bench-tls >/dev/null 2>&1 || true )
