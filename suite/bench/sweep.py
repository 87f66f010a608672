"""What the benchmarks measure: sizes, dtypes, reduction dims, and the variants at each point.

Two sweeps, chosen by the environment variable OPCOMPAT_BENCH (default ``quick``):

- ``quick``: tiny inputs, few rounds; runs in the default ``pytest`` so the benchmark code cannot rot.
- ``full``: from a Fooocus latent (2x4x128x128, launch-bound) to 2x4x4096x8192 (268M elements,
  1 GiB in float32, bandwidth-bound), each step 4x the elements, the last 2x.

At each (shape, dtype) there is one device-to-device copy (the bandwidth reference), then for each
reduction (dims (1, 2, 3), and all dims) the fused op and every registered case whose call site fits
those dims, then the CPU fallback path for each reduction: last, so that its host work (up to seconds
a call) never sits between two device benchmarks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import torch

import cases
from opcompat.samples import DTYPES

from .timing import RoundPolicy

MODE_ENV = "OPCOMPAT_BENCH"
CORRECTION = 1  # torch.std_mean's default, and the anisotropic call site's
FUSED, FALLBACK, COPY = "fused", "fallback", "copy"
FALLBACK_FORM = "torch.std_mean on the CPU, inputs copied there and results copied back"


@dataclass(frozen=True)
class Sweep:
    name: str
    shapes: tuple
    dtypes: tuple
    dims: tuple  # each a tuple of axes, or None for all of them
    policy: RoundPolicy
    rotate_bytes: Optional[int] = None  # None: sized from the device's cache (timing.rotation_budget)


# 2^17 .. 2^27 elements in steps of 4x, then 2^28 (268M; 1 GiB in float32).
SHAPES_FULL = (*((2, 4, 128 * 2**k, 128 * 2**k) for k in range(6)), (2, 4, 4096, 8192))
SWEEPS = {
    # Bursts of up to 4 calls and one warm-up round even here, so that CI runs the code the full sweep uses.
    "quick": Sweep("quick", shapes=((2, 4, 8, 8), (2, 4, 16, 16)), dtypes=("float32", "float16"),
                   dims=((1, 2, 3), None),
                   policy=RoundPolicy(target_s=0.0, min_rounds=3, max_rounds=3, burst_s=1e-4, max_burst=4,
                                      warm_s=1e-3),
                   rotate_bytes=16 * 1024),
    # Rounds of >= 2 ms (a 20 us call runs 100 times in one), 0.1 s of untimed rounds right before 0.1 s
    # of timed ones: about 0.25 s a device benchmark, 80 s of the ~140 s a repeat takes on an H200.
    "full": Sweep("full", shapes=SHAPES_FULL, dtypes=("float32", "float16"), dims=((1, 2, 3), None),
                  policy=RoundPolicy(target_s=0.1, min_rounds=5, max_rounds=60, burst_s=2e-3, max_burst=256,
                                     warm_s=0.1)),
}


def current(environ=os.environ) -> Sweep:
    """The sweep OPCOMPAT_BENCH names; an unknown name is an error that lists the known ones."""
    name = environ.get(MODE_ENV, "quick").strip() or "quick"
    if name not in SWEEPS:
        raise ValueError(f"{MODE_ENV}={name!r}: unknown sweep; choose one of {', '.join(SWEEPS)}")
    return SWEEPS[name]


def dims_label(dims) -> str:
    return "all" if dims is None else ",".join(map(str, dims))


@dataclass(frozen=True)
class Point:
    """One benchmark: a variant on inputs of ``shape`` and ``dtype``, reducing over ``dims``."""

    shape: tuple
    dtype: str
    dims: object  # tuple of axes or None; the copy ignores it
    variant: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * torch.empty((), dtype=DTYPES[self.dtype]).element_size()

    @property
    def shape_label(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def group(self) -> str:
        """pytest-benchmark's table group: the variants that share this point's inputs and reduction."""
        what = "copy" if self.variant == COPY else f"dims={dims_label(self.dims)}"
        return f"{self.dtype} {self.shape_label} {what}"

    def __str__(self):  # the test id
        what = "" if self.variant == COPY else f"-{dims_label(self.dims).replace(',', '')}"
        return f"{self.dtype}-{self.shape_label}{what}-{self.variant}"


def case_fits(case, dims) -> bool:
    """A call site that pins its dims is measured only on the reduction it makes."""
    if "dim" not in case.fixed:
        return True
    pinned = case.fixed["dim"]
    return (None if pinned is None else tuple(pinned)) == dims


def variants(dims) -> list:
    """The fused op first, then the registered cases that fit ``dims``, then the fallback path."""
    found = [c.name for c in cases.all_cases()[0]
             if c.family == "std_mean" and c.name != FUSED and case_fits(c, dims)]  # a std_mean benchmark
    return [FUSED, *found, FALLBACK]


def points(sweep: Sweep) -> list:
    """Every benchmark of ``sweep``, in run order: inputs of one (shape, dtype) are made once; its copy
    and device variants come first, its fallback rows (host work) last."""
    out = []
    for shape in sweep.shapes:
        for dtype in sweep.dtypes:
            on_device, fallbacks = [Point(shape, dtype, None, COPY)], []
            for dims in sweep.dims:
                for v in variants(dims):
                    (fallbacks if v == FALLBACK else on_device).append(Point(shape, dtype, dims, v))
            out.extend(on_device + fallbacks)
    return out


# -- the callables -------------------------------------------------------------------------------------
def call_kwargs(case, dims) -> dict:
    return {"dim": dims, "correction": CORRECTION, "keepdim": True, **case.fixed}


def case_call(case, dims):
    kwargs = call_kwargs(case, dims)
    return lambda x: case.fn(x, **kwargs)


def fused_call(dims):
    return lambda x: torch.std_mean(x, dim=dims, correction=CORRECTION, keepdim=True)


def emulated_fallback_call(dims):
    """What the MPS fallback does, written out: copy the input to the CPU, compute, copy results back."""
    def call(x):
        std, mean = torch.std_mean(x.cpu(), dim=dims, correction=CORRECTION, keepdim=True)
        return std.to(x.device), mean.to(x.device)
    return call


def copy_call(dst):
    return lambda x: dst.copy_(x)


def computes(case) -> str:
    """What a case returns, in words matrix/speed.py filters on: only "std_mean" replaces the fused op."""
    if case.outputs == ("decision",):
        return "decision"
    return "_".join(case.outputs)
