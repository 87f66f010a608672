"""A *sample*: the parameters of one input and one call, and how to build the tensor from them.

Hypothesis draws the parameters (see strategies.py); the tensor is built from a seeded generator, so
big inputs stay cheap to draw and a failing example shrinks to a short, readable summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .forms import count, reduced_dims
from .vocab import DTYPES

FLOAT16_MAX = 65504.0


class InputError(ValueError):
    """An input opcompat cannot compare (not a float tensor, an empty reduction...)."""


@dataclass(frozen=True)
class Sample:
    shape: tuple
    dtype: str
    layout: str = "contiguous"
    regime: str = "normal"
    scale: float = 1.0  # spread of the values
    offset: float = 0.0  # where they are centred
    seed: int = 0
    special: str = ""  # for the nonfinite regime: "nan", "inf", "-inf" or "mixed"
    expand_axis: int = 0  # for the expanded layout: the stride-0 axis
    # -- the call
    dim: object = None
    correction: float = 1
    keepdim: bool = False

    @property
    def torch_dtype(self):
        if self.dtype not in DTYPES:
            raise InputError(f"dtype {self.dtype!r}: std_mean samples are floating point ({', '.join(DTYPES)}); "
                             "integer ops are families of their own (opcompat.families)")
        return DTYPES[self.dtype]

    def kwargs(self):
        return {"dim": self.dim, "correction": self.correction, "keepdim": self.keepdim}

    # -- building ----------------------------------------------------------------------------------
    def values64(self) -> torch.Tensor:
        """The float64 values before rounding to the dtype, in the layout's base shape."""
        gen = torch.Generator().manual_seed(self.seed)
        base = self._base_shape()
        if self.regime == "constant":
            x = torch.full(base, self.offset, dtype=torch.float64)
        else:
            x = torch.randn(base, generator=gen, dtype=torch.float64) * self.scale + self.offset
        if self.regime == "nonfinite" and x.numel():
            flat = x.reshape(-1)
            count = 1 + int(torch.randint(0, 3, (1,), generator=gen))
            where = torch.randint(0, flat.numel(), (count,), generator=gen)
            kinds = {"nan": [math.nan], "inf": [math.inf], "-inf": [-math.inf],
                     "mixed": [math.nan, math.inf, -math.inf]}[self.special or "nan"]
            for i, pos in enumerate(where.tolist()):
                flat[pos] = kinds[i % len(kinds)]
        return x

    def build(self, device="cpu") -> torch.Tensor:
        """The input tensor on ``device``, in the sample's dtype and layout.

        The base is moved first and the view made on the device: ``.to()`` would densify a stride-0
        (expanded) tensor.
        """
        x = self.values64().to(self.torch_dtype).to(device)
        if self.layout == "transposed":
            return x.transpose(-1, -2)
        if self.layout == "expanded":
            return x.expand(self.shape)
        if self.layout == "channels_last":
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _base_shape(self):
        shape = list(self.shape)
        if self.layout == "transposed":
            shape[-1], shape[-2] = shape[-2], shape[-1]
        elif self.layout == "expanded":
            shape[self.expand_axis] = 1
        return tuple(shape)

    # -- reporting ---------------------------------------------------------------------------------
    def summary(self) -> str:
        values = {"constant": f"constant {self.offset:g}"}.get(
            self.regime, f"{self.regime}(scale={self.scale:g}, offset={self.offset:g}, seed={self.seed})")
        if self.regime == "nonfinite":
            values += f" with {self.special or 'nan'}"
        layout = self.layout + (f"(axis {self.expand_axis})" if self.layout == "expanded" else "")
        return (f"Tensor[size={self.shape}, dtype={self.dtype}, {layout}, {values}] "
                f"dim={self.dim!r} correction={self.correction!r} keepdim={self.keepdim}")

    def repro(self, case_name: str, device: str) -> str:
        """A runnable snippet that rebuilds this input and calls the case and the reference."""
        return (
            "import torch, cases\n"
            "from opcompat.samples import Sample\n"
            f"s = {self!r}\n"
            f"x = s.build({device!r})\n"
            f"print(cases.get({case_name!r}).fn(x, **s.kwargs()))\n"
            "print(torch.std_mean(s.build('cpu'), **s.kwargs()))"
        )


def check_input(x: torch.Tensor, dim, correction) -> None:
    """Refuse inputs with no meaningful std/mean comparison, naming what is wrong."""
    if not (x.is_floating_point()):
        raise InputError(f"{x.dtype} tensor: std_mean is defined for floating-point tensors only "
                         f"(cast it, e.g. x.float())")
    for d in reduced_dims(x, dim):
        if not -max(x.ndim, 1) <= d < max(x.ndim, 1):
            raise InputError(f"dim={dim!r} is out of range for a {x.ndim}-d tensor of shape {tuple(x.shape)}")
    if count(x, dim) == 0:
        raise InputError(f"empty reduction: dim={dim!r} of shape {tuple(x.shape)} reduces over 0 elements; "
                         "std and mean are undefined")
    if not isinstance(correction, (int, float)) or isinstance(correction, bool) or correction < 0:
        raise InputError(f"correction={correction!r}: must be a number >= 0")


def degenerate_note(x: torch.Tensor, dim, correction):
    """A note when N - correction <= 0: std is inf/nan by definition (torch warns too)."""
    n = count(x, dim)
    if n - correction <= 0:
        return f"N - correction = {n} - {correction:g} <= 0: the std is inf or nan by definition"
    return None
