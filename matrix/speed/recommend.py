"""Per (dtype, dims, size): the fastest decomposition that is equivalent on the device, with its caveats.

Only a case the verdicts call equivalent on the measured device at that dtype (judged there by the bench,
opcompat.verdicts) is a candidate; it must also have computed the right result on the benchmark's own
input, stay on the device, and not call the fused op itself. Candidates are ranked by their per-round
ratio to the fused op under the ranking timer (rows.rank_timer); ratios within TIE of the fastest are not
told apart: the first of them in the registry's order is named, the others listed as ties. That rule is
applied to each repeat alone as well, and ``repeats_agree`` says whether every repeat names the same one.

A recommendation names its caveats: the dtypes where the same case is not equivalent on this device,
the device's own quirks it relies on (failures the fused op shares here, which another device need not),
and the measured verdicts of other devices for the same torch release (matrix/results).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from matrix import results as result_files

from .rows import EAGER_WALL

TIE = 0.02  # ratios this close are not told apart (the ratio spread between repeats is about 1 % at best)
CORRECTION = 1  # the bench's correction (suite/bench/sweep.CORRECTION)
DTYPE_ORDER = ("float32", "float16", "bfloat16", "float64")


def is_candidate(row) -> bool:
    """A decomposition that replaces std_mean, is equivalent on this device (and was right on the benchmark's
    own input), and stays on it."""
    return (row["kind"] == "case" and row["equivalent"] is True and row["output_ok"] and row["computes"] == "std_mean"
            and not row["uses_fused_op"] and not row["falls_back"])


def geomean(values):
    values = [v for v in values if v is not None]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def pick(scores: dict, order: list) -> tuple:
    """(winner, ties): among the scores within TIE of the lowest, the first in ``order``; the rest are ties."""
    if not scores:
        return None, []
    best = min(scores.values())
    near = [v for v in order if v in scores and scores[v] <= best * (1 + TIE)]
    return near[0], near[1:]


# -- caveats -------------------------------------------------------------------------------------------
def caveats(rows, machine: dict, results_dir=result_files.RESULTS_DIR) -> dict:
    """{"texts": {variant: [caveat]}, "short": {variant: str}, "notes": {variant: [note]}}.

    Caveats say where a case is not safe to paste (another dtype on this device; another device, from the
    measured result files of the same torch release); ``short`` is their one-line form for tables. Notes
    are the device quirks a verdict here relies on: the fused op fails the same way on this device, so
    here they agree.
    """
    here = str(machine.get("device", "")).split(":")[0]
    texts, notes = defaultdict(list), defaultdict(list)
    where = defaultdict(lambda: defaultdict(list))  # variant -> place -> [dtype]
    seen = set()
    for r in rows:
        if r["kind"] != "case" or (r["variant"], r["dtype"]) in seen:
            continue
        seen.add((r["variant"], r["dtype"]))
        if r["equivalent"] is False and r["causes"]:
            _add(texts[r["variant"]], f"not equivalent in {r['dtype']} on {here}: {'; '.join(r['causes'])}")
            _add(where[r["variant"]][here], r["dtype"])
        for note in r["device_notes"]:
            _add(notes[r["variant"]], f"{note} (on {here}, {r['dtype']}: the fused op does the same here)")
    release = result_files.release(str(machine.get("torch", "")))
    for variant, device, dtype, text in _elsewhere(release, results_dir, here):
        _add(texts[variant], text)
        _add(where[variant][f"{device} (torch {release})"], dtype)
    short = {v: "not equivalent in " + "; ".join(f"{', '.join(d)} on {place}" for place, d in places.items())
             for v, places in where.items()}
    return {"texts": dict(texts), "short": short, "notes": dict(notes)}


def _elsewhere(release, results_dir, here):
    """(case, device, dtype, text) for measured verdicts of other devices, same torch release, that call a case
    NOT equivalent at the bench's correction."""
    try:
        found, _ = result_files.load_dir(results_dir)
    except OSError:
        return
    for path, data in found:
        if data.get("kind") != "measured" or result_files.release(data["torch"]["version"]) != release:
            continue
        device = data["machine"]["device"]
        if device == here:
            continue
        for v in data.get("verdicts", ()):
            if v.get("correction") == CORRECTION and v.get("equivalent") is False:
                causes = "; ".join(v.get("causes") or ()) or "not equivalent"
                yield v["case"], device, v["dtype"], (f"NOT equivalent on {device} (torch {release}) in {v['dtype']}: "
                                                      f"{causes} [{path.name}]")


def _add(texts, text):
    if text not in texts:
        texts.append(text)


# -- recommendation ------------------------------------------------------------------------------------
def _order(rows) -> list:
    seen = []
    for r in rows:
        if r["variant"] not in seen:
            seen.append(r["variant"])
    return seen


def _scores(reps: dict, timer: str) -> dict:
    """{repeat: score}: the per-round ratio to the fused op, or, where there is no fused op on the device
    (its real fallback), the median time (compared within the repeat)."""
    return {rep: (r["ratio"].get(timer) if r["ratio"].get(timer) is not None else r["times"].get(timer))
            for rep, r in reps.items()}


def recommend(rows, timer: str, cautions: dict) -> list:
    """Per point the recommendation; ``cautions`` is what ``caveats`` returns."""
    short = cautions.get("short", {})
    order = _order(rows)
    points = defaultdict(lambda: defaultdict(dict))  # (dtype, dims, shape) -> variant -> repeat -> row
    for r in rows:
        if r["kind"] == "case":
            dims = None if r["dims"] is None else tuple(r["dims"])
            points[(r["dtype"], dims, tuple(r["shape"]))][r["variant"]][r["repeat"]] = r
    out = []
    for (dtype, dims, shape), by_variant in sorted(points.items(), key=_point_order):
        entry = {"dtype": dtype, "dims": None if dims is None else list(dims), "shape": list(shape),
                 "size": math.prod(shape), "timer": timer}
        cands = {v: reps for v, reps in by_variant.items() if all(is_candidate(r) for r in reps.values())}
        if not cands:
            out.append({**entry, "variant": None, "reason": "no equivalent decomposition that stays on the device"})
            continue
        scores = {v: _scores(reps, timer) for v, reps in cands.items()}
        repeats = sorted({rep for s in scores.values() for rep in s})
        per_repeat = {rep: pick({v: s[rep] for v, s in scores.items() if s.get(rep)}, order)[0] for rep in repeats}
        combined = {v: geomean(s.values()) for v, s in scores.items()}
        winner, ties = pick({v: c for v, c in combined.items() if c}, order)
        eager = {v: geomean(_scores(reps, EAGER_WALL).values()) for v, reps in cands.items()}
        eager_choice, _ = pick({v: e for v, e in eager.items() if e}, order)
        safe = {v: c for v, c in combined.items() if c and not short.get(v)}
        portable, _ = pick(safe, order)
        reps = cands[winner]
        out.append({
            **entry, "variant": winner,
            "ratio_vs_fused": combined[winner],
            "throughput_ratio_vs_fused": _inverse(combined[winner]),
            "eager_ratio_vs_fused": eager.get(winner),
            "speedup_vs_fallback": geomean(r["speedup_vs_fallback"] for r in reps.values()),
            "median_s": geomean(r["median_s"] for r in reps.values()),
            "repeats_agree": len(set(per_repeat.values())) == 1 and per_repeat[repeats[0]] == winner,
            "picks_by_repeat": [per_repeat[rep] for rep in repeats],
            "ties": ties,
            "eager_choice": eager_choice,
            "eager_choice_ratio_vs_fused": eager.get(eager_choice),
            "portable": portable,
            "caveat": short.get(winner, ""),
        })
    return out


def _dtype_rank(dtype):
    return DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER)


def _point_order(item):
    (dtype, dims, shape), _ = item
    return (_dtype_rank(dtype), dtype, dims is None, dims or (), math.prod(shape))


def _inverse(x):
    return 1.0 / x if x else None


def summary(recommendation) -> list:
    """Per (dtype, dims): the decomposition recommended at most sizes, and its range of ratios."""
    groups = defaultdict(list)
    for rec in recommendation:
        if rec["variant"]:
            groups[(rec["dtype"], None if rec["dims"] is None else tuple(rec["dims"]))].append(rec)
    out = []
    order = sorted(groups.items(), key=lambda kv: (_dtype_rank(kv[0][0]), kv[0][0], kv[0][1] is None, kv[0][1] or ()))
    for (dtype, dims), recs in order:
        counts = defaultdict(int)
        for rec in recs:
            counts[rec["variant"]] += 1
        variant = max(sorted(counts), key=lambda v: counts[v])
        mine = [r for r in recs if r["variant"] == variant]
        ratios = [r["throughput_ratio_vs_fused"] for r in mine if r["throughput_ratio_vs_fused"] is not None]
        speedups = [r["speedup_vs_fallback"] for r in mine if r["speedup_vs_fallback"] is not None]
        out.append({"dtype": dtype, "dims": None if dims is None else list(dims), "variant": variant,
                    "wins": counts[variant], "of": len(recs),
                    "throughput_ratio_vs_fused": [min(ratios), max(ratios)] if ratios else None,
                    "speedup_vs_fallback": [min(speedups), max(speedups)] if speedups else None,
                    "repeats_agree": all(r["repeats_agree"] for r in recs), "caveat": mine[0]["caveat"]})
    return out
