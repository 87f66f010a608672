"""The grid_sample family: ``F.grid_sample(input, grid, mode="bilinear", padding_mode, align_corners)``,
values and gradients (aten::grid_sampler_2d and its backward).

On MPS the backward (aten::grid_sampler_2d_backward) falls back to the CPU up to torch 2.12 and the
forward in 1.13 (predicted from the macOS wheels): training a spatial transformer or a flow warp on a
Mac goes through the CPU. Replacements: the CPU round trip and a gather-based bilinear sampler whose
backward autograd derives from gathers (scatter-adds on the way back).

Inputs (``Call``): input (N, C, H, W), grid (N, Hg, Wg, 2); keyword arguments ``padding_mode`` ("zeros",
"border"), ``align_corners`` and ``grad_out`` (the upstream gradient, N x C x Hg x Wg). Outputs: ``out``,
``grad_input``, ``grad_grid``. Regimes: ``normal`` (grid mostly inside [-1, 1]), ``outside`` (mostly
outside: padding decides), ``aligned`` (grid points on pixel centres: cell boundaries, where the
gradient with respect to the grid jumps).

Truth is the op and its autograd backward on float64 CPU inputs; budget: tolerances.grid_sample_bound.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from opcompat.vocab import DTYPE_NAMES

from .. import tolerances as tol
from ..calls import Call, TensorSpec, tensor
from ..family import Family, register
from ._bounded import evaluate
from ._grads import with_grads
from ._hints import causes_with_hints

NAME = "grid_sample"
CALL = 'F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False) and its backward'
OPS = ("aten::grid_sampler_2d.default", "aten::grid_sampler_2d_backward.default")
OUTPUTS = ("out", "grad_input", "grad_grid")
DTYPES = DTYPE_NAMES
REGIMES = ("normal", "outside", "aligned")
PADDINGS = ("zeros", "border")


def grid_sample_forward(input, grid, *, padding_mode, align_corners):
    return (F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners),)


grid_sample = with_grads(grid_sample_forward)  # the op and its backward: the reference


# -- the error budget's statistics, in float64 -------------------------------------------------------------
def _unnormalize(g, size, align_corners):
    return (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2


def _corners(x64, grid64, padding_mode, align_corners):
    """ix, iy (N, Hg, Wg) and per corner: flat index, validity and bilinear weight (4 lists)."""
    h, w = x64.shape[-2:]
    ix = _unnormalize(grid64[..., 0], w, align_corners)
    iy = _unnormalize(grid64[..., 1], h, align_corners)
    if padding_mode == "border":
        ix, iy = ix.clamp(0, w - 1), iy.clamp(0, h - 1)
    x0, y0 = ix.floor(), iy.floor()
    out = []
    for dy in (0, 1):
        for dx in (0, 1):
            cx, cy = x0 + dx, y0 + dy
            weight = (1 - (ix - cx).abs()) * (1 - (iy - cy).abs())
            valid = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
            flat = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long()
            out.append((flat, valid, weight))
    return ix, iy, out


def _gather(x64, flat):
    n, c = x64.shape[:2]
    return x64.reshape(n, c, -1).gather(2, flat.reshape(n, 1, -1).expand(n, c, -1)).reshape(n, c, *flat.shape[1:])


def bound(name, dtype, inputs64, truth):
    (x, grid), kw = inputs64
    go = kw["grad_out"]
    ix, iy, corners = _corners(x, grid, kw["padding_mode"], kw["align_corners"])
    coord = (ix.abs() + iy.abs() + 2).unsqueeze(1)  # (N, 1, Hg, Wg)
    if name == "out":
        s = sum(_gather(x.abs(), f) * (v * wt).unsqueeze(1) for f, v, wt in corners)
        l1 = sum(_gather(x.abs(), f) * v.unsqueeze(1) for f, v, _ in corners)
        return tol.grid_sample_bound(dtype, truth.abs(), s, coord * l1, terms=4)
    if name == "grad_input":
        n, c, h, w = x.shape
        s = torch.zeros(n, c, h * w, dtype=torch.float64)
        t = torch.zeros(n, c, h * w, dtype=torch.float64)
        for f, v, wt in corners:
            idx = f.reshape(n, 1, -1).expand(n, c, -1)
            s.scatter_add_(2, idx, (go.abs() * (v * wt).unsqueeze(1)).reshape(n, c, -1))
            t.scatter_add_(2, idx, (go.abs() * coord * v.unsqueeze(1)).reshape(n, c, -1))
        return tol.grid_sample_bound(dtype, truth.abs(), s.reshape(x.shape), t.reshape(x.shape),
                                     terms=go.shape[-2] * go.shape[-1])
    # grad_grid (N, Hg, Wg, 2): d out / d ix = sum_c +-w_y x_c, times d ix / d g
    n, c, h, w = x.shape
    g_mag = (go.abs() * sum(_gather(x.abs(), f) * v.unsqueeze(1) for f, v, _ in corners)).sum(dim=1)
    scale_x = (w - 1) / 2 if kw["align_corners"] else w / 2
    scale_y = (h - 1) / 2 if kw["align_corners"] else h / 2
    per = torch.stack([scale_x * g_mag * (iy.abs() + 1), scale_y * g_mag * (ix.abs() + 1)], dim=-1)
    sums = torch.stack([scale_x * g_mag, scale_y * g_mag], dim=-1)
    allowed = tol.grid_sample_bound(dtype, truth.abs(), sums, per, terms=4 * c)
    # On a cell boundary the derivative jumps: both one-sided values are right (no bound there).
    u = tol.UNIT_ROUNDOFF[dtype]
    coords = torch.stack([ix, iy], dim=-1)
    jump = (coords - coords.round()).abs() <= tol.GRID_SAMPLE.c_cond * u * (coords.abs() + 1)
    return torch.where(jump, torch.full_like(allowed, float("inf")), allowed)


# -- inputs ------------------------------------------------------------------------------------------------
def _aligned_grid(n, hg, wg, h, w, align_corners, dtype, seed):
    """Grid points on pixel centres (and one step beyond the border), as normalised coordinates."""
    rng = random.Random(seed)
    vals = []
    for _ in range(n * hg * wg):
        for size in (w, h):
            i = rng.randint(-1, size)
            vals.append((2 * i / (size - 1) - 1 if size > 1 else 0.0) if align_corners else (2 * i + 1) / size - 1)
    return tensor(vals, dtype, (n, hg, wg, 2))


def make_call(*, dtype, regime="normal", n=1, c=1, h=4, w=4, hg=3, wg=3, padding_mode="zeros",
              align_corners=False, seed=0):
    x = TensorSpec((n, c, h, w), dtype, seed=seed)
    if regime == "aligned":
        grid = _aligned_grid(n, hg, wg, h, w, align_corners, dtype, seed)
    else:
        grid = TensorSpec((n, hg, wg, 2), dtype, seed=seed + 1, scale=0.6 if regime == "normal" else 3.0)
    kw = {"padding_mode": padding_mode, "align_corners": align_corners,
          "grad_out": TensorSpec((n, c, hg, wg), dtype, seed=seed + 2)}
    return Call(NAME, dtype, regime, (x, grid), tuple(sorted(kw.items())))


def calls(dtypes, regimes=REGIMES, *, max_side=8):
    return st.builds(
        lambda dtype, regime, n, c, h, w, hg, wg, pad, ac, seed: make_call(
            dtype=dtype, regime=regime, n=n, c=c, h=h, w=w, hg=hg, wg=wg, padding_mode=pad, align_corners=ac,
            seed=seed),
        st.sampled_from(list(dtypes)), st.sampled_from(list(regimes)), st.integers(1, 2), st.integers(1, 3),
        st.integers(1, max_side), st.integers(1, max_side), st.integers(1, max_side), st.integers(1, max_side),
        st.sampled_from(PADDINGS), st.booleans(), st.integers(0, 2**31 - 1))


def battery(dtype):
    out = []
    for regime in REGIMES:
        for i, (pad, ac) in enumerate((("zeros", False), ("zeros", True), ("border", False), ("border", True))):
            out.append((regime, make_call(dtype=dtype, regime=regime, n=2, c=3, h=8, w=9, hg=6, wg=5,
                                          padding_mode=pad, align_corners=ac, seed=10 * i + 1)))
    out.append(("normal", make_call(dtype=dtype, n=1, c=4, h=32, w=32, hg=32, wg=32, seed=7)))
    return out


# Each example runs the op at two dtypes and the case, and computes a bound: a tenth of the profile's
# examples (20 in ci) keeps these families' claims within a few seconds; thorough still draws 200.
EXAMPLES_SHARE = 0.1


# -- registration --------------------------------------------------------------------------------------------
HINTS = {
    "outside": "grid points mostly outside [-1, 1]: the padding mode decides",
    "aligned": "grid points on pixel centres: cell boundaries",
}


def _which_gradient(case, failures, device):
    """Name the gradient that is wrong when the values are right: a replacement meant for inference only."""
    outs = {m.output for _, _, o in failures for m in o.mismatches}
    if outs and "out" not in outs:
        return [f"wrong gradient ({', '.join(sorted(outs))}) with right values"]
    return []


def split(args, kwargs, i):
    kw = dict(kwargs)
    kw["grad_out"] = kw["grad_out"][i:i + 1]
    return (args[0][i:i + 1], args[1][i:i + 1]), kw


def _samples(case, dtypes):
    return calls(dtypes, [r for r in REGIMES if r not in case.claim.excludes])


FAMILY = register(Family(
    name=NAME, call=CALL, ops=OPS, reference=grid_sample, outputs=OUTPUTS, dtypes=DTYPES, regimes=REGIMES,
    samples=_samples, battery=lambda case, dtype, correction=None: battery(dtype), budget=NAME,
    causes=causes_with_hints(HINTS, _which_gradient), evaluate=evaluate, params=("padding_mode", "align_corners"),
    notes="mode='bilinear' with zeros or border padding; gradients through the case's own autograd",
    extra={"bound": bound, "batch": split, "examples_share": EXAMPLES_SHARE}))
