"""Speed: per measured speed file, the fastest case that is *equivalent on that device* (its verdicts), per
dtype, reduced dims and size range; where it is not equivalent on the CPU, the caveat in words."""

from __future__ import annotations

import statistics
from collections import OrderedDict

from matrix import results
from matrix.render.answers import caveat
from matrix.render.common import bullet, para, short, table, tag
from matrix.render.model import Model

NOT_CASES = ("fused", "fallback", "copy")


def _dims(d) -> str:
    return "all" if d in (None, [], "-") else ",".join(str(x) for x in d)


def _num(x) -> str:
    if not isinstance(x, (int, float)):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _size(n: int) -> str:
    for unit, scale in (("G", 2**30), ("M", 2**20), ("k", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def _sizes(sizes) -> str:
    lo, hi = min(sizes), max(sizes)
    return _size(lo) if lo == hi else f"{_size(lo)}–{_size(hi)}"


def _spread(values) -> str:
    lo, hi = min(values), max(values)
    return _num(lo) if _num(lo) == _num(hi) else f"{_num(lo)}–{_num(hi)}"


def fastest_equivalent(model: Model, data: dict, device: str, release):
    """[(dtype, dims, numel, variant, ratio vs fused, speedup vs fallback)], one per measured point."""
    grouped = OrderedDict()
    for row in data.get("rows") or ():
        if not isinstance(row, dict) or row.get("kind") in NOT_CASES or row.get("variant") in NOT_CASES:
            continue
        if row.get("uses_fused_op"):  # calls torch.std_mean itself (e.g. upcast at float32): no replacement
            continue
        key = (row.get("dtype"), _dims(row.get("dims")), row.get("numel"))
        grouped.setdefault(key, {}).setdefault(row.get("variant"), []).append(row)
    firsts = list(OrderedDict(((k[0], k[1]), None) for k in grouped))
    picks = []
    for (dtype, dims, numel), variants in sorted(grouped.items(), key=lambda kv: (
            firsts.index(kv[0][:2]), kv[0][2] if isinstance(kv[0][2], int) else 0)):
        best = None
        for variant, rows in variants.items():
            if not model.equivalent(device, variant, dtype, release):
                continue
            median = statistics.median(r["median_s"] for r in rows if isinstance(r.get("median_s"), (int, float)))
            if best is None or median < best[0]:
                best = (median, variant, rows)
        if best is None:
            picks.append((dtype, dims, numel, None, None, None))
            continue
        _, variant, rows = best
        slow = [r["slowdown_vs_fused"] for r in rows if r.get("slowdown_vs_fused")]
        fast = [r["speedup_vs_fallback"] for r in rows if r.get("speedup_vs_fallback")]
        picks.append((dtype, dims, numel, variant, 1 / statistics.median(slow) if slow else None,
                      statistics.median(fast) if fast else None))
    return picks


def section(model: Model, speed) -> list:
    out = []
    for path, data in speed:
        machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        device = machine.get("device", "?")
        version = str(machine.get("torch", ""))
        release = results.release(version) if version else None
        title = " · ".join(str(machine[k]) for k in ("device", "device_name", "torch") if machine.get(k))
        out += [f"### {title or path.stem} (M: {device}, {machine.get('device_name', '?')})", ""]
        picks = fastest_equivalent(model, data, device, release)
        if not picks:
            out += ["(no timing rows in this file)", ""]
            continue
        rows, groups = [], []
        for dtype, dims, numel, variant, ratio, fast in picks:  # consecutive sizes with the same pick: one row
            if groups and groups[-1][0] == (dtype, dims, variant):
                groups[-1][1].append((numel, ratio, fast))
            else:
                groups.append(((dtype, dims, variant), [(numel, ratio, fast)]))
        for (dtype, dims, variant), points in groups:
            sizes = [p[0] for p in points if isinstance(p[0], int)]
            rows.append([short(dtype or "?"), dims, _sizes(sizes) if sizes else "-",
                         variant or "none equivalent", _spread([p[1] for p in points if p[1]]) if variant else "-",
                         _spread([p[2] for p in points if p[2]]) if variant else "-"])
        judged = "; ".join(sorted({tag(d) for d in model.verdict_files(device, release)})) or "none"
        out += para(f"From `{path.name}` (medians over its repeats). Only cases equivalent on {device} (verdicts: "
                    f"{judged}) in that "
                    "dtype are timed against each other here (not the ones that call `torch.std_mean` itself); "
                    "elements in k = 2¹⁰, M = 2²⁰; × fused: throughput relative to `torch.std_mean`; "
                    "× fallback: speedup over the CPU round trip.")
        out += ["", table(rows, ["dtype", "dims", "elements", "fastest equivalent", "× fused", "× fallback"]), ""]
        chosen = OrderedDict((p[3], p[0]) for p in picks if p[3])
        for variant in chosen:
            dtypes = sorted({p[0] for p in picks if p[3] == variant})
            words = caveat(model, "cpu", variant, dtypes) if device != "cpu" else ""
            if words:
                out += bullet(f"{variant} is equivalent on {device} but not on the CPU: {words}.")
        out.append("")
    return ["## Speed", "", *out] if out else []
