"""The comparison engine and its budgets: they pass what error analysis allows and fail the rest."""

from __future__ import annotations

import pytest
import torch

import cases
from cases import Case, Claim
from opcompat import tolerances as tol
from opcompat.compare import Target, evaluate, max_kappa
from opcompat.samples import Sample

pytestmark = pytest.mark.meta


def _case(fn, name="probe_case"):
    return Case(name, fn, "torch.std_mean", Claim(), source="test")


def test_one_ulp_off_passes_and_a_percent_off_fails():
    sample = Sample(shape=(64,), dtype="float32", dim=None, correction=1)
    ulp = _case(lambda x, **kw: tuple(t.nextafter(torch.tensor(float("inf"))) for t in torch.std_mean(x, **kw)))
    assert evaluate(ulp, sample).ok
    off = _case(lambda x, **kw: (torch.std_mean(x, **kw)[0] * 1.01, torch.std_mean(x, **kw)[1]))
    outcome = evaluate(off, sample)
    assert not outcome.ok
    text = outcome.report()
    assert "std: Mismatched elements: 1 / 1 (100.0%)" in text
    assert "Greatest excess at index ()" in text and "allowed" in text


def test_report_names_shape_and_dtype_first():
    sample = Sample(shape=(4, 5), dtype="float32", dim=1, correction=1)
    wrong_shape = _case(lambda x, **kw: torch.std_mean(x, dim=1, correction=1, keepdim=True))
    assert "std: shape=(4, 1), but should be (4,)" in evaluate(wrong_shape, sample).report()
    wrong_dtype = _case(lambda x, **kw: tuple(t.double() for t in torch.std_mean(x, **kw)))
    assert "dtype=torch.float64, but should be torch.float32" in evaluate(wrong_dtype, sample).report()


def test_budget_catches_cancellation_but_not_two_pass():
    """At kappa ~ 1e3 in float32, one-pass loses ~u kappa^2; two-pass stays within budget."""
    sample = Sample(shape=(4096,), dtype="float32", regime="ill_conditioned", offset=1000.0, correction=1)
    assert evaluate(cases.get("two_pass_corrected"), sample).ok
    outcome = evaluate(cases.get("one_pass"), sample)
    assert not outcome.ok and outcome.mismatches[0].output == "std"
    assert max_kappa(sample.build().double(), None) > 500


def test_budget_grows_with_n_and_unit_roundoff():
    n_small, n_big = tol.depth(16), tol.depth(8192)
    assert n_small < n_big
    one = torch.tensor(1.0, dtype=torch.float64)
    assert tol.std_bound(torch.float16, 16, one, one, one) > tol.std_bound(torch.float32, 16, one, one, one)
    assert tol.mean_bound(torch.float32, 8192, one, one) > tol.mean_bound(torch.float32, 16, one, one)


def test_wrong_correction_is_detected_at_n_8192_in_float32():
    """The budget must stay below the 1/2N a wrong correction costs at the witnesses' largest N."""
    sample = Sample(shape=(8192,), dtype="float32", correction=1)
    assert not evaluate(cases.get("two_pass_biased"), sample, target=Target(1)).ok
    assert evaluate(cases.get("two_pass_biased"), sample, target=Target(0)).ok


def test_reference_error_multiple_forgives_what_std_mean_cannot_do():
    """Subnormal inputs: a case as inexact as the fused op itself is not blamed."""
    sample = Sample(shape=(64,), dtype="float32", regime="subnormal", scale=1e-39)
    assert evaluate(cases.get("fused"), sample).ok
