"""How far the repeats agree: the spread of each decomposition's ratio to the fused op between repeats.

For each (variant, dtype, shape, dims) measured in more than one repeat: max / min - 1 of its median
per-round ratio across repeats, per timer; summarised per size (median and max over the rows of that
size). Rows at ``min_numel`` elements or more whose ranking-timer spread exceeds ``limit`` are listed,
with how spread their rounds were within each repeat ((Q3 - Q1) / median of the per-round ratios).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

SPREAD_LIMIT = 0.05  # the goal: ratios of repeats within 5 % at >= SPREAD_MIN_NUMEL elements
SPREAD_MIN_NUMEL = 1 << 17  # 2x4x128x128, the Fooocus latent


def _row_key(r):
    return (r["variant"], r["dtype"], "x".join(map(str, r["shape"])), "all" if r["dims"] is None else
            ",".join(map(str, r["dims"])), r["numel"])


def spread(rows, rank_timer: str, limit=SPREAD_LIMIT, min_numel=SPREAD_MIN_NUMEL) -> dict:
    by_row = defaultdict(dict)
    for r in rows:
        if r["kind"] == "case":
            by_row[_row_key(r)][r["repeat"]] = r
    timers = sorted({t for reps in by_row.values() for r in reps.values() for t in r["ratio"]},
                    key=lambda t: (t != rank_timer, t))
    by_timer, over = {}, []
    for timer in timers:
        sizes = defaultdict(list)
        for key, reps in by_row.items():
            ratios = [reps[k]["ratio"].get(timer) for k in sorted(reps)]
            if len(ratios) < 2 or None in ratios or key[4] < min_numel:
                continue
            s = max(ratios) / min(ratios) - 1
            sizes[key[4]].append(s)
            if timer == rank_timer and s > limit:
                variant, dtype, shape, dims, _ = key
                within = [reps[k]["ratio_spread"].get(timer) for k in sorted(reps)]
                over.append({"variant": variant, "dtype": dtype, "shape": shape, "dims": dims, "spread": s,
                             "ratios": ratios, "within_repeat_spread": within})
        everything = [s for v in sizes.values() for s in v]
        by_timer[timer] = {
            "checked": len(everything),
            "median": statistics.median(everything) if everything else None,
            "max": max(everything) if everything else None,
            "by_size": [{"numel": n, "rows": len(v), "median": statistics.median(v), "max": max(v)}
                        for n, v in sorted(sizes.items())],
        }
    repeats = max((r["repeat"] for r in rows), default=0)
    return {"limit": limit, "min_numel": min_numel, "repeats": repeats, "rank_timer": rank_timer,
            "by_timer": by_timer, "over_limit": sorted(over, key=lambda o: -o["spread"])}
