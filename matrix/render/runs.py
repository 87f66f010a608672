"""Does each case stay on the device? MPS per release range (from the ops traced on that release), and a
line for the measured devices."""

from __future__ import annotations

from collections import OrderedDict

from matrix.render.common import bounded_span, bullet, op_name, para, ranges, short, table
from matrix.render.model import Model
from opcompat.vocab import MPS_DTYPES


def _cell(runs, fell, gate, why) -> str:
    if runs is None:
        return "—"
    if runs:
        return "yes" + (f" (macOS ≥ {gate})" if gate else "")
    if fell:
        return "no: " + ", ".join(op_name(o) for o in fell)
    return f"no ({why})" if why else "no"


def mps_table(model: Model) -> list:
    releases = model.mps_releases()
    if not releases:
        return []
    names = OrderedDict()
    for release in releases:
        by_case, _ = model.case_ops(release)
        for name in by_case or ():
            names.setdefault(name, None)
        if model.mps[release]["kind"] == "measured":
            for row in model.mps[release]["cases"]:
                names.setdefault(row["case"], None)
    rows, notes = [], OrderedDict()
    for name in names:
        def value(release, name=name):
            cells = []
            for dtype in MPS_DTYPES:
                runs, fell, gate, note = model.mps_case(release, name, dtype)
                why = note if runs is False else ""
                cells.append(_cell(runs, fell, gate, why))
            return tuple(cells)
        first_row = True
        for first, last, (gate, cells) in ranges(releases, lambda r, value=value: (model.backend_macos(r), value(r))):
            label = bounded_span(first, last, releases) + (f", macOS ≥ {gate}" if gate else "")
            rows.append([name if first_row else "", label, *cells])
            first_row = False
    for release in releases:
        _, note = model.case_ops(release)
        if note:
            notes.setdefault(note.split(";")[0] if "traced on" in note else note, []).append(release)
    out = ["### MPS (P unless a release was measured on a Mac)", ""]
    out += para("`yes`: every op the case reaches on that release stays on MPS; `no:` the ops that fall back; "
                "`—`: the case's ops were not traced on that release.")
    if notes:
        out.append("")
    for note, where in notes.items():
        out += bullet(f"torch {', '.join(where)}: {note}" + (" (that release's measured run traced the same op set)"
                                                          if note.startswith("per-case ops traced on") else "") + ".")
    out += ["", table(rows, ["case", "torch", *(short(d) for d in MPS_DTYPES)]), ""]
    return out


def measured_line(model: Model) -> list:
    out = []
    for device, files in model.measured.items():
        if device == "mps":
            continue
        off = OrderedDict()
        for f in files:
            for r in f["cases"]:
                if not r["runs_on_device"]:
                    off.setdefault(f["torch"]["version"].split("+")[0], []).append(f"{r['case']} ({short(r['dtype'])})")
        if not off:
            out += bullet(f"{device}: every case ran on the device in every measured file ({len(files)}).")
            continue
        by_text = OrderedDict()
        for release, items in off.items():
            by_text.setdefault(", ".join(items), []).append(release)
        for text, where in by_text.items():
            out += bullet(f"{device}, torch {', '.join(where)}: did not run: {text} (the result files' `cases` rows "
                          "say why); every other case ran on the device.")
    return [*out, ""] if out else []
