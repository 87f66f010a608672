"""Which aten overloads a case reaches, recorded with a TorchDispatchMode.

The mode sees ops after composite-implicit decomposition, i.e. what a backend must implement:
``torch.std(x, dim)`` arrives as ``aten::std.correction``. The matrix's op rows come from here, not
from a hand-written list; each recorded call keeps its arguments (tensors as shape + dtype) so the
probe can replay it on a device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from .samples import Sample

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
        try:
            return func(*args, **kwargs)
        except (RuntimeError, NotImplementedError):
            # An old CPU kernel may lack the dtype (torch 2.0 has no float16 sqrt). The call is recorded
            # above; finish it in float32 so the trace goes on to the ops after it.
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
    """{"torch.std_mean": [OpCall, ...], ..., "case:fused": [...], ...} for the reference calls and ``cases``."""
    x = Sample(shape=TRACE_SHAPE, dtype=dtype).build("cpu")
    out = {name: trace(fn, x) for name, fn in REFERENCE_CALLS.items()}
    for case in cases:
        out[f"case:{case.name}"] = trace_case(case, dtype)
    return out
