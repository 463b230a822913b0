#!/usr/bin/env bash
# Benchmarks the cron AOT binary (artifacts/bin/cron; run scripts/publish.sh first, this script builds nothing):
#   - start-up: median wall time of `cron -version`, and of `cron -test` on a 20-job crontab
#   - idle memory: VmRSS of cron with 20 jobs after IDLE_SECONDS (none of the jobs runs in that time), and
#     with the same 20 jobs each run once at start-up
#   - spawn baseline: how late `sh -c date` starts when bash spawns it, i.e. what the machine's load adds
#   - start lateness: LATENESS_JOBS every-second jobs run `date +%s.%N` for LATENESS_SECONDS; lateness is the
#     time the job's shell saw minus the whole second it was scheduled for (includes posix_spawn and sh start-up)
#   - lateness of the last job: for each N in LAST_JOB_COUNTS, N every-second jobs run `date +%s.%N` for
#     LAST_JOB_SECONDS; per second, the lateness of the job that started last (the largest of that second), and
#     its p50/p99/max over the seconds; also the p99 over all jobs, and how many ticks were skipped (a job still
#     running when its next second came). The soft open-file limit is left as the shell has it.
# Prints key=value lines only (stdout), for bench/run.sh and bench/RESULTS.md.
#   bench/cron.sh                      defaults: STARTUP_RUNS=50 IDLE_SECONDS=10 LATENESS_JOBS=10 LATENESS_SECONDS=60
#                                                LAST_JOB_COUNTS="200 1000" LAST_JOB_SECONDS=30 FLOOR_ROUNDS=10
#   ONLY=last-job bench/cron.sh        only the last-job measurement (and its bash baseline)
#   CRON_BIN=/path/to/cron             measure another cron binary (e.g. an older build, for before/after)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cron="${CRON_BIN:-$root/artifacts/bin/cron}"
[[ -x "$cron" ]] || { echo "bench/cron.sh: $cron is missing: run scripts/publish.sh first" >&2; exit 1; }

STARTUP_RUNS=${STARTUP_RUNS:-50}
IDLE_SECONDS=${IDLE_SECONDS:-10}
LATENESS_JOBS=${LATENESS_JOBS:-10}
LATENESS_SECONDS=${LATENESS_SECONDS:-60}
LAST_JOB_COUNTS=${LAST_JOB_COUNTS:-200 1000}
LAST_JOB_SECONDS=${LAST_JOB_SECONDS:-30}
FLOOR_ROUNDS=${FLOOR_ROUNDS:-10}
ONLY=${ONLY:-}

work=$(mktemp -d /tmp/bench-cron-XXXXXX)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } r = int((p / 100) * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR; print v[r] }'; }
elapsed_ms() { # runs "$@" and prints its wall time in milliseconds
  local start end
  start=$EPOCHREALTIME
  "$@" > /dev/null 2>&1 || true
  end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f\n", (e - s) * 1000 }'
}

# 20 jobs that do not run during the measurement (daily, at an hour that is not now)
hour=$(( ($(date -u +%-H) + 12) % 24 ))
for i in $(seq 1 20); do echo "# cron: name=job$i"; echo "0 $hour * * * echo job $i"; done > "$work/idle.crontab"

echo "cron_binary_bytes=$(stat -c %s "$cron")"

# Runs N every-second jobs for LAST_JOB_SECONDS and prints the last job's lateness per second.
last_job() {
  local n=$1 log="$work/last-$1.log"
  for i in $(seq 1 "$n"); do echo "* * * * * * * date +%s.%N"; done > "$work/last-$n.crontab"
  "$cron" -json "$work/last-$n.crontab" 2> "$log" &
  pid=$!
  sleep "$LAST_JOB_SECONDS"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  sed -n 's/.*"channel":"stdout".*"msg":"\([0-9]*\.[0-9]*\)".*/\1/p' "$log" > "$work/last-$n.times"
  # Skip the first and last second (start-up and stop): whole seconds only.
  awk '{ s = int($1); f = ($1 - s) * 1000; if (!(s in max) || f > max[s]) max[s] = f; n[s]++ }
       END { for (s in max) print s, n[s], max[s] }' "$work/last-$n.times" | sort -n | sed '1d;$d' > "$work/last-$n.seconds"
  awk '{ printf "%.3f\n", $3 }' "$work/last-$n.seconds" > "$work/last-$n.ms"
  awk '{ s = $1 - int($1); printf "%.3f\n", s * 1000 }' "$work/last-$n.times" > "$work/last-$n.all.ms"
  echo "cron_last_job_seconds_${n}_jobs=$(wc -l < "$work/last-$n.ms")"
  echo "cron_last_job_runs_per_second_${n}_jobs_median=$(awk '{ print $2 }' "$work/last-$n.seconds" | median)"
  echo "cron_last_job_lateness_ms_p50_${n}_jobs=$(percentile 50 < "$work/last-$n.ms")"
  echo "cron_last_job_lateness_ms_p99_${n}_jobs=$(percentile 99 < "$work/last-$n.ms")"
  echo "cron_last_job_lateness_ms_max_${n}_jobs=$(percentile 100 < "$work/last-$n.ms")"
  echo "cron_all_jobs_lateness_ms_p99_${n}_jobs=$(percentile 99 < "$work/last-$n.all.ms")"
  echo "cron_skipped_ticks_${n}_jobs=$(grep -c 'not starting: job is still running' "$log" || true)"
  echo "cron_errors_${n}_jobs=$(grep -c '"level":"error"' "$log" || true)"
}

# The floor for the last-job numbers: bash starting N `sh -c 'date +%s.%N'` at once (no cron), FLOOR_ROUNDS rounds:
# how long after the start the last of them ran date.
spawn_floor() {
  local n=$1
  for _ in $(seq 1 "$FLOOR_ROUNDS"); do
    local start=$EPOCHREALTIME
    for _ in $(seq 1 "$n"); do sh -c 'date +%s.%N' >> "$work/floor-$n.times" & done
    wait
    sort -n "$work/floor-$n.times" | tail -1 | awk -v s="$start" '{ printf "%.3f\n", ($1 - s) * 1000 }'
    rm -f "$work/floor-$n.times"
  done > "$work/floor-$n.ms"
  echo "spawn_floor_parallel_${n}_ms_p50=$(percentile 50 < "$work/floor-$n.ms")"
  echo "spawn_floor_parallel_${n}_ms_max=$(percentile 100 < "$work/floor-$n.ms")"
}

if [[ "$ONLY" == last-job ]]; then
  for n in $LAST_JOB_COUNTS; do spawn_floor "$n"; last_job "$n"; done
  echo "load_average=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
  exit 0
fi

for _ in $(seq 1 "$STARTUP_RUNS"); do elapsed_ms "$cron" -version; done > "$work/version.ms"
echo "cron_startup_version_ms_median=$(median < "$work/version.ms")"
for _ in $(seq 1 "$STARTUP_RUNS"); do elapsed_ms "$cron" -test "$work/idle.crontab"; done > "$work/test.ms"
echo "cron_startup_test_20_jobs_ms_median=$(median < "$work/test.ms")"

"$cron" -json "$work/idle.crontab" 2> "$work/idle.log" &
pid=$!
sleep "$IDLE_SECONDS"
echo "cron_idle_rss_kb_20_jobs=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
echo "cron_idle_threads_20_jobs=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")"
kill -TERM "$pid"; wait "$pid" || true; pid=""

# The same 20 jobs, each run once at start-up (run-at-start), then idle.
sed 's/^# cron: name=\(.*\)$/# cron: name=\1 run-at-start/' "$work/idle.crontab" > "$work/ran.crontab"
"$cron" -json "$work/ran.crontab" 2> "$work/ran.log" &
pid=$!
sleep "$IDLE_SECONDS"
echo "cron_idle_rss_kb_20_jobs_after_one_run_each=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
kill -TERM "$pid"; wait "$pid" || true; pid=""

# For comparison: how late `sh -c 'date +%s.%N'` starts when bash spawns it right now (machine load, fork/exec cost).
for _ in $(seq 1 100); do
  start=$EPOCHREALTIME
  seen=$(sh -c 'date +%s.%N')
  awk -v s="$start" -v e="$seen" 'BEGIN { printf "%.3f\n", (e - s) * 1000 }'
done > "$work/spawn.ms"
echo "spawn_baseline_ms_p50=$(percentile 50 < "$work/spawn.ms")"
echo "spawn_baseline_ms_p99=$(percentile 99 < "$work/spawn.ms")"

for i in $(seq 1 "$LATENESS_JOBS"); do echo "* * * * * * * date +%s.%N"; done > "$work/late.crontab"
"$cron" -json "$work/late.crontab" 2> "$work/late.log" &
pid=$!
sleep "$LATENESS_SECONDS"
echo "cron_busy_rss_kb_${LATENESS_JOBS}_every_second_jobs=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
kill -TERM "$pid"; wait "$pid" || true; pid=""
# The job output lines: {"channel":"stdout",...,"msg":"1764012345.012345678",...}
sed -n 's/.*"channel":"stdout".*"msg":"\([0-9]*\.[0-9]*\)".*/\1/p' "$work/late.log" \
  | awk '{ s = $1 - int($1); printf "%.3f\n", s * 1000 }' > "$work/late.ms"
echo "cron_lateness_samples=$(wc -l < "$work/late.ms")"
echo "cron_lateness_ms_p50=$(percentile 50 < "$work/late.ms")"
echo "cron_lateness_ms_p99=$(percentile 99 < "$work/late.ms")"
echo "cron_lateness_ms_max=$(percentile 100 < "$work/late.ms")"
echo "cron_lateness_skipped_ticks=$(grep -c 'not starting: job is still running' "$work/late.log" || true)"

for n in $LAST_JOB_COUNTS; do spawn_floor "$n"; last_job "$n"; done
echo "load_average=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
