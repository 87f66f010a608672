"""Replacements of ``F.grid_sample(input, grid, mode="bilinear", padding_mode, align_corners)`` for
training: values and gradients (the backward, aten::grid_sampler_2d_backward, falls back to the CPU on
MPS up to torch 2.12).

Each forward takes ``(input, grid, *, padding_mode, align_corners)`` and returns ``(out,)``;
``with_grads`` adds the gradients with respect to input and grid through the replacement's own autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from opcompat.families._grads import with_grads
from opcompat.families.grid_sample import NAME, OPS, grid_sample

from . import Case, Claim

FAMILY = NAME
REPLACES = 'F.grid_sample(input, grid, mode="bilinear", padding_mode=..., align_corners=...) + backward'


def cpu_round_trip(input, grid, *, padding_mode, align_corners):
    """Forward and backward on the CPU; autograd carries the gradients back across the copies."""
    out = F.grid_sample(input.cpu(), grid.cpu(), mode="bilinear", padding_mode=padding_mode,
                        align_corners=align_corners)
    return (out.to(input.device),)


def gather_bilinear(input, grid, *, padding_mode, align_corners):
    """Bilinear sampling from gathers: 4 corners, weights from the fractional coordinate, zeros or border
    padding, in opmath (float32 for half types). Differentiable in input (gather -> scatter_add) and grid."""
    n, c, h, w = input.shape
    work = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    x, g = input.to(work), grid.to(work)
    gx, gy = g[..., 0], g[..., 1]
    if align_corners:
        ix, iy = (gx + 1) / 2 * (w - 1), (gy + 1) / 2 * (h - 1)
    else:
        ix, iy = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
    if padding_mode == "border":
        ix, iy = ix.clamp(0, w - 1), iy.clamp(0, h - 1)
    x0, y0 = ix.floor().detach(), iy.floor().detach()
    flat = x.reshape(n, c, h * w)
    out = torch.zeros((n, c, *ix.shape[1:]), dtype=work, device=input.device)
    for dy in (0, 1):
        for dx in (0, 1):
            cx, cy = x0 + dx, y0 + dy
            weight = (1 - (ix - cx).abs()) * (1 - (iy - cy).abs())
            valid = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
            idx = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
            vals = flat.gather(2, idx).reshape(out.shape)
            out = out + vals * (weight * valid).unsqueeze(1)
    return (out.to(input.dtype),)


CASES = [
    Case("grid_sample", grid_sample, REPLACES, Claim(), family=FAMILY,
         source="F.grid_sample itself and its autograd backward: the reference, run on the device"),
    Case("grid_sample_cpu_round_trip", with_grads(cpu_round_trip), REPLACES, Claim(), family=FAMILY, ops=OPS,
         source="the MPS fallback written out: forward and backward on the CPU"),
    Case("grid_sample_gather", with_grads(gather_bilinear), REPLACES, Claim(), family=FAMILY, ops=OPS,
         source="gather-based bilinear grid_sample (values and gradients through autograd)"),
]
