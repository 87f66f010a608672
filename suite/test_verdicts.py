"""Pinned verdicts: the Fooocus advice's claims, and the textbook pitfalls, on fixed witnesses.

Each row says what a replacement does to the original call, with its cause. If PyTorch or a case
changes so that a verdict moves, this fails and names the row.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import cases
from opcompat.compare import evaluate
from opcompat.forms import count, mean, reduced_dims
from opcompat.samples import Sample
from opcompat.verdicts import judge

# (case, correction, dtype, equivalent?, causes that must be named)
PINNED = [
    # The advice's step-by-step fix, torch.std + torch.mean, is equivalent.
    ("aniso_std_and_mean", 1, "float32", True, []),
    ("aniso_std_and_mean", 1, "float16", True, []),
    # Its manual replacement computes the biased std and adds 1e-5 under the root.
    ("aniso_manual_eps", 1, "float32", False, ["wrong correction", "epsilon bias"]),
    # ... and in float16 (g - m) ** 2 overflows where std_mean does not.
    ("aniso_manual_eps", 1, "float16", False, ["overflow"]),
    # RescaleCFG's replacement is biased: each std is off by sqrt(N / (N - 1)).
    ("rescale_manual", 1, "float32", False, ["wrong correction"]),
    ("rescale_manual", 1, "float16", False, ["overflow"]),
    # The threshold keeps its decision (both sides are biased) in float32.
    ("gate_manual", 0, "float32", True, []),
    # Generic forms.
    ("std_plus_mean", 0, "float32", True, []),
    ("std_plus_mean", 1, "float64", True, []),
    ("upcast", 1, "float16", True, []),
    ("two_pass_biased", 1, "float64", False, ["wrong correction"]),
    ("two_pass_corrected", 1, "float64", True, []),
    ("two_pass_corrected", 1, "float16", False, ["overflow (std, near_overflow)"]),
    # ... and its float16 sum of squares overflows on ordinary data once N passes ~65k.
    ("two_pass_corrected", 0, "float16", False, ["overflow (std, normal, N=131072)"]),
    ("two_pass_eps", 0, "float32", False, ["epsilon bias"]),
    ("var_mean_sqrt", 1, "float16", False, ["overflow"]),
    ("one_pass", 1, "float32", False, ["cancellation"]),
    ("one_pass", 1, "float64", False, ["cancellation"]),
    # isin (no correction): transformers' tile/eq/sum shim is exact only for 1-D inputs of 2+ elements.
    ("isin_mps_friendly", None, "int64", False,
     ["wrong shape for single inputs ((1,) and (1,)): shape=(), but should be (1,)", "error for batched inputs",
      "wrong shape for batched inputs ((1, 3) and (1,)): shape=(3,), but should be (1, 3)", "error for nd_test"]),
    ("isin_mps_friendly", None, "float16", False, ["wrong shape for single inputs"]),
    ("isin_broadcast_any", None, "int64", True, []),
    ("isin_broadcast_any", None, "float32", True, []),
    ("isin_broadcast_any", None, "float16", True, []),
    ("torch_isin", None, "int32", True, []),
    # int64 cumsum via int32 wraps past 2^31 - 1: an element, or a partial sum.
    ("cumsum_via_int32", None, "int64", False,
     ["int32 overflow (a partial sum passes 2^31 - 1)", "int32 overflow (an element does not fit int32)"]),
    ("cumsum_via_int32", None, "int32", False, ["int32 overflow (a partial sum passes 2^31 - 1)"]),
    ("torch_cumsum", None, "int64", True, []),
]


@pytest.mark.verdict
@pytest.mark.parametrize(("name", "correction", "dtype", "equivalent", "causes"), PINNED,
                         ids=[f"{p[0]}-c{'-' if p[1] is None else p[1]}-{p[2]}" for p in PINNED])
def test_pinned_verdict(name, correction, dtype, equivalent, causes, device, device_dtypes):
    if dtype.startswith(("float", "bfloat")) and dtype not in device_dtypes:
        pytest.skip(f"{dtype} is not supported on {device}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = judge(cases.get(name), correction, dtype, device)
    assert verdict.equivalent == equivalent, (
        f"{name} (correction={correction}, {dtype}) on {device}: expected "
        f"{'equivalent' if equivalent else 'NOT equivalent'}, got {verdict.cell()}\n{verdict.counterexample}")
    text = "; ".join(verdict.causes)
    missing = [c for c in causes if c not in text]
    assert not missing, f"{name} (correction={correction}, {dtype}): causes {missing} not named in {text!r}"


def test_rescale_ratio_is_unbiased(device):
    """RescaleCFG only uses ro_pos / ro_cfg: the biased replacement's sqrt(N/(N-1)) factor cancels there."""
    case = cases.get("rescale_manual")
    cond = Sample(shape=(2, 4, 16, 16), dtype="float32", seed=1).build(device)
    x_cfg = Sample(shape=(2, 4, 16, 16), dtype="float32", scale=3.0, seed=2).build(device)
    ratio = case.fn(cond)[0] / case.fn(x_cfg)[0]
    original = torch.std(cond, dim=(1, 2, 3), keepdim=True) / torch.std(x_cfg, dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(ratio.cpu(), original.cpu(), rtol=1e-5, atol=0)


# -- the audit's wrong replacements: each cause is named only where it applies ----------------------
def _scaled_not_sqrt(x, *, dim, correction, keepdim):
    """The biased std times N / (N - c), where sqrt(N / (N - c)) is right."""
    n = count(x, dim)
    s0, m = torch.std_mean(x, dim=dim, correction=0, keepdim=keepdim)
    return s0 * (n / (n - correction) if n > correction else float("inf")), m


def _first_dim_only(x, *, dim, correction, keepdim):
    """Reduces over the first of the dims only."""
    return torch.std_mean(x, dim=reduced_dims(x, dim)[:1] or None, correction=correction, keepdim=keepdim)


def _first_dim_then_mean(x, *, dim, correction, keepdim):
    """The std over the first dim, averaged over the others: the right shape, the wrong statistic."""
    dims = reduced_dims(x, dim)
    m = mean(x, dim, keepdim)
    if len(dims) < 2:
        return torch.std(x, dim=dim, correction=correction, keepdim=keepdim), m
    s = torch.std(x, dim=dims[0], correction=correction, keepdim=True).mean(dim=dims[1:], keepdim=True)
    return s.reshape(m.shape), m


def _std_plus_1e6(x, *, dim, correction, keepdim):
    s, m = torch.std_mean(x, dim=dim, correction=correction, keepdim=keepdim)
    return s + 1e-6, m


def _var_eps_1e6(x, *, dim, correction, keepdim):
    v, m = torch.var_mean(x, dim=dim, correction=correction, keepdim=keepdim)
    return torch.sqrt(v + 1e-6), m


SLOW = pytest.mark.slow  # a full verdict each: the default run keeps two
AUDIT = [
    pytest.param(_scaled_not_sqrt, ["std scaled by N/(N-1) instead of sqrt(N/(N-1))"], ["cancellation"],
                 id="scaled_not_sqrt"),
    pytest.param(_first_dim_only, ["reduces over the wrong dims (std over dims (1,) of (1, 2, 3))"], ["cancellation"],
                 id="first_dim_only"),
    pytest.param(_first_dim_then_mean, ["reduces over the wrong dims (std over dims (1,) of (1, 2, 3))"],
                 ["cancellation"], id="first_dim_then_mean", marks=SLOW),
    pytest.param(_std_plus_1e6, ["value mismatch (constant"], ["cancellation"], id="std_plus_1e6", marks=SLOW),
    pytest.param(_var_eps_1e6, ["epsilon bias (sqrt(var + 1e-06), closest fit)"], ["cancellation", "wrong correction"],
                 id="var_eps_1e6", marks=SLOW),
]


@pytest.mark.verdict
@pytest.mark.parametrize(("fn", "named", "not_named"), AUDIT)
def test_audit_witness_is_named_for_what_it_does(fn, named, not_named):
    case = cases.Case(fn.__name__.strip("_"), fn, "torch.std_mean", cases.Claim(), source="audit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = judge(case, 1, "float32", "cpu")
    text = "; ".join(verdict.causes)
    assert not verdict.equivalent
    assert all(n in text for n in named), f"{case.name}: expected {named} in {text!r}"
    assert not any(n in text for n in not_named), f"{case.name}: {not_named} must not be named: {text!r}"


def test_constant_slice_budget_is_what_std_mean_does():
    """std + 1e-6 on a constant 0.3, N = 2048: std_mean gives exactly 0, so 1e-6 is an error (it passed
    the worst-case summation budget of 7e-5)."""
    case = cases.Case("std_plus_1e6", _std_plus_1e6, "torch.std_mean", cases.Claim(), source="audit")
    sample = Sample(shape=(2048,), dtype="float32", regime="constant", scale=0.0, offset=0.3, correction=1)
    assert float(torch.std_mean(sample.build(), correction=1)[0]) == 0.0
    outcome = evaluate(case, sample)
    assert not outcome.ok and outcome.mismatches[0].output == "std", outcome.report()
    assert evaluate(cases.get("two_pass_corrected"), sample).ok  # |x - m^| of a mean stored in float32 is fine
