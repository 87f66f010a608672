"""``python -m matrix speed RUN.json [RUN2.json]``: what staying on the device saves, from the benchmarks.

Reads pytest-benchmark JSON written by suite/bench (``--benchmark-json``); each file is one repeat of the
sweep on one machine. Each group of variants was timed interleaved, round by round (opcompat.timing), so
a variant's time over the fused op is a per-round ratio; the recommendation ranks by device time (CUDA
graph replay) where there is one, else by eager wall time, and shows the other beside it.

Modules, one job each: load (reading and refusing files), rows (one row per variant, group and repeat;
ratios), recommend (the fastest equivalent decomposition per point, and its caveats), spread (how far the
repeats agree), result (the result file), render (the printed summary), chart (the chart), cli.
"""

from __future__ import annotations

from .cli import add_arguments, run

__all__ = ["add_arguments", "run"]
