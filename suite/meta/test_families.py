"""The family engine: a wrong replacement fails its family's property with a shrunk counterexample and a
runnable repro; every case has its own hypothesis database key; verdicts say their family."""

from __future__ import annotations

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
from suite.meta import planted
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
    planted.register(monkeypatch, WRONG.values())


def test_every_family_has_a_wrong_case_here():
    assert set(WRONG) >= set(family.known()) - {"attention", "upsample", "grid_sample", "weight_norm",
                                                 "batch_loop"}, "add a wrong case for the new family"


@pytest.mark.slow  # shrinking a float input takes ~5 s; test_end_to_end checks the same through pytest
def test_wrong_std_mean_case_fails_shrunk_with_a_repro():
    text = planted.failure(WRONG["std_mean"], ["float32"])
    assert "claim broken: std_mean at the caller's correction" in text
    assert "Sample(shape=" in text
    assert re.search(r"vs std_mean at correction=[1-9]", text), text  # the caller's, which the case ignores
    printed = planted.run_repro(text)
    assert printed.count("tensor(") >= 2, printed


def test_isin_shim_fails_on_a_one_element_input():
    """transformers' tile/eq/sum shim: a 1-element input comes back 0-d (squeeze)."""
    text = planted.failure(WRONG["isin"], ["int64"])
    assert "shape=(), but should be (1,)" in text, text
    assert "[single]" in text
    printed = planted.run_repro(text)
    assert "tensor(True)" in printed or "tensor(False)" in printed, printed  # the shim's 0-d answer


def test_int32_cumsum_overflow_is_found_and_shrunk():
    text = planted.failure(WRONG["cumsum"], ["int64"])
    assert "[int64_range]" in text
    values = [int(v) for v in re.search(r"values=\[([-0-9, ]+)\]", text).group(1).split(",")]
    # shrunk to one element that int32 cannot hold, or a partial sum past 2^31 - 1
    assert max(abs(v) for v in values) > 2**31 - 1 or abs(sum(values)) > 2**31 - 1, text
    assert len(values) <= 2, text
    planted.run_repro(text)


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


def test_verdicts_command_judges_each_family_at_its_own_dtypes_once(capsys):
    import argparse
    import json

    from matrix import verdicts_cmd

    parser = argparse.ArgumentParser()
    verdicts_cmd.add_arguments(parser)
    args = parser.parse_args(["--case", "isin_broadcast_any", "--case", "torch_cumsum", "--json"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert verdicts_cmd.run(args) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = [(r["case"], r["dtype"]) for r in rows]
    assert len(keys) == len(set(keys)), keys
    assert {k for k in keys if k[0] == "torch_cumsum"} == {("torch_cumsum", "int64"), ("torch_cumsum", "int32")}
    assert ("isin_broadcast_any", "float32") in keys and ("isin_broadcast_any", "int64") in keys
