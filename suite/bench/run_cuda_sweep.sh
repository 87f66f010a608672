#!/usr/bin/env bash
# The full speed sweep on a CUDA GPU, twice, for `python -m matrix speed`.
#
#   OUT=/some/folder bash suite/bench/run_cuda_sweep.sh        (from the repository root)
#
# Writes into $OUT: speed-run1.json and speed-run2.json (pytest-benchmark JSON, one per repeat),
# run1.log / run2.log (pytest output with the timing tables), env.txt (GPU, driver, packages), and
# what `python -m matrix speed` makes of them (speed-<device>-<torch>.json, and .svg with matplotlib):
# 7 files at most, one folder level (the device tool returns up to 8 files). The summary is printed.
# Each repeat is its own pytest process, so the spread between them includes process-level effects.
# Needs no network. Python packages: torch, pytest, pytest-benchmark, hypothesis (root conftest),
# tabulate (the summary), matplotlib optional (the chart).
#
# Time: a repeat is 28 interleaved groups (2-4 s each: every variant eager and as a CUDA graph replay,
# 15+ rounds) and 28 CPU-fallback items (up to 10 s each at 2^28 elements). Each repeat stops starting
# new items after OPCOMPAT_BENCH_BUDGET_S seconds (the JSON of what ran is still written) and is killed
# after REPEAT_TIMEOUT_S; 2 x 265 s + summary stays under 9.5 min.
# env.txt has the GPU's clocks, power and temperature before and after the repeats; each benchmark
# group records the SM clock after its rounds (sm_clock_mhz, where nvidia-ml-py is installed).
set -uo pipefail

: "${OUT:?set OUT to the output folder}"
PYTHON="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
REPEAT_TIMEOUT_S="${REPEAT_TIMEOUT_S:-265}"
export OPCOMPAT_BENCH="${SWEEP:-full}"  # SWEEP=quick DEVICE=cpu: a dry run of this script anywhere
export OPCOMPAT_BENCH_BUDGET_S="${OPCOMPAT_BENCH_BUDGET_S:-235}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT"

gpu_state() {  # reads only: the card's settings are left as they are
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv 2>&1
    # what holds the clocks down (a bit mask); the field's name before driver 535
    nvidia-smi --query-gpu=clocks_event_reasons.active --format=csv 2>/dev/null ||
        nvidia-smi --query-gpu=clocks_throttle_reasons.active --format=csv 2>&1
}

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    "$PYTHON" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__,
          'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
    "$PYTHON" -m pip list 2>/dev/null | grep -iE "^(torch|pytest|pytest-benchmark|hypothesis|tabulate|matplotlib|numpy|nvidia-ml-py) "
    gpu_state
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

status=0
runs=()
for rep in 1 2; do
    start=$SECONDS
    timeout --kill-after=10 "$REPEAT_TIMEOUT_S" "$PYTHON" -m pytest suite/bench --device "$DEVICE" -m bench \
        -p no:cacheprovider -q -rs --benchmark-json="$OUT/speed-run$rep.json" --durations=0 \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name > "$OUT/run$rep.log" 2>&1
    rc=$?
    echo "repeat $rep: pytest exit $rc after $((SECONDS - start)) s; last lines of run$rep.log:"
    grep -E "passed|failed|error|skipped|SKIPPED|budget" "$OUT/run$rep.log" | tail -n 12
    [ "$rc" -ne 0 ] && status=$rc
    [ -s "$OUT/speed-run$rep.json" ] && runs+=("$OUT/speed-run$rep.json")
done

gpu_state >> "$OUT/env.txt" 2>&1

if [ "${#runs[@]}" -gt 0 ] && "$PYTHON" -c "import tabulate" 2>/dev/null; then
    "$PYTHON" -m matrix speed "${runs[@]}" --out "$OUT" --chart-dir "$OUT" 2>&1
elif [ "${#runs[@]}" -gt 0 ]; then
    echo "tabulate is not installed: no summary here; run python -m matrix speed ${runs[*]##*/} at home"
else
    echo "no benchmark JSON was written; see $OUT/run*.log"
    status=1
fi
exit "$status"
