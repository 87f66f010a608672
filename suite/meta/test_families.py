"""The family engine: a wrong replacement fails its family's property with a shrunk counterexample and a
runnable repro; every case has its own hypothesis database key; verdicts say their family."""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import pytest
import torch
from hypothesis.internal.reflection import function_digest

import cases
from cases import Case, Claim
from opcompat import family
from opcompat.calls import Call, tensor
from opcompat.compare import close
from opcompat.verdicts import judge
from suite.test_claims import claim_property

pytestmark = pytest.mark.meta


def _biased(x, *, dim, correction, keepdim):  # ignores the caller's correction
    return torch.std_mean(x, dim=dim, correction=0, keepdim=keepdim)


WRONG = {
    "std_mean": Case("wrong_std_mean", _biased, "torch.std_mean", Claim(), source="test"),
    # the shipped shim, claiming what transformers' name suggests: isin, for any input
    "isin": Case("wrong_isin", cases.get("isin_mps_friendly").fn, "torch.isin", Claim(), family="isin",
                 source="test"),
    # int32 cumsum, claiming to be exact everywhere
    "cumsum": Case("wrong_cumsum", cases.get("cumsum_via_int32").fn, "torch.cumsum", Claim(), family="cumsum",
                   source="test"),
}


@pytest.fixture(autouse=True)
def _wrong_cases_are_registered(monkeypatch):
    """As if each wrong case were a file in cases/: the repro finds it with cases.get."""
    found, problems = cases.all_cases()
    monkeypatch.setattr(cases, "_cache", ([*found, *WRONG.values()], problems))


def _failure(case, dtypes):
    with warnings.catch_warnings(), pytest.raises(AssertionError) as info:
        warnings.simplefilter("ignore")
        claim_property(case, torch.device("cpu"), dtypes)()
    error = info.value
    return str(error) + "\n" + "\n".join(getattr(error, "__notes__", []))


def _run_repro(text):
    source = text.split("repro:\n", 1)[1]
    source = source.split("\nFailing test case", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<repro>", "exec"), {})
    return out.getvalue()


def test_every_family_has_a_wrong_case_here():
    assert set(WRONG) >= set(family.known()) - {"attention", "upsample", "grid_sample", "weight_norm",
                                                 "batch_loop"}, "add a wrong case for the new family"


@pytest.mark.slow  # shrinking a float input takes ~5 s; test_end_to_end checks the same through pytest
def test_wrong_std_mean_case_fails_shrunk_with_a_repro():
    text = _failure(WRONG["std_mean"], ["float32"])
    assert "claim broken: std_mean at the caller's correction" in text
    assert "Sample(shape=" in text and "correction=1" in text
    printed = _run_repro(text)
    assert printed.count("tensor(") >= 2, printed


def test_isin_shim_fails_on_a_one_element_input():
    """transformers' tile/eq/sum shim: a 1-element input comes back 0-d (squeeze)."""
    text = _failure(WRONG["isin"], ["int64"])
    assert "shape=(), but should be (1,)" in text, text
    assert "[single]" in text
    printed = _run_repro(text)
    assert "tensor(True)" in printed or "tensor(False)" in printed, printed  # the shim's 0-d answer


def test_int32_cumsum_overflow_is_found_and_shrunk():
    text = _failure(WRONG["cumsum"], ["int64"])
    assert "[int64_range]" in text
    values = [int(v) for v in re.search(r"values=\[([-0-9, ]+)\]", text).group(1).split(",")]
    # shrunk to one element that int32 cannot hold, or a partial sum past 2^31 - 1
    assert max(abs(v) for v in values) > 2**31 - 1 or abs(sum(values)) > 2**31 - 1, text
    assert len(values) <= 2, text
    _run_repro(text)


def test_every_case_has_its_own_database_key():
    """Two cases with one key would replay each other's saved counterexamples."""
    found = cases.all_cases()[0]
    digests = {}
    for case in found:
        prop = claim_property(case, torch.device("cpu"), list(family.get(case.family).dtypes[:1]))
        digest = function_digest(prop.hypothesis.inner_test)
        assert digest not in digests, f"{case.name} shares its hypothesis database key with {digests[digest]}"
        digests[digest] = case.name
    assert len(digests) == len(found)


def test_verdict_json_names_family_and_ops():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shim = judge(cases.get("isin_mps_friendly"), None, "int64")
        exact = judge(cases.get("isin_broadcast_any"), None, "int64")
    data = shim.to_json()
    assert {"family", "case", "dtype", "equivalent", "causes", "counterexample", "ops"} <= set(data)
    assert data["family"] == "isin" and data["ops"] == ["aten::isin.Tensor_Tensor"] and data["correction"] is None
    assert not shim.equivalent and "shape=(), but should be (1,)" in shim.counterexample
    assert exact.equivalent, exact.cell()


def test_close_exact_loose_and_budget():
    a = torch.tensor([1, 2, 3])
    assert close(a, a.clone(), budget="exact").ok
    report = close(torch.tensor([1, 2, 4]), a, budget="exact")
    assert not report.ok and "index (2,): got 4, truth 3" in str(report)
    x = torch.tensor([1.0, 2.0], dtype=torch.float16)
    off = x * (1 + 2**-7)  # 16 u of float16: outside the budget of one op, inside the loose bound
    assert not close(off, x, truth=x.double(), budget="elementwise").ok
    assert close(off, x, mode="loose").ok
    assert not close(x * 1.2, x, mode="loose").ok
    assert "shape=(1,), but should be (2,)" in str(close(x[:1], x))
    with pytest.raises(KeyError, match="no error budget 'nope'"):
        close(x, x, truth=x.double(), budget="nope")


def test_call_repro_rebuilds_the_same_tensors():
    call = Call("isin", "int32", "vector", (tensor([1, 2, 3], "int32"), tensor([2], "int32")))
    args, _ = eval(repr(call), {"Call": Call, "TensorSpec": type(call.args[0])}).build()
    assert torch.equal(args[0], torch.tensor([1, 2, 3], dtype=torch.int32))
