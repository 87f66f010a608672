"""After the std_mean answers: per op family (isin, cumsum, attention ... as the verdict rows name them, never a
hand-written list), does the op fall back on MPS, and which replacement to use on which device.

One bullet per family: its replaced aten ops with their MPS status as release ranges from the predictor's
snapshots (per dtype where the dtypes differ), then one sub-bullet per device with measured verdicts
("Use": the cases equivalent there at each dtype; "not": the others, causes cut to a few words; the full
causes stay in the result files) and one for MPS: there, per release where the op falls back (grouped), a
case is recommended (P) only when it is equivalent on every measured device, its ops traced on the nearest
release that traced it (matrix/traces.py "family_cases") all stay on MPS at that release and dtype per the
snapshot, and it does not move data off the device ("leaves_device"); never the op itself. A case with no
trace is listed as untraced, one whose ops do not stay under "not on MPS" with the ops named.
"""

from __future__ import annotations

from collections import OrderedDict

from matrix import results, traces
from matrix.render.allops import Snapshots
from matrix.render.common import bounded_span, bullet, dtype_key, dtypes_text, minor, op_name, para, version_key
from matrix.render.model import FELL_BACK, Model
from matrix.render.model import _distance as distance
from opcompat.vocab import DTYPE_NAMES, MPS_DTYPES, REFERENCE_CASE_SOURCE

STD_MEAN = "std_mean"  # the family answered by the section above (records.py: rows without a family are std_mean)
STATUS_WORDS = {"fallback": "falls back", "forced_cpu": "runs on the CPU", "not_in_release": "absent",
                "unsupported_dtype": "refuses the dtype", "composite_mps": "composite"}
CAUSE_WORDS = (("NaN/inf pattern", "NaN/inf pattern differs"), ("value mismatch", "off beyond the budget"),
               ("error for ", "raises for "))
SHORT_CAUSE = 60
DEVICE_ORDER = ("cpu", "cuda")
DEVICE_TITLE = {"cpu": "CPU", "cuda": "CUDA"}
QUIET_TEXT = "never falls back"  # a cause this short is shown whole


# -- what the results say about each family -----------------------------------------------------------------
def families(model: Model) -> OrderedDict[str, dict]:
    """{family: {"ops": [...], "replaces": call, "devices": {device: (release, [verdict rows])}}}, in the order
    the result files first name them; per device, the newest measured release with rows of that family."""
    found = OrderedDict()
    for device, files in model.measured.items():
        for data in sorted(files, key=lambda d: version_key(d["torch"]["version"]), reverse=True):
            release = results.release(data["torch"]["version"])
            for row in data["verdicts"]:
                name = row.get("family") or STD_MEAN
                if name == STD_MEAN:
                    continue
                fam = found.setdefault(name, {"ops": OrderedDict(), "replaces": OrderedDict(), "devices": {}})
                for op in row.get("ops") or ():
                    fam["ops"].setdefault(op, None)
                if row.get("replaces"):
                    fam["replaces"].setdefault(row["replaces"], None)
                have = fam["devices"].get(device)
                if have is None or have[0] == release:
                    fam["devices"][device] = (release, [*(have[1] if have else []), row])
    for fam in found.values():
        fam["ops"], fam["replaces"] = list(fam["ops"]), list(fam["replaces"])
    return found


def verdicts(rows) -> OrderedDict[str, OrderedDict[str, list]]:
    """{case: {dtype: [rows]}} in row order, dtypes in the usual order."""
    out = OrderedDict()
    for row in rows:
        out.setdefault(row["case"], OrderedDict()).setdefault(row["dtype"], []).append(row)
    for case, by_dtype in out.items():
        out[case] = OrderedDict(sorted(by_dtype.items(), key=lambda kv: dtype_key(kv[0])))
    return out


def _dtype_order(dtype):
    return dtype_key(dtype), dtype


def is_reference(model_cases: dict, case: str) -> bool:
    """The op itself, run on the device (its case file says so in its source): never a way around a fallback."""
    known = model_cases.get(case)
    return known is not None and REFERENCE_CASE_SOURCE in known.source


# -- the MPS status of the replaced ops, from the snapshots --------------------------------------------------
def _word(word, macos):
    if word == "native_macos":
        return f"native (macOS ≥ {macos})" if macos else "native (newer macOS)"
    return STATUS_WORDS.get(word, word)


def op_history(snaps: Snapshots, op: str, dtype: str) -> str:
    """'falls back ≤ 2.3 · native ≥ 2.4', or 'native everywhere'."""
    values = [(r, _word(*snaps.status(r, op, dtype))) for r in snaps.releases]
    parts, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i][1] != values[start][1]:
            where = bounded_span(values[start][0], values[i - 1][0], snaps.releases)
            parts.append(f"{values[start][1]} everywhere" if where == "all" else f"{values[start][1]} {where}")
            start = i
    return " · ".join(parts)


def predicted_dtypes(snaps: Snapshots, dtypes) -> list:
    """The family's dtypes the snapshots answer per dtype (float32 always: it is the op's own status)."""
    covered = {d for s in snaps.snaps.values() for per in (s.get("dtype_differs") or {}).values() for d in per}
    chosen = [d for d in dtypes if d in covered | {"float32"}]
    return chosen or ["float32"]


def ops_text(snaps: Snapshots, ops, dtypes) -> str:
    """Each op's history, ops with the same history merged, per dtype group where the dtypes differ."""
    by_text = OrderedDict()
    for op in ops:
        if not fallback_releases(snaps, [op], dtypes) and any(
                op_history(snaps, op, d) != "native everywhere" for d in dtypes):
            by_text.setdefault(QUIET_TEXT, []).append(op)
            continue
        per = OrderedDict()
        for dtype in dtypes:
            per.setdefault(op_history(snaps, op, dtype), []).append(dtype)
        text = next(iter(per)) if len(per) == 1 else " | ".join(f"{dtypes_text(d)}: {t}" for t, d in per.items())
        by_text.setdefault(text, []).append(op)
    return "; ".join(f"{', '.join(f'`{o}`' for o in names)}: {text}" for text, names in by_text.items())


def fallback_releases(snaps: Snapshots, ops, dtypes) -> list:
    return [r for r in snaps.releases
            if any(snaps.status(r, op, d)[0] in FELL_BACK for op in ops for d in dtypes)]


# -- verdicts in words ---------------------------------------------------------------------------------------
def cause_short(cause: str) -> tuple:
    """(words, regime or detail): 'overflow (grad_v, tiny: a long story)' -> ('overflow', 'tiny');
    'error for batched inputs ((2, 3) and (2,)): ...' -> ('raises for batched inputs', ''); a short cause whole."""
    head, _, inner = cause.partition(" (")
    for prefix, words in CAUSE_WORDS:
        if head.startswith(prefix):
            head = words + head[len(prefix):]
    inner = inner[:-1] if inner.endswith(")") else inner
    if ":" in inner:
        before = inner.split(":", 1)[0]
        return (head, "") if "(" in before else (head, before.split(", ")[-1])
    return (head, inner) if len(cause) <= SHORT_CAUSE else (head, "")


def why_not(by_dtype: dict) -> str:
    """One case's failing verdicts in a few words: causes merged over dtypes, the regimes where they bite in
    parentheses, and the failing dtypes in brackets where not every judged dtype fails."""
    words, failing = OrderedDict(), []
    for dtype, rows in by_dtype.items():
        for row in rows:
            if row["equivalent"]:
                continue
            if dtype not in failing:
                failing.append(dtype)
            for cause in row.get("causes") or ["differs"]:
                head, detail = cause_short(cause)
                details = words.setdefault(head, [])
                if detail and detail not in details:
                    details.append(detail)
    text = "; ".join(f"{w} ({', '.join(d)})" if d else w for w, d in words.items())
    return text if len(failing) == len(by_dtype) else f"{text} [{dtypes_text(failing)}]"


def _grouped(by_dtype: dict) -> str:
    groups = OrderedDict()
    for dtype, text in by_dtype.items():
        groups.setdefault(text, []).append(dtype)
    return " · ".join(f"{dtypes_text(d)}: {t}" for t, d in groups.items())


def equivalent_at(by_case, dtype) -> list:
    return [c for c, by_dtype in by_case.items() if dtype in by_dtype and all(r["equivalent"] for r in by_dtype[dtype])]


def device_line(device: str, release: str, rows) -> str:
    by_case = verdicts(rows)
    dtypes = sorted({r["dtype"] for r in rows}, key=_dtype_order)
    use = OrderedDict((d, ", ".join(equivalent_at(by_case, d)) or "none") for d in dtypes)
    bad = [(c, why_not(by_dtype)) for c, by_dtype in by_case.items()
           if any(not r["equivalent"] for rs in by_dtype.values() for r in rs)]
    text = f"{DEVICE_TITLE.get(device, device)} (M, torch {minor(release)}): **Use** "
    text += _grouped(use)
    if bad:
        text += ". Not: " + "; ".join(f"{c} ({w})" for c, w in bad)
    return text + "."


# -- MPS: which replacement stays on the device where the op falls back -------------------------------------
# Statuses that keep a traced op from running on MPS at that release and dtype (model.FELL_BACK, and a dtype
# the op refuses: the case would raise there).
OFF_MPS = (*FELL_BACK, "unsupported_dtype")
ABSENT = "not_in_release"  # the traced op does not exist there: that release's code takes another path


def family_traces(model: Model) -> dict:
    """{release: ({family case: {trace dtype: [(op, dtype)]}}, {family case: leaves the device})} of the trace
    files that traced other families' cases."""
    return {release: (traces.family_case_ops(data), data.get("leaves_device") or {})
            for release, data in model.traces.items() if data.get("family_cases")}


def nearest_trace(ftraces: dict, case: str, release: str):
    """(traced release, {trace dtype: [(op, dtype)]}, leaves the device) from the trace nearest ``release`` that
    traced ``case``, or None."""
    have = sorted((r for r, (ops, _) in ftraces.items() if case in ops), key=lambda r: distance(r, release))
    if not have:
        return None
    ops, leaves = ftraces[have[0]]
    return have[0], ops[case], leaves.get(case)


def ops_at(by_dtype: dict, dtype: str) -> list:
    """The traced (op, dtype) pairs for a verdict at ``dtype``: that dtype's trace, else float32's (a float
    column) or the first; ops that ran at the trace's dtype are taken to run at ``dtype``."""
    key = dtype if dtype in by_dtype else ("float32" if dtype in DTYPE_NAMES and "float32" in by_dtype
                                           else next(iter(by_dtype)))
    return [(op, dtype if ran == key else ran) for op, ran in by_dtype[key]]


def on_mps(snaps, ftraces, case, release, dtype):
    """('use', traced release, {}), ('not', why, {status word: {op: None}}) or ('untraced', why, {}) for ``case``
    on MPS at ``release`` and ``dtype``."""
    found = nearest_trace(ftraces, case, release)
    if found is None:
        return "untraced", NO_TRACE, {}
    traced_on, by_dtype, leaves = found
    if leaves is None:
        return "untraced", "device moves unknown", {}
    if leaves:
        return "not", LEAVES, {}
    statuses = [(op, snaps.status(release, op, d)[0]) for op, d in ops_at(by_dtype, dtype)]
    off = OrderedDict()
    for op, word in statuses:
        if word in OFF_MPS:
            off.setdefault(STATUS_WORDS.get(word, word), OrderedDict())[op] = None
    if off:
        return "not", "", off
    if any(word == ABSENT for _, word in statuses):
        return "untraced", f"ops traced on {minor(traced_on)} absent here", {}
    return "use", minor(traced_on), {}


LEAVES = "leaves the device"
NO_TRACE = "no trace"


def _few(ops, shown=2) -> str:
    names = [f"`{op_name(op)}`" for op in ops]
    return ", ".join(names[:shown]) + (f" (+{len(names) - shown} more)" if len(names) > shown else "")


PLURAL = {"falls back": "fall back", "runs on the CPU": "run on the CPU", "refuses the dtype": "refuse the dtype"}


def _reasons(found: OrderedDict, quiet=None) -> str:
    """'a (`op` falls back), b (leaves the device)'; a reason ``quiet`` is left unsaid."""
    parts = []
    for case, reasons in found.items():
        said = [f"{_few(ops)} {PLURAL.get(why, why) if len(ops) > 1 else why}" if ops else why
                for why, ops in reasons.items() if why != quiet]
        parts.append(f"{case} ({'; '.join(said)})" if said else case)
    return ", ".join(parts)


def mps_outcome(snaps, ftraces, candidates: dict, release, ops) -> tuple:
    """(use ((dtype, (case, ...)), ...), traced releases, not {case: {why: {op: None}}}, untraced {case: {why: {}}})
    at ``release``, at the dtypes where one of the family's ``ops`` falls back there; ``candidates``: {dtype: cases
    equivalent on every measured device}."""
    use, bad, untraced, traced_on = OrderedDict(), OrderedDict(), OrderedDict(), set()
    for dtype, chosen in candidates.items():
        if not any(snaps.status(release, op, dtype)[0] in FELL_BACK for op in ops):
            continue
        picked = []
        for case in chosen:
            kind, why, off = on_mps(snaps, ftraces, case, release, dtype)
            if kind == "use":
                picked.append(case)
                traced_on.add(why)
                continue
            reasons = (bad if kind == "not" else untraced).setdefault(case, OrderedDict())
            for word, found in (off or {why: {}}).items():
                reasons.setdefault(word, OrderedDict()).update(found)
        use[dtype] = tuple(picked)
    return tuple(use.items()), tuple(sorted(traced_on, key=version_key)), bad, untraced


def _merge(into: OrderedDict, more: OrderedDict):
    for case, reasons in more.items():
        for why, ops in reasons.items():
            into.setdefault(case, OrderedDict()).setdefault(why, OrderedDict()).update(ops)


def mps_line(snaps, fam, known_cases, ftraces=None) -> str:
    devices = fam["devices"]
    # MPS has no float64 (vocab.MPS_DTYPES): of the float dtypes only those; integer dtypes stay
    op_dtypes = sorted({r["dtype"] for _, rows in devices.values() for r in rows
                        if r["dtype"] in MPS_DTYPES or r["dtype"] not in DTYPE_NAMES}, key=_dtype_order)
    fell = fallback_releases(snaps, fam["ops"], predicted_dtypes(snaps, op_dtypes)) if snaps else []
    call = fam["replaces"][0] if fam["replaces"] else "the op"
    if snaps and not fell:
        return f"MPS (P): no replaced op falls back on any release predicted: **use** `{call}` itself."
    by_device = {dev: verdicts(rows) for dev, (_, rows) in devices.items()}
    cases = list(OrderedDict((c, None) for by_case in by_device.values() for c in by_case))
    candidates = OrderedDict(
        (dtype, [c for c in cases if not is_reference(known_cases, c)
                 and all(c in equivalent_at(by_case, dtype) for by_case in by_device.values())])
        for dtype in op_dtypes)
    measured = " and ".join(sorted(devices))
    if not snaps:
        picks = OrderedDict((d, ", ".join(c) or "none known") for d, c in candidates.items())
        return (f"MPS (P): where it falls back, **Use (P)** {_grouped(picks)} (equivalent on {measured}; "
                "no prediction snapshots to tell which stay on MPS).")
    # consecutive falling-back releases with the same picks and the same cases turned down share a clause
    groups = []  # [[first, last, use, traced_on, not, untraced]]
    for release in fell:
        use, traced_on, bad, untraced = mps_outcome(snaps, ftraces or {}, candidates, release, fam["ops"])
        last = groups[-1] if groups else None
        if last and (last[2], last[3], list(last[4]), list(last[5])) == (use, traced_on, list(bad), list(untraced)) \
                and snaps.releases.index(last[1]) == snaps.releases.index(release) - 1:
            last[1] = release
            _merge(last[4], bad)
            _merge(last[5], untraced)
        else:
            groups.append([release, release, use, traced_on, bad, untraced])
    text = f"MPS (P): falls back on torch {_release_list(snaps, fell)}"
    for first, last, use, traced_on, bad, untraced in groups:
        where = "there" if len(groups) == 1 else f"on {bounded_span(first, last, snaps.releases)}"
        picks = OrderedDict((d, ", ".join(c) or "none known") for d, c in use)
        text += f"; {where} **Use (P)** {_grouped(picks)}"
        if traced_on:
            text += f" (equivalent on {measured}; ops traced on torch {', '.join(traced_on)})"
        if bad:
            text += f"; not on MPS: {_reasons(bad)}"
        if untraced:
            text += f"; untraced: {_reasons(untraced, quiet=NO_TRACE)}"
    return text + "."


def _release_list(snaps, fell) -> str:
    """Consecutive runs of falling-back releases as bounded spans: '≤ 2.3', '≤ 1.13, 2.5–2.8'."""
    runs, releases = [], snaps.releases
    for r in fell:
        i = releases.index(r)
        if runs and releases.index(runs[-1][1]) == i - 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return ", ".join(bounded_span(a, b, releases) for a, b in runs)


def section(model: Model, snaps: Snapshots | None, known_cases: dict) -> list:
    found = families(model)
    if not found:
        return []
    out = ["## Other op families: does it fall back, and what should I use?", ""]
    out += para("Per op family the cases cover: the aten ops it replaces and their MPS status by release (P); per "
                "device with measured verdicts, the replacements equivalent there (**Use**) and the others with why "
                "(short; the full causes are in the result files). On MPS, per release where the op falls back, a case "
                "is recommended (P) only when equivalent on every measured device, none of its ops (traced on the "
                "nearest release that traced it, named) falls back, runs on the CPU or refuses the dtype there, and "
                "it does not move data off the device; never the op itself. Cases with no trace are listed as "
                "untraced.")
    out.append("")
    ftraces = family_traces(model)
    for name, fam in found.items():
        dtypes = sorted({r["dtype"] for _, rows in fam["devices"].values() for r in rows}, key=_dtype_order)
        head = f"**{name}**"
        if fam["replaces"]:
            head += f" (`{fam['replaces'][0]}`)"
        if snaps and fam["ops"]:
            head += ": " + ops_text(snaps, fam["ops"], predicted_dtypes(snaps, dtypes)) + " (P)"
        out += bullet(head)
        for device, (release, rows) in sorted(fam["devices"].items(), key=lambda kv: DEVICE_ORDER.index(kv[0])
                                              if kv[0] in DEVICE_ORDER else len(DEVICE_ORDER)):
            out += para(device_line(device, release, rows), indent="    ", first="  - ")
        if snaps:
            out += para(mps_line(snaps, fam, known_cases, ftraces), indent="    ", first="  - ")
    out.append("")
    return out
