"""Every aten op on MPS across releases, from the predictor's per-release snapshots
(matrix/predict/snapshots/mps-<release>.json: ops grouped by status, min_macos, dtype_differs).

MATRIX.md gets a count per release and a link; the page MATRIX-mps-ops.md lists, per op, its float32 status
as release ranges ("fallback ≤ 2.2 · native ≥ 2.3"), only for ops that are not native everywhere. Ops that
are only native, composite (no kernel of their own: they run where what they call runs) or absent are left
out; overloads of one op with the same history share a row. The per-op evidence is not in the snapshots:
``python -m matrix predict --torch <release> --json`` prints it.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

from matrix.render.common import bounded_span, bullet, op_name, para, table, version_key

SNAPSHOTS_DIR = Path(__file__).resolve().parents[1] / "predict" / "snapshots"
PAGE_NAME = "MATRIX-mps-ops.md"
QUIET = ("native", "composite", "composite_mps", "not_in_release", "unknown_op")
COUNT_ORDER = ("native", "native_macos", "composite_mps", "composite", "fallback", "forced_cpu", "error",
               "unsupported_dtype", "unknown", "not_in_release")
_WORD = re.compile(r"^(\w+)(?:\(([\d.]+)\))?$")


def load(directory):
    """({release: snapshot}, [(path, reason)]) for every mps-*.json in ``directory`` (none: empty)."""
    found, skipped = {}, []
    for path in sorted(Path(directory).glob("mps-*.json")) if directory else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("ops_by_status"), dict) \
                    or not isinstance(data.get("torch"), str):
                raise ValueError("not a snapshot (torch, ops_by_status)")
        except (OSError, ValueError) as exc:
            skipped.append((path, f"unusable prediction snapshot: {exc}"))
            continue
        found[data["torch"]] = data
    return OrderedDict(sorted(found.items(), key=lambda kv: version_key(kv[0]))), skipped


class Snapshots:
    def __init__(self, snaps):
        self.snaps = snaps
        self.releases = list(snaps)
        self._status = {r: {op: word for word, ops in s["ops_by_status"].items() for op in ops}
                        for r, s in snaps.items()}

    def ops(self):
        return sorted({op for s in self._status.values() for op in s})

    def status(self, release, op, dtype="float32"):
        """(word, min macOS or None); '—' when the release's snapshot does not name the op."""
        snap = self.snaps[release]
        odd = (snap.get("dtype_differs") or {}).get(op, {}).get(dtype)
        if odd:
            m = _WORD.match(odd)
            return (m.group(1), m.group(2)) if m else (odd, None)
        word = self._status[release].get(op)
        if word is None:
            return "—", None
        return word, (snap.get("min_macos") or {}).get(op) if word == "native_macos" else None


def _cell(word, macos):
    if word == "native_macos":
        return f"native (macOS ≥ {macos})" if macos else "native (newer macOS)"
    return word


def history(snaps: Snapshots, op) -> str:
    values = OrderedDict((r, _cell(*snaps.status(r, op))) for r in snaps.releases)
    parts, releases = [], snaps.releases
    start = 0
    for i in range(1, len(releases) + 1):
        if i == len(releases) or values[releases[i]] != values[releases[start]]:
            where = bounded_span(releases[start], releases[i - 1], releases)
            word = values[releases[start]]
            parts.append(f"{word} everywhere" if where == "all" else f"{word} {where}")
            start = i
    return " · ".join(parts)


def rows(snaps: Snapshots):
    """[(op label, history)] for the ops that are not quiet in every release, overloads merged."""
    by_base = OrderedDict()
    for op in snaps.ops():
        words = {snaps.status(r, op)[0] for r in snaps.releases}
        if words <= set(QUIET) | {"—"}:
            continue
        name = op_name(op)
        by_base.setdefault(name.split(".")[0], []).append((name, history(snaps, op)))
    out = []
    for base, items in by_base.items():
        histories = OrderedDict()
        for name, text in items:
            histories.setdefault(text, []).append(name)
        for text, names in histories.items():
            if len(names) == 1:
                out.append((names[0], text))
            else:
                overloads = [n.split(".", 1)[1] if "." in n else "default" for n in names]
                out.append((f"{base}.{{{', '.join(overloads)}}}", text))
    return out


def counts_table(snaps: Snapshots) -> str:
    words = [w for w in COUNT_ORDER if any(w in s["ops_by_status"] for s in snaps.snaps.values())]
    words += sorted({w for s in snaps.snaps.values() for w in s["ops_by_status"]} - set(words))
    body = [[r, *(str(len(snaps.snaps[r]["ops_by_status"].get(w, ()))) for w in words)] for r in snaps.releases]
    return table(body, ["torch", *words])


def summary(snaps: Snapshots) -> list:
    found = rows(snaps)
    out = ["## Every aten op on MPS (P)", ""]
    out += para(f"Predicted for all {len(snaps.ops())} aten overloads of {len(snaps.releases)} releases "
                f"(matrix/predict/snapshots/). {len(found)} rows of ops that are not native everywhere, as release "
                f"ranges (e.g. `fallback ≤ 2.2 · native ≥ 2.3`), are in [{PAGE_NAME}]({PAGE_NAME}). Ops per status "
                "(float32):")
    out += ["", counts_table(snaps), ""]
    return out


def page(snaps: Snapshots) -> str:
    found = rows(snaps)
    out = ["# Every aten op on MPS that is not native in every release (P)", "",
           "<!-- generated by `python -m matrix build` from matrix/predict/snapshots/; do not edit by hand -->", ""]
    out += para(f"Predicted (P) from each release's macOS arm64 wheel, {snaps.releases[0]}–{snaps.releases[-1]}: "
                "float32 status by release range. Left out: ops that are only native, composite (no kernel of "
                "their own; they run where the ops they call run) or absent. Overloads of one op with the same "
                "history share a row. `fallback`: runs on the CPU with PYTORCH_ENABLE_MPS_FALLBACK=1, else "
                "NotImplementedError; `forced_cpu`: MPS sends it to the CPU itself; `native (macOS ≥ X)`: native "
                "from that macOS on. The evidence for one op: `python -m matrix predict --torch <release> --json`.")
    out.append("")
    for label, text in found:
        out += bullet(f"`{label}`: {text}")
    out.append("")
    return "\n".join(out)
