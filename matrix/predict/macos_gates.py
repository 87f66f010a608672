"""macOS version gates, read from a release's own library strings (binary.scan()'s ``macos_strings``).

Three kinds, each only as strong as its wording:
- the backend's minimum: "The MPS backend is supported on MacOS 12.3+." (1.13-2.8), "... macOS 14.0+." (2.9+);
- whole-op gates, below which the op runs on the CPU or is refused: "MPS: nonzero op is supported natively
  starting from macOS 13.0. " + "Falling back on CPU...", "torch.sort is supported by MPS on MacOS 13+";
- family gates: "FFT operations are only supported on MacOS 14+" (2.3-2.8: fft_* and _fft_* ops);
- dtype gates: "MPS BFloat16 is only supported on MacOS 14 or newer", "MPS complex types are only supported on
  MacOS 14.0 or newer." (2.3-2.8).
Everything else that names a macOS version (int64 inputs whose op name is formatted at run time,
"topk support for k>16", upsample scale factors) only narrows part of an op: kept as evidence, never a status.
A gate at or below the backend's own minimum is always met and is dropped.
"""

from __future__ import annotations

import re

_BACKEND = re.compile(r"MPS backend is supported on mac ?OS (\d+(?:\.\d+)?)\+", re.I)
_OP_GATES = (
    re.compile(r"^MPS: (\w+) op is supported (?:natively )?starting from macOS (\d+(?:\.\d+)?)\.? ?$"),
    re.compile(r"^torch\.(\w+)(?:\.\w+)? (?:is )?supported by MPS on MacOS (\d+)\+(?:, please upgrade)?"
               r"(?:\. Falling back to CPU\.?)?$"),
)
_DTYPE_GATES = ((re.compile(r"BFloat16 is only supported on MacOS (\d+)", re.I), "bfloat16"),
                (re.compile(r"MPS complex types are only supported on MacOS (\d+(?:\.\d+)?)", re.I), "complex64"))
# Gates for a family of ops, by the prefix of their aten names: "FFT operations are only supported on MacOS 14+"
_FAMILY_GATES = ((re.compile(r"FFT operations are only supported on MacOS (\d+(?:\.\d+)?)", re.I), ("fft_", "_fft_")),)


def version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def normal(text: str) -> str:
    """ "13" -> "13.0", "13.3" stays."""
    return text if "." in text else f"{text}.0"


def parse(strings: list[str]) -> dict:
    """{"backend_min": "12.3" or None, "ops": {base: {"min_macos", "text"}}, "dtypes": {dtype: {...}},
    "partial": [text, ...]}."""
    backend = None
    for s in strings:
        m = _BACKEND.search(s)
        if m:
            backend = normal(m.group(1))
    floor = version_key(backend) if backend else (0,)
    ops, dtypes, families, partial = {}, {}, {}, []
    for s in strings:
        if _BACKEND.search(s):
            continue
        for pattern in _OP_GATES:
            m = pattern.match(s.strip())
            if m:
                version = normal(m.group(2))
                if version_key(version) > floor:
                    old = ops.get(m.group(1))
                    if old is None or version_key(version) > version_key(old["min_macos"]):
                        ops[m.group(1)] = {"min_macos": version, "text": s.strip()}
                break
        else:
            family = next(((p, prefixes) for p, prefixes in _FAMILY_GATES if p.search(s)), None)
            if family:
                version = normal(family[0].search(s).group(1))
                if version_key(version) > floor:
                    for prefix in family[1]:
                        families[prefix] = {"min_macos": version, "text": s.strip()}
                continue
            for pattern, dtype in _DTYPE_GATES:
                m = pattern.search(s)
                if m:
                    if version_key(normal(m.group(1))) > floor:
                        dtypes[dtype] = {"min_macos": normal(m.group(1)), "text": s.strip()}
                    break
            else:
                if re.search(r"mac ?OS ?1\d", s, re.I):
                    partial.append(s.strip())
    return {"backend_min": backend, "ops": ops, "dtypes": dtypes, "families": families,
            "partial": sorted(set(partial))}


def op_gate(base: str, gates: dict) -> dict | None:
    """The whole-op gate for an aten function: its own, else its family's (fft_*, _fft_*)."""
    if base in gates.get("ops", {}):
        return gates["ops"][base]
    return next((g for prefix, g in gates.get("families", {}).items() if base.startswith(prefix)), None)


def partial_notes(base: str, gates: dict) -> list[str]:
    """The partial gates whose text names this op (e.g. "torch.topk support for k>16 ... MacOS 13+")."""
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(base)}(?![A-Za-z0-9_])")
    return [t for t in gates.get("partial", ()) if word.search(t)]
