"""The strategies draw what they promise, and refuse bad arguments by name."""

from __future__ import annotations

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from cases import REGIMES
from opcompat import strategies as sst
from opcompat.samples import Sample

pytestmark = pytest.mark.meta


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_drawn_samples_build_as_described(data):
    sample = data.draw(sst.samples(dtypes=["float32", "float16"]))
    x = sample.build("cpu")
    assert tuple(x.shape) == sample.shape
    assert str(x.dtype) == f"torch.{sample.dtype}"
    assert 0 <= len(sample.shape) <= 5
    if sample.layout == "expanded" and sample.shape[sample.expand_axis] > 1:
        assert x.stride(sample.expand_axis) == 0
    if sample.layout == "transposed":
        assert not x.is_contiguous() or min(sample.shape[-2:]) == 1
    dims = sample.dim if isinstance(sample.dim, tuple) else (sample.dim,)
    for d in dims:
        assert d is None or -max(x.ndim, 1) <= d < max(x.ndim, 1)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_regimes_and_rank_can_be_pinned(data):
    sample = data.draw(sst.samples(dtypes=["float64"], regimes=["constant"], ndim=4))
    x = sample.build("cpu")
    assert x.ndim == 4 and sample.regime == "constant"
    assert (x == x.reshape(-1)[0]).all()


def test_near_overflow_squares_exceed_float16():
    sample = Sample(shape=(64,), dtype="float16", regime="near_overflow", scale=300.0)
    x = sample.build("cpu").float()
    assert ((x - x.mean()) ** 2).max() > 65504


def test_nonfinite_regime_injects_what_it_says():
    for special, check in [("nan", "isnan"), ("inf", "isposinf"), ("-inf", "isneginf")]:
        x = Sample(shape=(8, 8), dtype="float32", regime="nonfinite", special=special, seed=5).build("cpu")
        assert getattr(x, check)().any(), special


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sst.shapes(min_dims=3, max_dims=2), "min_dims=3 <= max_dims=2"),
    (lambda: sst.dims(-1), "ndim=-1 must be >= 0"),
    (lambda: sst.regime_parameters("lukewarm", "float32"), "regime='lukewarm' is not one of"),
    (lambda: sst.samples(dtypes=[]), "dtypes is empty"),
    (lambda: sst.samples(dtypes=["float32"], ndim=6), "ndim=6 must be in 0..5"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(InvalidArgument, match=message):
        call()


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_regime_draws_what_it_names(data):
    for regime in REGIMES:
        scale, offset, special = data.draw(sst.regime_parameters(regime, "float32"), label=regime)
        if regime == "normal":
            assert 1e-2 <= scale <= 30 and abs(offset) <= 3 * scale
        elif regime == "ill_conditioned":
            assert abs(offset) / scale >= 0.999 * 2.0**6  # |mean| >> std: kappa >= u^-1/4 (log-uniform rounding)
        elif regime == "subnormal":
            assert scale <= 2.0**-126
        elif regime == "near_overflow":
            assert scale >= 300
        elif regime == "nonfinite":
            assert special in ("nan", "inf", "-inf", "mixed")
        elif regime == "constant":
            assert scale == 0


def test_dim_tuples_hold_negative_axes_too():
    # torch takes dim=(1, -1); a strategy that never draws one never tests the cases' handling of it.
    found = find(sst.dims(3), lambda d: isinstance(d, tuple) and any(a < 0 for a in d),
                 settings=settings(database=None, max_examples=500))
    assert len({a % 3 for a in found}) == len(found), f"{found}: the axes must be distinct"


@settings(max_examples=100, deadline=None)
@given(data=st.data(), ndim=st.integers(1, 5))
def test_dim_tuples_name_distinct_axes(data, ndim):
    dim = data.draw(sst.dims(ndim))
    if isinstance(dim, tuple):
        assert dim and len({a % ndim for a in dim}) == len(dim) and all(-ndim <= a < ndim for a in dim)
