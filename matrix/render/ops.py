"""Op support as release ranges: the ops the std_mean cases reach, per device; and every predicted aten op
on MPS that is not native in every release (the per-op evidence stays in the result files)."""

from __future__ import annotations

from collections import OrderedDict

from matrix import results
from matrix.render.common import bounded_span, op_name, para, ranges, short, table, tag
from matrix.render.model import NOT_TRACED, Model

MPS_DTYPES = ("float32", "float16", "bfloat16")
ALL_DTYPES = ("float32", "float16", "bfloat16", "float64")
NOT_NATIVE_FILTER = ("native", "not_in_release", "unknown_op")  # an op that is only these is left out


def _cell(status, macos=None) -> str:
    if status == NOT_TRACED:
        return "—"
    if status == "native_macos" and not macos:
        return "native (newer macOS)"
    word = "native" if status == "native_macos" else status
    return word + (f" (macOS ≥ {macos})" if macos else "")


def _op_order(lists) -> list:
    seen = OrderedDict()
    for ops in lists:
        for op in ops or ():
            seen.setdefault(op, None)
    return list(seen)


def _range_rows(op, releases, value_of, all_releases, gate_of=None):
    """Rows of one op: a release range per run of equal cells (and equal MPS minimum macOS, when given)."""
    rows = []
    for first, last, (gate, cells) in ranges(releases, lambda r: ((gate_of or (lambda _: None))(r), value_of(r))):
        if all(c == "—" for c in cells):
            continue
        label = bounded_span(first, last, all_releases) + (f", macOS ≥ {gate}" if gate else "")
        rows.append([op_name(op) if not rows else "", label, *cells])
    return rows


def mps_family_table(model: Model) -> list:
    releases = model.mps_releases()
    if not releases:
        return []
    ops = _op_order(model.traced_ops(r)[0] for r in releases)
    rows = []
    for op in ops:
        rows += _range_rows(op, releases,
                            lambda r, op=op: tuple(_cell(*model.mps_status(r, op, d)) for d in MPS_DTYPES), releases,
                            model.backend_macos)
    measured = [r for r in releases if model.mps[r]["kind"] == "measured"]
    untraced = [r for r in releases if model.traced_ops(r)[0] is None]
    out = ["### MPS (P unless a release was measured on a Mac)", ""]
    out += para("Per op, the releases with the same cells are one row. Each release uses the ops traced on that "
                "release (its trace, else its measured run); `—`: not traced on that release. float64: MPS has "
                "none. The release's own MPS minimum macOS (where its wheel says) is next to the range; a dtype's "
                "newer one is in the cell.")
    if measured:
        out += para("Measured on a Mac: " + ", ".join(f"{r} ({tag(model.mps[r])})" for r in measured) + ".")
    if untraced:
        out += para("No trace and no measured run (so no op rows): " + ", ".join(untraced) + ".")
    out += ["", table(rows, ["op", "torch", *(short(d) for d in MPS_DTYPES)]), ""]
    return out


def measured_family_table(model: Model, device: str, title: str) -> list:
    files = model.measured.get(device, [])
    if not files:
        return []
    releases = list(OrderedDict((results.release(f["torch"]["version"]), None) for f in files))
    by_release = OrderedDict()
    for f in files:
        by_release.setdefault(results.release(f["torch"]["version"]), []).append(f)
    ops = _op_order([r["op"] for r in f["ops"]] for f in files)

    def cells(release, op):
        out = []
        for dtype in ALL_DTYPES:
            found = sorted({r["status"] for f in by_release[release] for r in f["ops"]
                            if r["op"] == op and r["dtype"] == dtype})
            out.append("/".join(found) if found else "—")
        return tuple(out)

    rows = []
    for op in ops:
        rows += _range_rows(op, releases, lambda r, op=op: cells(r, op), releases)
    tags = "; ".join(sorted({tag(f) for f in files}))
    out = [f"### {title} ({tags})", ""]
    out += [table(rows, ["op", "torch", *(short(d) for d in ALL_DTYPES)]), ""]
    return out


def all_ops_section(model: Model) -> list:
    """Every op in the MPS files that is not native in every release, as release ranges (float32; float16
    where it differs)."""
    releases = model.mps_releases()
    if not releases:
        return []
    status = {}
    for release in releases:
        data = model.mps[release]
        for row in data["ops"]:
            status[(row["op"], row["dtype"], release)] = (row["status"], model._row_macos(release, row))
    ops = sorted({op for op, _, _ in status}, key=op_name)

    def seq(op, dtype):
        return [_cell(*status.get((op, dtype, r), ("unknown", None))) for r in releases]

    def text(op, dtype):
        values = dict(zip(releases, seq(op, dtype)))
        parts = []
        for a, b, value in ranges(releases, values.get):
            where = bounded_span(a, b, releases)
            parts.append(f"{value} everywhere" if where == "all" else f"{value} {where}")
        return " · ".join(parts)

    rows = []
    for op in ops:
        plain = {s for (o, d, _), (s, _) in status.items() if o == op and d == "float32"}
        if plain <= set(NOT_NATIVE_FILTER) and not any(
                m for (o, d, _), (_, m) in status.items() if o == op and d == "float32"):
            continue
        f32 = text(op, "float32")
        f16 = text(op, "float16")
        rows.append([op_name(op), f32, "" if f16 == f32 else f16])
    out = ["## Every predicted op on MPS that is not native everywhere", ""]
    out += para(f"{len(rows)} of {len(ops)} ops in the MPS files ({len(releases)} releases, "
                f"{releases[0]}–{releases[-1]}): float32 by release range, float16 where it differs. bfloat16 "
                "needs torch ≥ 2.3 and macOS ≥ 14 throughout; float64 does not exist on MPS. The evidence for each "
                "op is in `matrix/results/predicted-mps-<release>.json`.")
    out += ["", table(rows, ["op", "float32", "float16 (where it differs)"]) if rows else "(none)", ""]
    return out
