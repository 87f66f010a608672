"""A scan's answer, and its three renderings: a terminal table, JSON, and Markdown for an issue or PR.

Per op overload x dtype the target called: how often, and the MPS status in each release. Then, per
release, whether the whole workload runs on MPS (every op native, native from some macOS, or composed
of such ops), the first release where it does, the ops that still run on the CPU in the newest release
answered, and for each of those the registered cases that replace it, with their verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tabulate import tabulate

from matrix.scan import status_source as st
from matrix.scan.workload import Workload

# Short cells for the terminal: 17 releases side by side.
CELL = {st.NATIVE: "ok", st.NATIVE_MACOS: "ok≥{macos}", st.COMPOSITE_MPS: "ok*", st.COMPOSITE: "comp?",
        st.FALLBACK: "CPU", st.FORCED_CPU: "CPU!", st.ERROR: "ERR", st.NOT_IMPLEMENTED: "NI",
        st.UNSUPPORTED_DTYPE: "dtype", st.NOT_IN_RELEASE: "—", st.UNKNOWN: "?"}
LEGEND = ("ok native on MPS · ok≥V native from macOS V · ok* composed of ops native on MPS · comp? composite, "
          "callees unknown · CPU falls back to the CPU (PYTORCH_ENABLE_MPS_FALLBACK=1, else an error) · "
          "CPU! always run on the CPU by the backend · ERR fails on MPS · NI not implemented, no fallback · "
          "dtype MPS refuses the dtype · — not in this release · ? unknown")
MAX_LISTED = 10  # conclusions name at most this many blocked ops; the table and --json have them all
STOPS = (st.FALLBACK, st.FORCED_CPU, st.ERROR, st.NOT_IMPLEMENTED, st.UNSUPPORTED_DTYPE, st.NOT_IN_RELEASE)


def _macos_key(text: str | None):
    return tuple(int(p) for p in (text or "0").split(".") if p.isdigit())


@dataclass
class ReleaseSummary:
    release: str
    runs_on_mps: bool | None  # None: some op's answer is unknown (or the release could not be read)
    min_macos: str | None = None  # the newest macOS floor among the ops (a kernel's gate or the backend's)
    on_cpu: list = field(default_factory=list)  # [(op, dtype)] that fall back / are forced to the CPU
    blocking: list = field(default_factory=list)  # [(op, dtype, status)] that keep it off MPS
    unknown: list = field(default_factory=list)  # [(op, dtype, status)] nobody can place
    error: str | None = None

    def to_json(self) -> dict:
        return {"release": self.release, "runs_on_mps": self.runs_on_mps, "min_macos": self.min_macos,
                "on_cpu": [list(p) for p in self.on_cpu], "blocking": [list(b) for b in self.blocking],
                "unknown": [list(u) for u in self.unknown], "error": self.error}


def summarise(workload: Workload, answer: st.ReleaseAnswer) -> ReleaseSummary:
    summary = ReleaseSummary(answer.release, None, error=answer.error)
    if answer.error:
        return summary
    for op, dtype in workload.pairs:
        got = answer.get(op, dtype)
        if got.status in st.RUNS_ON_MPS and _macos_key(got.min_macos) > _macos_key(summary.min_macos):
            summary.min_macos = got.min_macos
        if got.status in st.ON_CPU:
            summary.on_cpu.append((op, dtype))
        if got.status in STOPS:
            summary.blocking.append((op, dtype, got.status))
        elif got.status not in st.RUNS_ON_MPS:
            summary.unknown.append((op, dtype, got.status))
    summary.runs_on_mps = False if summary.blocking else (None if summary.unknown else True)
    return summary


@dataclass
class Report:
    workload: Workload
    source: str  # where the statuses come from, in words
    kind: str  # "predicted", "measured", "simulated"
    releases: list
    answers: dict  # {release: ReleaseAnswer}
    replacements: dict = field(default_factory=dict)  # {op: [Replacement]}

    def __post_init__(self):
        self.summaries = {r: summarise(self.workload, self.answers[r]) for r in self.releases}

    @property
    def first_on_mps(self) -> ReleaseSummary | None:
        """The oldest release from which on every newer one scanned runs the whole workload on MPS."""
        first = None
        for release in reversed(self.releases):
            summary = self.summaries[release]
            if summary.error:
                continue  # an unreadable release neither starts nor ends the run
            if summary.runs_on_mps is not True:
                break
            first = summary
        return first

    @property
    def newest(self) -> ReleaseSummary | None:
        answered = [self.summaries[r] for r in self.releases if not self.summaries[r].error]
        return answered[-1] if answered else None

    def still_on_cpu(self) -> list:
        """[(op, dtype, calls, status)] running on the CPU in the newest release answered, most called first."""
        newest = self.newest
        if newest is None:
            return []
        rows = [(op, d, self.workload.counts[(op, d)], self.answers[newest.release].get(op, d).status)
                for op, d in newest.on_cpu]
        return sorted(rows, key=lambda r: -r[2])

    def unreadable(self) -> list:
        return [(r, self.summaries[r].error) for r in self.releases if self.summaries[r].error]

    def to_json(self) -> dict:
        first, newest = self.first_on_mps, self.newest
        return {
            "kind": self.kind, "source": self.source, "workload": self.workload.to_json(),
            "releases": self.releases,
            "statuses": [{"op": op, "dtype": d, "count": n,
                          "releases": {r: _answer_json(self.answers[r].get(op, d)) for r in self.releases}}
                         for (op, d), n in self.workload.counts.items()],
            "summary": {r: self.summaries[r].to_json() for r in self.releases},
            "first_release_on_mps": first.release if first else None,
            "first_release_min_macos": first.min_macos if first else None,
            "newest_release": newest.release if newest else None,
            "still_on_cpu": [{"op": op, "dtype": d, "count": n, "status": s,
                              "replacements": [x.to_json() for x in self.replacements.get(op, [])]}
                             for op, d, n, s in self.still_on_cpu()],
            "unreadable_releases": [{"release": r, "error": e} for r, e in self.unreadable()],
        }


def _answer_json(answer: st.OpAnswer) -> dict:
    out = {"status": answer.status}
    if answer.min_macos:
        out["min_macos"] = answer.min_macos
    return out


def _cell(answer: st.OpAnswer) -> str:
    return CELL.get(answer.status, answer.status).format(macos=answer.min_macos or "?")


def _short(release: str) -> str:
    return ".".join(release.split(".")[:2]) if release[:1].isdigit() else release


def _table(report: Report, fmt: str, only_problems: bool = False) -> str:
    headers = ["op", "dtype", "calls", *(_short(r) for r in report.releases)]
    rows = []
    for (op, d), n in report.workload.counts.items():
        answers = [report.answers[r].get(op, d) for r in report.releases]
        if only_problems and all(a.status in st.RUNS_ON_MPS for a in answers):
            continue
        rows.append([op, d, n, *(_cell(a) for a in answers)])
    whole = {True: "ok", False: "no", None: "?"}
    rows.append(["WHOLE WORKLOAD ON MPS", "", sum(report.workload.counts.values()),
                 *(whole[report.summaries[r].runs_on_mps] if not report.summaries[r].error else "?"
                   for r in report.releases)])
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def _conclusions(report: Report, bullet: str = "") -> list:
    lines, first, newest = [], report.first_on_mps, report.newest
    if report.kind != "predicted" and newest is not None:  # one run on one device: no release range
        verdict = {True: "yes", False: "no", None: "unknown"}[newest.runs_on_mps]
        lines.append(f"{bullet}Whole workload on MPS in this run ({newest.release}): {verdict}.")
    elif first is None:
        last = newest.release if newest else "none"
        lines.append(f"{bullet}Whole workload on MPS: in no scanned release up to the newest answered ({last}).")
    else:
        macos = f", on macOS ≥ {first.min_macos}" if first.min_macos else ""
        lines.append(f"{bullet}Whole workload on MPS: from torch {first.release}{macos} "
                     "(the first of the releases scanned from which every newer one runs it).")
    if newest is not None:
        cpu = report.still_on_cpu()
        if not cpu:
            lines.append(f"{bullet}Nothing falls back to the CPU in {_name(newest.release)}.")
        for op, dtype, n, status in cpu:
            lines.append(f"{bullet}Still on the CPU in {_name(newest.release)}: {op} ({dtype}), {n} call(s), {status}.")
            reps, sub = report.replacements.get(op, []), f"  {bullet}"
            if not reps:
                lines.append(f"{sub}no registered case replaces it")
            for rep in reps:
                origin = f" [{rep.verdict_from}]" if rep.verdict_from else ""
                lines.append(f"{sub}replace with case {rep.case} ({rep.claim}): {rep.verdict}{origin}")
        blocked = [b for b in newest.blocking if b[2] not in st.ON_CPU]
        for op, dtype, status in blocked[:MAX_LISTED]:
            lines.append(f"{bullet}Off MPS in {_name(newest.release)}: {op} ({dtype}): {status}.")
        if len(blocked) > MAX_LISTED:
            lines.append(f"{bullet}... and {len(blocked) - MAX_LISTED} more off MPS (see the table or --json).")
    for release, error in report.unreadable():
        lines.append(f"{bullet}torch {release}: no answer, column shown as unknown: {error}")
    return lines


def _name(release: str) -> str:
    return f"torch {release}" if release[:1].isdigit() else release


def render_text(report: Report, only_problems: bool = False) -> str:
    head = (f"scan of {report.workload.target} ({report.workload.traced_with}): "
            f"{len(report.workload.counts)} op overload x dtype pairs, {sum(report.workload.counts.values())} calls; "
            f"MPS status {report.source}")
    notes = [f"note: {n}" for n in report.workload.notes]
    table = _table(report, "simple", only_problems)
    return "\n".join([head, *notes, "", table, "", LEGEND, "", *_conclusions(report)])


def render_markdown(report: Report, only_problems: bool = False) -> str:
    notes = [f"> {n}" for n in report.workload.notes]
    return "\n".join([f"### MPS scan of `{report.workload.target}`", "",
                      f"{report.workload.traced_with}; MPS status {report.source}.", *notes, "",
                      _table(report, "github", only_problems), "", f"<sub>{LEGEND}</sub>", "",
                      *_conclusions(report, "- ")]) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=1, ensure_ascii=False)
