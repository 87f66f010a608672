"""Iterate instead of batching: diffusers' MPS page says batched generation "may crash or be
unreliable; iterate instead". Each case here runs its family's op one sample at a time and stacks the
results: the advice as a replacement, judged like any other.

(``suite/test_families_batching.py`` checks the converse for every registered case: the batched
call equals the per-sample loop on the device under test.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from opcompat.families import attention, grid_sample, upsample
from opcompat.families._grads import with_grads

from . import Case, Claim

SOURCE = "diffusers docs, optimization/mps (zh), batch inference: iterate instead of batching"


def _per_sample(op, split):
    """op over each sample of the batch (the family's own split), concatenated along the batch axis."""

    def loop(*args, **kwargs):
        outs = [op(*a, **kw) for a, kw in (split(args, kwargs, i) for i in range(args[0].shape[0]))]
        return tuple(torch.cat(parts) for parts in zip(*outs))

    return loop


def _sdpa(q, k, v, **kw):
    return attention.sdpa(q, k, v, **kw)


def _bicubic(x, *, size, align_corners):
    return (F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=align_corners),)


CASES = [
    Case("attention_per_sample", _per_sample(_sdpa, attention.split), attention.CALL, Claim(),
         family=attention.NAME, available=attention.has_sdpa, source=SOURCE),
    Case("bicubic_per_sample", _per_sample(_bicubic, upsample.split), upsample.CALL, Claim(),
         family=upsample.NAME, ops=upsample.OPS, source=SOURCE),
    # gradients per sample: each sample's backward is its own, and they concatenate
    Case("grid_sample_per_sample", _per_sample(with_grads(grid_sample.grid_sample_forward), grid_sample.split),
         grid_sample.CALL, Claim(), family=grid_sample.NAME, ops=grid_sample.OPS, source=SOURCE),
]
