"""Per-dtype answers: the op's status, narrowed by what MPS refuses and by the release's common_mps lists.

Status words are the result files' (matrix/results.py): native, fallback, composite, unknown_op,
unsupported_dtype, unknown (no rule can place it).

Backend-wide facts come from strings in each release's libtorch_cpu.dylib (checked for all 17 wheels):
- float64: never on MPS: "Cannot convert a float64 Tensor to MPS as the MPS framework doesn't support
  float64" (1.13 -> 2.15), and common_mps >= 2.9 xfails every op for torch.double/cdouble.
- bfloat16: 1.13-2.0 have no MPS bfloat16 at all; 2.1-2.2 say "BFloat16 is not supported on MPS";
  2.3-2.8 "MPS BFloat16 is only supported on MacOS 14 or newer" (the backend starts at macOS 13);
  2.9+ need macOS 14 for MPS itself ("The MPS backend is supported on MacOS 14.0+"), so it is always there.
"""

from __future__ import annotations

import re

from matrix.predict.errors import UnknownDtypeError
from matrix.predict.releases import series

ALIASES = {"float": "float32", "double": "float64", "half": "float16", "cfloat": "complex64",
           "cdouble": "complex128", "chalf": "complex32", "long": "int64", "int": "int32", "short": "int16"}
KNOWN = {"float32", "float16", "bfloat16", "float64", "complex32", "complex64", "complex128", "int64", "int32",
         "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool", "float8_e4m3fn", "float8_e5m2"}
FLOAT64_LIKE = ("float64", "complex128")
DEFAULT_DTYPES = ("float32", "float16", "bfloat16", "float64")

FLOAT64_RULE = ("MPS has no float64 at all: the backend refuses float64 tensors (\"Cannot convert a float64 "
                "Tensor to MPS as the MPS framework doesn't support float64. Please use float32 instead.\", "
                "libtorch of every release 1.13-2.15)")
_BF16 = (  # (first series, last series, status or None = the op's own, why)
    ((1, 13), (2, 0), "unsupported_dtype", "no bfloat16 on MPS in this release (\"Trying to convert BFloat16 to "
     "the MPS backend but it does not have support for that dtype.\")"),
    ((2, 1), (2, 2), "unsupported_dtype", "\"BFloat16 is not supported on MPS\" (libtorch 2.1/2.2)"),
    ((2, 3), (2, 8), None, "needs macOS 14+: \"MPS BFloat16 is only supported on MacOS 14 or newer\" "
     "(libtorch 2.3-2.8; on macOS 13 bfloat16 is refused)"),
    # the backend's own minimum, as each release's libtorch_cpu.dylib words it (matrix/predict/macos_gates.py)
    ((2, 9), (2, 14), None, "always available: the MPS backend itself needs macOS 14.0+ in this release "
     "(\"The MPS backend is supported on MacOS 14.0+\")"),
    ((2, 15), (99, 99), None, "always available: the MPS backend itself needs macOS 15.0+ in this release "
     "(\"The MPS backend is supported on macOS 15.0+.\")"),
)
_MACOS = re.compile(r"^(not \()?\s*MACOS_VERSION\s*(<|<=|>=|>)\s*([\d.]+)\s*\)?$")


def canonical_dtype(name: str) -> str:
    """ "torch.float64" / "double" / "float64" -> "float64"; UnknownDtypeError for anything else."""
    text = str(name).strip()
    text = text[len("torch."):] if text.startswith("torch.") else text
    text = ALIASES.get(text, text)
    if text not in KNOWN:
        raise UnknownDtypeError(f"unknown dtype {name!r}; use one of {', '.join(sorted(KNOWN))}")
    return text


def _list_kind(name: str) -> tuple[str, str] | None:
    """(effect, macOS condition) a common_mps list has, from its name; None for lists we do not apply."""
    if "GRAD" in name or "SPARSE" in name or not name.endswith(("LIST", "XFAILLIST")):
        return None
    if "SKIP" in name:
        return "skip", ""
    for pattern, op in ((r"MACOS_BEFORE_(\d+)_(\d+)", "<"), (r"MACOS_AFTER_(\d+)_(\d+)", ">"),
                        (r"MACOS_(\d+)_(\d+)_XFAIL", ">=")):
        match = re.search(pattern, name)
        if match:
            return "xfail", f"macOS {op} {match.group(1)}.{match.group(2)}"
    return ("unimplemented", "") if "UNIMPLEMENTED" in name else ("xfail", "")


def _condition(when: str) -> tuple[str, str]:
    """("", "") unconditional, ("macos", "macOS < 14.0"), or ("other", text) for e.g. ``sparse``."""
    if not when:
        return "", ""
    parts = [p.strip() for p in when.split(" and ")]
    texts = []
    for part in parts:
        match = _MACOS.match(part)
        if not match:
            return "other", when
        negate, op, number = match.groups()
        if negate:
            op = {"<": ">=", "<=": ">", ">=": "<", ">": "<="}[op]
        texts.append(f"macOS {op} {number}")
    return "macos", " and ".join(texts)


def opinfo_keys(base: str, keys, yaml_bases: set[str]) -> list[str]:
    """common_mps keys for an aten function: "std_mean" and its OpInfo variants ("std_meanunbiased").

    A key is "<OpInfo name><variant>" glued together, so "addcmul" would look like a variant of "add":
    a key belongs to the longest aten function name it starts with, and variants never start with "_".
    """
    out = []
    for key in keys:
        norm = re.sub(r"^(linalg|special|fft)\.", r"\1_", key)
        norm = norm[len("nn.functional."):] if norm.startswith("nn.functional.") else norm
        if norm == base:
            out.append(key)
        elif norm.startswith(base) and "." not in norm and not norm[len(base)].startswith("_"):
            longer = [b for b in yaml_bases if len(b) > len(base) and norm.startswith(b)]
            if not longer:
                out.append(key)
    return out


def opinfo_index(keys, yaml_bases: set[str]) -> dict[str, list[str]]:
    """{aten function: its common_mps keys} for all functions at once: ``opinfo_keys`` for every base of
    ``yaml_bases``, in one pass over the keys (the all-op prediction asks for ~2,000 functions)."""
    out: dict[str, list[str]] = {}
    for key in keys:
        norm = re.sub(r"^(linalg|special|fft)\.", r"\1_", key)
        norm = norm[len("nn.functional."):] if norm.startswith("nn.functional.") else norm
        if norm in yaml_bases:
            out.setdefault(norm, []).append(key)
        elif "." not in norm:
            owner = next((norm[:i] for i in range(len(norm) - 1, 0, -1) if norm[:i] in yaml_bases), None)
            if owner and not norm[len(owner)].startswith("_"):
                out.setdefault(owner, []).append(key)
    return out


def dtype_status(version: str, status: str, dtype: str, keys: list[str], lists: dict | None) -> tuple[str, list]:
    """(status word for ``dtype``, evidence lines) from the op's own status, its common_mps keys, and
    ``lists`` = mps_test_lists.parse() of the release (None before 2.8)."""
    label = f"common_mps.py {version}"
    if status == "unknown_op":
        return "unknown_op", []
    if dtype in FLOAT64_LIKE:
        why = [f"{dtype}: unsupported_dtype: {FLOAT64_RULE}"]
        if lists and {"double", "cdouble"} & set(lists.get("all_ops_xfail", ())):
            why.append(f"{dtype}: {label} xfails every op for torch.double/torch.cdouble")
        return "unsupported_dtype", why
    out, why = status, []
    if dtype == "bfloat16":
        for first, last, rule, text in _BF16:
            if first <= series(version) <= last:
                out = rule or status
                why.append(f"bfloat16: {out}: {text}")
    if dtype in ("complex64", "complex32"):
        out, line = _complex(status, keys, lists, label)
        why.append(f"{dtype}: {out}: {line}")
    if lists is None:
        if dtype not in ("float32", "float16", "bfloat16", "complex64", "complex32"):
            why.append(f"{dtype}: unknown: no common_mps.py in {version} to say which dtypes MPS takes")
            return "unknown", why
        return out, why
    hits = 0
    for list_name, entries in lists.get("lists", {}).items():
        kind = _list_kind(list_name)
        if kind is None:
            continue
        effect, list_cond = kind
        for key in keys:
            for entry in entries.get(key, ()):
                listed = entry.get("dtypes")
                if listed is not None and dtype not in {ALIASES.get(d, d) for d in listed}:
                    continue
                hits += 1
                cond_kind, cond = _condition(entry.get("when", ""))
                cond = " and ".join(c for c in (list_cond, cond) if c)
                where = f"{label}: {list_name}[{key!r}] lists {'all dtypes' if listed is None else dtype}"
                if cond_kind == "other":
                    why.append(f"{dtype}: {where} only when `{entry['when']}` (not a macOS condition, e.g. "
                               f"sparse-only: not applied)")
                elif effect == "unimplemented" and not cond:
                    out = "unsupported_dtype"
                    why.append(f"{dtype}: unsupported_dtype: {where} (not implemented for it on MPS)")
                elif effect == "unimplemented":
                    why.append(f"{dtype}: {where}: not implemented on MPS when {cond}")
                elif effect == "xfail":
                    why.append(f"{dtype}: {where}: the release's tests expect it to differ from CPU"
                               + (f" when {cond}" if cond else ""))
                else:
                    why.append(f"{dtype}: {where}: skipped by the release's tests")
    if not hits and dtype not in ("float32", "float16", "bfloat16", "complex64", "complex32"):
        # The lists are exceptions to the op's OpInfo dtypes, which we do not know: say what we rely on.
        why.append(f"{dtype}: {out}: no {label} entry for it (its tests expect {dtype} to work wherever the "
                   f"op's OpInfo covers {dtype})")
    return out, why


def _complex(status: str, keys: list[str], lists: dict | None, label: str) -> tuple[str, str]:
    sets = (lists or {}).get("sets", {})
    if "UNSUPPORTED_COMPLEX_OPS" in sets:  # 2.15: a denylist
        hit = [k for k in keys if k in sets["UNSUPPORTED_COMPLEX_OPS"]]
        if hit:
            return "unsupported_dtype", f"{label}: UNSUPPORTED_COMPLEX_OPS has {hit[0]!r}"
        return status, f"{label}: not in UNSUPPORTED_COMPLEX_OPS"
    if "SUPPORTED_COMPLEX_OPS" in sets:  # 2.8-2.14: an allowlist
        if any(k in sets["SUPPORTED_COMPLEX_OPS"] for k in keys):
            return status, f"{label}: in SUPPORTED_COMPLEX_OPS"
        if any(k in sets.get("AFTER_MACOS_14_0_SUPPORTED_COMPLEX_OPS", ()) for k in keys):
            return status, f"{label}: in AFTER_MACOS_14_0_SUPPORTED_COMPLEX_OPS (needs macOS 14+)"
        return "unsupported_dtype", f"{label}: not in SUPPORTED_COMPLEX_OPS"
    return "unknown", "no common_mps.py complex lists in this release"
