"""Verdicts: is a case equivalent to the op it replaces, at a dtype (and, for std_mean, a correction),
and if not, why.

Equivalent means: on every input of the family's fixed battery (std_mean: opcompat.witnesses), every
output matches the family's op on the CPU (opcompat.compare). Otherwise the family names the causes
it can identify (``Family.causes``; std_mean's in opcompat.std_mean_causes, the generic ones in
opcompat.causes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from . import causes as common
from . import device_quirks, family
from .compare import run

__all__ = ["CORRECTIONS", "Verdict", "corrections_for", "dtypes_for", "judge", "table"]

CORRECTIONS = (0, 1)


@dataclass
class Verdict:
    case: str
    correction: Optional[float]  # None for families without one
    dtype: str
    device: str
    equivalent: bool
    causes: list = field(default_factory=list)
    failing_regimes: list = field(default_factory=list)
    counterexample: str = ""  # the first failing input and its report
    device_notes: list = field(default_factory=list)  # failures the device's own op shares
    family: str = "std_mean"
    replaces: str = ""  # the call the case stands in for
    ops: list = field(default_factory=list)  # the aten overloads it replaces (the matrix joins fallbacks on them)

    def cell(self) -> str:
        text = "equivalent" if self.equivalent else "NOT: " + "; ".join(self.causes)
        return text + "".join(f" [{note}]" for note in self.device_notes)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in
                ("family", "case", "correction", "dtype", "device", "equivalent", "causes", "failing_regimes",
                 "counterexample", "device_notes", "replaces", "ops")}


def corrections_for(case, corrections=CORRECTIONS):
    """A call site pins its correction; a generic std_mean case is judged at each one asked for; other
    families have none (one verdict per dtype, correction None)."""
    if not family.get(case.family).corrections:
        return (None,)
    return (case.fixed["correction"],) if "correction" in case.fixed else tuple(corrections)


def dtypes_for(case, dtypes) -> tuple:
    """The dtypes of ``dtypes`` the case's family is judged at."""
    own = family.get(case.family).dtypes
    return tuple(d for d in dtypes if d in own)


def judge(case, correction, dtype, device="cpu") -> Verdict:
    fam = family.get(case.family)
    failures, notes = [], []
    for regime, sample in fam.battery(case, dtype, correction):
        outcome = run(case, sample, device, against="reference")
        if outcome.ok:
            continue
        quirk = device_quirks.explains(case, sample, device, outcome)
        if quirk:
            common.add(notes, quirk.note)
        else:
            failures.append((regime, sample, outcome))
    verdict = Verdict(case.name, correction, dtype, str(device), equivalent=not failures, device_notes=notes,
                      family=case.family, replaces=case.replaces, ops=list(case.ops))
    if failures:
        verdict.failing_regimes = sorted({r for r, _, _ in failures})
        verdict.counterexample = failures[0][2].report()
        verdict.causes = (fam.causes or common.generic)(case, failures, device)
    return verdict


def table(cases, dtypes, device="cpu", corrections=CORRECTIONS):
    """All verdicts for ``cases`` x their corrections x the ``dtypes`` their family is judged at, on ``device``."""
    return [judge(case, c, dtype, device) for case in cases for c in corrections_for(case, corrections)
            for dtype in dtypes_for(case, dtypes)]
