"""Generic decompositions of ``torch.std_mean(x, dim, correction=c, keepdim)``.

Each takes the caller's ``dim``, ``correction`` and ``keepdim`` and returns ``(std, mean)``.
"""

from __future__ import annotations

import torch

from opcompat.forms import count, mean, squeeze_like, total
from opcompat.reference import FUSED, STD_MEAN_CALL

from . import SQUARING, Case, Claim

REPLACES = STD_MEAN_CALL


def std_plus_mean(x, *, dim, correction, keepdim):
    return (torch.std(x, dim=dim, correction=correction, keepdim=keepdim), mean(x, dim, keepdim))


def var_mean_sqrt(x, *, dim, correction, keepdim):
    var, m = torch.var_mean(x, dim=dim, correction=correction, keepdim=keepdim)
    return var.sqrt(), m


def two_pass_biased(x, *, dim, correction, keepdim):
    m = mean(x, dim, keepdim=True)
    var = mean((x - m) ** 2, dim, keepdim=True)
    return squeeze_like(var.sqrt(), x, dim, keepdim), squeeze_like(m, x, dim, keepdim)


def two_pass_corrected(x, *, dim, correction, keepdim):
    m = mean(x, dim, keepdim=True)
    # N - c <= 0 gives inf/nan exactly where torch.std_mean does (it warns and divides by max(0, N-c)).
    var = total((x - m) ** 2, dim, keepdim=True) / max(0, count(x, dim) - correction)
    return squeeze_like(var.sqrt(), x, dim, keepdim), squeeze_like(m, x, dim, keepdim)


def two_pass_eps(x, *, dim, correction, keepdim):
    m = mean(x, dim, keepdim=True)
    var = mean((x - m) ** 2, dim, keepdim=True)
    return squeeze_like(torch.sqrt(var + 1e-5), x, dim, keepdim), squeeze_like(m, x, dim, keepdim)


def one_pass(x, *, dim, correction, keepdim):
    n = count(x, dim)
    m = mean(x, dim, keepdim)
    scale = n / (n - correction) if n > correction else float("inf")  # as torch: var / max(0, N - c)
    var = (mean(x * x, dim, keepdim) - m * m) * scale
    return var.sqrt(), m


def upcast(x, *, dim, correction, keepdim):
    if x.dtype not in (torch.float16, torch.bfloat16):
        return torch.std_mean(x, dim=dim, correction=correction, keepdim=keepdim)
    s, m = torch.std_mean(x.float(), dim=dim, correction=correction, keepdim=keepdim)
    return s.to(x.dtype), m.to(x.dtype)


def refs(x, *, dim, correction, keepdim):
    import torch._refs

    return tuple(torch._refs.std_mean(x, dim, correction=correction, keepdim=keepdim))


def _has_refs_std_mean() -> bool:
    try:
        import torch._refs
    except ImportError:
        return False
    return hasattr(torch._refs, "std_mean")


CASES = [
    FUSED,
    Case("std_plus_mean", std_plus_mean, REPLACES, Claim(),
         source="Fooocus advice, step-by-step fix (anisotropic.py): torch.std + torch.mean"),
    # var = std^2 overflows float16 once std > 256 and underflows for subnormal spreads, where std does not.
    Case("var_mean_sqrt", var_mean_sqrt, REPLACES, Claim(excludes=SQUARING),
         source="torch.var_mean, then sqrt"),
    Case("two_pass_biased", two_pass_biased, REPLACES, Claim(correction=0, excludes=SQUARING),
         source="Fooocus advice: sqrt(mean((x - m) ** 2)), used in three places"),
    # sum((x - m) ** 2) is a float16 sum: it overflows once N * var > 65504, on ordinary data.
    Case("two_pass_corrected", two_pass_corrected, REPLACES, Claim(excludes=SQUARING | {"float16"}),
         source="textbook two-pass: sqrt(sum((x - m) ** 2) / (N - correction))"),
    Case("two_pass_eps", two_pass_eps, REPLACES, Claim(correction=0, eps=1e-5, excludes=SQUARING),
         source="Fooocus advice (anisotropic.py): sqrt(mean((x - m) ** 2) + 1e-5)"),
    Case("one_pass", one_pass, REPLACES,
         # Error ~ u kappa^2: only well-conditioned slices. Constant slices (also from an expanded axis)
         # can make E[x^2] - E[x]^2 negative: NaN.
         Claim(excludes=SQUARING | {"ill_conditioned", "tiny_spread", "constant", "expanded"}, max_kappa=1.5),
         source="one-pass E[x^2] - E[x]^2, rescaled by N / (N - correction)"),
    Case("upcast", upcast, REPLACES, Claim(),
         source="float16/bfloat16 computed in float32 and cast back (common MPS workaround)"),
    # _refs computes var in the dtype and takes its sqrt, so subnormal spreads underflow to 0.
    Case("refs", refs, REPLACES, Claim(excludes=frozenset({"subnormal"})),
         source="PyTorch's reference decomposition torch._refs.std_mean",
         available=_has_refs_std_mean),
]
