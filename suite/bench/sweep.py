"""What the benchmarks measure: sizes, dtypes, reduction dims, and the variants at each point.

Two sweeps, chosen by the environment variable OPCOMPAT_BENCH (default ``quick``):

- ``quick``: tiny inputs, few rounds; runs in the default ``pytest`` so the benchmark code cannot rot.
- ``full``: from a Fooocus latent (2x4x128x128, launch-bound) to 2x4x4096x8192 (268M elements,
  1 GiB in float32, bandwidth-bound), each step 4x the elements, the last 2x.

At each (shape, dtype) and reduction (dims (1, 2, 3), and all dims) one *group* is timed as a whole:
the fused op, every registered case whose call site fits those dims, and a device-to-device copy (the
bandwidth reference), interleaved round by round (opcompat.timing). Then the CPU fallback path of each
reduction, on its own: last, so that its host work (up to seconds a call) never sits between two device
rounds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import torch

import cases
from opcompat.timing import RoundPolicy
from opcompat.vocab import DTYPES

MODE_ENV = "OPCOMPAT_BENCH"
CORRECTION = 1  # torch.std_mean's default, and the anisotropic call site's
FUSED, FALLBACK, COPY, GROUP = "fused", "fallback", "copy", "group"
FALLBACK_FORM = "torch.std_mean on the CPU, inputs copied there and results copied back"


@dataclass(frozen=True)
class Sweep:
    name: str
    shapes: tuple
    dtypes: tuple
    dims: tuple  # each a tuple of axes, or None for all of them
    policy: RoundPolicy  # the interleaved device groups
    fallback_policy: RoundPolicy  # the CPU fallback: host work of up to seconds a call, few rounds
    rotate_bytes: Optional[int] = None  # None: sized from the device's cache (timing.rotation_budget)


# 2^17 .. 2^27 elements in steps of 4x, then 2^28 (268M; 1 GiB in float32).
SHAPES_FULL = (*((2, 4, 128 * 2**k, 128 * 2**k) for k in range(6)), (2, 4, 4096, 8192))
SWEEPS = {
    # A few rounds of bursts of up to 4 calls and one warm-up round even here, so that CI runs the code the
    # full sweep uses.
    "quick": Sweep("quick", shapes=((2, 4, 8, 8), (2, 4, 16, 16)), dtypes=("float32", "float16"),
                   dims=((1, 2, 3), None),
                   policy=RoundPolicy(target_s=0.0, min_rounds=3, max_rounds=3, burst_s=1e-4, max_burst=4,
                                      warm_s=1e-2),
                   fallback_policy=RoundPolicy(target_s=0.0, min_rounds=3, max_rounds=3, burst_s=1e-4, max_burst=4,
                                               warm_s=0.0),
                   rotate_bytes=16 * 1024),
    # Eager bursts of >= 1 ms; rounds of all ~13 variants (eager burst + graph replay each) for 1 s after
    # 0.2 s of untimed rounds, 15 rounds at least: 2-4 s a group, 28 groups, ~3 min a repeat on an H100
    # with the fallback items. Within a repeat the graph ratios' rounds spread by ~1 % (IQR / median).
    "full": Sweep("full", shapes=SHAPES_FULL, dtypes=("float32", "float16"), dims=((1, 2, 3), None),
                  policy=RoundPolicy(target_s=1.0, min_rounds=15, max_rounds=60, burst_s=1e-3, max_burst=256,
                                     warm_s=0.2),
                  fallback_policy=RoundPolicy(target_s=0.5, min_rounds=3, max_rounds=20, burst_s=2e-3, max_burst=64,
                                              warm_s=0.0)),
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
    """One timed item: a ``variant`` on inputs of ``shape`` and ``dtype``, reducing over ``dims``.

    ``variant`` GROUP is the interleaved group of the fused op, the cases and the copy; FALLBACK is the
    CPU fallback path, timed on its own.
    """

    shape: tuple
    dtype: str
    dims: object  # tuple of axes or None
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
        """pytest-benchmark's table group: the items that share this point's inputs and reduction."""
        return f"{self.dtype} {self.shape_label} dims={dims_label(self.dims)}"

    def __str__(self):  # the test id
        return f"{self.dtype}-{self.shape_label}-{dims_label(self.dims).replace(',', '')}-{self.variant}"


def case_fits(case, dims) -> bool:
    """A call site that pins its dims is measured only on the reduction it makes."""
    if "dim" not in case.fixed:
        return True
    pinned = case.fixed["dim"]
    return (None if pinned is None else tuple(pinned)) == dims


def variants(dims) -> list:
    """A group's variants: the fused op first (the reference of every ratio), the registered std_mean cases
    that fit ``dims``, and the copy (the bandwidth reference) last."""
    found = [c.name for c in cases.of_family("std_mean") if c.name != FUSED and case_fits(c, dims)]
    return [FUSED, *found, COPY]


def points(sweep: Sweep) -> list:
    """Every timed item of ``sweep``, in run order: inputs of one (shape, dtype) are made once; its device
    groups come first, its fallback items (host work) last."""
    out = []
    for shape in sweep.shapes:
        for dtype in sweep.dtypes:
            out += [Point(shape, dtype, dims, GROUP) for dims in sweep.dims]
            out += [Point(shape, dtype, dims, FALLBACK) for dims in sweep.dims]
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
    """What a case returns, in words matrix/speed filters on: only "std_mean" replaces the fused op."""
    if case.outputs == ("decision",):
        return "decision"
    return "_".join(case.outputs)
