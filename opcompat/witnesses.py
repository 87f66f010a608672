"""Fixed inputs for verdicts: a deterministic battery covering every value regime and layout.

Hypothesis searches a claim's domain; a verdict needs the same inputs on every run and device so that
tables from different machines compare. Ill-conditioned inputs come as a ladder of condition numbers,
so the verdict can see whether the error grows with kappa.
"""

from __future__ import annotations

from dataclasses import replace

from .samples import DTYPES, Sample
from .tolerances import SMALLEST_NORMAL, UNIT_ROUNDOFF
from .vocab import REGIMES

GENERIC_SHAPE = (4, 8, 16, 16)  # 8192 elements; reductions of 16 .. 8192
GENERIC_DIMS = (None, (1, 2, 3), -1)
LARGE_N_SHAPE = (1, 2, 256, 256)  # 131072 elements in one reduction


def kappa_ladder(dtype: str) -> tuple:
    """|mean| / std ratios from well-conditioned up to where float32-class two-pass still holds."""
    u = UNIT_ROUNDOFF[DTYPES[dtype]]
    top = u**-0.75
    ladder, k = [], 10.0
    while k <= top:
        ladder.append(k)
        k *= 10.0
    return tuple(ladder) or (u**-0.5,)


def _regime(regime: str, dtype: str):
    """(scale, offset, special) variants for one regime, as the strategies would draw them."""
    u = UNIT_ROUNDOFF[DTYPES[dtype]]
    if regime == "normal":
        return [(1.0, 0.5, ""), (0.05, -0.1, "")]
    if regime == "ill_conditioned":
        return [(1.0, k, "") for k in kappa_ladder(dtype)]
    if regime == "tiny_spread":
        return [(4 * u * 100.0, 100.0, "")]
    if regime == "constant":
        return [(0.0, 0.3, "")]
    if regime == "near_overflow":
        return [(1000.0, 200.0, "")]
    if regime == "subnormal":
        return [(SMALLEST_NORMAL[DTYPES[dtype]] * 0.3, 0.0, "")]
    if regime == "nonfinite":
        return [(1.0, 0.0, s) for s in ("nan", "inf", "-inf", "mixed")]
    raise ValueError(f"unknown regime {regime!r}")


def _rank(shape, ndim):
    """``shape`` trimmed from the left, or padded with 2s, to exactly ``ndim`` axes (None: as it is)."""
    if ndim is None:
        return shape
    return (2,) * max(0, ndim - len(shape)) + shape[len(shape) - min(ndim, len(shape)):]


def battery(dtype: str, correction, *, ndim=None):
    """Every (regime, sample) of the verdict battery for ``dtype`` and ``correction``."""
    shape = _rank(GENERIC_SHAPE, ndim)
    dims_list = GENERIC_DIMS if ndim is None else (None,)
    out = []
    for regime in REGIMES:
        for i, (scale, offset, special) in enumerate(_regime(regime, dtype)):
            for j, dim in enumerate(dims_list):
                base = Sample(shape=shape, dtype=dtype, regime=regime, scale=scale, offset=offset,
                              special=special, seed=1000 * i + j, dim=dim, correction=correction, keepdim=j == 1)
                out.append((regime, base))
    # a long reduction of ordinary data: a float16 *sum* of 65k unit squares passes 65504 (the mean does not)
    out.append(("normal", Sample(shape=_rank(LARGE_N_SHAPE, ndim), dtype=dtype,
                                 seed=11, dim=None, correction=correction)))
    # layouts, on well-conditioned data
    normal = Sample(shape=shape, dtype=dtype, scale=1.0, offset=0.5, seed=7, dim=dims_list[-1],
                    correction=correction)
    if len(shape) >= 2:
        out.append(("normal", replace(normal, layout="transposed")))
    if len(shape) >= 1:
        out.append(("normal", replace(normal, layout="expanded", expand_axis=0)))
    if len(shape) == 4:
        out.append(("normal", replace(normal, layout="channels_last")))
    return out
