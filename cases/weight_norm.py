"""Replacements of ``torch._weight_norm(v, g, dim)`` (aten::_weight_norm_interface, which falls back to
the CPU on MPS up to torch 2.1): the unfused forms torch itself uses for float16, and a hand-written one.

Each forward takes ``(v, g, *, dim)`` and returns ``(w,)``; ``with_grads`` adds the gradients.
"""

from __future__ import annotations

import torch

from opcompat.families._grads import with_grads
from opcompat.families.weight_norm import NAME, OPS, reduced, weight_norm

from . import Case, Claim

FAMILY = NAME
REPLACES = "torch._weight_norm(v, g, dim) + backward (nn.utils.weight_norm)"


def norm_except_dim(v, g, *, dim):
    """What torch._weight_norm itself does where the fused kernel does not apply (float16 weights)."""
    return (v * (g / torch.norm_except_dim(v, 2, dim)),)


def vector_norm(v, g, *, dim):
    """The unfused form with torch.linalg.vector_norm (accumulates in float32 for half types)."""
    dims = reduced(v, dim)
    # dim=() would mean every axis to vector_norm: a 1-d v (norm over nothing) is |v| itself
    n = torch.linalg.vector_norm(v, dim=dims, keepdim=True) if dims else v.abs()
    return (v * (g / n),)


def sum_of_squares(v, g, *, dim):
    """The form written from the definition: sqrt(sum(v * v)). Squares in the dtype: they overflow float16
    for entries past 256 and underflow where entries are below sqrt(smallest normal)."""
    dims = reduced(v, dim)
    n = (v * v).sum(dim=dims, keepdim=True).sqrt() if dims else v.abs()
    return (v * (g / n),)


UNFUSED_LIMITS = frozenset({"large", "tiny"})
CASES = [
    Case("weight_norm", weight_norm, REPLACES, Claim(), family=FAMILY,
         source="torch._weight_norm itself and its autograd backward: the reference, run on the device"),
    # The norm is stored in the dtype: past 65504 in float16 it is inf (w = 0, NaN gradients), where the
    # fused kernel keeps it in float32; autograd's g / n^2 overflows for tiny rows.
    Case("weight_norm_norm_except_dim", with_grads(norm_except_dim), REPLACES, Claim(excludes=UNFUSED_LIMITS),
         family=FAMILY, ops=OPS,
         source="torch._weight_norm's own unfused path: v * (g / torch.norm_except_dim(v, 2, dim))"),
    Case("weight_norm_vector_norm", with_grads(vector_norm), REPLACES, Claim(excludes=UNFUSED_LIMITS),
         family=FAMILY, ops=OPS,
         source="v * (g / torch.linalg.vector_norm(v, dim=<all but dim>, keepdim=True))"),
    Case("weight_norm_sum_of_squares", with_grads(sum_of_squares), REPLACES,
         Claim(excludes=UNFUSED_LIMITS), family=FAMILY, ops=OPS,
         source="v * g / sqrt(sum(v * v)) written from the definition"),
]
