"""Verdict tables: per device, the newest measured release in full (cause codes, not sentences), then the
cells where another release differs. The full causes and counterexamples are in the result files."""

from __future__ import annotations

from collections import OrderedDict

from matrix import results
from matrix.render.common import bullet, dtype_key, minor, para, short, table, tag, version_key
from matrix.render.model import Model

# Cause -> code; the verdict engine (opcompat/verdicts.py) starts each cause with one of these.
CODES = OrderedDict([
    ("wrong correction", ("B", "biased: computes another correction than the caller's")),
    ("epsilon bias", ("E", "sqrt(var + eps) instead of sqrt(var)")),
    ("overflow", ("O", "inf where the truth is finite (a square or var overflows the dtype)")),
    ("underflow", ("U", "0 where the truth is not (a square or var underflows the dtype)")),
    ("cancellation", ("C", "errors that grow with the condition number (one-pass E[x²] − E[x]²)")),
    ("NaN/inf pattern", ("N", "NaN/inf where std_mean has none, or the reverse")),
    ("value mismatch", ("V", "values outside the error budget, no cause named")),
    ("decision flipped", ("D", "a threshold decision differs")),
    ("shape", ("S", "the shape differs")),
    ("dtype", ("T", "the dtype differs")),
    ("error", ("X", "the call raised")),
])


def code(cause: str) -> str:
    return next((c for prefix, (c, _) in CODES.items() if cause.startswith(prefix)), "?")


def cell(v) -> str:
    if v is None:
        return "—"
    if v["equivalent"]:
        return "yes"
    codes = list(OrderedDict((code(c), None) for c in (v.get("causes") or ["?"])))
    return "no: " + ",".join(codes)


def _correction(c) -> str:
    return "" if c is None else f"{c:g}"


def _family(v) -> str:
    return v.get("family") or "std_mean"


def _table(data, family) -> str:
    by_key, dtypes = OrderedDict(), set()
    for v in data["verdicts"]:
        if _family(v) != family:
            continue
        by_key.setdefault((v["case"], v.get("correction")), {})[v["dtype"]] = v
        dtypes.add(v["dtype"])
    order = sorted(dtypes, key=dtype_key)
    rows = [[case, _correction(c), *(cell(cells.get(d)) for d in order)] for (case, c), cells in by_key.items()]
    return table(rows, ["case", "c", *(short(d) for d in order)])


def _key(v):
    return (v["case"], v.get("correction"), v["dtype"])


def section(model: Model) -> list:
    out = []
    for device, files in model.measured.items():
        judged = [f for f in files if f["verdicts"]]
        if not judged:
            continue
        judged.sort(key=lambda d: (version_key(d["torch"]["version"]), d["machine"]["slug"]), reverse=True)
        reference = judged[0]
        families = list(OrderedDict((_family(v), None) for v in reference["verdicts"]))
        out += [f"### {device} ({tag(reference)})", ""]
        for family in families:
            if len(families) > 1:
                out += [f"#### family: {family}", ""]
            out += [f"torch {reference['torch']['version']}, in full (c = correction):", "",
                    _table(reference, family), ""]
        mine = {_key(v): v for v in reference["verdicts"]}
        changes = OrderedDict()
        same = []
        for data in judged[1:]:
            differs = False
            for v in data["verdicts"]:
                ref = mine.get(_key(v))
                if ref is None or cell(ref) != cell(v):
                    differs = True
                    changes.setdefault((*_key(v), cell(v), cell(ref)), []).append(data)
            if not differs:
                same.append(data)
        if same:
            out += para("The same verdicts on torch " + ", ".join(
                f"{d['torch']['version']}" + ("" if tag(d) == tag(reference) else f" ({tag(d)})") for d in same)
                + ".")
            out.append("")
        if changes:
            rows = [[", ".join(minor(d["torch"]["version"]) for d in files), case, _correction(c), short(dtype), now,
                     then] for (case, c, dtype, now, then), files in changes.items()]
            newest = minor(reference["torch"]["version"])
            out += [f"Where another release differs from torch {newest}:", "",
                    table(rows, ["torch", "case", "c", "dtype", "verdict", f"on {newest}"]), ""]
        notes = list(OrderedDict((n, None) for d in judged for v in d["verdicts"]
                                 for n in (v.get("device_notes") or ())))
        for note in notes:
            out += bullet(f"Note ({device}): {note}.")
        if notes:
            out.append("")
    if not out:
        return []
    legend = "; ".join(f"**{c}** {text}" for c, text in CODES.values())
    head = ["## Verdicts: is each case equivalent to `torch.std_mean`?", ""]
    head += para("Each case against CPU `torch.std_mean` at the caller's correction on the fixed witness battery "
                 "(`python -m matrix verdicts`). `yes`: equivalent; `no:` with the causes found: " + legend
                 + ". The causes in full and a counterexample per cell are in the result files "
                 "(`matrix/results/measured-<device>-*.json`, field `verdicts`).")
    return [*head, "", *out]


def files_by_release(files):
    return OrderedDict((results.release(f["torch"]["version"]), f) for f in files)
