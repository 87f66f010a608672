"""The probe's child process: the only code that touches the device.

``python -m matrix.probe_child`` reads a job (JSON) on stdin and answers one line per item on stdout,
each prefixed with ``@@opcompat`` (anything else a library prints is ignored). An item is one op
overload replayed at one dtype, or one case run at one dtype. The child reports what it *saw*, an
``opcompat.records.Observation`` (the exception, the warnings, a mismatch against the same call on the
CPU, the ops a case reached); the parent (matrix.probe_status) turns that into a status, with the same
code for real and simulated MPS.

The parent (matrix.probe_runner) runs children so that a crash or a hang costs one item, not the run:
it restarts a child after the item that killed the last one. On MPS a child also stops after the first
CPU-fallback warning it sees, since PyTorch warns once per process (TORCH_WARN_ONCE) and a later fallback in the
same process would pass unseen.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from contextlib import nullcontext

import torch

import cases
from matrix.probe_runner import PREFIX
from matrix.simulated_mps import SimulatedDevice
from opcompat import records
from opcompat.compare import close
from opcompat.devices import synchronize
from opcompat.records import Observation, ProbeItem
from opcompat.samples import Sample
from opcompat.trace import IGNORED, TRACE_SHAPE, UncompiledDispatchMode, overload_name
from opcompat.vocab import FALLBACK_MARK, dtype_name


class RealDevice:
    """A torch device the child computes on: cpu, cuda[:N] or mps."""

    simulated = False

    def __init__(self, name: str):
        self.name = name
        self.torch_device = torch.device(name)

    def put(self, tensor):
        return tensor.to(self.torch_device)

    def active(self):
        return nullcontext()

    def synchronize(self):
        # Asynchronous backends report kernel errors at the next sync: read nothing before it.
        synchronize(self.torch_device)


def make_device(job):
    if job.get("simulate"):
        return SimulatedDevice(job.get("prediction") or {})
    return RealDevice(job["device"])


# -- rebuilding a traced call ---------------------------------------------------------------------
def _dtype(name):
    return getattr(torch, name)


def decode(value, dtype, gen):
    """A traced argument back as a value: tensors get seeded random values, floats the probed dtype."""
    if isinstance(value, dict):
        if "tensor" in value:
            traced = _dtype(value["dtype"])
            shape = tuple(value["tensor"])
            if traced.is_floating_point:
                return torch.randn(shape, generator=gen, dtype=torch.float64).to(_dtype(dtype))
            if traced == torch.bool:
                return torch.randint(0, 2, shape, generator=gen).bool()
            return torch.randint(-8, 8, shape, generator=gen).to(traced)
        if "dtype_arg" in value:
            return _dtype(value["dtype_arg"])
        if "repr" in value:
            text = value["repr"]
            return getattr(torch, text[len("torch."):]) if text.startswith("torch.") else DeviceArg()
    if isinstance(value, list):
        return [decode(v, dtype, gen) for v in value]
    return value


class DeviceArg:
    """A traced ``device=`` argument: the probed device on the device run, the CPU on the reference run."""


def _map(value, fn):
    if isinstance(value, (torch.Tensor, DeviceArg)):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return value


def resolve_op(name: str):
    """'aten::std_mean.correction' -> torch.ops.aten.std_mean.correction."""
    namespace, rest = name.split("::", 1)
    op, _, overload = rest.partition(".")
    return getattr(getattr(getattr(torch.ops, namespace), op), overload or "default")


def _flatten(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    return [value]


def mismatch(actual, expected, dtype) -> str:
    """'' when the device's outputs match the CPU's, else what differs."""
    got, want = _flatten(actual), _flatten(expected)
    if len(got) != len(want):
        return f"{len(got)} outputs, the CPU gives {len(want)}"
    for i, (a, e) in enumerate(zip(got, want)):
        if not isinstance(e, torch.Tensor):
            if a != e:
                return f"output {i}: {a!r}, the CPU gives {e!r}"
            continue
        if not isinstance(a, torch.Tensor):
            return f"output {i}: {type(a).__name__}, the CPU gives a tensor"
        # the one comparison engine, loose mode: "same call, device vs CPU" catches a wrong kernel,
        # not rounding differences (60 % of the dtype's digits)
        report = close(a, e, mode="loose", name=f"output {i}")
        if not report.ok:
            return " ".join(str(report).split())[:400]
    return ""


# -- running one item -------------------------------------------------------------------------------
def run_op(item: ProbeItem, device, gen, seen: dict):
    op = resolve_op(item.op)
    dtype = item.dtype
    args = decode(item.args, dtype, gen)
    kwargs = {k: decode(v, dtype, gen) for k, v in item.kwargs}
    def to_device(v):
        return device.torch_device if isinstance(v, DeviceArg) else device.put(v)

    def to_cpu(v):
        return torch.device("cpu") if isinstance(v, DeviceArg) else v

    on_device = _map(args, to_device), _map(kwargs, to_device)
    with device.active():
        actual = op(*on_device[0], **on_device[1])
    device.synchronize()
    try:
        expected = op(*_map(args, to_cpu), **_map(kwargs, to_cpu))  # the same call on the CPU, same values
    except Exception as exc:  # nothing to compare with; the device's own outcome stands
        seen["reference_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return
    seen["mismatch"] = mismatch(actual, expected, dtype)


class OpsReached(UncompiledDispatchMode):
    """The (op overload, dtype it ran at) pairs a case reaches on the device: an upcast runs float32 ops."""

    def __init__(self):
        super().__init__()
        self.reached = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = overload_name(func)
        if name not in IGNORED:  # recorded before it runs: the op that raises is the one to name
            self.reached.add((name, _tensor_dtype(args)))
        return func(*args, **(kwargs or {}))


def _tensor_dtype(values):
    for value in values:
        if isinstance(value, torch.Tensor):
            return dtype_name(value.dtype)
        if isinstance(value, (list, tuple)):
            found = _tensor_dtype(value)
            if found:
                return found
    return None


def run_case(item: ProbeItem, device, gen, seen: dict):
    case = cases.get(item.case)
    sample = Sample(shape=TRACE_SHAPE, dtype=item.dtype, dim=(1, 2, 3), correction=1, keepdim=True)
    kwargs = {**sample.kwargs(), **case.fixed}
    x = device.put(sample.build("cpu"))
    # Which ops fell back needs the ops reached; only MPS has a CPU fallback, so only MPS records them.
    recorder = OpsReached() if device.name.startswith("mps") else None
    try:
        with device.active(), (recorder or nullcontext()):
            case.fn(x, **kwargs)
        device.synchronize()
    finally:  # also when it raised
        if recorder is not None:
            seen["ops_reached"] = sorted([op, dtype or item.dtype] for op, dtype in recorder.reached)


def run_item(item: ProbeItem, device) -> Observation:
    """What one item did: outcome ok/raised, its exception, the warnings it raised, details."""
    gen = torch.Generator().manual_seed(item.seed)
    seen = {"outcome": "ok", "error_type": "", "message": "", "warnings": []}  # the Observation, as it fills
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run = run_op if item.kind == "op" else run_case
            run(item, device, gen, seen)
        except Exception as exc:
            seen.update(outcome="raised", error_type=type(exc).__name__, message=" ".join(str(exc).split()))
            if not str(exc):
                seen["message"] = traceback.format_exc(limit=2)[-400:]
    seen["warnings"] = [" ".join(str(w.message).split()) for w in caught]
    return Observation(**seen)


def emit(record):
    sys.stdout.write(PREFIX + json.dumps(record) + "\n")
    sys.stdout.flush()


def main() -> int:
    job = json.load(sys.stdin)
    device = make_device(job)
    watch_fallback = job["device"].startswith("mps")
    for index, raw in enumerate(job["items"]):
        seen = run_item(records.from_json(ProbeItem, raw, where=f"item {index}"), device)
        emit({"index": index, **records.to_json(seen)})
        if watch_fallback and any(FALLBACK_MARK in w for w in seen.warnings):
            emit({"stop": "fallback warning spent: this process cannot see another"})
            return 0
    emit({"done": len(job["items"])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
