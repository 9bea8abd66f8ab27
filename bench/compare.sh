#!/usr/bin/env bash
# bench/compare.sh - the same benchmarks on two commits, interleaved in one command, so that the
# ratio after/before does not depend on what else the machine did at the time:
#   1. `sawmill run` over the generated 2,000,000-line file (as bench/run.sh);
#   2. one worker end to end (Kafka → parse → aggregate → Parquet on HDFS → etcd) over the same
#      lines in a topic, `worker run --until-caught-up` (as bench/worker.sh); needs the services.
# Runs alternate before/after RUNS times; medians and the ratio after/before are printed.
#
#   bench/compare.sh BEFORE [AFTER]     # commits (default AFTER: the working tree's HEAD)
#
# Env: RUNS (default 5), LINES (default 2000000), PARTS (default 3), BENCH_DIR
# (default /var/tmp/sawmill-bench), SKIP_WORKER=1 (only `sawmill run`), SKIP_RUN=1 (only the
# worker), BUILDS (default /var/tmp/sawmill-compare: two people comparing at once need two),
# PRODUCER=before|after (default after: whose `sawmill produce` writes the worker's topic, which
# decides how lines are split over partitions; both sides then read that one topic).
# Release binaries go to $BUILDS/<commit>/bin (kept: a second comparison of the same commit is
# quick). The worker benchmark also runs each side's plain consumer (the ceiling,
# worker/examples/plain_consumer.rs) right before its worker, and prints the worker's
# throughput as a share of it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=${1:?usage: bench/compare.sh BEFORE [AFTER]}
AFTER=${2:-HEAD}
RUNS=${RUNS:-5}
LINES=${LINES:-2000000}
PARTS=${PARTS:-3}
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
BUILDS=${BUILDS:-/var/tmp/sawmill-compare}
mkdir -p "$DIR" "$BUILDS"
[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }

# build REF: release binaries of REF, built in their own worktree, copied to
# $BUILDS/<commit>/bin; prints that dir. One target dir serves every commit, so the dependencies
# are compiled once (each worktree's own crates are told apart by their path).
build() {
  local sha wt bin
  sha=$(git -C "$ROOT" rev-parse --short=12 "$1^{commit}")
  wt=$BUILDS/$sha/src
  bin=$BUILDS/$sha/bin
  # Only `sawmill run` compared: binaries built before the plain consumer joined them will do.
  local need=plain_consumer
  [[ ${SKIP_WORKER:-0} == 1 ]] && need=sawmill
  if [[ ! -x $bin/$need ]]; then
    [[ -d $wt ]] || git -C "$ROOT" worktree add --detach -f "$wt" "$sha" >/dev/null 2>&1
    echo "building $1 ($sha) in $wt" >&2
    # Cargo tells the two worktrees' crates apart by their path inside the workspace, which is
    # the same, and decides freshness by mtime: newer sources than the other commit's
    # artifacts make it rebuild them.
    git -C "$wt" ls-files -z | (cd "$wt" && xargs -0 touch)
    (cd "$wt" && CARGO_TARGET_DIR=$BUILDS/target cargo build --release --locked -q \
      --workspace --bins && CARGO_TARGET_DIR=$BUILDS/target cargo build --release --locked -q \
      -p sawmill-worker --example plain_consumer) >&2
    mkdir -p "$bin"
    cp "$BUILDS/target/release/sawmill" "$BUILDS/target/release/worker" \
      "$BUILDS/target/release/coordinator" "$BUILDS/target/release/examples/plain_consumer" "$bin/"
  fi
  echo "$bin"
}
B=$(build "$BEFORE")
A=$(build "$AFTER")

FILE=$DIR/gen-$LINES.log
[[ -s $FILE ]] || "$A/sawmill" generate --lines "$LINES" --seed 1 --out "$FILE"
cat "$FILE" >/dev/null

timed() {  # timed CMD...: "wall_seconds peak_rss_kb"
  local log start end
  log=$(mktemp)
  start=$(date +%s%N)
  /usr/bin/time -v -o "$log" "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  awk -v ns=$((end - start)) -F': ' '/Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %d\n", ns / 1e9, rss }' "$log"
  rm -f "$log"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before: $BEFORE ($B)"
echo "after:  $AFTER ($A)"
echo "input:  $FILE ($LINES lines); $RUNS runs each, interleaved"

declare -A wall rss ceiling
for i in $(seq "$RUNS"); do
  [[ ${SKIP_RUN:-0} == 1 ]] && break
  for side in before after; do
    bin=$B; [[ $side == after ]] && bin=$A
    read -r s r < <(timed "$bin/sawmill" run "$FILE" --out "$DIR/compare-out-$side" -q)
    wall[run-$side]+="$s "; rss[run-$side]=$(( r > ${rss[run-$side]:-0} ? r : ${rss[run-$side]:-0} ))
  done
done

if [[ ${SKIP_WORKER:-0} != 1 ]]; then
  eval "$("$ROOT/deploy/local/services" env)"
  TOPIC=bench-compare-$$
  producer=$A; [[ ${PRODUCER:-after} == before ]] && producer=$B
  "$producer/sawmill" produce --bootstrap-servers "$SAWMILL_KAFKA" --topic "$TOPIC" --file "$FILE" \
    --reset --partitions "$PARTS" -q
  for i in $(seq "$RUNS"); do
    for side in before after; do
      bin=$B; [[ $side == after ]] && bin=$A
      plain=$("$bin/plain_consumer" "$SAWMILL_KAFKA" "$TOPIC" | sed -n 's/.*lines_per_sec=//p')
      ceiling[$side]+="$plain "
      # Each run its own pipeline (etcd subtree) and output: every run reads the whole topic.
      read -r s r < <(SAWMILL_LOG=warn timed "$bin/worker" run --bootstrap-servers "$SAWMILL_KAFKA" \
        --etcd "$SAWMILL_ETCD" --topic "$TOPIC" --pipeline "$TOPIC-$side-$i" \
        --output "$SAWMILL_HDFS/sawmill-bench/$TOPIC-$side-$i" --until-caught-up)
      wall[worker-$side]+="$s "; rss[worker-$side]=$(( r > ${rss[worker-$side]:-0} ? r : ${rss[worker-$side]:-0} ))
    done
  done
  "$ROOT/deploy/local/services" hdfs-dfs -rm -r -f -skipTrash "/sawmill-bench" >/dev/null 2>&1 || true
fi

echo
printf '%-8s %-7s %10s %14s %10s   %s\n' bench side median lines/s "peak RSS" "runs (s)"
for bench in run worker; do
  [[ -n ${wall[$bench-before]:-} ]] || continue
  for side in before after; do
    m=$(tr ' ' '\n' <<<"${wall[$bench-$side]}" | sed '/^$/d' | median)
    declare "m_${bench}_${side}=$m"
    printf '%-8s %-7s %9.3fs %14.0f %7d MiB   %s\n' "$bench" "$side" "$m" \
      "$(awk -v l="$LINES" -v s="$m" 'BEGIN { print l / s }')" $(( ${rss[$bench-$side]} / 1024 )) \
      "${wall[$bench-$side]}"
  done
  b=m_${bench}_before a=m_${bench}_after
  awk -v b="${!b}" -v a="${!a}" -v n="$bench" \
    'BEGIN { printf "%s: after/before throughput ratio %.3f (%+.1f%%)\n", n, b / a, (b / a - 1) * 100 }'
done
for side in before after; do
  [[ -n ${ceiling[$side]:-} ]] || continue
  c=$(tr ' ' '\n' <<<"${ceiling[$side]}" | sed '/^$/d' | median)
  m=m_worker_$side
  awk -v c="$c" -v s="${!m}" -v l="$LINES" -v side="$side" -v runs="${ceiling[$side]}" \
    'BEGIN { printf "plain consumer %s: median %.0f lines/s (runs: %s); worker / plain consumer %.2f\n", side, c, runs, l / s / c }'
done
