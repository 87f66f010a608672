"""Replacements of ``F.interpolate(x, size, mode="bicubic", align_corners)`` (aten::upsample_bicubic2d),
which falls back to the CPU on MPS up to torch 2.5 (predicted from the macOS wheels).

Each takes ``(x, *, size, align_corners)`` and returns ``(out,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from opcompat.families.upsample import NAME, OPS, bicubic

from . import Case, Claim

FAMILY = NAME
REPLACES = 'F.interpolate(x, size=(h, w), mode="bicubic", align_corners=...)'
A = -0.75  # PyTorch's cubic convolution coefficient (Keys' kernel; OpenCV's too), not Keys' -0.5


def cpu_round_trip(x, *, size, align_corners):
    """Run the op on the CPU and come back: what PYTORCH_ENABLE_MPS_FALLBACK=1 does, written out."""
    return (F.interpolate(x.cpu(), size=size, mode="bicubic", align_corners=align_corners).to(x.device),)


def bilinear(x, *, size, align_corners):
    """The substitution forum threads suggest: bilinear runs natively on MPS. A different kernel."""
    return (F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners),)


def _taps(in_size, out_size, align_corners, dtype, device, a=A):
    """Source indices (out, 4) clamped to the border, and cubic weights (out, 4), as aten computes them:
    the source coordinate is not clamped at 0 for cubic (area_pixel_compute_source_index, cubic=True),
    so near the border taps left of 0 read x[0] (upsample_get_value_bounded)."""
    dst = torch.arange(out_size, dtype=dtype, device=device)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        real = dst * scale
    else:
        real = (dst + 0.5) * (in_size / out_size) - 0.5
    idx = real.floor()
    t = real - idx
    # cubic_convolution1(x) = ((A + 2) x - (A + 3)) x^2 + 1 for |x| <= 1, cubic_convolution2 for 1 < |x| < 2
    def near(s):
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=-1)
    taps = (idx.long().unsqueeze(-1) + torch.arange(-1, 3, device=device)).clamp(0, in_size - 1)
    return taps, weights


def manual_bicubic(x, *, size, align_corners):
    """Separable gather-and-weight bicubic in opmath (float32 for half types), rows then columns."""
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    h, w = x.shape[-2:]
    ty, wy = _taps(h, size[0], align_corners, work, x.device)
    tx, wx = _taps(w, size[1], align_corners, work, x.device)
    xw = x.to(work)
    rows = (xw[..., ty, :] * wy[..., None]).sum(dim=-2)  # (N, C, out_h, W)
    out = (rows[..., tx] * wx).sum(dim=-1)  # (N, C, out_h, out_w)
    return (out.to(x.dtype),)


CASES = [
    Case("bicubic", bicubic, REPLACES, Claim(), family=FAMILY,
         source="F.interpolate(mode='bicubic') itself: the reference, run on the device"),
    Case("bicubic_cpu_round_trip", cpu_round_trip, REPLACES, Claim(), family=FAMILY, ops=OPS,
         source="the MPS fallback written out: x.cpu(), interpolate, .to(device)"),
    # Equals bicubic only where the image is constant (both kernels sum to 1).
    Case("bicubic_as_bilinear", bilinear, REPLACES, Claim(excludes=frozenset({"normal", "smooth", "near_overflow",
                                                                           "nonfinite"})),
         family=FAMILY, ops=OPS, source="forum advice: mode='bilinear' instead (native on MPS)"),
    Case("bicubic_manual", manual_bicubic, REPLACES, Claim(), family=FAMILY, ops=OPS,
         source="gather-based bicubic with PyTorch's A=-0.75, align_corners and border clamping"),
]
