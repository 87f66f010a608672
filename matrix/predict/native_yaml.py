"""native_functions.yaml -> {overload: what decides its MPS kernel}.

Kept per op: the ``dispatch`` table as written (keys like "CPU, CUDA, MPS"), ``structured_delegate``,
and for ops that only exist through another entry's ``autogen:`` the entry that generates them.
"""

from __future__ import annotations

import yaml

try:  # the C loader is ~10x faster on a 600 KB file; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader


def parse(text: str) -> dict[str, dict]:
    """{"std_mean.correction": {"dispatch": {"CPU, CUDA": "std_mean"}}, ...}; ValueError if malformed."""
    try:
        entries = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(entries, list):
        raise ValueError("not a list of functions")
    ops: dict[str, dict] = {}
    generated: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("func"), str):
            raise ValueError(f"an entry without a func: {str(entry)[:80]}")
        name = entry["func"].split("(", 1)[0].strip()
        record: dict = {}
        if isinstance(entry.get("dispatch"), dict):
            record["dispatch"] = {str(k): str(v) for k, v in entry["dispatch"].items()}
        if entry.get("structured_delegate"):
            record["delegate"] = str(entry["structured_delegate"])
        ops[name] = record
        for gen in str(entry.get("autogen") or "").split(","):
            if gen.strip():
                generated[gen.strip()] = name
    for gen, parent in generated.items():
        ops.setdefault(gen, {"autogen_of": parent})
    return ops


def keys(dispatch: dict) -> list[str]:
    """Every dispatch key named, splitting combined entries: "CPU, CUDA" -> ["CPU", "CUDA"]."""
    return [k.strip() for group in dispatch for k in group.split(",") if k.strip()]


def find_key(dispatch: dict, key: str) -> tuple[str, str] | None:
    """(group as written, kernel) of the entry holding exactly ``key`` ("SparseMPS" is not "MPS")."""
    for group, kernel in dispatch.items():
        if key in (k.strip() for k in group.split(",")):
            return group, kernel
    return None
