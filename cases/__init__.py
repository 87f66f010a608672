"""Registry of decompositions: the cases opcompat tests.

Every module in this folder whose name does not start with ``_`` is imported and its module-level
``CASES`` list is collected: dropping a new file here is all it takes to have it tested. A file that
fails to import, or declares something invalid, becomes a *problem* (named, with the reason) instead of
crashing discovery; the suite turns each problem into a failing test.

The record types live in the library (``opcompat.registry``) and are re-exported here, so a case file
needs only ``from cases import Case, Claim``.
"""

from __future__ import annotations

from pathlib import Path

import opcompat.families  # noqa: F401  (registers every op family before a case names one)
from opcompat.calls import Call, TensorSpec, tensor
from opcompat.discovery import Problem, discover
from opcompat.family import Family
from opcompat.registry import EQUIVALENT, OUTPUTS, PARAMS, SQUARING, Case, CaseError, Claim
from opcompat.vocab import LAYOUTS, MAX_NDIM, REGIMES

__all__ = [
    "EQUIVALENT",
    "LAYOUTS",
    "MAX_NDIM",
    "OUTPUTS",
    "PARAMS",
    "REGIMES",
    "SQUARING",
    "Call",
    "Case",
    "CaseError",
    "Claim",
    "Family",
    "Problem",
    "TensorSpec",
    "all_cases",
    "discover",
    "get",
    "tensor",
]

HERE = Path(__file__).parent
_cache = None


def all_cases():
    """The discovered cases and problems of this package, imported once per process."""
    global _cache
    if _cache is None:
        _cache = discover(__name__, [HERE])
    return _cache


def of_family(name: str) -> list:
    """The discovered cases of one op family (the probe, tracer and benchmark speak std_mean only)."""
    return [case for case in all_cases()[0] if case.family == name]


def get(name: str) -> Case:
    for case in all_cases()[0]:
        if case.name == name:
            return case
    known = ", ".join(c.name for c in all_cases()[0])
    raise KeyError(f"no case named {name!r}; known: {known}")
