"""The top of MATRIX.md: per device and torch release range, does ``torch.std_mean`` fall back, and what to use.

"Use" names only cases judged equivalent on that device. MPS has no measured verdict yet: there a case must
be equivalent on both CPU and CUDA (measured) and stay on MPS (predicted), and the answer says "predicted".
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch

import cases as registry
from matrix import results
from matrix.render.common import bullet, dtypes_text, para, ranges, span, tag
from matrix.render.model import FELL_BACK, NOT_TRACED, Model
from opcompat.vocab import DTYPE_NAMES, MPS_DTYPES

FUSED_OP = "aten::std_mean.correction"
FUSED_CASE = "fused"
ALL_DTYPES = DTYPE_NAMES


def general_cases(model: Model):
    """The judged cases that stand in for torch.std_mean itself (the fused case's call), registry order."""
    known = {c.name: c for c in registry.all_cases()[0]}
    fused = known.get(FUSED_CASE)
    names = model.judged_cases()
    if fused is None:
        return [n for n in names if n != FUSED_CASE]
    return [n for n in names if n != FUSED_CASE and n in known and known[n].replaces == fused.replaces]


# -- verdict causes in words ------------------------------------------------------------------------------
def _number(x: float) -> str:
    if 1 <= x < 1e4:
        return f"{round(x)}"
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def cause_words(cause: str, dtype: str) -> str:
    """One verdict cause as a user reads it, with the std range where it bites for range causes."""
    info = torch.finfo(getattr(torch, dtype)) if hasattr(torch, dtype) else None
    if cause.startswith("wrong correction"):
        return "biased (" + cause.split("(", 1)[-1].split(",")[0].rstrip(")") + ")"
    if cause.startswith("epsilon bias ("):
        return "adds eps: " + cause[len("epsilon bias ("):-1]
    if cause.startswith("overflow") and info is not None:
        return f"inf where std > {_number(math.sqrt(info.max))}"
    if cause.startswith("underflow") and info is not None:
        return f"0 where std < {_number(math.sqrt(info.tiny))}"
    if cause.startswith("cancellation"):
        return "loses digits on data far from 0 (one-pass cancellation)"
    if cause.startswith("NaN/inf pattern"):
        return "NaN/inf where std_mean is finite"
    if cause.startswith("error"):
        return "raises"
    if cause.startswith("value mismatch"):
        return "off beyond the error budget " + cause[len("value mismatch "):]
    return cause


def caveat(model: Model, device: str, case: str, dtypes, release=None) -> str:
    """'0 where std < 1.1e-19 (f32, bf16); inf where std > 256 (f16)': why ``case`` is not equivalent."""
    words = OrderedDict()
    for dtype in dtypes:
        for cause in model.causes(device, case, dtype, release):
            found = words.setdefault(cause_words(cause, dtype), [])
            if dtype not in found:
                found.append(dtype)
    return "; ".join(f"{w} ({dtypes_text(d)})" for w, d in words.items())


# -- one device's answers ---------------------------------------------------------------------------------
def _group(by_dtype: dict) -> str:
    """{dtype: text} -> 'f32, f16: a · bf16: b' (or just 'a' when all agree)."""
    groups = OrderedDict()
    for dtype, text in by_dtype.items():
        groups.setdefault(text, []).append(dtype)
    if len(groups) == 1:
        return next(iter(groups))
    return " · ".join(f"{dtypes_text(d)}: {t}" for t, d in groups.items())


def _labelled(by_dtype: dict) -> str:
    """{dtype: text} -> 'f32, f16: a · bf16: b', dtypes always named."""
    groups = OrderedDict()
    for dtype, text in by_dtype.items():
        groups.setdefault(text, []).append(dtype)
    return " · ".join(f"{dtypes_text(d)}: {t}" for t, d in groups.items())


OFF_DEVICE_WORDS = {"fallback": "**falls back to the CPU**", "forced_cpu": "**runs on the CPU**",
                    "not_implemented": "**raises NotImplementedError** (no CPU fallback)"}


def _fused_text(statuses: dict) -> str:
    """How std_mean itself fares: statuses {dtype: (status, min macOS)}."""
    off = OrderedDict()
    for dtype, (status, _) in statuses.items():
        if status in FELL_BACK:
            off.setdefault(OFF_DEVICE_WORDS.get(status, f"**{status}**"), []).append(dtype)
    rest = {d: s + (f" on macOS ≥ {m}" if m else "") for d, (s, m) in statuses.items() if s not in FELL_BACK}
    if not off:
        return "no: " + _group(rest)
    text = "; ".join(f"{words} for {dtypes_text(d)}" for words, d in off.items())
    return text + ("; " + _labelled(rest) if rest else "")


def mps_answers(model: Model) -> list:
    releases = model.mps_releases()
    if not releases:
        return []
    general = general_cases(model)
    cuda = bool(model.verdict_files("cuda"))
    missing = []

    def use(release):
        measured_here = any(results.release(d["torch"]["version"]) == release
                            for d in model.verdict_files("mps", release))
        label = "**Use (M)**" if measured_here else "**Use (P)**"
        statuses = {d: model.mps_status(release, FUSED_OP, d) for d in MPS_DTYPES}
        if all(s == NOT_TRACED for s, _ in statuses.values()):
            return "std_mean was not traced on this release", ""
        picks, notes = OrderedDict(), set()
        for dtype, (status, _) in statuses.items():
            if status not in FELL_BACK:
                continue
            chosen = []
            for case in general:
                if measured_here:  # a Mac judged this release: its own verdicts decide
                    equal = model.equivalent("mps", case, dtype, release)
                else:
                    equal = model.equivalent("cpu", case, dtype, release) and (
                        not cuda or model.equivalent("cuda", case, dtype, release))
                if not equal:
                    continue
                runs, _, gate, note = model.mps_case(release, case, dtype)
                if runs is None:
                    notes.add(note)
                    continue
                if runs:
                    chosen.append(case + (f" (macOS ≥ {gate})" if gate else ""))
                if note:
                    notes.add(note)
            picks[dtype] = ", ".join(chosen) or ("none known" if not notes else "not known")
        fused = _fused_text(statuses)
        if not picks:
            return fused + ". **Use** `torch.std_mean` itself", ""
        return (fused + f". {label}: " + _labelled(picks), "; ".join(sorted(notes)))

    measured = [r for r in releases if model.mps[r]["kind"] == "measured"]
    out = ["### MPS (Apple silicon): predicted (P)" + (", measured (M) on " + ", ".join(measured) if measured
                                                        else ""), ""]
    out += para("Predicted from each release's macOS arm64 wheel (dispatch table, MPS kernels registered from "
                "Python, the MPS test lists)" + ("; measured on a Mac where it says (M)" if measured else
                                                 "; no Mac has contributed a measured row yet") + ". A recommended "
                "case (P) is judged equivalent on the CPU " + ("and on CUDA " if cuda else "") + "(measured) and "
                "predicted to stay on MPS; (M): judged equivalent on MPS itself. Falling back means: runs on "
                "the CPU with PYTORCH_ENABLE_MPS_FALLBACK=1, raises NotImplementedError without it.")
    out.append("")
    backend = {r: model.backend_macos(r) for r in releases}
    for first, last, (text, note, gate) in ranges(releases, lambda r: (*use(r), backend[r])):
        head = f"**torch {span(first, last)}**" + (f" (MPS needs macOS ≥ {gate})" if gate else "")
        out += bullet(f"{head}: {text}." + (f" Cases: {note}." if note else ""))
        if "not known" in text:
            missing.append(span(first, last))
    if missing:
        out += ["", *para("Not known: the release's cases were not traced per case; `tox -e torchXY` traces "
                          "them under that release.")]
    out.append("")
    out += _close_calls(model, general, ["cpu", *(["cuda"] if cuda else [])], MPS_DTYPES)
    return out


def measured_answers(model: Model, device: str, title: str) -> list:
    files = model.measured.get(device, [])
    if not files:
        return []
    releases = list(OrderedDict((f["torch"]["version"].split("+")[0], None) for f in files))
    general = general_cases(model)
    tags = sorted({tag(f) for f in files})

    def answer(release):
        same = [f for f in files if f["torch"]["version"].split("+")[0] == release]
        statuses = {}
        for f in same:
            for row in f["ops"]:
                if row["op"] == FUSED_OP:
                    statuses.setdefault(row["dtype"], set()).add(row["status"])
        fused = _group({d: "/".join(sorted(s)) for d, s in sorted(statuses.items(), key=lambda x: ALL_DTYPES.index(
            x[0]) if x[0] in ALL_DTYPES else 9)}) if statuses else "not probed"
        if all(s == {"native"} for s in statuses.values()) and statuses:
            fused = "no: native for " + dtypes_text(statuses) + ". **Use** `torch.std_mean` itself"
        equal = OrderedDict()
        for dtype in ALL_DTYPES:
            chosen = [c for c in general if model.equivalent(device, c, dtype, release)]
            if any(model.equivalent(device, c, dtype, release) is not None for c in general):
                equal[dtype] = ", ".join(chosen) or "none"
        extra = f"; equivalent replacements if you need one: {_labelled(equal)}" if equal else ""
        return fused + extra

    out = [f"### {title}: measured", ""]
    out += para(f"Measured ({'; '.join(tags)}) with `python -m matrix here`.")
    out.append("")
    for first, last, text in ranges(releases, answer):
        out += bullet(f"**torch {span(first, last)}**: {text}.")
    out.append("")
    return out


def _close_calls(model, general, devices, dtypes) -> list:
    """Cases that are not equivalent on some device, with why, in words (never recommended above)."""
    lines = []
    for case in general:
        parts = []
        for device in devices:
            words = caveat(model, device, case, dtypes)
            if words:
                parts.append(f"{device}: {words}")
        if parts:
            lines += bullet(f"{case}: " + " — ".join(parts))
    if not lines:
        return []
    return [*para("Not equivalent, so never recommended here (verdicts on the newest measured release of each "
                  "device; details below):"), "", *lines, ""]


def call_sites(model: Model) -> list:
    """The other replaced calls (e.g. the Fooocus call sites): which stand-ins are equivalent where."""
    known = {c.name: c for c in registry.all_cases()[0]}
    fused = known.get(FUSED_CASE)
    sites = OrderedDict()
    for name in model.judged_cases():
        case = known.get(name)
        if case is None or name == FUSED_CASE or (fused and case.replaces == fused.replaces):
            continue
        sites.setdefault(case.replaces, []).append(name)
    if not sites:
        return []
    devices = [d for d in ("cpu", "cuda") if model.verdict_files(d)]
    out = ["### Other calls the cases replace", ""]
    for call, names in sites.items():
        good, bad = [], []
        for name in names:
            dtypes = [d for d in ALL_DTYPES if any(model.equivalent(dev, name, d) is not None for dev in devices)]
            if all(model.equivalent(dev, name, d) is not False for dev in devices for d in dtypes):
                good.append(name)
            else:
                why = [(dev, caveat(model, dev, name, dtypes)) for dev in devices]
                bad.append(f"{name} ({' — '.join(f'{dev}: {w}' for dev, w in why if w)})")
        text = f"`{call}`: equivalent on {' and '.join(devices)}: {', '.join(good) or 'none'}"
        if bad:
            text += "; not: " + ", ".join(bad)
        out += bullet(text + ".")
    out.append("")
    return out


def glossary(model: Model) -> list:
    known = {c.name: c for c in registry.all_cases()[0]}
    names = list(OrderedDict((n, None) for n in [*model.judged_cases(), *known]))
    out = ["## Case names", ""]
    for name in names:
        case = known.get(name)
        if case is None:
            out += bullet(f"**{name}**: not in this checkout's case registry (named by a result file).")
            continue
        text = f"**{name}**: {case.source}; replaces `{case.replaces}`"
        if getattr(case, "notes", ""):
            text += f" ({case.notes})"
        out += bullet(text + ".")
    out.append("")
    return out
