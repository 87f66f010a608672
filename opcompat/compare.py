"""One comparison engine for every judgement: claims, verdicts, the probe, the benchmark's check.

Order, as numpy.testing does it: shape and dtype first, then NaN/inf positions, then values.
Truth is float64 on the CPU (or an exact integer reference); the *reference* is the op itself on the
CPU at the input's dtype. A value passes when its error against truth is within the budget of
opcompat.tolerances, or no more than ``k_ref`` times the reference's own error.

Public API:

- ``close(actual, expected, *, truth=None, dtype=None, budget="elementwise", mode="budget", ...)``
  compares one output and returns a ``Report`` (``ok``, ``mismatches``, ``str()``); ``mode="loose"`` is
  the same engine with the loose bound of opcompat.tolerances (device vs CPU, no truth).
- ``run(case, input, device, against="claim"|"reference")`` runs a case of any family on one input and
  returns an ``Outcome``; ``evaluate`` is std_mean's engine (per-element budgets, correction and eps),
  ``evaluate_call`` every other family's (``close`` on each output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from opcompat import forms
from opcompat.forms import count, reduced_dims

from . import devices, family
from . import tolerances as tol
from .samples import InputError, Sample, check_input, degenerate_note


@dataclass(frozen=True)
class Target:
    """The semantics an output is compared with: std_mean at ``correction``, with ``eps`` under the sqrt."""

    correction: float
    eps: float = 0.0

    def describe(self):
        return f"std_mean at correction={self.correction:g}" + (f", sqrt(var + {self.eps:g})" if self.eps else "")


@dataclass
class Mismatch:
    output: str
    kind: str  # "error", "shape", "dtype", "nonfinite", "value", "decision"
    message: str
    worst_index: tuple = ()
    max_abs: float = 0.0
    max_rel: float = 0.0

    def __str__(self):
        return f"{self.output}: {self.message}"


@dataclass
class Outcome:
    """Everything one evaluation produced; ``ok`` when no output mismatched."""

    case: object
    sample: Sample
    device: str
    target: Target
    mismatches: list = field(default_factory=list)
    note: str = ""
    actual: tuple = ()  # the case's outputs, on the CPU
    x64: torch.Tensor = None

    @property
    def ok(self):
        return not self.mismatches

    def report(self) -> str:
        against = self.target.describe() if self.target is not None else family.get(self.case.family).call
        head = f"case {self.case.name} on {self.device} vs {against} [{self.case.replaces}]"
        lines = [head, *(f"  {m}" for m in self.mismatches), f"  input: {self.sample.summary()}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def pin(case, sample: Sample) -> Sample:
    """The sample as the caller calls it: the call site's pinned arguments replace the drawn ones."""
    return replace(sample, **case.fixed) if case.fixed else sample


def reference_target(case, sample: Sample) -> Target:
    return Target(case.caller_correction(sample.correction))


def claim_target(case, sample: Sample) -> Target:
    return Target(case.claimed_correction(sample.correction), case.claim.eps)


def std_mean_at(x, target: Target, dim, keepdim):
    """``torch.std_mean`` under ``target``. With eps, sqrt(std^2 + eps) is formed in float64 and rounded
    once, so the reference itself cannot overflow where var would (std > 256 in float16)."""
    std, mean = torch.std_mean(x, dim=dim, correction=target.correction, keepdim=keepdim)
    if target.eps:
        std = torch.sqrt(std.double() ** 2 + target.eps).to(std.dtype)
    return std, mean


def evaluate(case, sample: Sample, device="cpu", target: Target = None) -> Outcome:
    """Run ``case`` on ``device`` and compare each of its outputs; never raises for a case's own failure."""
    sample = pin(case, sample)
    kw = sample.kwargs()
    try:
        sample.torch_dtype  # noqa: B018  (refuses a non-float dtype by name)
    except InputError as exc:
        raise InputError(f"case {case.name!r}: {exc}") from None
    target = target or claim_target(case, sample)
    x_cpu = sample.build("cpu")
    check_input(x_cpu, kw["dim"], kw["correction"])
    x64 = x_cpu.double()
    out = Outcome(case, sample, str(device), target, note=degenerate_note(x_cpu, kw["dim"], target.correction) or "",
                  x64=x64)
    if not _call_case(out, lambda: case.fn(sample.build(device), **kw), device):
        return out

    dim, keepdim = kw["dim"], kw["keepdim"]
    # The float64 mean comes from torch.mean: std_mean's Welford mean is NaN where an input is +-inf
    # and the true mean is +-inf (a case is not blamed for getting that right).
    truth = (std_mean_at(x64, target, dim, keepdim)[0], forms.mean(x64, dim, keepdim))
    try:
        reference = std_mean_at(x_cpu, target, dim, keepdim)
    except Exception:  # e.g. float16 std_mean not implemented on the CPU of an old torch
        reference = None
    stats = _slice_stats(x64, dim, keepdim)
    constant = _constant_slices(x64, dim, keepdim)
    # sums in serial chunks: a stride-0 axis on the CPU, each thread's segment on other devices
    serial = sample.layout == "expanded" or torch.device(device).type != "cpu"
    for name, got in zip(case.outputs, out.actual):
        if name == "decision":
            out.mismatches += _compare_decision(got, truth[0], case.threshold, sample.torch_dtype, stats)
            continue
        i = 0 if name == "std" else 1
        ref = None if reference is None else reference[i]
        out.mismatches += _compare(name, got, truth[i], ref, sample.torch_dtype, stats,
                                   undefined=name == "std" and bool(out.note), constant=constant, serial=serial)
    return out


def _call_case(out, call, device) -> bool:
    """Run the case into ``out.actual``; False (with a mismatch naming the case) when there is nothing to compare."""
    case = out.case
    try:
        actual = call()
        devices.synchronize(device)  # inside the try: an asynchronous device error is the case's
    except Exception as exc:
        out.mismatches.append(Mismatch("call", "error", f"{type(exc).__name__}: {_first_line(exc)}"))
        return False
    if not isinstance(actual, (tuple, list)):
        what = f"a bare {type(actual).__name__}" if isinstance(actual, torch.Tensor) else repr(actual)[:80]
        out.mismatches.append(Mismatch(
            "call", "shape", f"case {case.name!r} returned {what}, not a tuple: return one tensor per output "
                             f"{case.outputs}, e.g. `return (out,)`"))
        return False
    out.actual = tuple(a.detach().cpu() if isinstance(a, torch.Tensor) else a for a in actual)
    if len(out.actual) != len(case.outputs):
        out.mismatches.append(Mismatch("call", "shape", f"case {case.name!r} returned {len(out.actual)} outputs, "
                                                        f"declared {len(case.outputs)}: {case.outputs}"))
        return False
    return True


def _constant_slices(x64, dim, keepdim):
    """Per output element: True where every element of its slice is equal (std exactly 0)."""
    dims = reduced_dims(x64, dim)
    if not dims:
        return torch.ones(x64.shape, dtype=torch.bool)
    return x64.amax(dim=dims, keepdim=keepdim) == x64.amin(dim=dims, keepdim=keepdim)


def _slice_stats(x64, dim, keepdim):
    """Per output element: N, mean|x| and |mean| of its slice, for the error budget."""
    n = count(x64, dim)
    dims = reduced_dims(x64, dim)
    if not dims:
        return n, x64.abs(), x64.abs()
    return n, x64.abs().mean(dim=dims, keepdim=keepdim), x64.mean(dim=dims, keepdim=keepdim).abs()


def max_kappa(x64, dim) -> float:
    """Largest condition number sqrt(sum x^2 / sum (x - m)^2) over the slices ``dim`` reduces.

    Single-element slices count as 1 (their mean is exact: nothing cancels) and slices holding NaN/inf
    are left out (those propagate whatever the algorithm), so a claim limited by kappa filters only
    the inputs it is about.
    """
    dims = reduced_dims(x64, dim)
    if count(x64, dim) <= 1:
        return 1.0
    if not dims:
        return math.inf
    dev = ((x64 - x64.mean(dim=dims, keepdim=True)) ** 2).sum(dim=dims)
    kappa = ((x64**2).sum(dim=dims) / dev).sqrt()
    finite = torch.isfinite(x64).all(dim=dims) if dims else torch.isfinite(x64)
    kappa = kappa[finite]
    return float(kappa.nan_to_num(math.inf).max()) if kappa.numel() else 1.0


def min_slice_variance(x64, dim) -> float:
    """Smallest biased variance over the slices ``dim`` reduces: below the dtype's smallest normal, squares
    of deviations formed in the dtype are subnormal and lose precision (gradual underflow)."""
    dims = reduced_dims(x64, dim)
    if not dims:
        return 0.0
    var = ((x64 - x64.mean(dim=dims, keepdim=True)) ** 2).mean(dim=dims)
    return float(var.nan_to_num(math.inf).min())


def _classes(t):
    """0 finite, 1 nan, 2 +inf, 3 -inf."""
    c = torch.zeros(t.shape, dtype=torch.int8)
    c[torch.isnan(t)] = 1
    c[t == math.inf] = 2
    c[t == -math.inf] = 3
    return c


def _undefined_classes(t):
    """As _classes, but nan and +inf are one class: both say "undefined" when N - correction <= 0."""
    c = _classes(t)
    c[c == 2] = 1
    return c


_CLASS_NAMES = ("finite", "nan", "+inf", "-inf")


def _compare(name, got, truth, ref, dtype, stats, undefined=False, constant=None, serial=False):
    """Compare one output; with ``undefined`` (N - correction <= 0), nan and +inf count as one class."""
    if not isinstance(got, torch.Tensor):
        return [Mismatch(name, "dtype", f"got a {type(got).__name__}, expected a tensor")]
    expected_shape = tuple(truth.shape)
    if tuple(got.shape) != expected_shape:
        return [Mismatch(name, "shape", f"shape={tuple(got.shape)}, but should be {expected_shape}")]
    if got.dtype != dtype:
        return [Mismatch(name, "dtype", f"dtype={got.dtype}, but should be {dtype}")]
    got64 = got.double()
    # Non-finite positions must match the reference, or the truth as the dtype can hold it.
    classes = _undefined_classes if undefined else _classes
    truth_classes = classes(truth.to(dtype).double())
    expected_classes = truth_classes if ref is None else classes(ref.double())
    got_classes = classes(got64)
    bad = (got_classes != expected_classes) & (got_classes != truth_classes)
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        return [Mismatch(name, "nonfinite",
                         f"non-finite pattern differs at {int(bad.sum())} / {bad.numel()} positions, e.g. "
                         f"index {idx}: got {_CLASS_NAMES[got_classes[idx]]} ({got64[idx].item():g}), "
                         f"expected {_CLASS_NAMES[expected_classes[idx]]} (truth {truth[idx].item():g})",
                         worst_index=idx)]
    finite = (got_classes == 0) & torch.isfinite(truth)
    n, mean_abs, abs_mean = stats
    if name == "std":
        bound = tol.std_bound(dtype, n, mean_abs, truth.abs(), abs_mean, constant=constant, serial=serial)
    else:
        bound = tol.mean_bound(dtype, n, mean_abs, abs_mean)
    err = (got64 - truth).abs()
    allowed = bound
    if ref is not None:
        allowed = torch.maximum(bound, tol.budget_for("std_mean", name).k_ref * (ref.double() - truth).abs())
    bad = finite & ~(err <= allowed)
    if not bad.any():
        return []
    rel = err / truth.abs().clamp_min(tol.SMALLEST_SUBNORMAL[dtype])
    excess = torch.where(bad, err / allowed.clamp_min(1e-300), torch.zeros_like(err))
    idx = tuple(int(i) for i in (excess == excess.max()).nonzero()[0])
    ref_text = "n/a" if ref is None else f"{ref.double()[idx].item():.9g}"
    return [Mismatch(
        name, "value",
        f"Mismatched elements: {int(bad.sum())} / {bad.numel()} ({100 * bad.float().mean().item():.1f}%)\n"
        f"    Greatest excess at index {idx}: got {got64[idx].item():.9g}, truth {truth[idx].item():.9g}, "
        f"reference {ref_text}; error {err[idx].item():.3g} > allowed {allowed[idx].item():.3g}\n"
        f"    Max abs error {err[finite].max().item():.3g}, max rel error {rel[finite].max().item():.3g}",
        worst_index=idx, max_abs=err[finite].max().item(), max_rel=rel[finite].max().item())]


def _compare_decision(got, std_truth, threshold, dtype, stats):
    """A decision ``std > t`` must match truth, except where truth is within the std budget of t."""
    if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
        return [Mismatch("decision", "dtype", f"expected a bool tensor, got {got!r}")]
    expected = std_truth > threshold
    n, mean_abs, abs_mean = stats
    ambiguous = (std_truth - threshold).abs() <= tol.std_bound(dtype, n, mean_abs, std_truth.abs(), abs_mean)
    nan_truth = torch.isnan(std_truth)
    bad = (got != expected) & ~ambiguous & ~nan_truth
    if not bad.any():
        return []
    idx = tuple(int(i) for i in bad.nonzero()[0]) if bad.ndim else ()
    return [Mismatch("decision", "decision",
                     f"decision flipped: got {bool(got[idx])}, but std = {std_truth[idx].item():.9g} "
                     f"{'>' if expected[idx] else '<='} {threshold}", worst_index=idx)]


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


# -- every other family: one output at a time ------------------------------------------------------
@dataclass
class Report:
    """What ``close`` found for one output: ``ok`` when nothing mismatched."""

    mismatches: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.mismatches

    def __str__(self):
        return "ok" if self.ok else "\n".join(map(str, self.mismatches))


def close(actual, expected, *, truth=None, dtype=None, budget="elementwise", mode="budget", name="output",
          n: int = 1, scale=None) -> Report:
    """Compare one output with the op's result ``expected`` (same dtype, on the CPU) and ``truth``.

    - ``truth``: float64 (or exact) truth; None compares with ``expected`` alone, allowing both sides
      their budget (twice the bound).
    - ``dtype``: the dtype whose unit roundoff the budget uses (default: ``expected``'s).
    - ``budget``: a row of opcompat.tolerances.BUDGETS; "exact" (and any integer or bool output) must
      equal the truth.
    - ``mode``: "budget" (error analysis) or "loose" (agree to 60 % of the dtype's digits: the probe's
      and the benchmark's device-vs-CPU check).
    - ``n``, ``scale``: the length and magnitude of the sums behind each element, for the summation term;
      in loose mode ``scale`` is the magnitude errors are measured against (default: mean |expected|), e.g.
      the std for a mean near 0.
    """
    if mode not in ("budget", "loose"):
        raise ValueError(f"mode={mode!r}: 'budget' or 'loose'")
    if not isinstance(expected, torch.Tensor):
        ok = actual == expected
        return Report([] if ok else [Mismatch(name, "value", f"got {actual!r}, expected {expected!r}")])
    if not isinstance(actual, torch.Tensor):
        return Report([Mismatch(name, "dtype", f"got a {type(actual).__name__}, expected a tensor")])
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if tuple(actual.shape) != tuple(expected.shape):
        return Report([Mismatch(name, "shape", f"shape={tuple(actual.shape)}, but should be {tuple(expected.shape)}")])
    if actual.dtype != expected.dtype:
        return Report([Mismatch(name, "dtype", f"dtype={actual.dtype}, but should be {expected.dtype}")])
    want = expected if truth is None else truth.detach().cpu()
    if not expected.is_floating_point() or (budget == "exact" and mode == "budget"):
        return Report(_compare_exact(name, actual, want.to(actual.dtype) if want.dtype != actual.dtype else want))
    dtype = dtype or expected.dtype
    got64, want64, exp64 = actual.double(), want.double(), expected.double()
    got_classes, want_classes, exp_classes = _classes(got64), _classes(want64), _classes(exp64)
    bad = (got_classes != exp_classes) & (got_classes != want_classes)
    if bad.any():
        idx = _first(bad)
        return Report([Mismatch(name, "nonfinite",
                                f"non-finite pattern differs at {int(bad.sum())} / {bad.numel()} positions, e.g. "
                                f"index {idx}: got {_CLASS_NAMES[got_classes[idx]]} ({got64[idx].item():g}), "
                                f"expected {_CLASS_NAMES[exp_classes[idx]]}", worst_index=idx)])
    finite = (got_classes == 0) & torch.isfinite(want64)
    err = (got64 - want64).abs()
    if mode == "loose":
        if scale is not None:
            magnitude = torch.as_tensor(scale, dtype=torch.float64).abs()
        elif torch.isfinite(exp64).any():
            magnitude = exp64[torch.isfinite(exp64)].abs().mean()
        else:
            magnitude = 0.0
        allowed = tol.loose_rtol(dtype) * (exp64.abs() + magnitude)
    else:
        row = tol.budget_for(budget)
        scale64 = None if scale is None else torch.as_tensor(scale, dtype=torch.float64)
        allowed = tol.generic_bound(dtype, row, want64.abs(), n, scale64)
        # no truth: both sides round, each within the bound of the exact value
        allowed = 2 * allowed if truth is None else torch.maximum(allowed, row.k_ref * (exp64 - want64).abs())
    bad = finite & ~(err <= allowed)
    if not bad.any():
        return Report()
    excess = torch.where(bad, err / allowed.clamp_min(1e-300), torch.zeros_like(err)).nan_to_num(nan=math.inf)
    idx = _first(excess == excess.max())
    rel = err / want64.abs().clamp_min(1e-300)
    return Report([Mismatch(
        name, "value",
        f"Mismatched elements: {int(bad.sum())} / {bad.numel()} ({100 * bad.float().mean().item():.1f}%)\n"
        f"    Greatest excess at index {idx}: got {got64[idx].item():.9g}, "
        f"{'expected' if truth is None else 'truth'} {want64[idx].item():.9g}, reference {exp64[idx].item():.9g}; "
        f"error {err[idx].item():.3g} > allowed {allowed[idx].item():.3g} ({mode})\n"
        f"    Max abs error {err[finite].max().item():.3g}, max rel error {rel[finite].max().item():.3g}",
        worst_index=idx, max_abs=err[finite].max().item(), max_rel=rel[finite].max().item())])


def _first(mask):
    return tuple(int(i) for i in mask.nonzero()[0]) if mask.ndim else ()


def _compare_exact(name, got, want):
    if torch.equal(got, want):
        return []
    # floats: NaN matches NaN; -0.0 matches 0.0
    diff = ~((got == want) | (torch.isnan(got) & torch.isnan(want))) if got.is_floating_point() else got != want
    if not diff.any():
        return []
    idx = _first(diff)
    return [Mismatch(name, "value", f"{int(diff.sum())} / {diff.numel()} elements differ (exact), e.g. index "
                                    f"{idx}: got {got[idx].item()!r}, truth {want[idx].item()!r}",
                     worst_index=idx, max_abs=float("inf"))]


def evaluate_call(case, call, device="cpu", against="claim") -> Outcome:
    """Run a case of a generic family on one ``Call`` and compare every output; never raises for the case.

    ``against`` is accepted for symmetry with std_mean: a generic claim narrows the domain, not the op.
    """
    fam = family.get(case.family)
    call = call.pinned(case.fixed)
    out = Outcome(case, call, str(device), None)
    args, kwargs = call.build(device)
    if not _call_case(out, lambda: case.fn(*args, **kwargs), device):
        return out
    cpu_args, cpu_kwargs = call.build("cpu")
    expected = _outputs(fam.reference(*cpu_args, **cpu_kwargs))
    if fam.truth is not None:
        truth = _outputs(fam.truth(*cpu_args, **cpu_kwargs))
    else:
        up = [_upcast(a) for a in cpu_args]
        truth = _outputs(fam.reference(*up, **{k: _upcast(v) for k, v in cpu_kwargs.items()}))
    for name, got in zip(case.outputs, out.actual):
        i = fam.outputs.index(name)
        out.mismatches += close(got, expected[i], truth=truth[i], dtype=call.torch_dtype
                                if call.torch_dtype.is_floating_point else None,
                                budget=fam.budget, name=name).mismatches
    return out


def _outputs(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _upcast(value):
    return value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def run(case, sample, device="cpu", against="claim") -> Outcome:
    """Judge ``case`` on one input of its family: ``against`` "claim" (what the case says it computes)
    or "reference" (the op the caller called)."""
    fam = family.get(case.family)
    if fam.evaluate is not None:
        return fam.evaluate(case, sample, device, against=against)
    return evaluate_call(case, sample, device, against=against)


def pinned(case, sample):
    """``sample`` as the case's call site calls it, for any family's input record."""
    return pin(case, sample) if isinstance(sample, Sample) else sample.pinned(case.fixed)
