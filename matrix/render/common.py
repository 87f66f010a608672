"""Shared pieces of the MATRIX.md renderer: the line width, wrapping, tables, release ranges, provenance."""

from __future__ import annotations

import re
import textwrap

from packaging.version import InvalidVersion, Version
from tabulate import tabulate

from matrix import results
from opcompat.vocab import SHORT_DTYPE

# No line of MATRIX.md is wider than this (suite/meta/test_matrix_width.py): a laptop screen of text.
WIDTH = 120
DTYPE_ORDER = ("float32", "float16", "bfloat16", "float64")
ELLIPSIS = "…"


def short(dtype: str) -> str:
    return SHORT_DTYPE.get(dtype, dtype)


def dtypes_text(dtypes) -> str:
    return ", ".join(short(d) for d in sorted(dtypes, key=dtype_key))


def dtype_key(dtype: str):
    """Float dtypes in the table order, then any other (int32, int64, bool) by name: a total order, so a
    table never depends on set iteration order (which changes with PYTHONHASHSEED)."""
    return (DTYPE_ORDER.index(dtype), "") if dtype in DTYPE_ORDER else (len(DTYPE_ORDER), dtype)


def version_key(version: str):
    try:
        return (0, Version(results.release(version)))
    except InvalidVersion:
        return (1, version)


def minor(version: str) -> str:
    """'2.2.2+cpu' -> '2.2': release ranges are spoken in minor releases (one patch release each here)."""
    try:
        v = Version(results.release(version))
        return f"{v.major}.{v.minor}"
    except InvalidVersion:
        return version


def op_name(op: str) -> str:
    """'aten::std_mean.correction' -> 'std_mean.correction', 'aten::sqrt.default' -> 'sqrt'."""
    name = op[len("aten::"):] if op.startswith("aten::") else op
    return name[: -len(".default")] if name.endswith(".default") else name


def short_machine(name: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' -> 'Intel Xeon Platinum 8375C'."""
    name = re.sub(r"\((R|TM|tm|r)\)", "", name)
    name = re.sub(r"\s+CPU\s*@.*$|\s+@.*$", "", name)
    return " ".join(name.split())


def tag(data) -> str:
    """The provenance of a result file: 'P' or 'M: device, machine'."""
    if data["kind"] == "predicted":
        return "P"
    machine = data["machine"]
    return f"M: {machine['device']}, {short_machine(machine['device_name'])}"


# -- text -------------------------------------------------------------------------------------------------
def para(text: str, indent: str = "", first: str = "") -> list:
    """``text`` wrapped to WIDTH; ``first`` starts the first line (e.g. "- "), ``indent`` the others."""
    return textwrap.wrap(" ".join(text.split()), width=WIDTH, initial_indent=first or indent,
                         subsequent_indent=indent, break_long_words=True, break_on_hyphens=False) or [first]


def bullet(text: str) -> list:
    return para(text, indent="  ", first="- ")


def table(rows, headers) -> str:
    """A github table no wider than WIDTH: the widest column's longest cells are cut (…) until it fits;
    the full text stays in the result files."""
    rows = [[str(c) for c in row] for row in rows]
    while True:
        text = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        widest = max((len(line) for line in text.splitlines()), default=0)
        if widest <= WIDTH or not rows:
            return text
        widths = [max(len(str(headers[i])), *(len(r[i]) for r in rows)) for i in range(len(headers))]
        col = widths.index(max(widths))
        limit = max(len(str(headers[col])), 8, widths[col] - (widest - WIDTH))
        if limit >= widths[col]:
            return text  # cannot shrink further; the width test names the line
        rows = [[*r[:col], cut(r[col], limit), *r[col + 1:]] for r in rows]


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


# -- release ranges ---------------------------------------------------------------------------------------
def ranges(releases, value_of):
    """[(first, last, value)]: consecutive releases (in the given order) with equal values, grouped."""
    out = []
    for release in releases:
        value = value_of(release)
        if out and out[-1][2] == value:
            out[-1] = (out[-1][0], release, value)
        else:
            out.append((release, release, value))
    return out


def span(first: str, last: str) -> str:
    """'1.13–2.2', or '2.11' for a single release."""
    a, b = minor(first), minor(last)
    return a if a == b else f"{a}–{b}"


def bounded_span(first: str, last: str, releases) -> str:
    """'≤ 2.2', '2.3–2.8', '≥ 2.9' (bounds relative to the releases predicted), or 'all' for every one."""
    at_start, at_end = first == releases[0], last == releases[-1]
    if at_start and at_end:
        return "all"
    if at_start:
        return f"≤ {minor(last)}"
    if at_end:
        return f"≥ {minor(first)}"
    return span(first, last)
