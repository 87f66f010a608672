"""Benchmarks: the fused ``torch.std_mean``, every decomposition in cases/, and the CPU fallback.

    pytest suite/bench                                   quick sweep on the CPU (CI runs it in the default run)
    OPCOMPAT_BENCH=full pytest suite/bench --device cuda --benchmark-json=speed.json
    PYTORCH_ENABLE_MPS_FALLBACK=1 OPCOMPAT_BENCH=full pytest suite/bench --device mps --benchmark-json=speed.json
    python -m matrix speed speed.json                    recommendation, result file and chart

The default ``pytest`` run includes the quick sweep (tiny inputs, 3 rounds: seconds on a CPU; no timing
tables unless ``--bench-tables``), so the benchmark code cannot rot; the full sweep runs only when
OPCOMPAT_BENCH=full asks for it.
OPCOMPAT_BENCH_BUDGET_S=N stops starting new benchmarks N seconds after collection (the JSON of what
ran is still written). suite/bench/run_cuda_sweep.sh runs the full sweep twice on a CUDA machine.

On a Mac the variable PYTORCH_ENABLE_MPS_FALLBACK=1 must be in the environment when Python starts:
libtorch reads it once, when it loads, so setting it from Python is too late. Without it the MPS
benchmarks are skipped with that message.

Modules: sweep.py (what is measured: groups of variants and fallback items), runner.py (what one item
times and records), session.py (inputs, verdicts and float64 truths cached per session), conftest.py
(fixtures and the machine_info hook), test_speed.py (the tests, driving the rounds through pytest-benchmark).
The instrument itself (interleaved rounds, CUDA-graph and eager timers, input rotation, fallback
detection) is opcompat/timing.py. Times are per call, in a burst of calls.
"""
