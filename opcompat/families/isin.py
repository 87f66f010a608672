"""The isin family: ``torch.isin(elements, test_elements)``, judged exactly.

MPS has no isin kernel before torch 2.4 (``python -m matrix predict --op aten::isin.Tensor_Tensor``:
fallback in 1.13 .. 2.3, native from 2.4), which is why transformers ships ``isin_mps_friendly``.
Truth is exact: Python set membership on the CPU (NaN is in nothing, -0.0 is 0.0). Regimes:

- vector: 1-D elements of length >= 2, 1-D test elements (the domain the tile/eq/sum shim handles);
- single: one element (0-d or length 1), or a 0-d / one-element test;
- batched: elements of rank 2 or 3;
- nd_test: test elements of rank 2.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from .. import causes as common
from ..calls import Call, tensor
from ..family import Family, register

CALL = "torch.isin(elements, test_elements)"
OPS = ("aten::isin.Tensor_Tensor",)
DTYPES = ("int64", "int32", "float32", "float16")
REGIMES = ("vector", "single", "batched", "nd_test")


def isin(elements, test_elements):
    # positional only: torch.isin's keyword names differ across releases (pytorch/pytorch#126045)
    return (torch.isin(elements, test_elements),)


def truth(elements, test_elements):
    """Exact membership with Python sets, on the CPU."""
    pool = {v for v in test_elements.reshape(-1).tolist() if not (isinstance(v, float) and math.isnan(v))}
    flat = [v in pool for v in elements.reshape(-1).tolist()]
    return (torch.tensor(flat, dtype=torch.bool).reshape(elements.shape),)


def _values(dtype):
    """Few distinct values, so that members are common; floats add -0.0, a fraction and NaN."""
    ints = st.integers(-4, 4)
    if dtype.startswith("int"):
        return ints
    return st.one_of(ints.map(float), st.sampled_from([-0.0, 0.5, math.nan]))


def _shapes(regime):
    side = st.integers(1, 6)
    if regime == "vector":
        return st.tuples(st.integers(2, 12).map(lambda n: (n,)), side.map(lambda n: (n,)))
    if regime == "single":
        return st.tuples(st.sampled_from([(1,), ()]), st.sampled_from([(), (1,), (3,)]))
    if regime == "batched":
        return st.tuples(array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), side.map(lambda n: (n,)))
    return st.tuples(st.integers(1, 8).map(lambda n: (n,)), array_shapes(min_dims=2, max_dims=2, max_side=3))


@st.composite
def _calls(draw, regimes, dtypes):
    regime = draw(st.sampled_from(regimes))
    dtype = draw(st.sampled_from(dtypes))
    eshape, tshape = draw(_shapes(regime))
    specs = []
    for shape in (eshape, tshape):
        size = math.prod(shape)
        values = draw(st.lists(_values(dtype), min_size=size, max_size=size))
        specs.append(tensor(values, dtype, shape))
    return Call("isin", dtype, regime, tuple(specs))


def samples(case, dtypes):
    return _calls([r for r in REGIMES if r not in case.claim.excludes], list(dtypes))


def battery(case, dtype, correction=None):
    """Fixed witnesses: each regime, duplicates, negatives, an empty test set, NaN for floats."""
    def call(regime, elements, test, eshape=None, tshape=None):
        return regime, Call("isin", dtype, regime, (tensor(elements, dtype, eshape), tensor(test, dtype, tshape)))

    out = [
        call("vector", [1, 2, 3, 4, 5, 6], [2, 5, 9]),
        call("vector", [-3, 0, 0, 7, -3], [0, -3]),
        call("vector", [1, 2, 3], []),
        call("single", [5], [5]),
        call("single", [5], [1, 5], eshape=()),
        call("single", [1, 2, 3, 4], [3], tshape=()),
        call("batched", [1, 2, 3, 4, 5, 6], [2, 6], eshape=(2, 3)),
        call("batched", [1, 2, 3], [2], eshape=(1, 3)),
        call("nd_test", [1, 2, 3, 4], [1, 2, 3, 9], tshape=(2, 2)),
    ]
    if dtype.startswith("float"):
        out.append(call("vector", [math.nan, 1.0, -0.0, 2.5], [math.nan, 0.0, 2.5]))
    return out


def causes(case, failures, device):
    """Per regime: the call raised, the shape is wrong (which input shape), or members differ."""
    found = []
    for regime, call, outcome in failures:
        shapes = " and ".join(str(a.shape) for a in call.args)
        for m in outcome.mismatches:
            if m.kind == "error":
                common.add(found, f"error for {regime} inputs ({shapes}): {m.message}")
            elif m.kind == "shape":
                common.add(found, f"wrong shape for {regime} inputs ({shapes}): {m.message}")
            else:
                common.add(found, f"{m.kind} mismatch ({regime})")
    return found


FAMILY = register(Family(
    name="isin", call=CALL, ops=OPS, reference=isin, truth=truth, outputs=("isin",), dtypes=DTYPES,
    regimes=REGIMES, samples=samples, battery=battery, budget="exact", causes=causes,
    notes="MPS falls back to the CPU for aten::isin.Tensor_Tensor(_out) in torch 1.13 .. 2.3 (predicted)"))
