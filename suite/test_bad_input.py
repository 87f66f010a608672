"""Bad input gets a clear message naming the thing; nothing turns into a silent pass."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import cases
from opcompat.compare import evaluate
from opcompat.samples import InputError, Sample, check_input


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_tensor_is_refused_by_name(dtype):
    with pytest.raises(InputError, match=f"{dtype} tensor: std_mean is defined for floating-point"):
        check_input(torch.zeros(3, 4, dtype=dtype), dim=None, correction=1)


def test_empty_reduction_is_refused():
    with pytest.raises(InputError, match=r"empty reduction: dim=1 of shape \(3, 0\) reduces over 0 elements"):
        check_input(torch.zeros(3, 0), dim=1, correction=1)


def test_out_of_range_dim_is_refused():
    with pytest.raises(InputError, match=r"dim=\(0, 5\) is out of range for a 2-d tensor"):
        check_input(torch.zeros(3, 2), dim=(0, 5), correction=1)


@pytest.mark.parametrize("correction", [-1, "1", True])
def test_bad_correction_is_refused(correction):
    with pytest.raises(InputError, match="correction="):
        check_input(torch.zeros(3), dim=None, correction=correction)


def test_n_minus_correction_not_positive_is_compared_and_noted():
    """N - correction <= 0: std is inf/nan by definition; the comparison says so and still checks shapes."""
    sample = Sample(shape=(2, 3), dtype="float32", dim=1, correction=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = evaluate(cases.get("two_pass_corrected"), sample)
    assert outcome.ok, outcome.report()
    assert "N - correction = 3 - 3 <= 0" in outcome.note


def test_nan_input_propagates_and_is_checked():
    """NaN inputs: positions must match the reference; a case that drops them fails."""
    sample = Sample(shape=(4, 8), dtype="float32", regime="nonfinite", special="nan", dim=1, seed=3)
    assert evaluate(cases.get("fused"), sample).ok
    nan_dropping = cases.Case("nan_dropping", lambda x, **kw: torch.std_mean(x.nan_to_num(), **kw),
                              "torch.std_mean", cases.Claim(), source="test")
    outcome = evaluate(nan_dropping, sample)
    assert [m.kind for m in outcome.mismatches] == ["nonfinite", "nonfinite"], outcome.report()
    assert "got finite" in str(outcome.mismatches[0])


def test_case_that_raises_is_a_named_mismatch():
    def broken(x, **kw):
        raise NotImplementedError("The operator 'aten::std_mean.correction' is not currently implemented")

    outcome = evaluate(cases.Case("broken", broken, "torch.std_mean", cases.Claim(), source="test"),
                       Sample(shape=(3,), dtype="float32"))
    assert not outcome.ok
    assert outcome.mismatches[0].kind == "error"
    assert "NotImplementedError: The operator 'aten::std_mean.correction'" in outcome.report()


def test_inf_input_mean_matches_truth_not_welford():
    """std_mean's fused mean is NaN next to +inf; torch.mean gives inf. Either is accepted, nothing else."""
    x = torch.tensor([1.0, math.inf, 2.0])
    assert math.isnan(torch.std_mean(x)[1]) or math.isinf(torch.std_mean(x)[1])
    sample = Sample(shape=(1, 1, 1, 3), dtype="float32", regime="nonfinite", special="inf")
    assert evaluate(cases.get("aniso_std_and_mean"), sample).ok
    finite_mean = cases.Case("finite_mean", lambda x, **kw: (torch.std_mean(x, **kw)[0], torch.zeros(())),
                             "torch.std_mean", cases.Claim(), source="test")
    outcome = evaluate(finite_mean, Sample(shape=(3,), dtype="float32", regime="nonfinite", special="inf"))
    assert [(m.output, m.kind) for m in outcome.mismatches] == [("mean", "nonfinite")], outcome.report()


def test_case_returning_a_bare_tensor_is_named():
    """A bare tensor used to be iterated as if it were the outputs (or crash for a 0-d one)."""
    bare = cases.Case("bare_std", lambda x, **kw: torch.std(x, **kw), "torch.std", cases.Claim(), source="test",
                      outputs=("std",))
    for shape in [(4, 5), ()]:
        outcome = evaluate(bare, Sample(shape=shape, dtype="float32", dim=None, correction=0))
        assert not outcome.ok
        assert "case 'bare_std' returned a bare Tensor, not a tuple" in outcome.report(), outcome.report()
        assert "`return (out,)`" in outcome.report()


def test_case_returning_an_int_dtype_is_named():
    as_int = cases.Case("int_std", lambda x, **kw: tuple(t.to(torch.int64) for t in torch.std_mean(x, **kw)),
                        "torch.std_mean", cases.Claim(), source="test")
    outcome = evaluate(as_int, Sample(shape=(8,), dtype="float32", correction=0))
    assert [m.kind for m in outcome.mismatches] == ["dtype", "dtype"]
    assert "case int_std" in outcome.report() and "dtype=torch.int64, but should be torch.float32" in outcome.report()


def test_generic_family_case_returning_a_bare_tensor_is_named():
    from opcompat.calls import Call, tensor
    from opcompat.compare import run

    bare = cases.Case("bare_isin", lambda e, t: torch.isin(e, t), "torch.isin", cases.Claim(), family="isin",
                      source="test")
    call = Call("isin", "int64", "vector", (tensor([1, 2], "int64"), tensor([2], "int64")))
    outcome = run(bare, call)
    assert "case 'bare_isin' returned a bare Tensor, not a tuple" in outcome.report()


def test_int_dtype_sample_is_refused_naming_the_case():
    """An integer dtype used to raise a bare KeyError('int64') from deep inside the sample."""
    with pytest.raises(InputError, match="case 'fused': dtype 'int64': std_mean samples are floating point"):
        evaluate(cases.get("fused"), Sample(shape=(3,), dtype="int64"))
