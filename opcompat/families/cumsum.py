"""The integer cumsum family: ``torch.cumsum(x, dim)`` of int64 (and int32) tensors, judged exactly.

Integer cumsum returns int64 (int32 inputs are promoted). Before macOS 13.3 MPS refused int64
cumsum (its cumsum kernel refused int64 input, "Support has been added in macOS 13.3"), so code casts to
int32: exact until a value or a partial sum leaves int32. The matrix's predictor says
``aten::cumsum.default`` falls back in torch 1.13 and is native from 2.0 (whatever the macOS).
Truth is exact: Python integers. Regimes:

- int32_range: |values| <= 2^20, at most 64 per slice: every partial sum fits int32;
- int64_range: values up to 2^40 in magnitude: elements and partial sums may pass 2^31 - 1.
"""

from __future__ import annotations

import itertools
import math

import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from .. import causes as common
from ..calls import Call, tensor
from ..family import Family, register

CALL = "torch.cumsum(x, dim)"
OPS = ("aten::cumsum.default",)
DTYPES = ("int64", "int32")
REGIMES = ("int32_range", "int64_range")
INT32_MAX = 2**31 - 1


def cumsum(x, *, dim):
    return (torch.cumsum(x, dim),)


def truth(x, *, dim):
    """Exact running sums with Python integers along ``dim``, as int64 (cumsum's integer result)."""
    moved = x.movedim(dim, -1) if x.ndim else x.reshape(1)
    rows = moved.reshape(-1, moved.shape[-1]).tolist() if moved.numel() else []
    sums = [list(itertools.accumulate(row)) for row in rows]
    out = torch.tensor(sums, dtype=torch.int64).reshape(moved.shape)
    return (out.movedim(-1, dim) if x.ndim else out.reshape(()),)


def _bound(regime, dtype):
    if regime == "int32_range":
        return 2**20
    return 2**40 if dtype == "int64" else INT32_MAX


@st.composite
def _calls(draw, regimes, dtypes):
    regime = draw(st.sampled_from(regimes))
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=8))
    bound = _bound(regime, dtype)
    values = draw(st.lists(st.integers(-bound, bound), min_size=math.prod(shape), max_size=math.prod(shape)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return Call("cumsum", dtype, regime, (tensor(values, dtype, shape),), (("dim", dim),))


def samples(case, dtypes):
    return _calls([r for r in REGIMES if r not in case.claim.excludes], list(dtypes))


def battery(case, dtype, correction=None):
    big = 2**31 if dtype == "int64" else INT32_MAX

    def call(regime, values, shape=None, dim=0):
        return regime, Call("cumsum", dtype, regime, (tensor(values, dtype, shape),), (("dim", dim),))

    return [
        call("int32_range", list(range(1, 21))),
        call("int32_range", [-5, 3, 0, 7, -1, 2], shape=(2, 3), dim=1),
        call("int32_range", [-5, 3, 0, 7, -1, 2], shape=(2, 3), dim=0),
        call("int32_range", [2**20] * 64),
        call("int64_range", [1, INT32_MAX]),  # a partial sum passes 2^31 - 1
        call("int64_range", [2**30, 2**30, -(2**30)], dim=-1),
        call("int64_range", [big, 1], shape=(1, 2), dim=1),  # int64: an element that int32 cannot hold
    ]


def causes(case, failures, device):
    """Integer overflow, by what left int32: an element, or only a partial sum."""
    found = []
    for regime, call, outcome in failures:
        x = call.args[0].build("cpu")
        exact = truth(x, **call.kw())[0]
        if any(m.kind == "error" for m in outcome.mismatches):
            common.add(found, f"error: {outcome.mismatches[0].message}")
        elif x.numel() and x.abs().max() > INT32_MAX:
            common.add(found, "int32 overflow (an element does not fit int32)")
        elif exact.numel() and exact.abs().max() > INT32_MAX:
            common.add(found, "int32 overflow (a partial sum passes 2^31 - 1)")
        else:
            for m in outcome.mismatches:
                common.add(found, common.basic(m, regime) or f"value mismatch ({regime})")
    return found


FAMILY = register(Family(
    name="cumsum", call=CALL, ops=OPS, reference=cumsum, truth=truth, outputs=("cumsum",), dtypes=DTYPES,
    regimes=REGIMES, samples=samples, battery=battery, budget="exact", causes=causes, params=("dim",),
    notes="int64 cumsum on MPS needs macOS 13.3; MPS falls back for aten::cumsum in torch 1.13 (predicted)"))
