"""A workload: the aten overloads a target calls, per dtype, with how often, and what composites call.

Made by tracing the target on the CPU (or the meta device) with ``opcompat.trace.CountingRecorder``,
or read from a saved op list. The trace is the installed torch's: an older release may decompose a
composite op into other ops than this one does.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode

try:  # torch >= 2.3
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:
    SDPBackend = sdpa_kernel = None

from matrix.scan.target import Target, TargetError, run_guarded, runner
from opcompat.trace import NO_TENSOR, CountingRecorder
from opcompat.vocab import display

# scaled_dot_product_attention picks a kernel per device: on the CPU a CPU-only flash kernel
# (aten::_scaled_dot_product_flash_attention_for_cpu) that MPS never runs. MPS takes the math path
# (aten/src/ATen/native/transformers/attention.cpp: from torch 2.5 through its own kernel,
# _scaled_dot_product_attention_math_for_mps, pytorch/pytorch#131362), so the CPU trace takes it too.
SDPA_NOTE = ("scaled_dot_product_attention traced through its math path (MPS has no flash kernel; the CPU's "
             "_scaled_dot_product_flash_attention_for_cpu never runs on MPS)")


# Composite kernels that choose a kernel by device (aten/src/ATen/native/Convolution.cpp: _convolution
# picks mkldnn / slow_conv on the CPU, _mps_convolution(_transpose) on MPS): the CPU's choice in the
# callee map becomes MPS's, so a convolution is judged by the kernel MPS runs.
MPS_COUNTERPART = {
    "aten::mkldnn_convolution.default": "aten::_mps_convolution.default",
    "aten::_slow_conv2d_forward.default": "aten::_mps_convolution.default",
    "aten::thnn_conv2d.default": "aten::_mps_convolution.default",
    "aten::_nnpack_spatial_convolution.default": "aten::_mps_convolution.default",
    "aten::slow_conv_transpose2d.default": "aten::_mps_convolution_transpose.default",
    "aten::_scaled_dot_product_flash_attention_for_cpu.default": "aten::_scaled_dot_product_attention_math.default",
}


def mps_callees(callees: dict) -> dict:
    """The callee map with the CPU's device-chosen kernels replaced by MPS's."""
    return {op: list(dict.fromkeys(MPS_COUNTERPART.get(c, c) for c in calls)) for op, calls in callees.items()}


def math_sdpa():
    return sdpa_kernel(SDPBackend.MATH) if sdpa_kernel is not None else contextlib.nullcontext()


class _SeesSdpa(TorchFunctionMode):
    """Notes whether the target called scaled_dot_product_attention (its ops alone do not say so)."""

    def __init__(self):
        super().__init__()
        self.seen = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "scaled_dot_product_attention":
            self.seen = True
        return func(*args, **(kwargs or {}))


@dataclass
class Workload:
    target: str
    counts: dict  # {(op, dtype): calls}, most called first
    callees: dict = field(default_factory=dict)  # {op: [ops it calls]} for composite-explicit ops
    traced_with: str = ""  # "torch 2.13.0 on cpu", or the op list's file
    notes: list = field(default_factory=list)

    @property
    def pairs(self) -> list:
        return list(self.counts)

    def to_json(self) -> dict:
        return {"target": self.target, "traced_with": self.traced_with, "notes": list(self.notes),
                "calls": [{"op": op, "dtype": dtype, "count": n} for (op, dtype), n in self.counts.items()],
                "callees": {op: list(c) for op, c in self.callees.items() if c}}


def sorted_counts(counts) -> dict:
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))  # stable: ties keep first-seen order


def trace_target(target: Target, inputs: str | None = None, on: str = "cpu", script_args=()) -> Workload:
    run = runner(target, inputs, on, script_args)
    recorder, sdpa = CountingRecorder(), _SeesSdpa()

    def traced():
        with sdpa, recorder:
            run()

    run_guarded(target, traced, on, math_sdpa())
    if not recorder.counts:
        raise TargetError(f"TARGET {target.spec} ran but called no aten op: nothing to scan")
    return Workload(target.spec, sorted_counts(recorder.counts),
                    mps_callees(recorder.callees),
                    f"torch {torch.__version__} on {on}", [SDPA_NOTE] if sdpa.seen else [])


def load_op_list(target: Target) -> Workload:
    path = target.path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"TARGET {target.spec}: cannot read the op list: {exc}") from None
    counts, callees = {}, {}
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TargetError(f"TARGET {target.spec}: not JSON: {exc}") from None
        data = data.get("workload", data) if isinstance(data, dict) else data
        if isinstance(data, dict) and "calls" in data:
            rows, callees = data["calls"], dict(data.get("callees") or {})
            try:
                counts = {(display(r["op"]), r.get("dtype", NO_TENSOR)): int(r.get("count", 1)) for r in rows}
            except (TypeError, KeyError, ValueError) as exc:
                raise TargetError(f"TARGET {target.spec}: a 'calls' row is not {{op, dtype, count}}: {exc}") from None
        elif isinstance(data, list) and all(isinstance(op, str) for op in data):
            counts = {(display(op), NO_TENSOR): 1 for op in data}
        elif isinstance(data, dict) and all(isinstance(n, int) for n in data.values()):
            counts = {(display(op), NO_TENSOR): n for op, n in data.items()}
        else:
            raise TargetError(f"TARGET {target.spec}: expected a scan --json output, a list of ops, or {{op: count}}")
    else:
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) > 3 or (len(words) == 3 and not words[2].isdigit()):
                raise TargetError(f"TARGET {target.spec}:{number}: expected 'aten::op.overload [dtype] [count]', "
                                  f"got {line.strip()!r}")
            dtype = words[1] if len(words) > 1 and not words[1].isdigit() else NO_TENSOR
            count = int(words[-1]) if words[-1].isdigit() and len(words) > 1 else 1
            key = (display(words[0]), dtype)
            counts[key] = counts.get(key, 0) + count
    if not counts:
        raise TargetError(f"TARGET {target.spec}: the op list is empty")
    return Workload(target.spec, sorted_counts(counts), callees, f"op list {path}")


def workload_of(target: Target, inputs=None, on="cpu", script_args=()) -> Workload:
    if target.kind == "ops":
        return load_op_list(target)
    return trace_target(target, inputs, on, script_args)

