"""Op families: what the engine needs to know about one op to judge replacements of it.

A *family* is one op (``torch.std_mean``, ``torch.isin``, ``torch.cumsum`` ...) as data: its reference
(the op itself), its truth (float64 on the CPU, or an exact integer reference), its outputs, the
strategy that draws its inputs, the fixed battery its verdicts use, the error budget it is judged
with (a key into ``opcompat.tolerances.BUDGETS``) and the causes it can name. A *case* (a replacement,
``opcompat.registry.Case``) names its family; the claims test, the verdicts and the matrix work on
every family the same way.

Adding a family is a module in ``opcompat/families/`` (imported automatically) that calls
``register(Family(...))``, a budget row in ``opcompat/tolerances.py`` if none fits, and a case file in
``cases/`` that lists ``Case(..., family="<name>")``. For example (the isin family, abridged)::

    from opcompat.calls import Call, tensor
    from opcompat.family import Family, register

    def isin(elements, test_elements, **kw):
        return (torch.isin(elements, test_elements, **kw),)   # a tuple: one tensor per output

    register(Family(
        name="isin", call="torch.isin(elements, test_elements)", ops=("aten::isin.Tensor_Tensor",),
        reference=isin, truth=python_sets,                      # exact: outputs must equal the truth
        outputs=("isin",), dtypes=("int64", "int32", "float32"), regimes=("vector", "batched"),
        samples=draw_calls, battery=witnesses, budget="exact"))

Inputs are ``opcompat.calls.Call`` records (tensor recipes + keyword arguments, built on any device,
with a runnable repro); ``compare.evaluate_call`` runs a case on one and compares every output with
``compare.close``. A family with an engine of its own (std_mean: per-element budgets, semantics such
as correction and eps) sets ``evaluate`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


class FamilyError(ValueError):
    """A family declares something that cannot be used; the message names the family."""


@dataclass(frozen=True)
class Family:
    # -- the op
    name: str  # what cases write as family=...; a test id and a table heading
    call: str  # the op as a caller writes it, e.g. "torch.isin(elements, test_elements)"
    ops: tuple  # the aten overloads the op dispatches to (the matrix joins fallbacks on them)
    reference: Callable[..., tuple]  # the op itself: reference(*args, **kwargs) -> one tensor per output
    outputs: tuple  # output names, in order; a case returns these (or a declared subset)

    # -- inputs
    dtypes: tuple  # dtypes verdicts are given at: the table's columns
    regimes: tuple  # input regimes the strategy draws and a claim may exclude
    samples: Callable[..., Any]  # samples(case, dtypes) -> hypothesis strategy of inputs, in the claim's domain
    battery: Callable[..., list]  # battery(case, dtype, correction) -> [(regime, input)], fixed witnesses

    # -- judgement
    budget: str  # row of opcompat.tolerances.BUDGETS ("exact": outputs must equal the truth)
    truth: Optional[Callable[..., tuple]] = None  # exact truth on the CPU; None: reference on float64 inputs
    causes: Optional[Callable[..., list]] = None  # causes(case, failures, device) -> [str]; None: the generic ones
    evaluate: Optional[Callable[..., Any]] = None  # evaluate(case, input, device, against=...) -> Outcome
    params: tuple = ()  # call parameters a case may pin with fixed={...}
    check_case: Optional[Callable[..., str]] = None  # check_case(case) -> what is wrong with it, or ''
    in_claim: Optional[Callable[..., bool]] = None  # in_claim(case, input): inside the claim's domain
    corrections: bool = False  # verdicts are given per correction too (std_mean)
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # family-specific data (e.g. a cause's threshold)

    def __post_init__(self):
        def bad(msg):
            raise FamilyError(f"family {self.name!r}: {msg}")

        if not isinstance(self.name, str) or not self.name.isidentifier():
            bad("name must be an identifier-like string")
        for label in ("reference", "samples", "battery"):
            if not callable(getattr(self, label)):
                bad(f"{label} must be callable")
        for label in ("outputs", "dtypes", "regimes", "ops"):
            value = getattr(self, label)
            if not isinstance(value, tuple) or not value or not all(isinstance(v, str) for v in value):
                bad(f"{label} must be a non-empty tuple of strings, got {value!r}")
        if not isinstance(self.budget, str):
            bad(f"budget must be a key of opcompat.tolerances.BUDGETS, got {self.budget!r}")


FAMILIES: dict = {}


def register(family: Family) -> Family:
    """Add ``family`` to the registry (once per name); returns it."""
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise FamilyError(f"family {family.name!r} is registered twice")
    FAMILIES[family.name] = family
    return family


def get(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"no family named {name!r}; known: {', '.join(sorted(FAMILIES)) or 'none'} "
                       "(families register when opcompat.families is imported)") from None


def known() -> tuple:
    return tuple(FAMILIES)
