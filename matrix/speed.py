"""``python -m matrix speed RUN.json [RUN2.json]``: what staying on the device saves, from the benchmarks.

Reads pytest-benchmark JSON written by suite/bench (``--benchmark-json``); each file is one repeat of
the sweep on one machine. Per row: the median time per call, the input bytes read once over it (GB/s),
that as a fraction of the same run's device-to-device copy bandwidth, the speedup against the CPU
fallback path and the slowdown against the fused op (ratios within one run only). Per (dtype, dims,
size): the fastest decomposition the verdicts call equivalent on that device. Across repeats: how far
each row's medians are apart, and for rows apart by more than SPREAD_LIMIT, what the data says about
why. Writes ``matrix/results/speed-<device>-<torch>.json`` and a chart ``matrix/speed-<device>-<torch>.svg``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

SCHEMA_VERSION = 1
HERE = Path(__file__).parent
RESULTS = HERE / "results"
SPREAD_LIMIT = 0.05  # repeats should agree within this at >= SPREAD_MIN_NUMEL elements
SPREAD_MIN_NUMEL = 1 << 20
TIE = 0.02  # decompositions within this of the fastest are listed as ties (some are the same aten calls)
LAUNCH_BOUND_S = 20e-6  # per call: below this, kernel launches and host overhead set the time, not the device
EVENTS = "cuda events"


class SpeedError(ValueError):
    """A benchmark file that cannot be summarised; the message names the file and the reason."""


# -- reading -------------------------------------------------------------------------------------------
def load(paths) -> list:
    runs = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SpeedError(f"{path}: cannot read JSON: {exc}") from None
        if not isinstance(data, dict) or "benchmarks" not in data:
            raise SpeedError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks')")
        if "opcompat" not in data.get("machine_info", {}):
            raise SpeedError(f"{path}: no machine_info.opcompat: not written by suite/bench "
                             "(run: pytest suite/bench --benchmark-json=FILE)")
        data["_path"] = str(path)
        runs.append(data)
    if not runs:
        raise SpeedError("no benchmark files given")
    machines = {_machine_key(r["machine_info"]["opcompat"]) for r in runs}
    if len(machines) > 1:
        raise SpeedError("the files come from different devices or torch versions: "
                         + "; ".join(" ".join(m) for m in sorted(machines)))
    return runs


def _machine_key(info):
    return (info.get("device", ""), info.get("device_name", ""), info.get("torch", ""))


def machine_of(runs) -> dict:
    info = runs[0]["machine_info"]["opcompat"]
    keys = ("device", "device_name", "torch", "cuda", "macos", "python", "os", "sweep", "timer")
    return {k: info[k] for k in keys if info.get(k) is not None}


def _timed(runs):
    """Benchmarks of every run that carry opcompat's extra_info and statistics, with the repeat index."""
    for repeat, run in enumerate(runs, start=1):
        for bench in run["benchmarks"]:
            extra = bench.get("extra_info") or {}
            if "variant" in extra and bench.get("stats"):
                yield repeat, bench, extra


def timer_of(runs) -> str:
    """CUDA event times when every benchmark has them; otherwise pytest-benchmark's synchronized wall time."""
    have = [e.get("device_median_s") is not None for _, _, e in _timed(runs)]
    return EVENTS if have and all(have) else "wall clock"


# -- rows and ratios -----------------------------------------------------------------------------------
def measurements(runs, timer):
    """(rows, copies): one row per benchmark, before the ratios."""
    rows, copies = [], []
    for repeat, bench, e in _timed(runs):
        events = timer == EVENTS
        median = e["device_median_s"] if events else bench["stats"]["median"]
        base = {"variant": e["variant"], "dtype": e["dtype"], "shape": list(e["shape"]), "numel": e["numel"],
                "median_s": median, "wall_median_s": bench["stats"]["median"], "rounds": bench["stats"]["rounds"],
                # Files written before bursts timed one call per round: no calls_per_round there.
                "calls_per_round": e.get("calls_per_round", 1),
                "iqr_s": e.get("device_iqr_s") if events else bench["stats"].get("iqr"),
                "sm_clock_mhz": e.get("sm_clock_mhz"), "repeat": repeat}
        gbps = e.get("bytes_moved", e["input_bytes"]) / median / 1e9
        if e["kind"] == "copy":
            copies.append({**base, "GBps": gbps})
            continue
        label = e["label"]
        if e.get("output_ok") is False:  # e.g. a float16 sum that overflows at this size
            label += f"; wrong output at this size: {e.get('output_problem', '')}"
        rows.append({**base, "dims": e["dims"], "kind": e["kind"], "equivalent": bool(e["equivalent"]),
                     "label": label, "output_ok": e.get("output_ok", True),
                     "computes": e.get("computes"), "falls_back": bool(e.get("falls_back")),
                     "fallback_ops": e.get("fallback_ops", []), "uses_fused_op": bool(e.get("uses_fused_op")),
                     "GBps": gbps})
    return rows, copies


def copy_bandwidth(copies) -> dict:
    """{repeat: the highest copy bandwidth of that run} (bytes read + written, per second)."""
    best = {}
    for c in copies:
        best[c["repeat"]] = max(best.get(c["repeat"], 0.0), c["GBps"])
    return best


def group_key(row):
    return (row["repeat"], row["dtype"], tuple(row["shape"]), None if row["dims"] is None else tuple(row["dims"]))


def add_ratios(rows, copy_bw) -> None:
    """Fill frac_copy_bw, speedup_vs_fallback and slowdown_vs_fused, each from the row's own run."""
    groups = defaultdict(list)
    for row in rows:
        groups[group_key(row)].append(row)
    for members in groups.values():
        fused = next((r["median_s"] for r in members if r["kind"] == "fused" and not r["falls_back"]), None)
        fallback = next((r["median_s"] for r in members if r["kind"] == "fallback"), None)
        for r in members:
            bw = copy_bw.get(r["repeat"])
            r["frac_copy_bw"] = r["GBps"] / bw if bw else None
            r["speedup_vs_fallback"] = fallback / r["median_s"] if fallback else None
            r["slowdown_vs_fused"] = r["median_s"] / fused if fused else None


def fallback_kind(rows) -> str:
    kinds = sorted({r["label"] for r in rows if r["kind"] == "fallback"})
    return ", ".join(kinds) or "no fallback measured"


# -- recommendation ------------------------------------------------------------------------------------
def is_candidate(row) -> bool:
    """A decomposition that replaces std_mean, is equivalent on this device (and was right on the benchmark's
    own input), and stays on it."""
    return (row["kind"] == "case" and row["equivalent"] and row["output_ok"] and row["computes"] == "std_mean"
            and not row["uses_fused_op"] and not row["falls_back"])


def _geomean(values):
    values = [v for v in values if v is not None]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def recommend(rows) -> list:
    """Per (dtype, dims, size) the fastest candidate, ranked by its time over the fastest candidate's in
    each run, averaged over runs (geometric mean)."""
    points = defaultdict(lambda: defaultdict(dict))  # (dtype, dims, shape) -> variant -> repeat -> row
    for r in rows:
        if is_candidate(r) or r["kind"] in ("fused", "fallback"):
            dims = None if r["dims"] is None else tuple(r["dims"])
            points[(r["dtype"], dims, tuple(r["shape"]))][r["variant"]][r["repeat"]] = r
    out = []
    for (dtype, dims, shape), by_variant in sorted(points.items(), key=_point_order):
        entry = {"dtype": dtype, "dims": None if dims is None else list(dims), "shape": list(shape),
                 "size": math.prod(shape)}
        cands = {v: reps for v, reps in by_variant.items() if is_candidate(next(iter(reps.values())))}
        if not cands:
            out.append({**entry, "variant": None, "reason": "no equivalent decomposition that stays on the device"})
            continue
        repeats = sorted({rep for reps in cands.values() for rep in reps})
        best_per_repeat = {rep: min(reps[rep]["median_s"] for reps in cands.values() if rep in reps) for rep in repeats}
        score = {v: _geomean(reps[rep]["median_s"] / best_per_repeat[rep] for rep in reps) for v, reps in cands.items()}
        ranked = sorted(score, key=lambda v: (score[v], v))
        winner = cands[ranked[0]]
        winners = {rep: min((v for v in cands if rep in cands[v]), key=lambda v: cands[v][rep]["median_s"])
                   for rep in repeats}
        out.append({
            **entry, "variant": ranked[0],
            "throughput_ratio_vs_fused": _inverse(_geomean(r["slowdown_vs_fused"] for r in winner.values())),
            "speedup_vs_fallback": _geomean(r["speedup_vs_fallback"] for r in winner.values()),
            "median_s": _geomean(r["median_s"] for r in winner.values()),
            "repeats_agree": len(set(winners.values())) == 1,
            "ties": [v for v in ranked[1:] if score[v] / score[ranked[0]] <= 1 + TIE],
        })
    return out


DTYPE_ORDER = ("float32", "float16", "bfloat16", "float64")


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
                    "speedup_vs_fallback": [min(speedups), max(speedups)] if speedups else None})
    return out


# -- repeat spread -------------------------------------------------------------------------------------
def spread(rows, copies, limit=SPREAD_LIMIT, min_numel=SPREAD_MIN_NUMEL) -> dict:
    """How far the repeats' medians are apart (max / min - 1) for every row measured more than once, and
    for each row apart by more than ``limit`` at ``min_numel`` elements or more, why, where the data says
    (see ``explain``)."""
    by_row = defaultdict(dict)  # row key -> repeat -> row
    for r in rows:
        by_row[(r["variant"], r["dtype"], _shape(r), _dims(r["dims"]), r["numel"])][r["repeat"]] = r
    for c in copies:
        by_row[("copy", c["dtype"], _shape(c), "-", c["numel"])][c["repeat"]] = {**c, "kind": "copy"}
    shifts = group_shifts(by_row)
    checked, over, worst = 0, [], 0.0
    for key, reps in sorted(by_row.items()):
        variant, dtype, shape, dims, numel = key
        if len(reps) < 2 or numel < min_numel:
            continue
        checked += 1
        medians = [reps[k]["median_s"] for k in sorted(reps)]
        s = max(medians) / min(medians) - 1
        worst = max(worst, s)
        if s > limit:
            reasons = explain(reps, shifts.get((dtype, shape, dims)), limit)
            over.append({"variant": variant, "dtype": dtype, "shape": shape, "dims": dims, "spread": s,
                         "medians_s": medians, "reasons": [k for k, _ in reasons],
                         "explanation": "; ".join(text for _, text in reasons)})
    repeats = max((r["repeat"] for r in rows), default=0)
    counts = defaultdict(int)
    for o in over:
        for reason in o["reasons"]:
            counts[reason] += 1
    return {"limit": limit, "min_numel": min_numel, "repeats": repeats, "checked": checked, "max": worst,
            "reason_counts": dict(sorted(counts.items())), "over_limit": sorted(over, key=lambda o: -o["spread"])}


def group_shifts(by_row) -> dict:
    """{(dtype, shape, dims): (shift, {repeat: factor})} over the device rows of each group.

    A repeat's factor is the median, over the group's rows, of each row's median in that repeat over the
    row's geometric mean across repeats; the shift is max factor / min factor - 1. A whole group slower in
    one repeat (device clocks, memory state, anything not specific to a variant) shows here. Groups of
    fewer than three rows have no shift: one or two rows cannot tell the group from the variant.
    """
    groups = defaultdict(list)
    for (_, dtype, shape, dims, _), reps in by_row.items():
        if len(reps) > 1 and next(iter(reps.values()))["kind"] not in ("fallback", "copy"):
            groups[(dtype, shape, dims)].append(reps)
    out = {}
    for key, members in groups.items():
        if len(members) < 3:
            continue
        normalised = defaultdict(list)
        for reps in members:
            centre = _geomean(r["median_s"] for r in reps.values())
            for repeat, r in reps.items():
                normalised[repeat].append(r["median_s"] / centre)
        factors = {repeat: statistics.median(v) for repeat, v in normalised.items()}
        out[key] = (max(factors.values()) / min(factors.values()) - 1, factors)
    return out


def explain(reps, shift, limit) -> list:
    """[(key, text)]: what the data says about a row whose repeats are apart by more than ``limit``.

    - fallback_cpu: the fallback computes on the host CPU, which warming the device does not steady;
    - launch_bound: under LAUNCH_BOUND_S a call, launches and host overhead set the time;
    - group_shift: the row's whole (dtype, shape, dims) group moved between repeats, and with that divided
      out the row is within ``limit``; group_shift_partial: the group moved, but that is not all of it;
    - noisy: the rounds of one repeat are spread by more than ``limit`` (IQR / median);
    - sm_clock: NVML's SM clock read after the rounds differs between repeats by more than ``limit``;
    - unexplained: none of the above but group_shift_partial.
    """
    ordered = [reps[k] for k in sorted(reps)]
    medians = [r["median_s"] for r in ordered]
    out = []
    if ordered[0]["kind"] == "fallback":
        out.append(("fallback_cpu", "the fallback computes on the host CPU (copy out, std_mean, copy back): "
                                    "host timing, which warming the device does not steady"))
    if min(medians) < LAUNCH_BOUND_S:
        out.append(("launch_bound", f"{min(medians) * 1e6:.1f} us a call, under {LAUNCH_BOUND_S * 1e6:.0f} us: "
                                    "launches and host overhead set it"))
    if shift is not None and shift[0] > limit:
        factors = shift[1]
        residual = [r["median_s"] / factors[r["repeat"]] for r in ordered if r["repeat"] in factors]
        rest = max(residual) / min(residual) - 1 if len(residual) > 1 else 0.0
        out.append(("group_shift" if rest <= limit else "group_shift_partial",
                    f"its whole group moved {shift[0]:.0%} between repeats (a device-wide state, not this "
                    f"variant); {rest:.1%} apart without that"))
    noisy = [(r["iqr_s"] / r["median_s"], r["repeat"]) for r in ordered if r.get("iqr_s") and r["median_s"]]
    worst = max(noisy, default=None)
    if worst and worst[0] > limit:
        out.append(("noisy", f"its rounds in repeat {worst[1]} spread by {worst[0]:.0%} (IQR / median)"))
    clocks = [r["sm_clock_mhz"] for r in ordered if r.get("sm_clock_mhz")]
    if len(clocks) == len(ordered) and max(clocks) / min(clocks) - 1 > limit:
        out.append(("sm_clock", f"SM clock after the rounds {min(clocks)} to {max(clocks)} MHz across repeats"))
    if all(key == "group_shift_partial" for key, _ in out):
        out.append(("unexplained", "not attributed"))
    return out


def _shape(row) -> str:
    return "x".join(map(str, row["shape"]))


# -- the result ----------------------------------------------------------------------------------------
ROW_FIELDS = ("variant", "kind", "equivalent", "label", "dtype", "shape", "numel", "dims", "median_s", "GBps",
              "frac_copy_bw", "speedup_vs_fallback", "slowdown_vs_fused", "repeat", "wall_median_s", "rounds",
              "calls_per_round", "iqr_s", "sm_clock_mhz", "computes", "output_ok", "falls_back", "fallback_ops",
              "uses_fused_op")


def analyse(runs) -> dict:
    timer = timer_of(runs)
    rows, copies = measurements(runs, timer)
    bw = copy_bandwidth(copies)
    add_ratios(rows, bw)
    recommendation = recommend(rows)
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "measured",
        "machine": machine_of(runs),
        "timer": timer,
        "runs": [Path(r["_path"]).name for r in runs],
        "copy_bandwidth_GBps": statistics.fmean(bw.values()) if bw else None,
        "copy_bandwidth_by_repeat": [bw[k] for k in sorted(bw)],
        "copy_bandwidth_note": "device-to-device copy: (bytes read + bytes written) / median time, best size",
        "fallback": fallback_kind(rows),
        "rows": [{k: r.get(k) for k in ROW_FIELDS} for r in rows],
        "copies": copies,
        "recommendation": recommendation,
        "summary": summary(recommendation),
        "spread": spread(rows, copies),
    }


def dumps(result) -> str:
    """The result as JSON with one list item (a row) per line: diffable, and a fraction of indent=1's size."""
    parts = []
    for key, value in _rounded(result).items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join("  " + json.dumps(v) for v in value)
            parts.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _rounded(value, digits=4):
    """Floats to ``digits`` significant digits: timings are not more precise than that."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-")


def stem(machine: dict) -> str:
    """speed-<device>-<torch>, e.g. speed-cuda-nvidia-h100-80gb-hbm3-torch2.11.0-cu128."""
    kind = machine.get("device", "").split(":")[0]
    return f"speed-{slug(kind + '-' + machine.get('device_name', ''))}-torch{slug(machine.get('torch', ''))}"


# -- printing ------------------------------------------------------------------------------------------
def _ratio(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}x"


def _dims(d):
    return "all" if d is None else ",".join(map(str, d))


SHOW_OVER_LIMIT = 12  # rows above the spread limit printed; the result file has them all


def _over_limit_line(o) -> str:
    medians = " / ".join(f"{m * 1e6:.1f}" for m in o.get("medians_s", ()))
    why = f": {o['explanation']}" if o.get("explanation") else ""
    return f"{o['variant']} {o['dtype']} {o['shape']} dims={o['dims']}: {o['spread']:.1%} ({medians} us){why}"


def render(result, *, with_rows=False) -> str:
    m = result["machine"]
    bw = result["copy_bandwidth_GBps"]
    sp = result["spread"]
    head = [f"Speed on {m.get('device')} ({m.get('device_name')}), torch {m.get('torch')}"
            + (f", CUDA {m['cuda']}" if m.get("cuda") else "") + f"; timer: {result['timer']}; "
            f"{result['fallback']}; {len(result['runs'])} repeat(s)",
            "copy bandwidth: " + (f"{bw:.0f} GB/s" if bw else "not measured")]
    if sp["checked"]:
        counts = ", ".join(f"{k} {n}" for k, n in sp.get("reason_counts", {}).items())
        head.append(f"repeat spread at >= {sp['min_numel']:,} elements: max {sp['max']:.1%} over {sp['checked']} "
                    f"rows; {len(sp['over_limit'])} above {sp['limit']:.0%}" + (f" ({counts})" if counts else "")
                    + "".join(f"\n  {_over_limit_line(o)}" for o in sp["over_limit"][:SHOW_OVER_LIMIT]))
    table = [[r["dtype"], _dims(r["dims"]), "x".join(map(str, r["shape"])), r["variant"] or r.get("reason"),
              _ratio(r.get("throughput_ratio_vs_fused")), _ratio(r.get("speedup_vs_fallback"), 1),
              {True: "yes", False: "no"}.get(r.get("repeats_agree"), "-"), ", ".join(r.get("ties") or [])]
             for r in result["recommendation"]]
    parts = ["\n".join(head), "Fastest equivalent decomposition per point:",
             tabulate(table, headers=["dtype", "dims", "shape", "variant", "throughput vs fused",
                                      "speedup vs fallback", "repeats agree", f"ties (within {TIE:.0%})"],
                      tablefmt="github")]
    if with_rows:
        rows = [[r["repeat"], r["dtype"], _dims(r["dims"]), "x".join(map(str, r["shape"])), r["variant"],
                 r["label"], f"{r['median_s'] * 1e6:.1f}", f"{r['GBps']:.1f}",
                 "-" if r["frac_copy_bw"] is None else f"{r['frac_copy_bw']:.2f}",
                 _ratio(r["speedup_vs_fallback"], 1), _ratio(r["slowdown_vs_fused"])] for r in result["rows"]]
        parts += ["All rows:", tabulate(rows, headers=["rep", "dtype", "dims", "shape", "variant", "label", "median us",
                                                       "GB/s", "of copy bw", "vs fallback", "vs fused"],
                                        tablefmt="github")]
    return "\n\n".join(parts)


# -- the chart -----------------------------------------------------------------------------------------
def chart(result, path) -> Path:
    """Speedup against the fallback path vs input size, one line per variant, a panel per (dtype, dims)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "opcompat"})  # small, reproducible SVG
    from matplotlib.lines import Line2D

    lines = defaultdict(lambda: defaultdict(list))  # (dtype, dims) -> variant -> [row]
    kinds = {}
    for r in result["rows"]:
        if r["speedup_vs_fallback"] is not None:
            lines[(r["dtype"], _dims(r["dims"]))][r["variant"]].append(r)
            kinds[r["variant"]] = r["kind"]
    panels = sorted(lines, key=lambda k: (_dtype_rank(k[0]), k[1] == "all", k))
    if not panels:
        raise SpeedError("nothing to chart: no row has a speedup against the fallback")
    variants = sorted(kinds, key=lambda v: (kinds[v] != "fused", kinds[v] == "fallback", v))
    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # greys: fallback
    colours = {v: palette[i % len(palette)] for i, v in enumerate(v for v in variants if kinds[v] == "case")}
    colours.update({v: "black" for v in variants if kinds[v] == "fused"})
    colours.update({v: "grey" for v in variants if kinds[v] == "fallback"})
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.5 * cols, 4.2 * rows_n), squeeze=False, sharey=True)
    for ax, key in zip(axes.flat, panels):
        for v in variants:
            by_size = defaultdict(list)
            for r in lines[key].get(v, ()):
                by_size[r["numel"]].append(r)
            if not by_size:
                continue
            xs = sorted(by_size)
            ys = [_geomean(r["speedup_vs_fallback"] for r in by_size[n]) for n in xs]
            # Equivalence is per dtype: the line style is this panel's verdict.
            dashed = kinds[v] == "case" and not all(r["equivalent"] for n in xs for r in by_size[n])
            ax.plot(xs, ys, "--" if dashed else "-", marker="o", ms=3, lw=2.5 if kinds[v] == "fused" else 1.2,
                    color=colours[v])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{key[0]}, reduced over " + ("all dims" if key[1] == "all" else f"dims ({key[1]})"),
                     fontsize=10)
        ax.set_xlabel("elements")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"speedup vs {result['fallback']}")
    handles = [Line2D([], [], color=colours[v], lw=2.5 if kinds[v] == "fused" else 1.2, marker="o", ms=3)
               for v in variants]
    handles.append(Line2D([], [], color="black", ls="--", lw=1.2))
    labels = [*variants, "dashed: not equivalent\n(verdict at that dtype)"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    m = result["machine"]
    fig.suptitle(f"{m.get('device_name')} ({m.get('device')}), torch {m.get('torch')}: speedup against the CPU "
                 f"fallback path ({result['timer']})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return path


# -- command line --------------------------------------------------------------------------------------
def add_arguments(parser):
    parser.add_argument("runs", nargs="+", metavar="RUN.json",
                        help="pytest-benchmark JSON from suite/bench, one per repeat of the sweep")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder for speed-<device>-<torch>.json (default: {RESULTS.relative_to(HERE.parent)}; "
                             "a quick sweep is written only where --out says)")
    parser.add_argument("--chart-dir", type=Path, default=None,
                        help="folder for the chart (default: matrix/, or --out when given)")
    parser.add_argument("--chart-format", choices=("svg", "png"), default="svg", help="chart format (default: svg)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no result file and no chart")
    parser.add_argument("--rows", action="store_true", help="print every row too")


def run(args) -> int:
    try:
        result = analyse(load(args.runs))
    except SpeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(result, with_rows=args.rows))
    if args.no_write:
        return 0
    refusal = _refuse_default_write(result)
    if args.out is None and refusal:
        print(f"\nnot written: {refusal}; pass --out DIR to write it anyway", file=sys.stderr)
        return 0
    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    name = stem(result["machine"])
    chart_dir = args.chart_dir or (args.out if args.out else HERE)
    try:
        drawn = chart(result, chart_dir / f"{name}.{args.chart_format}")
        result["chart"] = _relative(drawn, out)
        print(f"\nwrote {drawn}")
    except ImportError as exc:
        print(f"\nno chart: matplotlib is not installed ({exc})", file=sys.stderr)
    except SpeedError as exc:
        print(f"\nno chart: {exc}", file=sys.stderr)
    target = out / f"{name}.json"
    target.write_text(dumps(result))
    print(f"wrote {target}")
    return 0


def _relative(path, out) -> str:
    """The chart's path from the repository root (matrix/speed-....svg) when it is inside the repository,
    else from the result file's folder."""
    import os

    path, root = Path(path).resolve(), HERE.parent.resolve()
    base = root if root in path.parents else Path(out).resolve()
    return Path(os.path.relpath(path, base)).as_posix()


def _refuse_default_write(result) -> str:
    """Why a result should not land in matrix/results/ by default ('' when it may)."""
    m = result["machine"]
    if "simulated" in str(m.get("device_name", "")).lower():
        return "a simulated device is not a measurement"
    if m.get("sweep") != "full":
        return f"the {m.get('sweep')!r} sweep is a smoke test, not a measurement to publish"
    return ""
