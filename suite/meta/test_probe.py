"""The device probe: statuses from what a child saw, a real CPU probe, crash/hang isolation, `here`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from matrix import predicted_rows, probe_child
from matrix import probe as probing
from matrix.__main__ import main as matrix_main
from matrix.probe_child import DeviceArg, decode
from matrix.probe_runner import ROOT, Runner, child_env
from matrix.probe_status import classify
from opcompat.records import CaseRow, Observation
from opcompat.trace import OpCall, trace
from opcompat.vocab import FALLBACK_ENV

pytestmark = pytest.mark.meta
FIXTURES = Path(__file__).parent / "fixtures"
FAKE_CHILD = [sys.executable, str(FIXTURES / "misbehaving_child.py")]

NOT_IMPL = ("The operator 'aten::std_mean.correction' is not currently implemented for the MPS device. If you "
            "want this op to be considered for addition please comment on https://github.com/pytorch/pytorch/"
            "issues/141287 ... `PYTORCH_ENABLE_MPS_FALLBACK=1` ...")
FALLBACK = ("The operator 'aten::sqrt' is not currently supported on the MPS backend and will fall back to run on "
            "the CPU. This may have performance implications. (Triggered internally at MPSFallback.mm:13.)")


def seen(outcome="ok", error_type="", message="", warnings=(), mismatch=""):
    return Observation(outcome, error_type, message, list(warnings), mismatch)


@pytest.mark.parametrize(("observation", "status", "named"), [
    (seen(), "native", None),
    (seen(warnings=[FALLBACK]), "fallback", "aten::sqrt.default"),
    (seen("raised", "NotImplementedError", NOT_IMPL), "not_implemented", "aten::std_mean.correction"),
    # torch 1.12/1.13 wrote "not current implemented"
    (seen("raised", "NotImplementedError", "The operator 'aten::std_mean.correction' is not current implemented "
          "for the MPS device."), "not_implemented", "aten::std_mean.correction"),
    (seen("raised", "TypeError", "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't "
          "support float64. Please use float32 instead."), "unsupported_dtype", None),
    (seen("raised", "RuntimeError", '"std_cpu" not implemented for \'Half\''), "unsupported_dtype", None),
    (seen("raised", "TypeError", "BFloat16 is not supported on MPS"), "unsupported_dtype", None),
    (seen("raised", "NotImplementedError", "Could not run 'aten::foo' with arguments from the 'CUDA' backend."),
     "not_implemented", "aten::foo.default"),
    (seen("raised", "RuntimeError", "CUDA error: an illegal memory access"), "error", None),
    (seen(mismatch="output 0: Tensor-likes are not close!"), "wrong_result", None),
    (seen(warnings=[FALLBACK], mismatch="output 0: differs"), "wrong_result", "aten::sqrt.default"),
    (Observation("crashed", message="killed by SIGSEGV"), "crashed", None),
    (Observation("timeout", message="no answer within 5 s"), "timeout", None),
])
def test_classify(observation, status, named):
    got, message, op = classify(observation)
    assert (got, op) == (status, named), f"classify gave {got}/{op}, expected {status}/{named} [{observation}]"
    if status != "native":
        assert message, "a non-native status must keep its message"


def test_decode_substitutes_the_probed_dtype_and_keeps_other_arguments():
    gen = torch.Generator().manual_seed(0)
    args = decode([{"tensor": [2, 3], "dtype": "float32"}, [1, 2], {"dtype_arg": "float32"}, {"repr": "cpu"},
                   {"tensor": [2], "dtype": "bool"}, None, 1.5], "float16", gen)
    x, dims, dtype, device, mask, none, scalar = args
    assert x.dtype == torch.float16 and x.shape == (2, 3)
    assert (dims, dtype, none, scalar) == ([1, 2], torch.float32, None, 1.5)
    assert isinstance(device, DeviceArg), "a device argument becomes the probed device (or the CPU for the reference)"
    assert mask.dtype == torch.bool
    again = decode([{"tensor": [2, 3], "dtype": "float32"}], "float16", torch.Generator().manual_seed(0))[0]
    assert torch.equal(x, again), "the same seed must give the same values"


def test_cpu_probe_finds_std_mean_native():
    import cases
    from opcompat.trace import trace_case

    x = torch.randn(2, 4, 16, 16)
    traces = {"float32": {"torch.std_mean": trace(lambda t: torch.std_mean(t, dim=(1, 2, 3)), x),
                          "case:fused": trace_case(cases.get("fused"))}}
    before = os.environ.get(FALLBACK_ENV)
    found = probing.probe("cpu", dtypes=("float32", "float16"), traces=traces)
    assert os.environ.get(FALLBACK_ENV) == before, "the probe must never set the variable in the parent"
    rows = {(r.op, r.dtype): r for r in found.ops}
    assert set(rows) == {("aten::std_mean.correction", "float32"), ("aten::std_mean.correction", "float16")}
    assert rows[("aten::std_mean.correction", "float32")].status == "native", rows
    assert found.cases == [CaseRow("fused", d, True, [], "") for d in ("float32", "float16")]
    assert found.children == 1, "cpu items are batched into one child"


def test_child_env_sets_the_fallback_variable_only_when_asked():
    base = {"PATH": "/bin", FALLBACK_ENV: "1"}
    assert FALLBACK_ENV not in child_env(False, base)
    assert child_env(True, {"PATH": "/bin"})[FALLBACK_ENV] == "1"
    assert base[FALLBACK_ENV] == "1", "the caller's environment is not modified"
    assert str(ROOT) in child_env(False, base)["PYTHONPATH"]


def _fake_traces(*ops):
    return {"float32": {"fake": [OpCall(op, ({"tensor": [2], "dtype": "float32"},), ()) for op in ops]}}


def test_a_crash_and_a_hang_cost_one_item_each_and_the_run_goes_on():
    runner = Runner(child_argv=FAKE_CHILD, item_timeout=1.0, startup_timeout=10.0)
    traces = _fake_traces("aten::a.default", "aten::crash.default", "aten::b.default", "aten::hang.default",
                          "aten::c.default")
    found = probing.probe("cpu", dtypes=("float32",), traces=traces, runner=runner)
    status = {r.op: r for r in found.ops}
    assert [status[o].status for o in ("aten::a.default", "aten::crash.default", "aten::b.default",
                                          "aten::hang.default", "aten::c.default")] == [
        "native", "crashed", "native", "timeout", "native"], found.ops
    assert "SIGABRT" in status["aten::crash.default"].message
    assert "simulated segfault" in status["aten::crash.default"].message, "the child's stderr tail is kept"
    assert "killed" in status["aten::hang.default"].message
    assert found.children == 3


def test_an_mps_child_stops_after_a_fallback_warning_and_a_fresh_one_goes_on():
    # TORCH_WARN_ONCE: a second fallback in the same process would pass unseen, so each gets a new child.
    runner = Runner(child_argv=FAKE_CHILD, item_timeout=5.0, startup_timeout=10.0)
    traces = _fake_traces("aten::fallback.default", "aten::a.default", "aten::fallback2.default")
    found = probing.probe("mps", dtypes=("float32", "float16"), traces=traces, runner=runner, mps_fallback="on")
    assert [(r.op, r.dtype, r.status) for r in found.ops] == [
        ("aten::fallback.default", "float32", "fallback"), ("aten::fallback.default", "float16", "fallback"),
        ("aten::a.default", "float32", "native"), ("aten::a.default", "float16", "native"),
        ("aten::fallback2.default", "float32", "native"), ("aten::fallback2.default", "float16", "native")]
    assert found.children == 3, "one child per fallback warning, one for the rest"


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_probe_refuses_mps_here_and_simulated_results_for_the_published_folder(capsys):
    assert matrix_main(["probe", "--device", "mps"]) == 2
    assert "--device mps: MPS is" in capsys.readouterr().err
    assert matrix_main(["probe", "--device", "mps", "--simulate", "--write"]) == 2
    assert "simulated results are never written" in capsys.readouterr().err
    assert matrix_main(["probe", "--device", "cpu", "--simulate"]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_here_refuses_an_absent_device(capsys):
    assert matrix_main(["here", "--device", "cuda", "--no-build"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_predicted_case_rows_use_the_dtype_each_op_runs_at():
    f32 = {"tensor": [2], "dtype": "float32"}
    f16 = {"tensor": [2], "dtype": "float16"}
    traces = {
        "float32": {"case:upcast": [OpCall("aten::std_mean.correction", (f32,), ())],
                    "case:fused": [OpCall("aten::std_mean.correction", (f32,), ())]},
        "float16": {"case:upcast": [OpCall("aten::_to_copy.default", (f16,), ()),
                                    OpCall("aten::std_mean.correction", (f32,), ())],
                    "case:fused": [OpCall("aten::std_mean.correction", (f16,), ())]},
    }
    _, case_ops = probing.traced(traces)
    predictions = {
        "aten::std_mean.correction": {"status": "native", "dtype_status": {
            "float32": "native", "float16": "fallback", "bfloat16": "unsupported_dtype"}, "evidence": ["rule"]},
        "aten::_to_copy.default": {"status": "composite", "dtype_status": {}, "evidence": []},
    }
    ops, cases = predicted_rows.predicted_rows(predictions, case_ops)
    rows = {(c.case, c.dtype): c for c in cases}
    assert rows[("fused", "float16")].fallback_ops == ["aten::std_mean.correction"]
    assert not rows[("fused", "float16")].runs_on_device
    assert rows[("upcast", "float16")].runs_on_device, "upcast runs std_mean at float32, which is native"
    assert rows[("fused", "bfloat16")].message == "unsupported_dtype: aten::std_mean.correction"
    assert rows[("upcast", "float64")].message.startswith("unsupported_dtype")
    assert {(o.dtype, o.status) for o in ops if o.op == "aten::std_mean.correction"} == {
        ("float32", "native"), ("float16", "fallback"), ("bfloat16", "unsupported_dtype"),
        ("float64", "unsupported_dtype")}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_the_probes_wrong_result_check_is_the_engines_loose_mode(dtype):
    """Same call, device vs CPU: rounding passes; a wrong kernel (off by half, a NaN, a shape) is named."""
    expected = torch.linspace(0.5, 2.0, 16, dtype=torch.float64).to(dtype)
    u = torch.finfo(dtype).eps / 2
    assert probe_child.mismatch((expected * (1 + u)).to(dtype), expected, str(dtype)) == ""
    assert "Mismatched elements" in probe_child.mismatch(expected * 1.5, expected, str(dtype))
    nan = expected.clone()
    nan[3] = float("nan")
    assert "non-finite pattern" in probe_child.mismatch(nan, expected, str(dtype))
    assert "shape" in probe_child.mismatch(expected[:4], expected, str(dtype))
    assert probe_child.mismatch((expected, expected), (expected,), str(dtype)).startswith("2 outputs")
