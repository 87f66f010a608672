"""The simulated MPS backend: real MPS texts and semantics, parsed by the probe's real code path.

The prediction is a fixture saying std_mean.correction falls back: the installed torch's own MPS
dispatch table may well have a native kernel for it, and the semantics under test do not depend on it.
"""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch

from matrix import predicted_rows, simulated_mps
from matrix import probe as probing
from matrix.probe_status import classify
from opcompat.records import Observation
from opcompat.trace import trace, trace_case
from opcompat.vocab import FALLBACK_ENV, FALLBACK_WARNING

pytestmark = pytest.mark.meta
STD_MEAN = "aten::std_mean.correction"
PREDICTION = {STD_MEAN: {"status": "fallback", "dtype_status": {}},
              "aten::var_mean.correction": {"status": "native", "dtype_status": {"float16": "fallback"}}}


def std_mean(x):
    return torch.std_mean(x, dim=(1, 2, 3), keepdim=True)


@pytest.fixture
def fresh_module(monkeypatch):
    """Re-import simulated_mps under a chosen environment: what a new process would see at start."""
    def load(fallback):
        if fallback is None:
            monkeypatch.delenv(FALLBACK_ENV, raising=False)
        else:
            monkeypatch.setenv(FALLBACK_ENV, fallback)
        return importlib.reload(simulated_mps)
    yield load
    monkeypatch.undo()
    importlib.reload(simulated_mps)


def test_without_the_variable_a_fallback_op_raises_the_real_not_implemented_error(fresh_module):
    sim = fresh_module(None)
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(NotImplementedError) as err, sim.SimulatedMPS(PREDICTION):
        std_mean(x)
    status, _, op = classify(Observation("raised", "NotImplementedError", str(err.value)))
    assert (status, op) == ("not_implemented", STD_MEAN)
    assert "PYTORCH_ENABLE_MPS_FALLBACK=1" in str(err.value)


def test_with_the_variable_it_warns_once_per_process_and_computes_the_cpu_values(fresh_module):
    sim = fresh_module("1")
    x = torch.randn(2, 3, 4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sim.SimulatedMPS(PREDICTION):
            got = std_mean(x)
            std_mean(x)  # a second fallback, same op
            torch.var_mean(x.half(), dim=(1, 2, 3))  # and another op: still no second warning
    texts = [str(w.message) for w in caught if FALLBACK_WARNING.search(str(w.message))]
    assert texts == ["The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and "
                     "will fall back to run on the CPU. This may have performance implications."], texts
    want = std_mean(x)
    assert all(torch.equal(g, w) for g, w in zip(got, want))


def test_the_variable_is_read_once_at_start_as_libtorch_does(fresh_module, monkeypatch):
    sim = fresh_module("0")  # "0" disables, like unset
    monkeypatch.setenv(FALLBACK_ENV, "1")  # too late: already read
    with pytest.raises(NotImplementedError), sim.SimulatedMPS(PREDICTION):
        std_mean(torch.randn(2, 3, 4, 4))
    assert fresh_module("1").FALLBACK_AT_START is True
    assert fresh_module("yes").FALLBACK_AT_START is False  # not an integer


def test_float64_is_refused_with_the_real_type_error():
    with pytest.raises(TypeError, match="MPS framework doesn't support float64"):
        simulated_mps.to_mps(torch.randn(3, dtype=torch.float64))
    x = simulated_mps.to_mps(torch.randn(2, 3, 4, 4))
    with pytest.raises(TypeError, match="doesn't support float64"), simulated_mps.SimulatedMPS({}):
        x.double()
    with simulated_mps.SimulatedMPS({}):
        assert (x.float() + 1).dtype == torch.float32, "float32 ops run"


def test_dtype_specific_statuses_apply_per_dtype(fresh_module):
    sim = fresh_module(None)
    with sim.SimulatedMPS(PREDICTION):
        torch.var_mean(torch.randn(4, 4), dim=1)  # float32: native
        with pytest.raises(NotImplementedError, match=r"aten::var_mean\.correction"):
            torch.var_mean(torch.randn(4, 4).half(), dim=1)


def test_an_unsupported_dtype_is_refused_in_words_the_probe_reads():
    prediction = {"aten::sqrt.default": {"status": "native", "dtype_status": {"bfloat16": "unsupported_dtype"}}}
    with pytest.raises(TypeError) as err, simulated_mps.SimulatedMPS(prediction):
        torch.sqrt(torch.rand(3).bfloat16())
    status, _, _ = classify(Observation("raised", "TypeError", str(err.value)))
    assert status == "unsupported_dtype" and "simulated" in str(err.value)


def test_the_default_prediction_is_the_installed_torchs_own_offline(tmp_path, monkeypatch):
    from matrix.predict import RELEASES

    if predicted_rows.installed_torch_version() not in RELEASES:
        pytest.skip(f"torch {predicted_rows.installed_torch_version()} is not a release the predictor covers")
    monkeypatch.setenv("OPCOMPAT_CACHE", str(tmp_path))  # no cached wheel: the installed torch's files
    table = predicted_rows.installed_prediction([STD_MEAN, "aten::sqrt.default"])
    assert set(table) == {STD_MEAN, "aten::sqrt.default"}
    assert table[STD_MEAN]["status"] in ("native", "fallback", "composite")
    assert table[STD_MEAN]["dtype_status"]["float64"] == "unsupported_dtype"


def _traces():
    x = torch.randn(2, 4, 16, 16)
    import cases

    return {"float32": {"torch.std_mean": trace(std_mean, x), "case:fused": trace_case(cases.get("fused"))}}


@pytest.mark.slow  # several probe children, each importing torch
def test_probe_of_simulated_mps_says_fallback_with_the_variable_and_not_implemented_without():
    found = probing.probe("mps", simulate=True, prediction=PREDICTION, dtypes=("float32", "float64"),
                          traces=_traces(), mps_fallback="both")
    rows = {(r.op, r.dtype): r for r in found.ops}
    f32 = rows[(STD_MEAN, "float32")]
    assert f32.status == "fallback", f32
    assert f32.evidence[0].startswith("without PYTORCH_ENABLE_MPS_FALLBACK: not_implemented (NotImplementedError")
    assert f32.evidence[1].startswith("with PYTORCH_ENABLE_MPS_FALLBACK=1: fallback (The operator "
                                         "'aten::std_mean.correction' is not currently supported")
    assert rows[(STD_MEAN, "float64")].status == "unsupported_dtype"
    cases = {(c.case, c.dtype): c for c in found.cases}
    assert cases[("fused", "float32")].runs_on_device is False
    assert cases[("fused", "float32")].fallback_ops == [STD_MEAN]
    assert cases[("fused", "float64")].message.startswith("unsupported_dtype")
    assert found.simulated and found.device == "mps"


def test_probe_of_simulated_mps_without_the_variable_only():
    found = probing.probe("mps", simulate=True, prediction=PREDICTION, dtypes=("float32",),
                          traces={"float32": {"torch.std_mean": _traces()["float32"]["torch.std_mean"]}},
                          mps_fallback="off")
    assert [(r.op, r.status) for r in found.ops] == [(STD_MEAN, "not_implemented")]
    assert found.children == 1
