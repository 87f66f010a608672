"""The registered cases that replace an op, and their verdicts.

A case says which aten overloads it replaces with ``Case.replaces_ops`` (e.g.
("aten::isin.Tensor_Tensor",)) or ``Case.ops`` (the op families' name for it); read with getattr so
cases written before either field existed still count. Those older cases are the std_mean family: one
whose ``replaces`` calls ``torch.std_mean`` replaces aten::std_mean.correction, one that calls
``torch.std`` replaces aten::std.correction.

Verdicts come from the committed CPU result files (the newest torch first), else are computed on the
CPU now with ``opcompat.verdicts.judge`` (about 0.3 s per case, dtype and correction).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

import cases
from matrix import results
from opcompat import verdicts
from opcompat.verdicts import corrections_for, judge
from opcompat.vocab import DTYPE_NAMES, display

STD_FAMILY = ((re.compile(r"^\s*torch\.std_mean\("), "aten::std_mean.correction"),
              (re.compile(r"^\s*(?:torch\.std\(|.*\.std\()"), "aten::std.correction"))


def replaces_ops(case) -> tuple:
    # ``replaces_ops`` as agreed; ``ops`` is what the families branch gave Case (the family's ops by default).
    declared = getattr(case, "replaces_ops", None) or getattr(case, "ops", None)
    if declared:
        return tuple(display(op) for op in declared)
    return tuple(op for pattern, op in STD_FAMILY if pattern.search(getattr(case, "replaces", "") or ""))


@dataclass(frozen=True)
class Replacement:
    case: str
    claim: str
    source: str
    verdict: str  # "equivalent at float32 (corrections 0, 1)", "NOT at float16: overflow ...", "no verdict: ..."
    verdict_from: str  # the result file, "computed now on the CPU", or ""

    def to_json(self) -> dict:
        return {"case": self.case, "claims": self.claim, "source": self.source, "verdict": self.verdict,
                "verdict_from": self.verdict_from}


def committed_verdicts(directory=results.RESULTS_DIR) -> list:
    """[(file name, [verdict rows])] of measured CPU files, newest torch first."""
    found, _ = results.load_dir(directory) if Path(directory).is_dir() else ([], [])
    rows = [(Path(p).name, d["torch"]["version"], d["verdicts"]) for p, d in found
            if d["kind"] == "measured" and d["machine"].get("device") == "cpu" and d["verdicts"]]
    rows.sort(key=lambda r: Version(results.release(r[1])), reverse=True)
    return [(name, verdicts) for name, _, verdicts in rows]


MAX_CAUSES = 240  # a verdict's causes, cut for the terminal; the result files and judge() have them whole


def _at(row) -> str:
    """ ", correction 1" for a std_mean verdict; "" for families that have no correction."""
    return "" if row.get("correction") is None else f", correction {row['correction']:g}"


def _summary(rows: list, dtype: str) -> str:
    bad = [r for r in rows if not r.get("equivalent")]
    if not bad:
        corrections = ", ".join(f"{r['correction']:g}" for r in rows if r.get("correction") is not None)
        return f"equivalent at {dtype}" + (f" (correction {corrections})" if corrections else "")
    causes = "; ".join(bad[0].get("causes", []))
    if len(causes) > MAX_CAUSES:
        causes = causes[:MAX_CAUSES].rsplit(" ", 1)[0] + " ..."
    return f"NOT equivalent at {dtype}{_at(bad[0])}: {causes}"


# Every dtype name a family may be judged at; the op families' verdicts say which ones a case takes.
ALL_DTYPES = (*DTYPE_NAMES, "int64", "int32", "int16", "int8", "uint8", "bool", "complex64")


def judged_dtype(case, dtype: str) -> str:
    """The dtype to judge ``case`` at for an op seen at ``dtype``: that one if its family takes it, else
    the family's first (std_mean cases take float dtypes only)."""
    own = verdicts.dtypes_for(case, ALL_DTYPES) if hasattr(verdicts, "dtypes_for") else DTYPE_NAMES
    return dtype if dtype in own else (own[0] if own else dtype)


class VerdictLookup:
    """Verdicts per (case, dtype): committed files first, else ``judge`` on the CPU when ``compute``."""

    def __init__(self, committed=None, compute: bool = True, judge_fn: Callable = judge):
        self.committed = committed_verdicts() if committed is None else committed
        self.compute, self.judge = compute, judge_fn

    def verdict(self, case, dtype: str) -> tuple[str, str]:
        dtype = judged_dtype(case, dtype)
        for name, rows in self.committed:
            mine = [r for r in rows if r.get("case") == case.name and r.get("dtype") == dtype]
            if mine:
                return _summary(mine, dtype), name
        if not self.compute:
            return "no verdict in the committed result files (run without --no-verdicts to compute one)", ""
        try:
            found = [self.judge(case, c, dtype, "cpu").to_json() for c in corrections_for(case)]
        except Exception as exc:  # a case the std_mean judge cannot take: say so, do not guess
            return f"no verdict: judging it raised {type(exc).__name__}: {exc}", ""
        return _summary(found, dtype), "computed now on the CPU"


def _claim(case) -> str:
    family = getattr(case, "family", None)
    try:
        return case.claim.describe(family) if family else case.claim.describe()  # families: per family
    except TypeError:  # a Claim from before the op families takes no family
        return case.claim.describe()


def replacements_for(ops_dtypes, lookup: VerdictLookup | None, registry=None) -> dict:
    """{op: [Replacement]} for each (op, dtype) in ``ops_dtypes`` that some registered case replaces."""
    found = registry if registry is not None else cases.all_cases()[0]
    out = {}
    for op, dtype in ops_dtypes:
        for case in found:
            if op not in replaces_ops(case):
                continue
            verdict, origin = lookup.verdict(case, dtype) if lookup else ("verdicts not asked for", "")
            out.setdefault(op, []).append(Replacement(case.name, _claim(case), case.source, verdict, origin))
    return out
