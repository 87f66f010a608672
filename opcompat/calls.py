"""Inputs of a generic family: tensor recipes and the call that uses them.

A ``Call`` holds its tensors as recipes (``TensorSpec``): explicit values for small integer inputs, so
hypothesis shrinks them element by element, or a seeded normal draw for float inputs, so big inputs
stay cheap. ``Call.build(device)`` makes the tensors; ``Call.repro`` writes a snippet that does the
same in a fresh interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

ALL_DTYPES = {name: getattr(torch, name) for name in
              ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: ``values`` (flat, explicit) or ``randn(shape) * scale + offset`` from ``seed``."""

    shape: tuple
    dtype: str
    values: Optional[tuple] = None
    seed: int = 0
    scale: float = 1.0
    offset: float = 0.0

    def build(self, device="cpu") -> torch.Tensor:
        dtype = ALL_DTYPES[self.dtype]
        if self.values is not None:
            return torch.tensor(self.values, dtype=dtype).reshape(self.shape).to(device)
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.shape, generator=gen, dtype=torch.float64) * self.scale + self.offset
        return x.to(dtype).to(device)

    def summary(self) -> str:
        if self.values is not None:
            shown = list(self.values[:16]) + (["..."] if len(self.values) > 16 else [])
            return f"Tensor[size={self.shape}, dtype={self.dtype}, values={shown}]"
        return (f"Tensor[size={self.shape}, dtype={self.dtype}, randn(seed={self.seed}) * {self.scale:g} "
                f"+ {self.offset:g}]")


def tensor(values, dtype: str, shape=None) -> TensorSpec:
    """A recipe with explicit values (a flat sequence), reshaped to ``shape`` (default: 1-d)."""
    values = tuple(values)
    return TensorSpec(shape=tuple(shape) if shape is not None else (len(values),), dtype=dtype, values=values)


def _build(value, device):
    return value.build(device) if isinstance(value, TensorSpec) else value


def _show(value):
    return value.summary() if isinstance(value, TensorSpec) else repr(value)


@dataclass(frozen=True)
class Call:
    """One call of a family's op: positional tensors/values, keyword arguments, and labels.

    ``dtype`` is the verdict column the call belongs to; ``regime`` the input regime it was drawn from.
    """

    family: str
    dtype: str
    regime: str
    args: tuple
    kwargs: tuple = ()  # (name, value) pairs: hashable and ordered

    @property
    def torch_dtype(self):
        return ALL_DTYPES[self.dtype]

    def kw(self) -> dict:
        return dict(self.kwargs)

    def build(self, device="cpu"):
        """``(args, kwargs)`` with every recipe built on ``device``."""
        return tuple(_build(a, device) for a in self.args), {k: _build(v, device) for k, v in self.kwargs}

    def pinned(self, fixed) -> Call:
        """The call as a call site makes it: the site's pinned keyword arguments replace the drawn ones."""
        if not fixed:
            return self
        merged = {**self.kw(), **fixed}
        return replace(self, kwargs=tuple(sorted(merged.items())))

    def summary(self) -> str:
        parts = [_show(a) for a in self.args] + [f"{k}={_show(v)}" for k, v in self.kwargs]
        return f"({', '.join(parts)}) [{self.regime}]"

    def repro(self, case_name: str, device: str) -> str:
        """A runnable snippet that rebuilds this call and runs the case and the family's reference."""
        return (
            "import torch, cases\n"
            "from opcompat import family\n"
            "from opcompat.calls import Call, TensorSpec\n"
            f"c = {self!r}\n"
            f"args, kw = c.build({device!r})\n"
            f"print(cases.get({case_name!r}).fn(*args, **kw))\n"
            "args, kw = c.build('cpu')\n"
            f"print(family.get({self.family!r}).reference(*args, **kw))"
        )
