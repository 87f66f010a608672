"""Small helpers shared by case files: reduction dims and element counts, spelled once."""

from __future__ import annotations

import math

import torch


def reduced_dims(x: torch.Tensor, dim) -> tuple:
    """``dim`` as a tuple of axes; None means every axis (a 0-d tensor has none)."""
    if dim is None:
        return tuple(range(x.ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def count(x: torch.Tensor, dim) -> int:
    """Number of elements each output reduces over."""
    return math.prod(x.shape[d] for d in reduced_dims(x, dim)) if x.ndim else 1


def mean(x: torch.Tensor, dim, keepdim: bool) -> torch.Tensor:
    """``torch.mean`` over ``dim`` that also accepts None/0-d on every torch release."""
    dims = reduced_dims(x, dim)
    if not dims:
        return x.clone() if keepdim or x.ndim == 0 else x.mean()
    return x.mean(dim=dims, keepdim=keepdim)


def total(x: torch.Tensor, dim, keepdim: bool) -> torch.Tensor:
    dims = reduced_dims(x, dim)
    if not dims:
        return x.clone()
    return x.sum(dim=dims, keepdim=keepdim)


def squeeze_like(t: torch.Tensor, x: torch.Tensor, dim, keepdim: bool) -> torch.Tensor:
    """Drop the kept reduction axes of ``t`` unless the caller asked to keep them."""
    if keepdim or x.ndim == 0:
        return t
    dims = sorted((d % x.ndim for d in reduced_dims(x, dim)), reverse=True)
    for d in dims:
        t = t.squeeze(d)
    return t
