"""Per-release traces: which op overloads each case reaches, traced under that release's torch.

    matrix/results/traces/traced-<release>.json
    {"schema_version": 1, "torch": {"version": ...}, "created": ..., "ops": [op, ...],
     "leaves_device": {family case: true | false | null}, "family_cases": {family case: {...}},
     "cases": {case: {trace dtype: [[op, dtype it ran at], ...]}}}

"cases" are std_mean's (their ops are the matrix's op rows); "family_cases" the other families' cases, traced on
the first input of their battery (opcompat.trace.trace_family_case), and "leaves_device" whether each moves
data off the device (true), stays (false), or could not be told (null: it cannot run on meta tensors). Files
written before family cases were traced lack both keys.

``python -m matrix trace --write`` writes the file for the installed torch (tox's torchXY environments do,
one per release). The builder uses it for that release only: a list traced on one torch is never applied
to another release's cells (an older ``torch._refs.std_mean`` reaches other ops than a newer one).
"""

from __future__ import annotations

import json
from pathlib import Path

from matrix import results

TRACES_DIR = results.RESULTS_DIR / "traces"
SCHEMA_VERSION = 1


class TraceFileError(ValueError):
    """A trace file that cannot be used; str() names the file and the reason."""


def filename(version: str) -> str:
    return f"traced-{results.release(version)}.json"


def make(torch_version: str, calls, case_ops, family_ops=None, leaves=None) -> dict:
    """A trace record from ``matrix.probe.traced()``'s (calls, {case: {dtype: [(op, dtype)]}}) and, where given,
    ``matrix.probe.family_traced()``'s ({case: {dtype: [(op, dtype)]}}, {case: leaves the device})."""
    data = {"schema_version": SCHEMA_VERSION, "torch": {"version": torch_version}, "created": results.now(),
            "ops": [c.op for c in calls]}
    if family_ops is not None:
        data["leaves_device"] = {name: (leaves or {}).get(name) for name in family_ops}
        data["family_cases"] = _pairs(family_ops)
    data["cases"] = _pairs(case_ops)
    return data


def _pairs(case_ops):
    return {name: {d: [list(pair) for pair in pairs] for d, pairs in by_dtype.items()}
            for name, by_dtype in case_ops.items()}


def write(data: dict, directory=TRACES_DIR) -> Path:
    """Write ``data`` to its file; a file that already says the same (all but its time) is left alone, so a
    second run on the same release leaves no diff."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / filename(data["torch"]["version"])
    try:
        old = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if not (isinstance(old, dict) and {k: v for k, v in old.items() if k != "created"}
            == {k: v for k, v in data.items() if k != "created"}):
        target.write_text(dumps(data), encoding="utf-8")
    return target


BLOCKS = ("family_cases", "cases")  # written one line per case, in this order, last


def dumps(data: dict) -> str:
    """One line per case: a small diff when one case's ops change."""
    parts = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items() if k not in BLOCKS]
    for block in (b for b in BLOCKS if b in data):
        rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data[block].items())
        parts.append(f" {json.dumps(block)}: {{\n{rows}\n }}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _validate(data) -> str:
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        return f"not a schema_version {SCHEMA_VERSION} trace record"
    if not isinstance((data.get("torch") or {}).get("version"), str):
        return "torch.version is missing"
    if not isinstance(data.get("ops"), list) or not isinstance(data.get("cases"), dict):
        return "ops (a list) or cases (an object) is missing"
    if not isinstance(data.get("family_cases", {}), dict) or not isinstance(data.get("leaves_device", {}), dict):
        return "family_cases or leaves_device is not an object"
    for block in BLOCKS:
        for name, by_dtype in data.get(block, {}).items():
            if not isinstance(by_dtype, dict) or not all(
                    isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs)
                    for pairs in by_dtype.values()):
                return f"{block}[{name!r}] is not {{dtype: [[op, dtype], ...]}}"
    return ""


def load_dir(directory=TRACES_DIR):
    """({release: record}, [(path, reason)]) for every trace file in ``directory`` (none: empty)."""
    found, skipped = {}, []
    for path in sorted(Path(directory).glob("traced-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            skipped.append((path, f"unreadable trace: {exc}"))
            continue
        problem = _validate(data)
        if problem:
            skipped.append((path, f"unusable trace: {problem}"))
            continue
        found[results.release(data["torch"]["version"])] = data
    return found, skipped


def case_ops(data: dict) -> dict:
    """{case: {trace dtype: [(op, dtype)]}} of a trace record."""
    return {name: {d: [tuple(p) for p in pairs] for d, pairs in by_dtype.items()}
            for name, by_dtype in data["cases"].items()}


def family_case_ops(data: dict) -> dict:
    """{family case: {trace dtype: [(op, dtype)]}} of a trace record (none in an older file)."""
    return {name: {d: [tuple(p) for p in pairs] for d, pairs in by_dtype.items()}
            for name, by_dtype in data.get("family_cases", {}).items()}
