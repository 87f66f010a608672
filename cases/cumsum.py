"""Replacements of integer ``torch.cumsum(x, dim)`` for MPS, whose int64 cumsum needed macOS 13.3."""

from __future__ import annotations

import torch

from . import Case, Claim

REPLACES = "torch.cumsum(x, dim)"


def torch_cumsum(x, *, dim):
    return (torch.cumsum(x, dim),)


def cumsum_via_int32(x, *, dim):
    # the usual MPS workaround: cumsum in int32 (dtype= keeps it there; without it torch promotes to int64)
    return (torch.cumsum(x.to(torch.int32), dim, dtype=torch.int32).to(torch.int64),)


CASES = [
    Case("torch_cumsum", torch_cumsum, REPLACES, Claim(), family="cumsum",
         source="torch.cumsum itself: the reference, run on the device"),
    # exact while every element and partial sum fits int32; wraps around past 2^31 - 1
    Case("cumsum_via_int32", cumsum_via_int32, REPLACES, Claim(excludes=frozenset({"int64_range"})),
         family="cumsum", source="MPS workaround: x.int().cumsum(dim, dtype=torch.int32).long()"),
]
