"""The op tracer keeps going past an op whose kernel lacks the dtype (torch 2.0 has no CPU float16 sqrt)."""

from __future__ import annotations

import pytest
import torch

import cases
from matrix import probe as probing
from matrix import traces
from opcompat.trace import FAMILY_CASE, MOVE_UNKNOWN, device_moves, is_device_move, trace, trace_all

pytestmark = pytest.mark.meta


@pytest.mark.meta
def test_trace_goes_past_an_op_the_cpu_lacks_for_the_dtype():
    # No torch release has a CPU float16 Cholesky: the op is recorded and the trace reaches the sum after it.
    x = torch.eye(3, dtype=torch.float16)
    with pytest.raises(RuntimeError):
        torch.linalg.cholesky(x)
    ops = [c.op for c in trace(lambda t: torch.linalg.cholesky(t).sum(), x)]
    assert any("cholesky" in op for op in ops), ops
    assert ops[-1] == "aten::sum.default", ops


@pytest.mark.meta
def test_trace_reraises_a_failure_that_is_not_about_the_dtype():
    with pytest.raises(RuntimeError):
        trace(lambda t: t.view(5), torch.ones(3))


# -- cases of other op families ----------------------------------------------------------------------------
def _family_trace(names, dtype="float32"):
    traced = trace_all([cases.get(n) for n in names], dtype)
    return {key[len(FAMILY_CASE):]: calls for key, calls in traced.items() if key.startswith(FAMILY_CASE)}


def test_a_family_case_is_traced_on_its_battery_with_its_backward_and_its_device_moves():
    found = _family_trace(["bicubic_per_sample", "bicubic_cpu_round_trip", "bicubic_manual", "grid_sample_gather",
                           "fused"])
    assert set(found) == {"bicubic_per_sample@float32", "bicubic_cpu_round_trip@float32", "bicubic_manual@float32",
                          "grid_sample_gather@float32"}, "std_mean's cases keep their own key"
    ops = {name: [c.op for c in calls if not is_device_move(c)] for name, calls in found.items()}
    moves = {name: [c for c in calls if is_device_move(c)] for name, calls in found.items()}
    # the per-sample loop calls the very op it is meant to replace
    assert "aten::upsample_bicubic2d.default" in ops["bicubic_per_sample@float32"]
    assert "aten::upsample_bicubic2d.default" not in ops["bicubic_manual@float32"]
    assert "aten::index.Tensor" in ops["bicubic_manual@float32"]
    # the case computes its gradients itself: its backward's ops are traced too
    assert "aten::scatter_add.default" in ops["grid_sample_gather@float32"]
    (move,) = moves["bicubic_cpu_round_trip@float32"]
    assert move.op == "aten::_to_copy.default" and dict(move.kwargs)["device"] == {"repr": "cpu"}
    assert not moves["bicubic_manual@float32"] and not moves["bicubic_per_sample@float32"]


def test_an_integer_only_family_is_traced_once_at_int64():
    assert list(_family_trace(["torch_cumsum"], "float32")) == ["torch_cumsum@int64"]
    assert _family_trace(["torch_cumsum"], "float16") == {}
    assert list(_family_trace(["bicubic"], "float16")) == ["bicubic@float16"]


def test_device_moves_sees_a_cpu_round_trip_not_a_move_to_the_arguments_device():
    x = torch.ones(3)
    assert device_moves(lambda t: (t.cpu() * 2).to(t.device), (x,), {})[0].op == "aten::_to_copy.default"
    assert device_moves(lambda t: (t * 2).to(t.device), (x,), {}) == []
    assert device_moves(lambda t: t.to("cpu", torch.float64), (x,), {})
    (unknown,) = device_moves(lambda t: t * t.sum().item(), (x,), {})
    assert unknown.op == MOVE_UNKNOWN and is_device_move(unknown), "a value on meta cannot be read: unknown, said so"


def test_a_trace_file_keeps_family_cases_apart_and_says_which_leave_the_device(tmp_path):
    traced = probing.trace_cases([cases.get(n) for n in ("fused", "bicubic", "bicubic_cpu_round_trip")])
    calls, case_ops = probing.traced(traced)
    family_ops, leaves = probing.family_traced(traced)
    assert list(case_ops) == ["fused"] and "aten::upsample_bicubic2d.default" not in {c.op for c in calls}
    assert leaves == {"bicubic": False, "bicubic_cpu_round_trip": True}
    assert family_ops["bicubic"]["float16"] == [("aten::upsample_bicubic2d.default", "float16")]
    path = traces.write(traces.make("2.13.0", calls, case_ops, family_ops, leaves), tmp_path)
    (_, data), = traces.load_dir(tmp_path)[0].items()
    assert traces.family_case_ops(data) == family_ops and data["leaves_device"] == leaves
    assert list(data["cases"]) == ["fused"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines.index(' "family_cases": {') < lines.index(' "cases": {'), "family cases are written first"


def test_the_modes_that_run_in_every_child_never_pull_in_dynamo():
    """torch >= 2.9 imports torch._dynamo (seconds) for a dispatch mode unless _should_skip_dynamo says False."""
    from matrix.probe_child import OpsReached
    from matrix.simulated_mps import SimulatedMPS
    from opcompat.trace import CountingRecorder, UncompiledDispatchMode

    for mode in (UncompiledDispatchMode, CountingRecorder, SimulatedMPS, OpsReached):
        assert mode._should_skip_dynamo() is False, mode.__name__
