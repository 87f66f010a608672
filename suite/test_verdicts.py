"""Pinned verdicts: the Fooocus advice's claims, and the textbook pitfalls, on fixed witnesses.

Each row says what a replacement does to the original call, with its cause. If PyTorch or a case
changes so that a verdict moves, this fails and names the row.
"""

from __future__ import annotations

import warnings

import pytest

import cases
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
    import torch

    from opcompat.samples import Sample

    case = cases.get("rescale_manual")
    cond = Sample(shape=(2, 4, 16, 16), dtype="float32", seed=1).build(device)
    x_cfg = Sample(shape=(2, 4, 16, 16), dtype="float32", scale=3.0, seed=2).build(device)
    ratio = case.fn(cond)[0] / case.fn(x_cfg)[0]
    original = torch.std(cond, dim=(1, 2, 3), keepdim=True) / torch.std(x_cfg, dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(ratio.cpu(), original.cpu(), rtol=1e-5, atol=0)
