"""A simulated MPS backend, for CI on machines that have no Apple GPU.

It runs on the CPU and calls itself "mps". A TorchDispatchMode sees every aten call and applies what
``matrix.predict`` says the installed torch's macOS build does with it:

- native (or composite, or an op the prediction does not know): run it;
- fallback: if ``PYTORCH_ENABLE_MPS_FALLBACK`` was set to a non-zero integer when this module was
  imported (libtorch reads it once, when it loads), warn once per process and run it; otherwise raise
  NotImplementedError;
- any float64 tensor or dtype: raise the TypeError real MPS raises (the MPS framework has no float64);
- unsupported_dtype for another dtype: raise a TypeError saying so.

The warning and error texts are those of aten/src/ATen/mps/MPSFallback.mm and OperationUtils.mm, so the
probe parses a simulated run with the very code that parses a real one. The warning is once per process
because the real one is TORCH_WARN_ONCE. The error text is the recent one: it asks for comments on
pytorch/pytorch#141287, where older releases pointed at the MPS op-coverage tracker, #77764.

A simulated result is evidence about opcompat's own plumbing, never about a Mac: results.py refuses to
write one into matrix/results/ and build.py refuses to publish one.
"""

from __future__ import annotations

import os
import warnings

import torch

from opcompat.trace import UncompiledDispatchMode, overload_name
from opcompat.vocab import (
    FALLBACK_WARNING_TEXT,
    FLOAT64_ERROR_TEXT,
    NOT_IMPLEMENTED_TEXT,
    dtype_name,
    fallback_enabled,
    printed,
)

DEVICE_NAME = "simulated MPS (the CPU, with the predicted MPS dispatch table)"

# Read once, at import, as libtorch reads it once when it registers the MPS fallback.
FALLBACK_AT_START = fallback_enabled(os.environ)

# Statuses under which the op simply runs ("unknown": the prediction cannot tell; assume it runs).
RUNS = {"native", "composite", "unknown_op", "unknown"}
# A dtype one kernel refuses has no single real text (each MPS kernel words its own check); this one
# says it is simulated, in the words the probe reads as a dtype refusal.
UNSUPPORTED_DTYPE = "MPS does not support {dtype} for {op} (simulated: the prediction says unsupported_dtype)"

_warned = False  # TORCH_WARN_ONCE: one fallback warning per process, whichever op comes first


def _warn_fallback_once(op):
    # TORCH_WARN_ONCE: once per process, unless torch.set_warn_always(True), which makes it warn each time.
    global _warned
    if not _warned or torch.is_warn_always_enabled():
        _warned = True
        warnings.warn(FALLBACK_WARNING_TEXT.format(op=printed(op)), UserWarning, stacklevel=3)


def _is_float64(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.float64
    if isinstance(value, torch.dtype):
        return value == torch.float64
    if isinstance(value, (list, tuple)):
        return any(_is_float64(v) for v in value)
    return False


def _first_float_dtype(values):
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return dtype_name(v.dtype)
        if isinstance(v, (list, tuple)):
            found = _first_float_dtype(v)
            if found:
                return found
    return None


def to_mps(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor.to("mps")`` on the simulated device: a copy, refused for float64 as on a Mac."""
    if tensor.dtype == torch.float64:
        raise TypeError(FLOAT64_ERROR_TEXT)
    return tensor.clone()


class SimulatedMPS(UncompiledDispatchMode):
    """Apply predicted MPS statuses to every aten call made under this mode.

    ``statuses``: {"aten::op.overload": {"status": ..., "dtype_status": {dtype: status}}}, as
    ``prediction_table`` makes from ``matrix.predict``. ``fallback_enabled``: None reads the variable
    as it was when this module was imported (the real behaviour); tests may pin it.
    """

    def __init__(self, statuses: dict, fallback_enabled=None):
        super().__init__()
        self.statuses = statuses
        self.fallback_enabled = FALLBACK_AT_START if fallback_enabled is None else fallback_enabled

    def status(self, op: str, dtype) -> str:
        entry = self.statuses.get(op)
        if entry is None:
            return "native"  # an op the prediction was not asked about (bookkeeping ops): assume it runs
        return entry.get("dtype_status", {}).get(dtype) or entry.get("status", "native")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = overload_name(func)
        if _is_float64(args) or _is_float64(list(kwargs.values())):
            raise TypeError(FLOAT64_ERROR_TEXT)
        dtype = _first_float_dtype(args)
        status = self.status(op, dtype)
        if status == "unsupported_dtype":
            raise TypeError(UNSUPPORTED_DTYPE.format(dtype=dtype, op=printed(op)))
        if status not in RUNS:  # "fallback", or anything the prediction could not place
            if not self.fallback_enabled:
                raise NotImplementedError(NOT_IMPLEMENTED_TEXT.format(op=printed(op), commit="simulated"))
            _warn_fallback_once(op)
        return func(*args, **kwargs)


class SimulatedDevice:
    """The probe child's view of a device, simulated: same interface as probe_child.RealDevice."""

    name = "mps"
    simulated = True
    torch_device = torch.device("cpu")  # where the simulated "mps" tensors really live

    def __init__(self, statuses: dict, fallback_enabled=None):
        self.mode = SimulatedMPS(statuses, fallback_enabled)

    def put(self, tensor):
        return to_mps(tensor)

    def active(self):
        return self.mode

    def synchronize(self):
        pass


def prediction_table(predictions: dict) -> dict:
    """{op: Prediction} from matrix.predict as the plain {op: {status, dtype_status}} the child takes."""
    out = {}
    for op, p in predictions.items():
        data = p.to_json() if hasattr(p, "to_json") else dict(p)
        out[op] = {"status": data.get("status", "native"), "dtype_status": dict(data.get("dtype_status") or {})}
    return out
