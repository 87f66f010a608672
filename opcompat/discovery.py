"""Case discovery: import every case module of a folder and collect its ``CASES`` list.

A file that fails to import, or declares something invalid, becomes a *problem* (named, with the
reason) instead of crashing discovery; the test suite turns each problem into a failing test.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from .registry import Case, CaseError


@dataclass(frozen=True)
class Problem:
    """A case file that could not be used, and why."""

    where: str
    reason: str

    def __str__(self):
        return f"{self.where}: {self.reason}"


def discover(package: str, path) -> tuple:
    """Import every case module; return ``(cases, problems)``.

    Cases whose ``available()`` is false in this torch are left out (not a problem: e.g.
    ``torch._refs.std_mean`` does not exist in old releases).
    """
    path = [str(p) for p in path]
    cases, problems, seen = [], [], {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        modname = f"{package}.{info.name}"
        where = f"{package.rsplit('.', 1)[-1]}/{info.name}.py"
        try:
            module = importlib.import_module(modname)
        except CaseError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        except Exception as exc:  # a broken user file must not take the whole run down
            problems.append(Problem(where, f"failed to import: {type(exc).__name__}: {exc}{_line(exc, info.name)}"))
            continue
        declared = getattr(module, "CASES", None)
        if declared is None:
            problems.append(Problem(where, "defines no CASES list"))
            continue
        if not isinstance(declared, (list, tuple)):
            problems.append(Problem(where, f"CASES must be a list of Case, got {type(declared).__name__}"))
            continue
        for i, case in enumerate(declared):
            if not isinstance(case, Case):
                problems.append(Problem(where, f"CASES[{i}] is a {type(case).__name__}, not a Case"))
                continue
            case = replace(case, module=where)
            if case.name in seen:
                problems.append(Problem(where, f"case name {case.name!r} is already used in {seen[case.name]}"))
                continue
            seen[case.name] = where
            try:
                if not case.available():
                    continue
            except Exception as exc:
                problems.append(Problem(where, f"case {case.name!r}: available() raised {exc!r}"))
                continue
            cases.append(case)
    return cases, problems


def _line(exc, module_name):
    """' (line N)' of the case file where the import failed, when the traceback reaches it."""
    if isinstance(exc, SyntaxError):
        return ""  # its message already carries file and line
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).stem == module_name]
    return f" (line {frames[-1].lineno})" if frames else ""
