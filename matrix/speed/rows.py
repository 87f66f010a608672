"""From the runs to rows: one row per variant, group and repeat, with its times and ratios per timer.

The ratio to the fused op is the median of the per-round ratios of the interleaved group (suite/bench,
opcompat.timing), not a ratio of two medians. Speedups against the CPU fallback use the eager wall time
of both (what a program sees); everything else uses the ranking timer (``rank_timer``).
"""

from __future__ import annotations

from collections import defaultdict

from .load import FALLBACK, GROUP, items

GRAPH, EAGER_EVENTS, EAGER_WALL = "graph", "eager_events", "eager_wall"  # opcompat.timing.TIMERS
TIMER_TEXT = {
    GRAPH: "device time (CUDA graph replay: kernels without the host's launch overhead)",
    EAGER_EVENTS: "eager, CUDA events",
    EAGER_WALL: "eager wall time (host clock, synchronized: what a program sees)",
}


def _median(stats):
    return stats.get("median") if stats else None


def _spread(stats):
    return stats.get("spread") if stats else None


def measurements(runs) -> tuple:
    """(rows, fallbacks): the device variants of every group, and the fallback items."""
    rows, fallbacks = [], []
    for repeat, g in items(runs, GROUP):
        for v in g["variants"]:
            label = v.get("label", "")
            if v.get("output_ok") is False:  # e.g. a float16 sum that overflows at this size
                label += f"; wrong output at this size: {v.get('output_problem', '')}"
            times, ratios = v.get("times") or {}, v.get("ratio_vs_fused") or {}
            rows.append({
                "variant": v["variant"], "kind": v["kind"], "equivalent": v.get("equivalent"), "label": label,
                "dtype": g["dtype"], "shape": list(g["shape"]), "numel": g["numel"], "dims": g["dims"],
                "repeat": repeat, "rounds": g["rounds"], "bytes_moved": v.get("bytes_moved", g["input_bytes"]),
                "times": {t: _median(s) for t, s in times.items()},
                "time_spread": {t: _spread(s) for t, s in times.items()},
                "ratio": {t: _median(s) for t, s in ratios.items() if s},
                "ratio_spread": {t: _spread(s) for t, s in ratios.items() if s},
                "calls_per_round": v.get("calls_per_round"), "graph_calls": v.get("graph_calls"),
                "graph_error": v.get("graph_error", ""), "computes": v.get("computes"),
                "output_ok": v.get("output_ok", True), "falls_back": bool(v.get("falls_back")),
                "fallback_ops": v.get("fallback_ops", []), "uses_fused_op": bool(v.get("uses_fused_op")),
                "device_notes": v.get("device_notes", []), "causes": v.get("causes", []),
                "sm_clock_mhz": g.get("sm_clock_mhz"),
            })
    for repeat, f in items(runs, FALLBACK):
        fallbacks.append({"variant": f["variant"], "kind": "fallback", "label": f["label"], "dtype": f["dtype"],
                          "shape": list(f["shape"]), "numel": f["numel"], "dims": f["dims"], "repeat": repeat,
                          "rounds": f["rounds"], "times": {EAGER_WALL: _median(f["times"].get(EAGER_WALL))},
                          "time_spread": {EAGER_WALL: _spread(f["times"].get(EAGER_WALL))},
                          "falls_back": bool(f.get("falls_back")), "output_ok": f.get("output_ok", True)})
    return rows, fallbacks


def rank_timer(rows) -> str:
    """The timer the recommendation ranks by: device time (CUDA graph) where every decomposition and the
    fused op have it, else the eager wall time."""
    device_rows = [r for r in rows if r["kind"] in ("fused", "case")]
    if device_rows and all(r["times"].get(GRAPH) for r in device_rows):
        return GRAPH
    return EAGER_WALL


def point_key(row) -> tuple:
    return (row["repeat"], row["dtype"], tuple(row["shape"]), None if row["dims"] is None else tuple(row["dims"]))


def copy_timer(rows, timer) -> str:
    """The copy's bandwidth is read from eager CUDA events where there are (a copy captured in a graph ran
    slower than launched eagerly on an H100), else from the ranking timer."""
    return EAGER_EVENTS if any(r["times"].get(EAGER_EVENTS) for r in rows if r["kind"] == "copy") else timer


def add_ratios(rows, fallbacks, timer) -> dict:
    """Fill median_s, GBps, frac_copy_bw, slowdown_vs_fused (ranking timer) and speedup_vs_fallback (eager
    wall), each from the row's own run; return {repeat: copy bandwidth in GB/s} (best size, copy_timer)."""
    copy_bw, bw_timer = {}, copy_timer(rows, timer)
    for r in rows:
        r["median_s"] = r["times"].get(timer)
        r["GBps"] = r["bytes_moved"] / r["median_s"] / 1e9 if r["median_s"] else None
        copy_s = r["times"].get(bw_timer)
        if r["kind"] == "copy" and copy_s:
            copy_bw[r["repeat"]] = max(copy_bw.get(r["repeat"], 0.0), r["bytes_moved"] / copy_s / 1e9)
    fallback_s = {point_key(f): f["times"][EAGER_WALL] for f in fallbacks}
    by_point = defaultdict(list)
    for r in rows:
        by_point[point_key(r)].append(r)
    for key, members in by_point.items():
        fused = next((r for r in members if r["kind"] == "fused"), None)
        for r in members:
            bw = copy_bw.get(r["repeat"])
            r["frac_copy_bw"] = r["GBps"] / bw if bw and r["GBps"] else None
            r["slowdown_vs_fused"] = r["ratio"].get(timer)
            wall, fb = r["times"].get(EAGER_WALL), fallback_s.get(key)
            r["speedup_vs_fallback"] = fb / wall if fb and wall else None
        for f in fallbacks:
            if point_key(f) == key and fused is not None and fused["times"].get(EAGER_WALL):
                f["slowdown_vs_fused"] = f["times"][EAGER_WALL] / fused["times"][EAGER_WALL]
    for f in fallbacks:
        f["speedup_vs_fallback"] = 1.0
        f.setdefault("slowdown_vs_fused", None)
    return copy_bw


def fallback_kind(fallbacks) -> str:
    kinds = sorted({f["label"] for f in fallbacks})
    return ", ".join(kinds) or "no fallback measured"
