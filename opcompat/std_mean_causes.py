"""Why a std_mean replacement fails: the causes its verdict names.

- wrong correction: the output matches the truth at another correction: 0, 1, the claim's, or the
  closest fit (a std scaled by N / (N - c) instead of sqrt(N / (N - c)) is std at 2c - c^2 / N);
- epsilon bias: it matches sqrt(var + eps), eps the claim's or the closest fit;
- reduces over the wrong dims: an output matches the reduction over a proper subset of the dims;
- overflow / underflow: inf where the truth is finite / 0 where it is not;
- cancellation: only where, at one N, the error grows with kappa along the ladder of condition
  numbers (at least as sqrt(kappa); the one-pass form's grows as kappa^2); a wrong constant factor
  or wrong dims fail the ladder too, with an error that does not grow;
- NaN/inf pattern: non-finite positions differ otherwise;
- error: the call raised (on MPS: not implemented, no fallback).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import torch

from . import causes as common
from .compare import Target, close, evaluate, pin
from .forms import count, reduced_dims
from .tolerances import UNIT_ROUNDOFF
from .witnesses import kappa_ladder

LONG_REDUCTION = 8192  # above this, a cause names N: the failure is one of length, not of values
FIT_SLACK = 0.1  # largest uncertainty of a fitted correction that still names one
GROWTH = 0.5  # cancellation: log(error ratio) / log(kappa ratio) along the ladder at one N


def causes(case, failures, device):
    found = common.errors(failures)
    if found:
        return found
    # First the semantics: failures that pass against another correction or eps are explained by it,
    # then those whose output is a reduction over fewer dims.
    named, rest = _semantics(case, failures, device)
    unexplained = []
    for regime, sample, outcome in rest:
        label = _wrong_dims(case, sample, outcome)
        if label:
            common.add(named, label)
        else:
            unexplained.append((regime, sample, outcome))
    cancellation = _cancellation(case, unexplained, device)
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


# -- semantics: another correction or eps -----------------------------------------------------------
@dataclass(frozen=True)
class Hypothesis:
    """A semantics a failing sample may follow: ``target(sample)`` gives the Target to test it against."""

    label: str
    target: object  # callable: sample -> Target
    fitted: bool = False  # fitted to the data: named only where it explains an output of 2+ elements


def _semantics(case, failures, device):
    """(causes, failures left unexplained): each failure is explained by the first hypothesis it passes.

    Hypotheses, in order: the corrections 0, 1, the caller's and the claim's, with the claim's eps or
    none; then fitted ones: a std scaled by N / (N - c) (std at 2c - c^2 / N), one correction fitted to
    all failures, one eps fitted to all failures. A one-element output fits any one-parameter
    distortion, so a fitted hypothesis must explain an output of 2+ elements to be named.
    """
    if not failures:
        return [], []
    caller = case.caller_correction(failures[0][1].correction)
    corrections = sorted({caller, 0, 1} | ({case.claim.correction} if case.claim.correction is not None else set()))
    hypotheses = [Hypothesis(_describe(c, caller, eps), lambda s, c=c, eps=eps: Target(c, eps))
                  for eps in sorted({0.0, case.claim.eps}, reverse=True) for c in corrections
                  if (c, eps) != (caller, 0.0)]
    if "std" in case.outputs and caller > 0:
        hypotheses.append(Hypothesis(
            f"wrong correction (std scaled by N/(N-{caller:g}) instead of sqrt(N/(N-{caller:g})): "
            f"std at correction 2c - c^2/N)",
            lambda s: Target(2 * caller - caller**2 / _n(case, s)), fitted=True))
    fits = [_fits(case, sample, outcome, caller) for _, sample, outcome in failures]
    fitted_c = _median([f[0] for f in fits if f[0] is not None])
    if fitted_c is not None and not math.isclose(fitted_c, caller, abs_tol=1e-3):
        hypotheses.append(Hypothesis(
            f"wrong correction (computes correction={fitted_c:.4g}, closest fit, caller asked {caller:g})",
            lambda s: Target(fitted_c), fitted=True))
    fitted_eps = _median([f[1] for f in fits if f[1]])
    if fitted_eps:
        for c in sorted(corrections, key=lambda c: c != caller):
            hypotheses.append(Hypothesis(_describe(c, caller, fitted_eps, fitted=True),
                                         lambda s, c=c: Target(c, fitted_eps), fitted=True))
    named, left = [], list(failures)
    for hyp in hypotheses:
        explained = [f for f in left if _explains(case, hyp, f[1], device)]
        if not explained:
            continue
        if hyp.fitted and not any(_elements(f[2]) > 1 for f in explained):
            continue
        common.add(named, hyp.label)
        left = [f for f in left if f not in explained]
    return named, left


def _explains(case, hyp, sample, device):
    target = hyp.target(sample)
    if hyp.fitted and target.correction >= _n(case, sample):  # a fit must leave N - c > 0
        return False
    return evaluate(case, sample, device, target=target).ok


def _n(case, sample):
    return count(sample.build("cpu"), pin(case, sample).dim)


def _elements(outcome):
    return max((a.numel() for a in outcome.actual if isinstance(a, torch.Tensor)), default=0)


def _median(values):
    if not values:
        return None
    value = sorted(values)[len(values) // 2]
    return float(f"{value:.3g}")


def _describe(c, caller, eps, fitted=False):
    how = ", closest fit" if fitted else ""
    parts = []
    if not math.isclose(c, caller):
        parts.append(f"wrong correction (computes correction={c:g}, caller asked {caller:g})")
    if eps:
        parts.append(f"epsilon bias (sqrt(var + {eps:.3g}){how})")
    return "; ".join(parts)


def _fits(case, sample, outcome, caller):
    """(correction, eps) fitted to one failure's std output, each None where nothing fits."""
    if "std" not in case.outputs or not outcome.actual:
        return None, None
    got = outcome.actual[case.outputs.index("std")]
    if not isinstance(got, torch.Tensor) or not got.is_floating_point():
        return None, None
    pinned = pin(case, sample)
    return _fit_correction(got, outcome.x64, pinned), _fit_eps(got, outcome.x64, pinned, caller)


def _usable(got, s_ref):
    g = got.double()
    return (torch.isfinite(g) & torch.isfinite(s_ref) & (g > 0) & (s_ref > 0)).reshape(-1)


def _fit_correction(got, x64, sample):
    """The correction c with std_c == got, from the biased std: got^2 = s0^2 N / (N - c); None if none fits."""
    n = count(x64, sample.dim)
    s0 = torch.std(x64, dim=sample.dim, correction=0, keepdim=sample.keepdim) if x64.ndim else x64.new_zeros(())
    if s0.shape != got.shape:
        return None
    ok = _usable(got, s0)
    if n < 2 or not ok.any():
        return None
    # a relative error of a few u in the std moves the fit by 2 N u: only a well-determined fit counts
    if 8 * n * UNIT_ROUNDOFF[got.dtype] > FIT_SLACK:
        return None
    s0, got = s0.reshape(-1), got.double().reshape(-1)
    c = (n * (1 - (s0[ok] / got[ok]) ** 2)).median().item()
    return c if math.isfinite(c) and 0 <= c < n else None


def _fit_eps(got, x64, sample, correction):
    """The eps with sqrt(var_c + eps) == got: the median of got^2 - var_c; None when not positive."""
    if count(x64, sample.dim) <= correction:
        return None
    var = torch.var(x64, dim=sample.dim, correction=correction, keepdim=sample.keepdim)
    if var.shape != got.shape:
        return None
    ok = _usable(got, var) | (torch.isfinite(got.double()) & (var == 0)).reshape(-1)
    if not ok.any():
        return None
    eps = (got.double().reshape(-1)[ok] ** 2 - var.reshape(-1)[ok]).median().item()
    return eps if eps > 0 else None


# -- wrong dims --------------------------------------------------------------------------------------
def _wrong_dims(case, sample, outcome):
    """'reduces over the wrong dims (...)' when an output matches the reduction over a proper subset of
    the dims (as it is, averaged over the other dims, or at their first index); else ''."""
    if not outcome.actual or case.outputs == ("decision",):
        return ""
    pinned = pin(case, sample)
    x64 = outcome.x64
    dims = tuple(d % x64.ndim for d in reduced_dims(x64, pinned.dim)) if x64.ndim else ()
    if len(dims) < 2:
        return ""
    caller = case.caller_correction(sample.correction)
    corrections = sorted({caller, 0, 1})
    failed = {m.output for m in outcome.mismatches}
    for name, got in zip(case.outputs, outcome.actual):
        if name not in failed or not isinstance(got, torch.Tensor) or not got.is_floating_point():
            continue
        for size in range(1, len(dims)):
            for subset in itertools.combinations(dims, size):
                for c in corrections:
                    if _matches_subset(name, got, x64, subset, dims, c, pinned.keepdim, sample.torch_dtype):
                        return f"reduces over the wrong dims ({name} over dims {subset} of {dims})"
    return ""


def _matches_subset(name, got, x64, subset, dims, correction, keepdim, dtype):
    if name == "std":
        if count(x64, subset) <= correction:
            return False
        part = torch.std(x64, dim=subset, correction=correction, keepdim=True)
    else:
        part = x64.mean(dim=subset, keepdim=True)
    rest = tuple(d for d in dims if d not in subset)
    shape = tuple(1 if d in dims else s for d, s in enumerate(x64.shape))
    if not keepdim:
        shape = tuple(s for d, s in enumerate(x64.shape) if d not in dims)
    candidates = []
    if got.numel() == part.numel():
        candidates.append(part.reshape(got.shape))
    # a one-element output matches some subset's average or first slice by chance: only 2+ elements count
    if got.numel() == math.prod(shape) and got.numel() > 1:
        candidates.append(part.mean(dim=rest, keepdim=True).reshape(got.shape))
        first = part
        for d in rest:
            first = first.narrow(d, 0, 1)
        candidates.append(first.reshape(got.shape))
    # as tight as std_mean's own budget: a form with large errors must not match a subset by chance,
    # and the subset must tell itself apart from the right reduction (not so on a constant slice)
    scale = x64.abs().mean() if x64.numel() else 0.0
    if name == "std":
        right = torch.std(x64, dim=dims, correction=correction, keepdim=keepdim)
    else:
        right = x64.mean(dim=dims, keepdim=keepdim)

    def near(a, want):
        return close(a, want.to(dtype), truth=want, budget="reduction", n=count(x64, subset), scale=scale).ok

    return any(near(got, want) and not (right.shape == want.shape and near(right.to(dtype), want))
               for want in candidates)


# -- cancellation -------------------------------------------------------------------------------------
def _cancellation(case, failures, device):
    """Failures on the kappa ladder whose std error, at one N, grows with kappa."""
    if "std" not in case.outputs:
        return ""
    seen = set()
    for regime, sample, _ in failures:
        if regime != "ill_conditioned":
            continue
        key = (sample.shape, sample.dim, sample.layout, sample.keepdim)
        if key in seen:
            continue
        seen.add(key)
        ladder = []
        for k in (1.0, *kappa_ladder(sample.dtype)):  # kappa ~ 1.4 at the foot: bfloat16's ladder has one rung
            rung = replace(sample, offset=math.copysign(k, sample.offset or 1.0) * sample.scale)
            ladder.append((k, _std_error(case, rung, device)))
        ladder = [(k, e) for k, e in ladder if math.isfinite(e)]
        if len(ladder) < 2:
            continue
        (k0, e0), (k1, e1) = ladder[0], ladder[-1]
        floor = UNIT_ROUNDOFF[sample.torch_dtype]
        slope = math.log(max(e1, floor) / max(e0, floor)) / math.log(k1 / k0)
        if slope >= GROWTH:
            n = count(sample.build("cpu"), pin(case, sample).dim)
            return (f"cancellation (at N={n}: relative error {e0:.1g} at kappa~{k0:.0e} .. "
                    f"{e1:.1g} at kappa~{k1:.0e})")
    return ""


def _std_error(case, sample, device):
    """Largest relative error of the case's std against float64 truth at the caller's correction."""
    outcome = evaluate(case, sample, device, target=Target(case.caller_correction(sample.correction)))
    if not outcome.actual:
        return math.nan
    got = outcome.actual[case.outputs.index("std")].double()
    pinned = pin(case, sample)
    truth = torch.std(outcome.x64, dim=pinned.dim, correction=pinned.correction, keepdim=pinned.keepdim)
    if got.shape != truth.shape:
        return math.nan
    rel = ((got - truth).abs() / truth.abs()).nan_to_num(nan=0.0, posinf=math.inf)
    return float(rel.max()) if rel.numel() else math.nan
