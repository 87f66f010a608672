"""The case record and its validation.

A *case* is one way of computing what an op of a family computes (``opcompat.family``): for the
default family, ``torch.std_mean`` (or part of it: a call site that only needs the std, or only a
decision ``std > t``). Shaped after PyTorch's OpInfo: a frozen dataclass, fields grouped and commented,
validated in ``__post_init__`` with errors that name the case; what only one family allows (std_mean's
correction, eps, dims) its family checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import family as families
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
    """What a case says it computes, in terms of its family's op (std_mean: ``torch.std_mean``).

    Every family:

    - ``excludes``: input regimes (the family's), layouts or dtypes outside the claim's domain (the
      verdict still covers them).

    std_mean only:

    - ``correction``: None means "at the caller's correction"; a number pins it (0 = biased).
    - ``eps``: the case computes ``sqrt(var + eps)`` instead of ``sqrt(var)``.
    - ``max_kappa``: the claim holds only for slices whose condition number
      kappa = sqrt(sum x^2 / sum (x - m)^2) is at most this (one-pass forms lose u * kappa^2).
    """

    correction: Optional[float] = None
    eps: float = 0.0
    excludes: frozenset = frozenset()
    max_kappa: Optional[float] = None

    def describe(self, family: str = "std_mean") -> str:
        if family != "std_mean":
            text = f"{family} exactly as the op"
            return text + (f", except {', '.join(sorted(self.excludes))}" if self.excludes else "")
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
    """One replacement of a family's op (default: ``torch.std_mean``), or of a call site of it.

    std_mean: ``fn(x, *, dim, correction, keepdim)`` returns a tuple with one tensor per name in
    ``outputs`` (for a decision case: one bool tensor). Other families: ``fn(*args, **kwargs)`` takes
    what the family's op takes and returns a tuple, one tensor per output.
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
    outputs: tuple = ()  # default: every output of the family
    threshold: Optional[float] = None  # decision cases: the output is std > threshold

    # -- the op family, and the aten overloads the case stands in for (default: the family's)
    family: str = "std_mean"
    ops: tuple = ()

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
        if not isinstance(self.family, str) or self.family not in families.FAMILIES:
            bad(f"family={self.family!r} is not a known family; known: {', '.join(families.known())}")
        fam = families.get(self.family)
        if not self.outputs:
            object.__setattr__(self, "outputs", fam.outputs)
        if not self.ops:
            object.__setattr__(self, "ops", fam.ops)
        if not isinstance(self.ops, tuple) or not all(isinstance(o, str) for o in self.ops):
            bad(f"ops must be a tuple of aten overload names, got {self.ops!r}")
        if not isinstance(self.fixed, Mapping):
            bad(f"fixed must be a dict of pinned call parameters, got {type(self.fixed).__name__}")
        if self.family == "std_mean":
            _check_std_mean(self, bad)
        else:
            _check_generic(self, fam, bad)
        problem = fam.check_case(self) if fam.check_case else ""
        if problem:
            bad(problem)

    # The correction the caller asked for, given the correction drawn for a free parameter.
    def caller_correction(self, drawn: float) -> float:
        return self.fixed.get("correction", drawn)

    def claimed_correction(self, drawn: float) -> float:
        c = self.claim.correction
        return self.caller_correction(drawn) if c is None else c

    def __repr__(self):
        return f"Case({self.name}: {self.claim.describe(self.family)})"


def _check_std_mean(self, bad):
    unknown = set(self.fixed) - set(PARAMS)
    if unknown:
        bad(f"fixed has unknown parameters {sorted(unknown)}; allowed: {list(PARAMS)}")
    if "correction" in self.fixed and not (_is_real(self.fixed["correction"]) and self.fixed["correction"] >= 0):
        bad(f"fixed correction must be a number >= 0, got {self.fixed['correction']!r}")
    if "keepdim" in self.fixed and not isinstance(self.fixed["keepdim"], bool):
        bad(f"fixed keepdim must be True or False, got {self.fixed['keepdim']!r}")
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
    if dim is not None:
        dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
            bad(f"fixed dim must be None, an int or a tuple of ints, got {dim!r}")
        if self.ndim is None:
            bad(f"fixed dim={dim!r} needs ndim=... (the rank the call site's input has)")
        if any(not -self.ndim <= d < self.ndim for d in dims):
            bad(f"fixed dim={dim!r} is out of range for ndim={self.ndim}")
        if len({d % self.ndim for d in dims}) != len(dims):
            bad(f"fixed dim={dim!r} names an axis twice")


def _check_generic(self, fam, bad):
    unknown = set(self.fixed) - set(fam.params)
    if unknown:
        bad(f"fixed has unknown parameters {sorted(unknown)}; {fam.name} allows: {list(fam.params)}")
    if (self.claim.correction, self.claim.eps, self.claim.max_kappa) != (None, 0.0, None):
        bad(f"claim correction/eps/max_kappa are std_mean's; a {fam.name} claim may only exclude "
            f"regimes {list(fam.regimes)} or dtypes")
    domain = set(fam.regimes) | set(LAYOUTS) | set(fam.dtypes)
    if not set(self.claim.excludes) <= domain:
        bad(f"claim excludes unknown regimes/dtypes {sorted(set(self.claim.excludes) - domain)}; "
            f"known: {list(fam.regimes) + list(fam.dtypes)}")
    if set(self.claim.excludes) >= set(fam.regimes):
        bad("claim excludes every regime: nothing left to test")
    if self.threshold is not None:
        bad("threshold is std_mean's (a decision std > t)")
    if not isinstance(self.outputs, tuple) or not set(self.outputs) <= set(fam.outputs) or len(
        set(self.outputs)
    ) != len(self.outputs):
        bad(f"outputs must be a non-empty subset of {fam.outputs}, got {self.outputs!r}")


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
