#!/usr/bin/env bash
# bench/spark.sh - the original pipeline (PySpark Structured Streaming) beside Sawmill's worker,
# end to end on the same Kafka topic: topic -> parsed rows -> the eight tables, as Parquet on HDFS.
# See bench/spark/README.md.
#
#   deploy/local/services up && bench/spark.sh
#
# Steps: installs PySpark into a venv and the Kafka connector's jars (Maven Central) under
# /var/tmp (once); builds Sawmill (release); generates LINES lines (`sawmill generate --seed 1`);
# creates a fresh PARTS-partition topic and produces the file into it with the original Python
# producer (bench/produce_baseline.py, kafka-python); runs Sawmill's worker (`worker run
# --until-caught-up`, as bench/worker.sh) and the PySpark job on that topic, each measured from
# process start to exit with its peak RSS (the sum over its process tree, bench/spark/measure.py);
# merges Sawmill's summary (`sawmill summarize`), compares the tables (bench/spark/compare.py)
# and prints the table.
#
# Env: LINES (2000000), PARTS (3), DRIVER_MEMORY (Spark's spark.driver.memory, 2g), MASTER
# (local[2]), PRODUCER (python | sawmill: `sawmill produce`, much faster, same lines), BENCH_DIR
# (/var/tmp/sawmill-bench), SPARK_VENV (/var/tmp/sawmill-spark-venv), SPARK_JARS_DIR
# (/var/tmp/sawmill-spark-jars), CARGO_TARGET_DIR (/var/tmp/sawmill-target), KEEP=1 keeps the
# HDFS outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LINES=${LINES:-2000000}
PARTS=${PARTS:-3}
DRIVER_MEMORY=${DRIVER_MEMORY:-2g}
MASTER=${MASTER:-local[2]}
PRODUCER=${PRODUCER:-python}
# PySpark and its connector must be the same Spark and Scala version; 4.2.0 is the newest
# spark-sql-kafka-0-10_2.13 on Maven Central here (PyPI's newest PySpark, 4.3.0, has none).
SPARK_VERSION=4.2.0
SCALA=2.13
PIP_PKGS=(pyspark==$SPARK_VERSION pyarrow==26.0.1 kafka-python==3.0.12)
VENV=${SPARK_VENV:-/var/tmp/sawmill-spark-venv}
JARS=${SPARK_JARS_DIR:-/var/tmp/sawmill-spark-jars}/$SPARK_VERSION
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
BIN=$CARGO_TARGET_DIR/release
PY=$VENV/bin/python
mkdir -p "$DIR"
export SPARK_LOCAL_IP=127.0.0.1
eval "$(deploy/local/services env)"
deploy/local/services status >/dev/null || { echo "services not healthy: deploy/local/services up" >&2; exit 1; }
log() { echo "[spark.sh $(date +%H:%M:%S)] $*" >&2; }

# ---- install (once): the venv, and the connector with its runtime dependencies
if ! "$PY" -c "import pyspark, pyarrow, kafka; assert pyspark.__version__ == '$SPARK_VERSION'" 2>/dev/null; then
  log "installing ${PIP_PKGS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${PIP_PKGS[@]}"
fi
SPARK_HOME_JARS=$("$PY" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
if [[ ! -e $JARS/.complete ]]; then
  log "fetching spark-sql-kafka-0-10_$SCALA:$SPARK_VERSION and its dependencies into $JARS"
  rm -rf "$JARS" && mkdir -p "$JARS/pom" "$JARS/all"
  cat >"$JARS/pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sawmill.bench</groupId><artifactId>spark-kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-sql-kafka-0-10_$SCALA</artifactId><version>$SPARK_VERSION</version></dependency>
  </dependencies>
</project>
POM
  (cd "$JARS/pom" && mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$JARS/all")
  # Keep only what PySpark does not ship already (Scala, Hadoop, lz4, snappy, slf4j are there).
  for j in "$JARS"/all/*.jar; do
    base=$(basename "$j" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)?\.jar$//')
    compgen -G "$SPARK_HOME_JARS/$base-[0-9]*.jar" >/dev/null || cp "$j" "$JARS/"
  done
  touch "$JARS/.complete"
fi
SPARK_JARS=$(ls "$JARS"/*.jar | paste -sd, -)
log "connector jars: $(ls "$JARS"/*.jar | xargs -n1 basename | paste -sd' ' -)"

# ---- Sawmill, the input, the topic
cargo build --release --locked -q -p sawmill-cli -p sawmill-worker --bins
FILE=$DIR/gen-$LINES.log
[[ -s $FILE ]] || "$BIN/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE"
TOPIC=bench-spark-$$
log "topic $TOPIC ($PARTS partitions) <- $FILE ($LINES lines) with the $PRODUCER producer"
# A fresh, empty topic (`--limit 0` sends nothing).
"$BIN/sawmill" produce -q --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" \
  --limit 0 --reset --partitions "$PARTS"
if [[ $PRODUCER == python ]]; then
  "$PY" bench/produce_baseline.py --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE"
else
  "$BIN/sawmill" produce -q --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE"
fi

OUT_SM=/sawmill-bench/$TOPIC OUT_SP=/spark-bench/$TOPIC
LOCAL=$DIR/spark-$TOPIC
rm -rf "$LOCAL" && mkdir -p "$LOCAL"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Sawmill: one worker owning every partition, until its commits in etcd reach the end
log "sawmill worker"
SAWMILL_LOG=warn "$PY" bench/spark/measure.py --out "$LOCAL/sawmill.txt" -- "$BIN/worker" run \
  --bootstrap-servers "$SAWMILL_KAFKA" --etcd "$SAWMILL_ETCD" --topic "$TOPIC" \
  --output "$SAWMILL_HDFS$OUT_SM" --until-caught-up

# ---- Spark: the original pipeline
log "spark ($MASTER, spark.driver.memory=$DRIVER_MEMORY)"
"$PY" bench/spark/measure.py --out "$LOCAL/spark.txt" -- "$PY" bench/spark/pipeline.py \
  --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --output "$SAWMILL_HDFS$OUT_SP" \
  --checkpoint "$LOCAL/checkpoint" --jars "$SPARK_JARS" --master "$MASTER" \
  --driver-memory "$DRIVER_MEMORY" 2> >(grep -v -E '^(WARNING: Using incubator|Setting default log level|To adjust logging level)' >&2)

# ---- the numbers of both, compared
log "sawmill summarize; fetching both summaries"
SAWMILL_LOG=warn "$BIN/sawmill" summarize -q --output "$SAWMILL_HDFS$OUT_SM" --etcd "$SAWMILL_ETCD" --topic "$TOPIC"
deploy/local/services hdfs-dfs -get "$OUT_SM/summary" "$LOCAL/sawmill-summary"
deploy/local/services hdfs-dfs -get "$OUT_SP/summary" "$LOCAL/spark-summary"
echo
echo "== the tables, Spark (original regexes) vs Sawmill, same topic"
set +e
"$PY" bench/spark/compare.py "$LOCAL/spark-summary" "$LOCAL/sawmill-summary"
agree=$?
set -e
[[ ${KEEP:-0} == 1 ]] || deploy/local/services hdfs-dfs -rm -r -f -skipTrash "$OUT_SM" "$OUT_SP" >/dev/null 2>&1 || true

echo
"$PY" - "$LINES" "$LOCAL/sawmill.txt" "$LOCAL/spark.txt" <<'PY'
import sys
lines = int(sys.argv[1])
rows = []
for name, path in [("sawmill worker", sys.argv[2]), ("pyspark (original)", sys.argv[3])]:
    m = dict(kv.split("=") for kv in open(path).read().split())
    if m["exit"] != "0":
        sys.exit(f"{name} exited with status {m['exit']}")
    s = float(m["seconds"])
    rows.append((name, s, lines / s, int(m["peak_rss_kb"]) / 1024))
print(f"| system | lines | seconds | lines/s | peak RSS | ratio (lines/s) |")
print(f"|---|---:|---:|---:|---:|---:|")
for name, s, lps, rss in rows:
    print(f"| {name} | {lines:,} | {s:.2f} | {lps:,.0f} | {rss:,.0f} MiB | {lps / rows[1][2]:.1f}x |")
print(f"sawmill/spark: {rows[0][2] / rows[1][2]:.1f}x the lines/s, {rows[1][3] / rows[0][3]:.1f}x less peak memory")
PY
exit $agree
