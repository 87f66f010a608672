"""The case record and its validation.

A *case* is one way of computing what ``torch.std_mean`` computes (or part of it: a call site
that only needs the std, or only a decision ``std > t``). Shaped after PyTorch's OpInfo: a frozen
dataclass, fields grouped and commented, validated in ``__post_init__`` with errors that name the case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .vocab import DTYPE_NAMES, LAYOUTS, MAX_NDIM, REGIMES

OUTPUTS = ("std", "mean")
PARAMS = ("dim", "correction", "keepdim")
# Forms that square in the input dtype: (x - m) ** 2 overflows float16 where the fused op (which
# accumulates in float32) does not, and underflows near the subnormal range. Their claims leave those
# regimes out; the verdict table still covers them.
SQUARING = frozenset({"near_overflow", "subnormal"})


class CaseError(ValueError):
    """A case declares something that cannot be tested; the message names the case."""


@dataclass(frozen=True)
class Claim:
    """What a case says it computes, in terms of ``torch.std_mean``.

    - ``correction``: None means "at the caller's correction"; a number pins it (0 = biased).
    - ``eps``: the case computes ``sqrt(var + eps)`` instead of ``sqrt(var)``.
    - ``excludes``: input regimes, layouts or dtypes outside the claim's domain (the verdict still covers them).
    - ``max_kappa``: the claim holds only for slices whose condition number
      kappa = sqrt(sum x^2 / sum (x - m)^2) is at most this (one-pass forms lose u * kappa^2).
    """

    correction: Optional[float] = None
    eps: float = 0.0
    excludes: frozenset = frozenset()
    max_kappa: Optional[float] = None

    def describe(self) -> str:
        corr = "the caller's correction" if self.correction is None else f"correction={self.correction:g}"
        text = f"std_mean at {corr}"
        if self.eps:
            text = f"sqrt(var + {self.eps:g}) with var at {corr}"
        if self.excludes:
            text += f", except {', '.join(sorted(self.excludes))}"
        if self.max_kappa is not None:
            text += f", for kappa <= {self.max_kappa:g}"
        return text

    @property
    def is_equivalence(self) -> bool:
        """True when the claim is plain equivalence with the op it replaces, everywhere."""
        return self.correction is None and self.eps == 0.0 and not self.excludes and self.max_kappa is None


EQUIVALENT = Claim()


@dataclass(frozen=True)
class Case:
    """One decomposition of ``torch.std_mean`` (or a call site of it).

    ``fn(x, *, dim, correction, keepdim)`` returns a tuple with one tensor per name in ``outputs``
    (for a decision case: one bool tensor).
    """

    # -- identity
    name: str
    fn: Callable[..., tuple]
    replaces: str  # the call it stands in for, written as the caller wrote it
    claim: Claim
    source: str  # where the form comes from (a document, a forum post, PyTorch itself)

    # -- call-site shape: parameters pinned by the caller, and the input rank they need
    fixed: Mapping[str, Any] = field(default_factory=dict)
    ndim: Optional[int] = None
    outputs: tuple = OUTPUTS
    threshold: Optional[float] = None  # decision cases: the output is std > threshold

    # -- availability and provenance
    available: Callable[[], bool] = lambda: True  # e.g. torch._refs.std_mean exists in this torch
    notes: str = ""
    module: str = ""  # filled by discovery: the file the case came from

    def __post_init__(self):
        where = f"case {self.name!r}" + (f" (in {self.module})" if self.module else "")

        def bad(msg):
            raise CaseError(f"{where}: {msg}")

        if not isinstance(self.name, str) or not self.name.isidentifier():
            bad("name must be an identifier-like string (it becomes a test id)")
        if not callable(self.fn):
            bad(f"fn must be callable, got {type(self.fn).__name__}")
        if not isinstance(self.claim, Claim):
            bad(f"claim must be a cases.Claim, got {type(self.claim).__name__}")
        for text, label in ((self.replaces, "replaces"), (self.source, "source")):
            if not isinstance(text, str) or not text.strip():
                bad(f"{label} must be a non-empty string")
        unknown = set(self.fixed) - set(PARAMS)
        if unknown:
            bad(f"fixed has unknown parameters {sorted(unknown)}; allowed: {list(PARAMS)}")
        if "correction" in self.fixed and not _is_real(self.fixed["correction"]):
            bad(f"fixed correction must be a real number, got {self.fixed['correction']!r}")
        if self.claim.correction is not None and (
            not _is_real(self.claim.correction) or self.claim.correction < 0
        ):
            bad(f"claim correction must be a number >= 0, got {self.claim.correction!r}")
        if not _is_real(self.claim.eps) or self.claim.eps < 0:
            bad(f"claim eps must be a number >= 0, got {self.claim.eps!r}")
        domain = set(REGIMES) | set(LAYOUTS) | set(DTYPE_NAMES)
        if not set(self.claim.excludes) <= domain:
            bad(f"claim excludes unknown regimes/layouts/dtypes {sorted(set(self.claim.excludes) - domain)}; "
                f"known: {list(REGIMES) + list(LAYOUTS) + list(DTYPE_NAMES)}")
        if self.claim.max_kappa is not None and (not _is_real(self.claim.max_kappa) or self.claim.max_kappa < 1):
            bad(f"claim max_kappa must be a number >= 1 (kappa is never below 1), got {self.claim.max_kappa!r}")
        if set(self.claim.excludes) >= set(REGIMES):
            bad("claim excludes every regime: nothing left to test")
        if self.threshold is not None:
            if self.outputs != ("decision",):
                bad("a case with a threshold must have outputs=('decision',)")
            if not _is_real(self.threshold):
                bad(f"threshold must be a number, got {self.threshold!r}")
        elif not self.outputs or not set(self.outputs) <= set(OUTPUTS) or len(set(self.outputs)) != len(
            self.outputs
        ):
            bad(f"outputs must be a non-empty subset of {OUTPUTS} in order, got {self.outputs!r}")
        if self.ndim is not None and not (isinstance(self.ndim, int) and 0 <= self.ndim <= MAX_NDIM):
            bad(f"ndim must be an int in 0..{MAX_NDIM}, got {self.ndim!r}")
        dim = self.fixed.get("dim")
        if dim is not None and self.ndim is not None:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            if any(not -self.ndim <= d < self.ndim for d in dims):
                bad(f"fixed dim={dim!r} is out of range for ndim={self.ndim}")

    # The correction the caller asked for, given the correction drawn for a free parameter.
    def caller_correction(self, drawn: float) -> float:
        return self.fixed.get("correction", drawn)

    def claimed_correction(self, drawn: float) -> float:
        c = self.claim.correction
        return self.caller_correction(drawn) if c is None else c

    def __repr__(self):
        return f"Case({self.name}: {self.claim.describe()})"


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
