"""Speed of the fused ``torch.std_mean``, every registered case, and the CPU fallback, per sweep point.

One test per item of the sweep (suite/bench/sweep.py): an interleaved group of the fused op, the cases
and a copy, or the CPU fallback path. The runner (suite/bench/runner.py) does the work;
pytest-benchmark drives the rounds (``pedantic``: its warm-up rounds right before the timed ones) and
writes the JSON, with the runner's record in ``extra_info``. See suite/bench/__init__.py for how to run it.
"""

from __future__ import annotations

import pytest

from opcompat.timing import DoesNotFit, is_out_of_memory, release

from . import runner
from . import sweep as sw

pytestmark = pytest.mark.bench
SWEEP = sw.current()


def pedantic(benchmark):
    """The runner's ``drive``: pytest-benchmark times each round (all variants), after its warm-up rounds.
    With --benchmark-disable it runs the round once, without warm-up."""
    def drive(round_fn, rounds, warmup):
        benchmark.pedantic(round_fn, rounds=rounds, warmup_rounds=warmup, iterations=1)
        return 0 if getattr(benchmark, "disabled", False) else warmup
    return drive


@pytest.mark.parametrize("point", sw.points(SWEEP), ids=str)
def test_speed(point, benchmark, bench):
    bench.check_time()
    benchmark.group = point.group
    measure = runner.measure_fallback if point.variant == sw.FALLBACK else runner.measure_group
    try:
        extra, problems = measure(point, bench, pedantic(benchmark))
    except DoesNotFit as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        release(bench.device)
        pytest.skip(f"{point.dtype} {point.shape_label}: out of memory on {bench.device}: {exc}")
    benchmark.extra_info.update(extra)
    # A form the verdicts call non-equivalent may well be wrong at this size (float16 sums overflow from
    # N ~ 65k): a finding, recorded. Anything else computing a wrong result is a bug: fail, after the
    # timing is recorded.
    if problems:
        pytest.fail("\n".join(problems))
