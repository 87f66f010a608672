"""Hypothesis strategies for std_mean inputs and calls.

They draw *parameters* (shape, dims, dtype, layout, value regime, scale, offset, seed) and leave the
tensor to ``Sample.build``: drawing is cheap at any size, and a failure shrinks towards a small shape,
the ``normal`` regime, seed 0 and ``dim=None``.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra.numpy import array_shapes, valid_tuple_axes

from .samples import DTYPES, Sample
from .tolerances import SMALLEST_NORMAL, UNIT_ROUNDOFF
from .vocab import REGIMES

# Largest side per rank, so every drawn tensor stays under ~8k elements (fast on any device).
MAX_SIDE = {0: 1, 1: 64, 2: 32, 3: 16, 4: 8, 5: 6}


def shapes(*, min_dims: int = 0, max_dims: int = 5):
    """Shapes of rank ``min_dims``..``max_dims`` (defaults 0..5), sides >= 1, size-1 sides included.

    Shrinks towards fewer, smaller sides.
    """
    if not 0 <= min_dims <= max_dims <= 5:
        raise InvalidArgument(f"need 0 <= min_dims={min_dims} <= max_dims={max_dims} <= 5")
    return st.integers(min_dims, max_dims).flatmap(
        lambda nd: array_shapes(min_dims=nd, max_dims=nd, min_side=1, max_side=MAX_SIDE[nd]))


def dims(ndim: int):
    """``dim`` for a tensor of rank ``ndim``: None, one int (negative too), a tuple of distinct axes
    (negative ones too, as hypothesis' ``valid_tuple_axes`` draws them: (1, -1) on rank 3), or all axes."""
    if ndim < 0:
        raise InvalidArgument(f"ndim={ndim} must be >= 0")
    if ndim == 0:
        return st.sampled_from([None, 0, -1])
    one = st.integers(-ndim, ndim - 1)
    some = valid_tuple_axes(ndim, min_size=1)
    return st.one_of(st.none(), one, some, st.just(tuple(range(ndim))))


def corrections(*, fractional: bool = True):
    """0 and 1 first (they shrink there), then other ints, then fractional values when supported."""
    options = [st.sampled_from([0, 1]), st.integers(2, 5)]
    if fractional:
        options.append(st.sampled_from([0.5, 1.5, 2.25]))
    return st.one_of(*options)


def layouts(ndim: int, *, exclude=()):
    """Memory layouts that make sense for a rank: transposed needs 2 axes, channels_last exactly 4."""
    options = ["contiguous", "expanded"]
    if ndim >= 2:
        options.append("transposed")
    if ndim == 4:
        options.append("channels_last")
    options = [o for o in options if o not in exclude] if ndim else ["contiguous"]
    return st.sampled_from(options or ["contiguous"])


def _log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


def regime_parameters(regime: str, dtype: str):
    """``(scale, offset, special)`` for a value regime, scaled to the dtype's unit roundoff u.

    - normal: well-conditioned, kappa <= sqrt(10); squares stay clear of float16's range.
    - ill_conditioned: |offset| / scale in [u^-1/4, u^-3/4]: cancellation costs the one-pass form
      about u kappa^2, so it fails visibly while two-pass forms stay within budget.
    - tiny_spread: the spread is a few units in the last place of the mean.
    - near_overflow: spreads whose squares exceed float16's 65504.
    """
    u = UNIT_ROUNDOFF[DTYPES[dtype]]
    sign = st.sampled_from([1.0, -1.0])
    none = st.just("")
    if regime == "normal":  # well-conditioned: |offset| <= 3 * scale, so kappa <= sqrt(10)
        return st.tuples(_log_uniform(1e-2, 30.0), st.floats(-3, 3), none).map(
            lambda p: (p[0], p[0] * p[1], ""))
    if regime == "ill_conditioned":
        return st.tuples(st.just(1.0), st.tuples(sign, _log_uniform(u**-0.25, u**-0.75)).map(
            lambda p: p[0] * p[1]), none)
    if regime == "tiny_spread":
        return st.tuples(st.floats(1.0, 8.0), sign, none).map(
            lambda p: (p[0] * u * 100.0, p[1] * 100.0, ""))
    if regime == "constant":
        return st.tuples(st.just(0.0), st.floats(-100, 100), none)
    if regime == "near_overflow":
        return st.tuples(_log_uniform(300.0, 15000.0), st.floats(-1000, 1000), none)
    if regime == "subnormal":
        tiny = SMALLEST_NORMAL[DTYPES[dtype]]
        return st.tuples(_log_uniform(tiny * 1e-2, tiny), st.just(0.0), none)
    if regime == "nonfinite":
        return st.tuples(st.just(1.0), st.just(0.0), st.sampled_from(["nan", "inf", "-inf", "mixed"]))
    raise InvalidArgument(f"regime={regime!r} is not one of {REGIMES}")


def samples(*, dtypes, regimes=REGIMES, ndim=None, fractional_correction=True, exclude_layouts=()):
    """A ``Sample``: shape, call arguments, dtype (from ``dtypes``), layout and value regime.

    - ``dtypes``: names from opcompat.samples.DTYPES the device supports.
    - ``regimes``: value regimes to draw from (a claim's domain); shrinks towards the first.
    - ``ndim``: pin the rank (call sites: 4); None draws 0..5.
    - ``exclude_layouts``: layouts outside a claim's domain.
    """
    if not dtypes:
        raise InvalidArgument("dtypes is empty: the device supports none of the float dtypes")
    if not regimes:
        raise InvalidArgument("regimes is empty")
    if ndim is not None and not 0 <= ndim <= 5:
        raise InvalidArgument(f"ndim={ndim} must be in 0..5")
    return _samples(tuple(dtypes), tuple(regimes), ndim, fractional_correction, tuple(exclude_layouts))


@st.composite
def _samples(draw, dtypes, regimes, ndim, fractional_correction, exclude_layouts):
    shape = draw(shapes() if ndim is None else shapes(min_dims=ndim, max_dims=ndim))
    dtype = draw(st.sampled_from(list(dtypes)))
    regime = draw(st.sampled_from(list(regimes)))
    scale, offset, special = draw(regime_parameters(regime, dtype))
    layout = draw(layouts(len(shape), exclude=exclude_layouts))
    return Sample(
        shape=shape, dtype=dtype, layout=layout, regime=regime, scale=scale, offset=offset, special=special,
        seed=draw(st.integers(0, 2**32 - 1)),
        expand_axis=draw(st.integers(0, len(shape) - 1)) if layout == "expanded" else 0,
        dim=draw(dims(len(shape))), correction=draw(corrections(fractional=fractional_correction)),
        keepdim=draw(st.booleans()),
    )
