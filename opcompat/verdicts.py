"""Verdicts: is a case equivalent to the op it replaces, at a correction and dtype, and if not, why.

Equivalent means: on every input of the fixed battery (opcompat.witnesses), every output matches CPU
``torch.std_mean`` at the caller's correction (opcompat.compare). Otherwise the causes are named where
they can be identified:

- wrong correction: the output matches the truth at another correction;
- epsilon bias: it matches sqrt(var + eps);
- overflow / underflow: inf where the truth is finite / 0 where it is not;
- cancellation: failures on ill-conditioned inputs whose error grows with kappa;
- NaN/inf pattern: non-finite positions differ otherwise;
- error: the call raised (on MPS: not implemented, no fallback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opcompat.forms import count

from . import device_quirks
from .compare import Target, evaluate, reference_target
from .witnesses import battery

LONG_REDUCTION = 8192  # above this, a cause names N: the failure is one of length, not of values

CORRECTIONS = (0, 1)


@dataclass
class Verdict:
    case: str
    correction: float
    dtype: str
    device: str
    equivalent: bool
    causes: list = field(default_factory=list)
    failing_regimes: list = field(default_factory=list)
    counterexample: str = ""  # the first failing input and its report
    device_notes: list = field(default_factory=list)  # failures the device's own std_mean shares

    def cell(self) -> str:
        text = "equivalent" if self.equivalent else "NOT: " + "; ".join(self.causes)
        return text + "".join(f" [{note}]" for note in self.device_notes)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in
                ("case", "correction", "dtype", "device", "equivalent", "causes", "failing_regimes",
                 "counterexample", "device_notes")}


def corrections_for(case, corrections=CORRECTIONS):
    """A call site pins its correction; a generic case is judged at each one asked for."""
    return (case.fixed["correction"],) if "correction" in case.fixed else tuple(corrections)


def judge(case, correction, dtype, device="cpu") -> Verdict:
    failures, notes = [], []
    for regime, sample in battery(dtype, correction, ndim=case.ndim):
        target = reference_target(case, sample)
        outcome = evaluate(case, sample, device, target=target)
        if outcome.ok:
            continue
        quirk = device_quirks.explains(case, sample, device, outcome)
        if quirk:
            _add(notes, quirk.note)
        else:
            failures.append((regime, sample, outcome))
    verdict = Verdict(case.name, correction, dtype, str(device), equivalent=not failures, device_notes=notes)
    if failures:
        verdict.failing_regimes = sorted({r for r, _, _ in failures})
        verdict.counterexample = failures[0][2].report()
        verdict.causes = _causes(case, failures, device)
    return verdict


def _causes(case, failures, device):
    errors = [m for _, _, o in failures for m in o.mismatches if m.kind == "error"]
    if errors:
        return [f"error: {errors[0].message}"]
    causes, unexplained = [], []
    # First the semantics: a failure that passes against another correction or eps is explained by it.
    for regime, sample, outcome in failures:
        label = _semantics(case, sample, device)
        if label:
            _add(causes, label)
        else:
            unexplained.append((regime, sample, outcome))
    cancellation = _cancellation(unexplained)
    if cancellation:
        _add(causes, cancellation)
    unnamed = set()
    for regime, _, outcome in unexplained:
        named = [_name(case, regime, outcome, m) for m in outcome.mismatches]
        for name in filter(None, named):
            _add(causes, name)
        if not any(named) and not (cancellation and regime == "ill_conditioned"):
            unnamed.add(regime)
    if unnamed:
        causes.append(f"value mismatch ({', '.join(sorted(unnamed))})")
    return causes


def _name(case, regime, outcome, m):
    """The cause one mismatch shows by itself, or '' (a plain value mismatch)."""
    if m.kind == "nonfinite":
        grew = " got +inf" in m.message or " got -inf" in m.message
        n = count(outcome.x64, outcome.sample.dim)
        where = f"{regime}, N={n}" if n > LONG_REDUCTION else regime
        return f"overflow ({m.output}, {where})" if grew else f"NaN/inf pattern ({m.output}, {where})"
    if m.kind == "value" and regime == "subnormal":
        got = outcome.actual[case.outputs.index(m.output)]
        return f"underflow ({m.output} flushed to 0)" if float(got[m.worst_index]) == 0.0 else ""
    if m.kind in ("shape", "dtype"):
        return f"{m.kind}: {m.message}"
    if m.kind == "decision":
        return f"decision flipped ({regime})"
    return ""


def _semantics(case, sample, device):
    """The other correction / eps under which this failing sample passes, described; else ''."""
    caller = case.caller_correction(sample.correction)
    corrections = sorted({caller, 0, 1} | ({case.claim.correction} if case.claim.correction is not None else set()))
    for eps in sorted({0.0, case.claim.eps}, reverse=True):
        for c in corrections:
            if (c, eps) == (caller, 0.0) or not evaluate(case, sample, device, target=Target(c, eps)).ok:
                continue
            parts = []
            if c != caller:
                parts.append(f"wrong correction (computes correction={c:g}, caller asked {caller:g})")
            if eps:
                parts.append(f"epsilon bias (sqrt(var + {eps:g}))")
            return "; ".join(parts)
    return ""


def _cancellation(failures):
    """Failures on the kappa ladder whose relative error grows with kappa."""
    ladder = [(abs(s.offset) / s.scale, m.max_rel) for r, s, o in failures if r == "ill_conditioned"
              for m in o.mismatches if m.kind == "value" and m.output != "mean"]
    if not ladder:
        return ""
    ladder.sort()
    (k0, e0), (k1, e1) = ladder[0], ladder[-1]
    if len(ladder) == 1 or e1 > e0:
        return f"cancellation (relative error {e0:.1g} at kappa~{k0:.0e} .. {e1:.1g} at kappa~{k1:.0e})"
    return ""


def _add(causes, text):
    if text not in causes:
        causes.append(text)


def table(cases, dtypes, device="cpu", corrections=CORRECTIONS):
    """All verdicts for ``cases`` x their corrections x ``dtypes`` on ``device``."""
    return [judge(case, c, dtype, device) for case in cases for c in corrections_for(case, corrections)
            for dtype in dtypes]
