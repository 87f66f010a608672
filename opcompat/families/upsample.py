"""The upsample family: ``F.interpolate(x, size, mode="bicubic", align_corners)``, aten::upsample_bicubic2d.

On MPS the op falls back to the CPU up to torch 2.5 (``python -m matrix predict --op
aten::upsample_bicubic2d.default``: dispatch CPU/CUDA only until 2.6 added upsample_bicubic2d_out_mps).
Replacements: the CPU round trip, a bilinear substitution, a hand-written bicubic.

Inputs (``Call``): x (N, C, H, W); keyword arguments ``size`` (out_h, out_w), up or down, and
``align_corners``. Regimes: ``normal`` (white noise: where kernels differ most), ``smooth`` (a low-frequency
image: kernels differ less, still far above the budget), ``constant`` (every kernel that sums to 1 is
exact), ``near_overflow`` (float16-sized values of ~2e4: the cubic's overshoot can pass 65504),
``nonfinite`` (one NaN pixel: it spreads over its 4x4 footprint).

Truth is the op on float64 CPU inputs. The budget (tolerances.upsample_bound): each output is a 16-term
weighted sum S = sum |w_y w_x| |x| with weights from the source coordinate.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from opcompat.vocab import DTYPE_NAMES

from .. import tolerances as tol
from ..calls import Call, TensorSpec, tensor
from ..family import Family, register
from ._bounded import evaluate, inputs64
from ._hints import causes_with_hints

NAME = "upsample"
CALL = 'F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)'
OPS = ("aten::upsample_bicubic2d.default", "aten::upsample_bicubic2d.vec")
OUTPUTS = ("out",)
DTYPES = DTYPE_NAMES
REGIMES = ("normal", "smooth", "constant", "near_overflow", "nonfinite")
A = -0.75


def bicubic(x, *, size, align_corners):
    """The op itself."""
    return (F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=align_corners),)


def _abs_taps(in_size, out_size, align_corners):
    """float64 tap indices (out, 4) and |weights| (out, 4), aten's coordinate rules (see cases/upsample.py)."""
    dst = torch.arange(out_size, dtype=torch.float64)
    if align_corners:
        real = dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        real = (dst + 0.5) * (in_size / out_size) - 0.5
    idx = real.floor()
    t = real - idx
    near = lambda s: ((A + 2) * s - (A + 3)) * s * s + 1  # noqa: E731
    far = lambda s: ((A * s - 5 * A) * s + 8 * A) * s - 4 * A  # noqa: E731
    w = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=-1).abs()
    taps = (idx.long().unsqueeze(-1) + torch.arange(-1, 3)).clamp(0, in_size - 1)
    return taps, w


def magnitude(x64, size, align_corners):
    """S = sum over the 16 taps of |w_y w_x| |x|: what the rounding errors of the weighted sum scale with."""
    ty, wy = _abs_taps(x64.shape[-2], size[0], align_corners)
    tx, wx = _abs_taps(x64.shape[-1], size[1], align_corners)
    a = x64.abs()
    rows = (a[..., ty, :] * wy[..., None]).sum(dim=-2)
    return (rows[..., tx] * wx).sum(dim=-1)


def tap_max(x64, size, align_corners):
    """The largest |x| among each output's 16 taps: what an error in a weight's coordinate multiplies."""
    ty, _ = _abs_taps(x64.shape[-2], size[0], align_corners)
    tx, _ = _abs_taps(x64.shape[-1], size[1], align_corners)
    rows = x64.abs()[..., ty, :].amax(dim=-2)
    return rows[..., tx].amax(dim=-1)


def bound(name, dtype, inputs64, truth):
    (x,), kw = inputs64
    x = x.nan_to_num(0.0, 0.0, 0.0)
    s = magnitude(x, kw["size"], kw["align_corners"])
    m = tap_max(x, kw["size"], kw["align_corners"])
    return tol.upsample_bound(dtype, truth.abs(), s, m, in_size=max(x.shape[-2:]))


# -- inputs ------------------------------------------------------------------------------------------------
def _x_spec(regime, shape, dtype, seed):
    if regime == "constant":
        return TensorSpec(shape, dtype, seed=seed, scale=0.0, offset=random.Random(seed).randint(-40, 40) / 8)
    if regime == "near_overflow":
        return TensorSpec(shape, dtype, seed=seed, scale=2e4)
    if regime == "smooth":  # a separable low-frequency pattern, explicit values (quarter steps: exact in bf16)
        n, c, h, w = shape
        rng = random.Random(seed)
        fy, fx, ph = rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5), rng.uniform(0, 6.28)
        vals = [round(4 * math.sin(fy * i + ph) * math.cos(fx * j)) / 4 + k
                for k in range(n * c) for i in range(h) for j in range(w)]
        return tensor(vals, dtype, shape)
    if regime == "nonfinite":
        gen = torch.Generator().manual_seed(seed)
        vals = (torch.randn(shape, generator=gen, dtype=torch.float64) * 4).round().div(4).flatten()
        vals[int(torch.randint(0, vals.numel(), (1,), generator=gen))] = math.nan
        return tensor(vals.tolist(), dtype, shape)
    return TensorSpec(shape, dtype, seed=seed)


def make_call(*, dtype, regime="normal", n=1, c=1, h=4, w=4, out_h=8, out_w=8, align_corners=False, seed=0):
    x = _x_spec(regime, (n, c, h, w), dtype, seed)
    kw = {"size": (out_h, out_w), "align_corners": align_corners}
    return Call(NAME, dtype, regime, (x,), tuple(sorted(kw.items())))


def calls(dtypes, regimes=REGIMES, *, max_side=8, max_out=16):
    """Strategy: up- and down-sampling, 1x1 images included; shrinks towards 1x1 -> 1x1, no align_corners."""
    return st.builds(
        lambda dtype, regime, n, c, h, w, oh, ow, ac, seed: make_call(
            dtype=dtype, regime=regime, n=n, c=c, h=h, w=w, out_h=oh, out_w=ow, align_corners=ac, seed=seed),
        st.sampled_from(list(dtypes)), st.sampled_from(list(regimes)), st.integers(1, 2), st.integers(1, 3),
        st.integers(1, max_side), st.integers(1, max_side), st.integers(1, max_out), st.integers(1, max_out),
        st.booleans(), st.integers(0, 2**31 - 1))


def battery(dtype):
    """Every regime, x2 upsampling and an odd downsampling, both align_corners; one 64 -> 1000 upsampling."""
    out = []
    for regime in REGIMES:
        for i, ac in enumerate((False, True)):
            out.append((regime, make_call(dtype=dtype, regime=regime, n=2, c=3, h=8, w=8, out_h=16, out_w=16,
                                          align_corners=ac, seed=i + 1)))
            out.append((regime, make_call(dtype=dtype, regime=regime, n=1, c=2, h=9, w=7, out_h=4, out_w=5,
                                          align_corners=ac, seed=i + 3)))
    out.append(("normal", make_call(dtype=dtype, n=1, c=1, h=64, w=8, out_h=1000, out_w=3, seed=9)))
    return out


# Each example runs the op at two dtypes and the case, and computes a bound: a tenth of the profile's
# examples (20 in ci) keeps these families' claims within a few seconds; thorough still draws 200.
EXAMPLES_SHARE = 0.1


# -- registration --------------------------------------------------------------------------------------------
HINTS = {
    "normal": "white noise, where interpolation kernels differ most",
    "smooth": "a low-frequency image",
    "near_overflow": "values of ~2e4: the cubic's overshoot passes float16's 65504",
    "nonfinite": "a NaN pixel spreads over its 4x4 footprint",
}


def _other_kernels(x, kw):
    size, ac = kw["size"], kw["align_corners"]
    return {
        "bilinear": F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=ac),
        "bicubic with align_corners swapped": F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=not ac),
    }


def _kernel(case, failures, device):
    """'different kernel: computes bilinear' where every failing output is within budget of that kernel."""
    named = set()
    for _, call, outcome in failures:
        if not outcome.actual or call.regime == "constant":
            continue
        args, kw = inputs64(*call.build("cpu"))
        got = outcome.actual[0].double()
        for label, other in _other_kernels(args[0], kw).items():
            fine = torch.isfinite(other) & torch.isfinite(got)
            allowed = bound("out", call.torch_dtype, (args, kw), other)
            if fine.any() and bool(((got - other).abs() <= 2 * allowed)[fine].all()):
                named.add(f"different kernel (computes {label}, not bicubic)")
    return sorted(named)


def split(args, kwargs, i):
    return (args[0][i:i + 1],), dict(kwargs)


def _samples(case, dtypes):
    return calls(dtypes, [r for r in REGIMES if r not in case.claim.excludes])


FAMILY = register(Family(
    name=NAME, call=CALL, ops=OPS, reference=bicubic, outputs=OUTPUTS, dtypes=DTYPES, regimes=REGIMES,
    samples=_samples, battery=lambda case, dtype, correction=None: battery(dtype), budget=NAME,
    causes=causes_with_hints(HINTS, _kernel), evaluate=evaluate, params=("size", "align_corners"),
    notes="size= only (scale_factor= computes the source coordinate from 1 / scale_factor instead)",
    extra={"bound": bound, "batch": split, "examples_share": EXAMPLES_SHARE}))
