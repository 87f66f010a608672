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

from .samples import Sample
from .vocab import dtype_name

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


def trace_all(cases, dtype="float32") -> dict:
    """{"torch.std_mean": [OpCall, ...], ..., "case:fused": [...], ...} for the reference calls and the
    std_mean cases of ``cases`` (other op families are judged, not traced)."""
    x = Sample(shape=TRACE_SHAPE, dtype=dtype).build("cpu")
    out = {name: trace(fn, x) for name, fn in REFERENCE_CALLS.items()}
    for case in cases:
        if case.family != "std_mean":  # trace_case calls fn(x, dim=, correction=, keepdim=): std_mean's signature
            continue
        out[f"case:{case.name}"] = trace_case(case, dtype)
    return out


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


class CountingRecorder(TorchDispatchMode):
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

    @classmethod
    def _should_skip_dynamo(cls):
        # torch >= 2.9 would import torch._dynamo (seconds) to wrap __torch_dispatch__; nothing is compiled here.
        return False

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


class _CalleeRecorder(TorchDispatchMode):
    """Records the ops one kernel calls, and through itself what those call, into a shared map."""

    def __init__(self, callees: dict):
        super().__init__()
        self.callees = callees
        self.ops: dict = {}

    @classmethod
    def _should_skip_dynamo(cls):
        return False

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
