#!/usr/bin/env bash
# bench/run.sh - `sawmill run` end to end (release) on a generated 2,000,000-line NASA-format
# log: lines/s (lines / wall time of the whole process) and peak RSS, from /usr/bin/time -v,
# over RUNS runs; beside the in-command baselines `wc -l` and `cat FILE >/dev/null` (reading the
# same file from the page cache: the floor any tool pays) and `sawmill run --threads 1`.
#
#   bench/run.sh
#
# Env: BENCH_DIR (default /var/tmp/sawmill-bench), LINES (default 2000000), RUNS (default 3),
# EXTRA (more `sawmill run` arguments, e.g. "--compression snappy"). Targets (issue #14):
# >= 2,500,000 lines/s on a 2-core machine and peak RSS < 512 MiB; the script exits 1 when
# either is missed (the first wave's target was 1,000,000 lines/s).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${BENCH_DIR:-/var/tmp/sawmill-bench}
LINES=${LINES:-2000000}
RUNS=${RUNS:-3}
EXTRA=${EXTRA:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/sawmill-target}
SAWMILL=$CARGO_TARGET_DIR/release/sawmill
FILE=$DIR/gen-$((LINES / 1000000))m.log
[[ $LINES -lt 1000000 ]] && FILE=$DIR/gen-${LINES}.log
OUT=$DIR/out
mkdir -p "$DIR"
[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }

(cd "$ROOT" && cargo build --release -q -p sawmill-cli)

# The input must be exactly what this sawmill generates for the seed: a file left by an older
# generator is compared as a stream (no second copy on disk) and replaced when it differs.
generate() { "$SAWMILL" generate --lines "$LINES" --seed 1 --out "$1" 2>/dev/null; }
if [[ -s $FILE ]] && generate - | cmp -s - "$FILE"; then
  echo "reusing $FILE" >&2
else
  echo "generating $FILE" >&2
  generate "$FILE.tmp.$$" && mv "$FILE.tmp.$$" "$FILE"
fi
BYTES=$(stat -c %s "$FILE")
cat "$FILE" >/dev/null # warm the page cache, so every timing below reads from memory

# timed LABEL CMD...: runs CMD under /usr/bin/time -v; prints "wall_seconds peak_rss_kb". The
# wall time is taken here in nanoseconds: time(1) rounds to 10 ms, too coarse for `wc -l`.
timed() {
  local log=$DIR/time-run-$1.txt start end
  shift
  start=$(date +%s%N)
  /usr/bin/time -v -o "$log" "$@" >/dev/null
  end=$(date +%s%N)
  awk -v ns=$((end - start)) -F': ' '
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %d\n", ns / 1e9, rss }' "$log"
}
rate() { awk -v l="$LINES" -v s="$1" 'BEGIN { printf "%.0f", l / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $FILE ($LINES lines, $BYTES bytes); sawmill $("$SAWMILL" --version | cut -d' ' -f2)"

read -r wc_s _ < <(timed wc wc -l "$FILE")
read -r cat_s _ < <(timed cat sh -c "cat '$FILE' >/dev/null")
echo "baseline wc -l:            ${wc_s}s  $(rate "$wc_s") lines/s"
echo "baseline cat >/dev/null:   ${cat_s}s  $(rate "$cat_s") lines/s"

# shellcheck disable=SC2086 # EXTRA is a list of arguments
read -r one_s one_rss < <(timed threads1 "$SAWMILL" run "$FILE" --out "$OUT" -q --threads 1 $EXTRA)
echo "sawmill run --threads 1:   ${one_s}s  $(rate "$one_s") lines/s  peak RSS $(mib "$one_rss") MiB"

walls=()
peak=0
for i in $(seq "$RUNS"); do
  # shellcheck disable=SC2086
  read -r s rss < <(timed "run$i" "$SAWMILL" run "$FILE" --out "$OUT" -q $EXTRA)
  echo "sawmill run #$i:            ${s}s  $(rate "$s") lines/s  peak RSS $(mib "$rss") MiB"
  walls+=("$s")
  ((rss > peak)) && peak=$rss
done
median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
lps=$(rate "$median")
echo
echo "median of $RUNS: ${median}s wall, $lps lines/s, $(awk -v b="$BYTES" -v s="$median" 'BEGIN { printf "%.0f", b / s / 1e6 }') MB/s; peak RSS $(mib "$peak") MiB"
awk -v m="$median" -v w="$wc_s" -v c="$cat_s" -v o="$one_s" 'BEGIN {
  printf "ratios: sawmill run takes %.1fx the time of wc -l, %.1fx cat >/dev/null; 2 threads are %.2fx --threads 1\n",
    m / w, m / c, o / m }'
status=0
((lps >= 2500000)) || { echo "MISSED: $lps lines/s < 2,500,000" >&2; status=1; }
((peak < 512 * 1024)) || { echo "MISSED: peak RSS $(mib "$peak") MiB >= 512 MiB" >&2; status=1; }
exit $status
