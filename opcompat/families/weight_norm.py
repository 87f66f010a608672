"""The weight_norm family: ``torch._weight_norm(v, g, dim)`` = v * g / ||v|| (the norm over every axis
but ``dim``), values and gradients: aten::_weight_norm_interface and its backward, what
``torch.nn.utils.weight_norm`` / ``parametrizations.weight_norm`` call for float32 weights with dim 0
or the last axis. On MPS it falls back to the CPU up to torch 2.1 (predicted from the macOS wheels).

Inputs (``Call``): v (rank 2-4: Linear and conv weights), g (v's shape with 1 everywhere but ``dim``);
keyword arguments ``dim`` (0 or the last axis: the fused kernel's cases) and ``grad_out``.
Outputs: ``w``, ``grad_v``, ``grad_g``.
Regimes: ``normal``; ``large`` (norms beyond float16's 65504 though every entry fits); ``tiny`` (entries
whose squares underflow the dtype: a norm formed from squares in the dtype comes out 0).

Truth: the op and its backward on float64 CPU inputs; budget: tolerances.weight_norm_bound.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from opcompat.vocab import DTYPE_NAMES

from .. import tolerances as tol
from ..calls import Call, TensorSpec
from ..family import Family, register
from ._bounded import evaluate
from ._grads import with_grads
from ._hints import causes_with_hints

NAME = "weight_norm"
CALL = "torch._weight_norm(v, g, dim=0) and its backward (nn.utils.weight_norm)"
OPS = ("aten::_weight_norm_interface.default", "aten::_weight_norm_interface_backward.default")
OUTPUTS = ("w", "grad_v", "grad_g")
DTYPES = DTYPE_NAMES
REGIMES = ("normal", "large", "tiny")


def weight_norm_forward(v, g, *, dim):
    return (torch._weight_norm(v, g, dim),)


weight_norm = with_grads(weight_norm_forward)


def reduced(v, dim):
    """The axes the norm runs over: every axis but ``dim``."""
    return tuple(d for d in range(v.ndim) if d != dim % v.ndim)


def bound(name, dtype, inputs64, truth):
    (v, g), kw = inputs64
    dims = reduced(v, kw["dim"])
    go = kw["grad_out"]
    k = math.prod(v.shape[d] for d in dims) if dims else 1
    norm = torch.linalg.vector_norm(v, dim=dims, keepdim=True) if dims else v.abs()
    ratio = g.abs() / norm  # |g| / ||v||, broadcast over the row
    if name == "w":
        return tol.weight_norm_bound(dtype, truth.abs(), (ratio * v.abs()).expand_as(v), k)
    dot = (go.abs() * v.abs()).sum(dim=dims, keepdim=True) if dims else go.abs() * v.abs()
    if name == "grad_g":
        return tol.weight_norm_bound(dtype, truth.abs(), dot / norm, k)
    # grad_v = (g / n) (go - (sum go v) v / n^2): the projection's two terms, each to its size
    return tol.weight_norm_bound(dtype, truth.abs(), ratio * (go.abs() + dot * v.abs() / norm**2), k)


# -- inputs ------------------------------------------------------------------------------------------------
def _v_scale(regime, dtype):
    if regime == "large":
        return 1.5e4  # entries below 65504; a row of >= 32 of them has a norm past it (made so by the strategy)
    if regime == "tiny":
        return math.sqrt(tol.SMALLEST_NORMAL[getattr(torch, dtype)]) * 0.1  # squares below the normal range
    return 1.0


LARGE_ROW = 32  # entries per row in the large regime: 1.5e4 * sqrt(32) ~ 8.5e4 > 65504


def make_call(*, dtype, regime="normal", shape=(4, 3), dim=0, seed=0):
    dim = dim % len(shape)
    if regime == "large":  # widen the first reduced axis until a row holds LARGE_ROW entries
        rest = [d for d in range(len(shape)) if d != dim]
        if rest:
            k_other = math.prod(shape[d] for d in rest[1:])
            shape = tuple(max(s, -(-LARGE_ROW // k_other)) if i == rest[0] else s for i, s in enumerate(shape))
    v = TensorSpec(tuple(shape), dtype, seed=seed, scale=_v_scale(regime, dtype))
    g_shape = tuple(s if i == dim else 1 for i, s in enumerate(shape))
    g = TensorSpec(g_shape, dtype, seed=seed + 1, scale=0.5, offset=1.0)
    kw = {"dim": dim, "grad_out": TensorSpec(tuple(shape), dtype, seed=seed + 2)}
    return Call(NAME, dtype, regime, (v, g), tuple(sorted(kw.items())))


@st.composite
def _calls(draw, dtypes, regimes, max_side):
    ndim = draw(st.integers(2, 4))  # Linear and conv weights; a 1-d v normalises each entry by itself
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim)))
    dim = draw(st.sampled_from(sorted({0, ndim - 1})))
    regime = draw(st.sampled_from(list(regimes)))
    return make_call(dtype=draw(st.sampled_from(list(dtypes))), regime=regime, shape=shape, dim=dim,
                     seed=draw(st.integers(0, 2**31 - 1)))


def calls(dtypes, regimes=REGIMES, *, max_side=8):
    return _calls(tuple(dtypes), tuple(regimes), max_side)


def battery(dtype):
    """A Linear weight (out, in), a conv weight (out, in, kh, kw) at dim 0 and at the last axis, per regime."""
    out = []
    for regime in REGIMES:
        for i, (shape, dim) in enumerate((((16, 64), 0), ((8, 4, 3, 3), 0), ((8, 4, 3, 3), 3), ((64, 16), 1))):
            out.append((regime, make_call(dtype=dtype, regime=regime, shape=shape, dim=dim, seed=i + 1)))
    return out


# Each example runs the op at two dtypes and the case, and computes a bound: a tenth of the profile's
# examples (20 in ci) keeps these families' claims within a few seconds; thorough still draws 200.
EXAMPLES_SHARE = 0.1


# -- registration --------------------------------------------------------------------------------------------
HINTS = {
    ("large", "value"): "a row norm past float16's 65504, stored in the dtype, is inf: w = 0",
    ("large", "nonfinite"): "a row norm past float16's 65504, stored in the dtype, is inf",
    ("tiny", "value"): "squares of the entries underflow: the norm comes out too small or 0",
    ("tiny", "nonfinite"): "the unfused autograd forms g / n^2, which overflows for rows this small "
                           "(the fused backward does not)",
}


def _samples(case, dtypes):
    return calls(dtypes, [r for r in REGIMES if r not in case.claim.excludes])


FAMILY = register(Family(
    name=NAME, call=CALL, ops=OPS, reference=weight_norm, outputs=OUTPUTS, dtypes=DTYPES, regimes=REGIMES,
    samples=_samples, battery=lambda case, dtype, correction=None: battery(dtype), budget=NAME,
    causes=causes_with_hints(HINTS), evaluate=evaluate, params=("dim",),
    notes="dim 0 or the last axis (the fused kernel's cases); weights have no batch axis",
    extra={"bound": bound, "examples_share": EXAMPLES_SHARE}))
