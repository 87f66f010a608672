"""Why a std_mean replacement fails: the causes its verdict names.

- wrong correction: the output matches the truth at another correction;
- epsilon bias: it matches sqrt(var + eps);
- overflow / underflow: inf where the truth is finite / 0 where it is not;
- cancellation: failures on ill-conditioned inputs whose error grows with kappa;
- NaN/inf pattern: non-finite positions differ otherwise;
- error: the call raised (on MPS: not implemented, no fallback).
"""

from __future__ import annotations

from . import causes as common
from .compare import Target, evaluate
from .forms import count

LONG_REDUCTION = 8192  # above this, a cause names N: the failure is one of length, not of values


def causes(case, failures, device):
    found = common.errors(failures)
    if found:
        return found
    named, unexplained = [], []
    # First the semantics: a failure that passes against another correction or eps is explained by it.
    for regime, sample, outcome in failures:
        label = _semantics(case, sample, device)
        if label:
            common.add(named, label)
        else:
            unexplained.append((regime, sample, outcome))
    cancellation = _cancellation(unexplained)
    if cancellation:
        common.add(named, cancellation)
    unnamed = set()
    for regime, _, outcome in unexplained:
        labels = [_name(case, regime, outcome, m) for m in outcome.mismatches]
        for text in labels:
            common.add(named, text)
        if not any(labels) and not (cancellation and regime == "ill_conditioned"):
            unnamed.add(regime)
    if unnamed:
        named.append(f"value mismatch ({', '.join(sorted(unnamed))})")
    return named


def _name(case, regime, outcome, m):
    """The cause one mismatch shows by itself, or '' (a plain value mismatch)."""
    if m.kind == "nonfinite":
        n = count(outcome.x64, outcome.sample.dim)
        return common.basic(m, f"{regime}, N={n}" if n > LONG_REDUCTION else regime)
    if m.kind == "value" and regime == "subnormal":
        got = outcome.actual[case.outputs.index(m.output)]
        return f"underflow ({m.output} flushed to 0)" if float(got[m.worst_index]) == 0.0 else ""
    if m.kind == "decision":
        return f"decision flipped ({regime})"
    return common.basic(m, regime)


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
