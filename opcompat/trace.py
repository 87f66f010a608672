"""Which aten overloads a case reaches, recorded with a TorchDispatchMode.

The mode sees ops after composite-implicit decomposition, i.e. what a backend must implement:
``torch.std(x, dim)`` arrives as ``aten::std.correction``. The matrix's op rows come from here, not
from a hand-written list; each recorded call keeps its arguments (tensors as shape + dtype) so the
probe can replay it on a device.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from . import family as families
from .samples import Sample
from .vocab import DTYPE_NAMES, dtype_name

# Bookkeeping ops every program reaches; they say nothing about std_mean support.
IGNORED = {"aten::detach.default", "aten::alias.default", "aten::lift_fresh.default"}
TRACE_SHAPE = (2, 4, 16, 16)


@dataclass(frozen=True)
class OpCall:
    op: str  # "aten::std_mean.correction"
    args: tuple  # JSON-able: tensors become {"tensor": [shape], "dtype": "float32"}
    kwargs: tuple  # sorted (name, value) pairs, same encoding

    def to_json(self):
        return asdict(self)


def overload_name(func) -> str:
    name = func._schema.name
    overload = func._overloadname
    return f"{name}.{overload}" if overload else f"{name}.default"


def encode(value):
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, torch.dtype):
        return {"dtype_arg": str(value).replace("torch.", "")}
    if isinstance(value, (torch.device, torch.memory_format, torch.layout)):
        return {"repr": str(value)}
    return value


class UncompiledDispatchMode(TorchDispatchMode):
    """A dispatch mode that is never compiled: torch >= 2.9 wraps ``__torch_dispatch__`` to keep dynamo out
    unless ``_should_skip_dynamo`` says False, and that wrapper imports torch._dynamo (seconds, in every
    child process)."""

    @classmethod
    def _should_skip_dynamo(cls):
        return False


class Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = overload_name(func)
        if name not in IGNORED:
            self.calls.append(OpCall(name, tuple(encode(a) for a in args),
                                     tuple(sorted((k, encode(v)) for k, v in kwargs.items()))))
        return call_upcasting(func, args, kwargs)


def call_upcasting(func, args, kwargs):
    """``func(*args, **kwargs)``, finished in float32 where the CPU kernel lacks a low-precision dtype."""
    try:
        return func(*args, **kwargs)
    except (RuntimeError, NotImplementedError):
        # An old CPU kernel may lack the dtype (torch 2.0 has no float16 sqrt). The call is recorded
        # by the caller; finish it in float32 so the trace goes on to the ops after it.
        low = {a.dtype for a in tree_flatten((args, kwargs))[0] if _is_low(a)}
        if not low:
            raise
        up_args, up_kwargs = tree_map(lambda a: a.float() if _is_low(a) else a, (args, kwargs))
        out = func(*up_args, **up_kwargs)
        back = low.pop()
        return tree_map(lambda a: a.to(back) if isinstance(a, torch.Tensor) and a.dtype == torch.float32 else a,
                        out)


def _is_low(value) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16)


def trace(fn, *args, **kwargs) -> list:
    """The distinct aten calls (first occurrence of each overload) made by ``fn(*args, **kwargs)``."""
    recorder = Recorder()
    with recorder:
        fn(*args, **kwargs)
    seen, out = set(), []
    for call in recorder.calls:
        if call.op not in seen:
            seen.add(call.op)
            out.append(call)
    return out


def trace_case(case, dtype="float32") -> list:
    sample = Sample(shape=TRACE_SHAPE, dtype=dtype, dim=(1, 2, 3), correction=1, keepdim=True)
    kwargs = {**sample.kwargs(), **case.fixed}
    return trace(case.fn, sample.build("cpu"), **kwargs)


# The user-level reference ops, traced the same way: what each one reaches in this torch.
REFERENCE_CALLS = {
    "torch.std_mean": lambda x: torch.std_mean(x, dim=(1, 2, 3), keepdim=True),
    "torch.var_mean": lambda x: torch.var_mean(x, dim=(1, 2, 3), keepdim=True),
    "torch.std": lambda x: torch.std(x, dim=(1, 2, 3), keepdim=True),
    "torch.var": lambda x: torch.var(x, dim=(1, 2, 3), keepdim=True),
    "torch.mean": lambda x: torch.mean(x, dim=(1, 2, 3), keepdim=True),
}


CASE = "case:"  # trace_all's key of a std_mean case: "case:fused"
FAMILY_CASE = "family_case:"  # ... of another family's case, with the dtype traced at: "family_case:bicubic@float32"
DEFAULT_TRACE_DTYPE = "float32"  # integer-only families are traced once, at int64, alongside this one


def trace_all(cases, dtype=DEFAULT_TRACE_DTYPE) -> dict:
    """{"torch.std_mean": [OpCall, ...], ..., "case:fused": [...], ..., "family_case:bicubic@float32": [...]}:
    the reference calls, the std_mean cases of ``cases``, and every other family's case on the first input of
    its battery (see ``trace_family_case``) at ``family_trace_dtype``."""
    x = Sample(shape=TRACE_SHAPE, dtype=dtype).build("cpu")
    out = {name: trace(fn, x) for name, fn in REFERENCE_CALLS.items()}
    for case in cases:
        if case.family == "std_mean":  # trace_case calls fn(x, dim=, correction=, keepdim=): std_mean's signature
            out[f"{CASE}{case.name}"] = trace_case(case, dtype)
    for case in cases:
        at = None if case.family == "std_mean" else family_trace_dtype(families.get(case.family), dtype)
        if at is not None:
            out[f"{FAMILY_CASE}{case.name}@{at}"] = trace_family_case(case, at)
    return out


def family_trace_dtype(fam, dtype):
    """The dtype a family's cases are traced at when the trace is at ``dtype``: ``dtype`` itself where the family
    takes it; int64 (else its first dtype) once, at DEFAULT_TRACE_DTYPE, for an integer-only family (cumsum);
    None: not at this dtype."""
    if dtype in fam.dtypes:
        return dtype
    if any(d in DTYPE_NAMES for d in fam.dtypes):
        return None
    if dtype != DEFAULT_TRACE_DTYPE:
        return None
    return "int64" if "int64" in fam.dtypes else fam.dtypes[0]


# -- device moves: does a case take its data off the device? ---------------------------------------------
# On the CPU ``x.cpu()`` and ``x.to(x.device)`` dispatch nothing (the tensor is already there), so a CPU trace
# cannot see a round trip. The case is run again on "meta" tensors, which stand for the device: a copy from
# meta to another device is the data leaving it (``aten::_to_copy`` with device=cpu), ``.to(x.device)`` stays.
MOVE = "aten::_to_copy.default"  # .cpu(), .to("cpu"): a move when its device kwarg names another device
MOVE_UNKNOWN = "opcompat::device_moves_unknown"  # op name of the marker for a case that cannot run on meta


class _LeftDevice(Exception):
    pass


class _MoveRecorder(TorchDispatchMode):
    """Stops the run at the first op that moves a meta tensor's data to another device; records it."""

    def __init__(self):
        super().__init__()
        self.moves = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = kwargs.get("device")
        if overload_name(func) == MOVE and target is not None and torch.device(target).type != "meta":
            self.moves.append(OpCall(MOVE, tuple(encode(a) for a in args),
                                     tuple(sorted((k, encode(v)) for k, v in kwargs.items()))))
            raise _LeftDevice
        return func(*args, **kwargs)


def device_moves(fn, args, kwargs) -> list:
    """The first call by which ``fn(*args, **kwargs)`` moves data off the device (the arguments' tensors, put on
    "meta"), as [OpCall] (its device kwarg names where to); [] where it stays; [OpCall(MOVE_UNKNOWN, (why,))]
    where it cannot run on meta tensors (an op that needs values: ``.item()``, nonzero)."""
    on_meta = tree_map(lambda a: a.detach().to("meta") if isinstance(a, torch.Tensor) else a, (args, kwargs))
    recorder = _MoveRecorder()
    try:
        with recorder:
            fn(*on_meta[0], **on_meta[1])
    except _LeftDevice:
        pass
    except Exception as exc:  # any failure on meta leaves the question open, and says so
        return [OpCall(MOVE_UNKNOWN, (f"{type(exc).__name__}: {str(exc)[:160]}",), ())]
    return recorder.moves


def is_device_move(call) -> bool:
    """A recorded move off the device (or the marker that it is unknown): never an op the device runs."""
    return call.op == MOVE_UNKNOWN or (call.op == MOVE and any(k == "device" for k, _ in call.kwargs))


def trace_family_case(case, dtype) -> list:
    """The distinct aten calls of ``case.fn`` on the first input of its family's battery at ``dtype`` (the
    backward included where the case computes gradients, as the grads families' cases do), then
    ``device_moves`` of the same call."""
    _, call = families.get(case.family).battery(case, dtype, None)[0]
    args, kwargs = call.pinned(case.fixed).build("cpu")
    return trace(case.fn, *args, **kwargs) + device_moves(case.fn, args, kwargs)


# -- counting: a whole workload, op overload x dtype ------------------------------------------------
NO_TENSOR = "-"  # the dtype key of a call that neither takes nor returns a tensor


def call_dtype(args, kwargs, out=None) -> str:
    """The dtype an op call is keyed by: its first floating-point tensor argument's, else its first tensor
    argument's (``where(cond, x, y)`` is about x's dtype, ``isin(ids, ids)`` about int64), else the same of
    its outputs (factories such as aten::arange), else NO_TENSOR."""
    for source in ((args, kwargs), out):
        tensors = [v for v in tree_flatten(source)[0] if isinstance(v, torch.Tensor)]
        if tensors:
            floating = [t for t in tensors if t.is_floating_point() or t.is_complex()]
            return dtype_name((floating or tensors)[0].dtype)
    return NO_TENSOR


class CountingRecorder(UncompiledDispatchMode):
    """How often each aten overload is called, per dtype, and which ops each one calls in turn.

    ``counts``: Counter {(op, dtype): calls}, in first-seen order. ``callees``: {op: {ops it calls: None}}
    for ops with a CompositeExplicitAutograd kernel (a kernel for every backend that calls other ops), and
    for implicit composites reached inside one: the first call of each runs that kernel under a nested
    recorder, which sees what it calls (some such kernels choose by device: _convolution calls
    mkldnn_convolution on the CPU, the caller maps those to the device's own); the MPS
    predictor resolves composite ops with this map. ``on_call(op, dtype, func, args, kwargs)``, when
    given, runs each top-level op instead of calling it directly (the MPS scan wraps it to catch the
    call's fallback warning).
    """

    def __init__(self, on_call=None):
        super().__init__()
        self.counts = Counter()
        self.callees: dict[str, dict] = {}
        self.on_call = on_call

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = overload_name(func)
        if name in IGNORED:
            return func(*args, **kwargs)
        dtype = call_dtype(args, kwargs)
        if self.on_call is not None:
            out = self.on_call(name, dtype, func, args, kwargs)
        else:
            out = _run_recording_callees(func, name, args, kwargs, self.callees)
        if dtype == NO_TENSOR:
            dtype = call_dtype((), {}, out)
        self.counts[(name, dtype)] += 1
        return out


def _has_explicit_kernel(func) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeExplicitAutograd")


def _run_recording_callees(func, name, args, kwargs, callees: dict):
    """Run ``func``; the first time an op with a CompositeExplicitAutograd kernel comes, run that kernel
    (dispatching straight to it, past this mode) under a nested recorder, to learn what it calls."""
    if name in callees:
        return call_upcasting(func, args, kwargs)
    if _has_explicit_kernel(func):
        def run():
            return func.redispatch(torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd),
                                   *args, **kwargs)
    elif torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeImplicitAutograd"):
        def run():  # reached below autograd, where an implicit composite is not decomposed for us
            return func.decompose(*args, **kwargs)
    else:
        return call_upcasting(func, args, kwargs)
    inner = _CalleeRecorder(callees)
    callees[name] = {}
    try:
        with inner:
            out = run()
    except (RuntimeError, NotImplementedError):
        # That kernel does not serve this device (on meta, _convolution's picks convolution_overrideable):
        # run the op as dispatched, and leave its callees unknown.
        del callees[name]
        return call_upcasting(func, args, kwargs)
    callees[name].update(dict.fromkeys(op for op in inner.ops if op != name))
    return out


class _CalleeRecorder(UncompiledDispatchMode):
    """Records the ops one kernel calls, and through itself what those call, into a shared map."""

    def __init__(self, callees: dict):
        super().__init__()
        self.callees = callees
        self.ops: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = overload_name(func)
        if name not in IGNORED:
            self.ops[name] = None
        return _run_recording_callees(func, name, args, kwargs, self.callees)


def count_calls(fn, *args, **kwargs) -> CountingRecorder:
    """Run ``fn(*args, **kwargs)`` under a CountingRecorder and return the recorder."""
    recorder = CountingRecorder()
    with recorder:
        fn(*args, **kwargs)
    return recorder
