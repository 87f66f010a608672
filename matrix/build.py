"""``python -m matrix build``: merge the result files into matrix/MATRIX.md.

    python -m matrix build [--results DIR] [--out FILE] [--check]

Reads every ``measured-*.json`` and ``predicted-*.json`` in the results folder (matrix/results/ by
default; see matrix/results.py for the schema) and ``speed-*.json`` when there are any, and writes:

- op support on MPS per torch release: predicted from each release's macOS wheel, or measured where a
  measured MPS file for that release exists; op support on CPU and CUDA (measured);
- whether each case runs on the device without any CPU fallback, per torch release;
- the verdict tables (is each case equivalent to torch.std_mean?) of each measured file;
- the speed summary, when a speed result exists;
- a legend, and the provenance of every cell: ``(P)`` predicted, ``(M: device, machine)`` measured.

The predicted files come from ``python -m matrix probe --predict-all`` (all 17 releases, from the cached
macOS wheels). Simulated results are never published: a simulated file found here is skipped, with
the reason. So is every file that cannot be read, named with the reason under "Skipped result files"
(and on stderr), while every other row is kept. Exit status 1 only when nothing could be built.
"""

from __future__ import annotations

import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

from packaging.version import InvalidVersion, Version
from tabulate import tabulate

from matrix import results

DEFAULT_OUT = Path(__file__).resolve().parent / "MATRIX.md"
SHORT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64"}
DTYPE_ORDER = ("float32", "float16", "bfloat16", "float64")
MPS_DTYPES = ("float32", "float16", "bfloat16")  # the MPS framework has no float64: said once, in the legend
LEGEND = {
    "native": "runs on the device's own kernel and matches the CPU",
    "fallback": "runs through PyTorch's CPU fallback (MPS, with PYTORCH_ENABLE_MPS_FALLBACK=1; "
                "without it the op raises NotImplementedError)",
    "composite": "predicted: no kernel of its own, decomposes into other ops (supported if they are)",
    "not_implemented": "no kernel and no fallback: raises NotImplementedError",
    "wrong_result": "runs, but differs from the same call on the CPU beyond a loose tolerance",
    "unsupported_dtype": "the device refuses the dtype",
    "unknown_op": "predicted: the op does not exist in that release",
    "error": "raised something else (see the result file's message)",
    "crashed": "the probe's child process died on this item",
    "timeout": "the probe's child process hung on this item and was killed",
}


def add_arguments(parser):
    parser.add_argument("--results", type=Path, default=results.RESULTS_DIR,
                        help=f"folder of result files (default: {results.RESULTS_DIR})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"file to write (default: {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if --out differs from what would be written")


def run(args) -> int:
    if not args.results.is_dir():
        print(f"error: --results {args.results}: no such folder", file=sys.stderr)
        return 2
    text, built, skipped = build(args.results)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not built:
        print(f"error: nothing to build: no usable result file in {args.results}", file=sys.stderr)
        return 1
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m matrix build", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} from {built} result file(s)" + (f", skipped {len(skipped)}" if skipped else ""))
    return 0


# -- reading ------------------------------------------------------------------------------------------
def gather(directory):
    """(publishable records, skipped [(path, reason)], speed [(path, data)])."""
    found, skipped = results.load_dir(directory)
    records = []
    for path, data in found:
        if data["kind"] not in results.PUBLISHABLE:
            skipped.append((path, f"a {data['kind']} result is never published (it measures no real hardware)"))
        else:
            records.append((path, data))
    speed = []
    for path in sorted(Path(directory).glob("speed-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"the top level is a {type(data).__name__}, not an object")
        except (OSError, ValueError) as exc:
            skipped.append((path, f"unreadable speed result: {exc}"))
            continue
        if data.get("source", "measured") != "measured":
            skipped.append((path, f"a {data['source']} speed result is never published"))
            continue
        speed.append((path, data))
    return records, skipped, speed


def _version_key(version):
    try:
        return (0, Version(results.release(version)))
    except InvalidVersion:
        return (1, version)


def short_machine(name: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' -> 'Intel Xeon Platinum 8375C'."""
    name = re.sub(r"\((R|TM|tm|r)\)", "", name)
    name = re.sub(r"\s+CPU\s*@.*$|\s+@.*$", "", name)
    return " ".join(name.split())


def tag(data) -> str:
    if data["kind"] == "predicted":
        return "P"
    machine = data["machine"]
    return f"M: {machine['device']}, {short_machine(machine['device_name'])}"


# -- columns: one per (device, release, machine) -------------------------------------------------------
def mps_columns(records):
    """{release: [records]}: measured MPS files replace the prediction for their release."""
    by_release = {}
    for _, data in records:
        if data["machine"]["device"] != "mps":
            continue
        by_release.setdefault(results.release(data["torch"]["version"]), []).append(data)
    columns = []
    for version in sorted(by_release, key=_version_key):
        measured = [d for d in by_release[version] if d["kind"] == "measured"]
        for data in measured or by_release[version][:1]:
            machine = short_machine(data["machine"]["device_name"])
            label = version if data["kind"] == "predicted" else f"{version} · {machine}"
            columns.append((label, data))
    return columns


def measured_columns(records, device):
    chosen = [d for _, d in records if d["machine"]["device"] == device and d["kind"] == "measured"]
    chosen.sort(key=lambda d: (_version_key(d["torch"]["version"]), d["machine"]["slug"]))
    return [(f"{d['torch']['version']} · {short_machine(d['machine']['device_name'])}", d) for d in chosen]


def compact(by_dtype: dict, cell_tag: str) -> str:
    """'native (P)' when every dtype agrees, else 'f32, f16: native · bf16: fallback (P)'."""
    if not by_dtype:
        return ""
    groups = OrderedDict()
    for dtype in sorted(by_dtype, key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 99):
        groups.setdefault(by_dtype[dtype], []).append(SHORT.get(dtype, dtype))
    if len(groups) == 1:
        return f"{next(iter(groups))} ({cell_tag})"
    return " · ".join(f"{', '.join(d)}: {s}" for s, d in groups.items()) + f" ({cell_tag})"


def _op_order(records):
    seen = OrderedDict()
    for _, data in sorted(records, key=lambda r: r[1]["kind"] != "measured"):
        for row in data["ops"]:
            seen.setdefault(row["op"], None)
    return list(seen)


def _absent(data):
    return f"not {'predicted' if data['kind'] == 'predicted' else 'probed'} ({tag(data)})"


def op_table(columns, ops, dtypes):
    """Rows: the ops some column has (an old release may trace other ops, e.g. prims::*)."""
    present = {r["op"] for _, data in columns for r in data["ops"]}
    rows = []
    for op in (o for o in ops if o in present):
        row = [op]
        for _, data in columns:
            statuses = {r["dtype"]: r["status"] for r in data["ops"] if r["op"] == op and r["dtype"] in dtypes}
            row.append(compact(statuses, tag(data)) or _absent(data))
        rows.append(row)
    return tabulate(rows, headers=["op overload", *(label for label, _ in columns)], tablefmt="github")


def _runs_cell(row):
    if row["runs_on_device"]:
        return "yes"
    if row.get("fallback_ops"):
        return "no: " + ", ".join(o.replace("aten::", "") for o in row["fallback_ops"])
    status = row.get("message", "").split(":", 1)[0]
    return f"no ({status})" if status else "no"


def runs_table(columns, dtypes_for):
    names = OrderedDict()
    for _, data in columns:
        for row in data["cases"]:
            names.setdefault(row["case"], None)
    rows = []
    for name in names:
        row = [name]
        for _, data in columns:
            dtypes = dtypes_for(data)
            cells = {r["dtype"]: _runs_cell(r) for r in data["cases"] if r["case"] == name and r["dtype"] in dtypes}
            row.append(compact(cells, tag(data)) or _absent(data))
        rows.append(row)
    headers = ["case", *(f"{data['machine']['device']} {label}" for label, data in columns)]
    return tabulate(rows, headers=headers, tablefmt="github")


def _verdict_text(v, cell_tag):
    text = "equivalent" if v["equivalent"] else "NOT: " + "; ".join(v.get("causes") or ["differs"])
    return f"{text} ({cell_tag})"


def _verdicts_by_key(data):
    return {(v["case"], v.get("correction"), v["dtype"]): v for v in data["verdicts"]}


def _correction(c):
    return "" if c is None else f"{c:g}"


def verdict_table(data):
    by_key = OrderedDict()
    dtypes = []
    for v in data["verdicts"]:
        by_key.setdefault((v["case"], v.get("correction")), {})[v["dtype"]] = v
        if v["dtype"] not in dtypes:
            dtypes.append(v["dtype"])
    dtypes.sort(key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 99)
    cell_tag = tag(data)
    rows = [[case, _correction(correction),
             *(_verdict_text(cells[d], cell_tag) if d in cells else "not judged" for d in dtypes)]
            for (case, correction), cells in by_key.items()]
    return tabulate(rows, headers=["case", "correction", *dtypes], tablefmt="github")


def verdict_changes(data, reference):
    """The cells of ``data`` whose verdict differs from ``reference``'s (same case, correction, dtype)."""
    mine, theirs = _verdicts_by_key(data), _verdicts_by_key(reference)
    cell_tag = tag(data)
    rows = []
    for key, v in mine.items():
        other = theirs.get(key)
        same = other is not None and (other["equivalent"], other.get("causes")) == (v["equivalent"], v.get("causes"))
        if not same:
            rows.append([key[0], _correction(key[1]), key[2], _verdict_text(v, cell_tag),
                         _verdict_text(other, tag(reference)) if other else "not judged"])
    return rows


def verdict_sections(records):
    """Per device: the newest measured release in full; every other file as its differences from it."""
    out = []
    by_device = OrderedDict()
    for _, data in sorted(records, key=lambda r: r[1]["machine"]["device"]):
        if data["verdicts"]:
            by_device.setdefault(data["machine"]["device"], []).append(data)
    for device, files in by_device.items():
        files.sort(key=lambda d: (_version_key(d["torch"]["version"]), d["machine"]["slug"]), reverse=True)
        reference = files[0]
        out += [f"### {device} · torch {reference['torch']['version']} · {reference['machine']['device_name']}",
                "", verdict_table(reference), ""]
        for data in files[1:]:
            title = f"torch {data['torch']['version']} · {data['machine']['device_name']}"
            changes = verdict_changes(data, reference)
            if not changes:
                out += [f"#### {device} · {title}: the same verdicts as torch {reference['torch']['version']}", ""]
                continue
            out += [f"#### {device} · {title}: the cells that differ from torch {reference['torch']['version']}",
                    "", tabulate(changes, headers=["case", "correction", "dtype", "verdict",
                                                   f"torch {reference['torch']['version']}"], tablefmt="github"),
                    ""]
    return out


def _value(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _dict_table(rows):
    headers = list(OrderedDict((k, None) for r in rows for k in r))
    return tabulate([[_value(r.get(h)) for h in headers] for r in rows], headers=headers, tablefmt="github")


def speed_section(speed):
    """Each speed file's summary and recommendation (matrix/speed.py), read generically: any may be absent."""
    out = []
    for path, data in speed:
        machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        title = " · ".join(str(machine[k]) for k in ("device", "device_name", "torch") if machine.get(k))
        out += [f"### {title or path.stem} (M)", "", f"From `{path.name}`.", ""]
        for key in ("summary", "recommendation"):
            value = data.get(key)
            if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
                out += [f"{key.capitalize()}:", "", _dict_table(value), ""]
            elif isinstance(value, dict) and value:
                out += [f"{key.capitalize()}:", "", *(f"- **{k}**: {_value(v)}" for k, v in value.items()), ""]
            elif isinstance(value, str) and value:
                out += [f"{key.capitalize()}: {value}", ""]
        rows = data.get("rows")
        if isinstance(rows, list) and rows:
            out += [f"{len(rows)} timing rows in the file.", ""]
        if not any(data.get(k) for k in ("summary", "recommendation", "rows")):
            out += ["(no summary, recommendation or rows in this file)", ""]
    return out


def _harness(data):
    info = data.get("opcompat") if isinstance(data.get("opcompat"), dict) else {}
    commit = (info.get("commit") or "")[:10]
    return commit + (" (modified)" if commit and info.get("dirty") else "")


# -- the document -----------------------------------------------------------------------------------------
def build(directory):
    """(markdown, number of result files used, skipped [(path, reason)])."""
    records, skipped, speed = gather(directory)
    if not records:
        return "", 0, skipped
    ops = _op_order(records)
    mps = mps_columns(records)
    cpu = measured_columns(records, "cpu")
    cuda = measured_columns(records, "cuda")
    out = ["# opcompat compatibility matrix", "",
           "<!-- generated by `python -m matrix build` from matrix/results/; do not edit by hand -->", "",
           "Which aten ops `torch.std_mean` and its hand-written replacements reach, whether each runs on "
           "Apple's MPS backend (per torch release), on the CPU and on CUDA, and whether each replacement is "
           "numerically equivalent to `torch.std_mean`. The op rows come from the tracer (`python -m matrix "
           "trace`), never from a hand-written list.", "",
           "Every cell says where it comes from: **(P)** predicted from the release's macOS arm64 wheel "
           "(its dispatch table, written by `python -m matrix probe --predict-all`); **(M: device, machine)** "
           "measured on that machine by `python -m matrix here`. Simulated results are never shown. Contribute a "
           "measured MPS column from a Mac: `python -m matrix here`, then open a pull request with the new "
           "`matrix/results/measured-mps-*.json`.", ""]
    out += ["## Sources", "", tabulate(
        [[p.name, d["kind"], d["machine"]["device"], d["torch"]["version"], d["machine"]["device_name"],
          d["machine"].get("os", ""), d["created"], _harness(d)]
         for p, d in sorted(records, key=lambda r: (r[1]["kind"], r[1]["machine"]["device"],
                                                    _version_key(r[1]["torch"]["version"]), r[0].name))],
        headers=["file", "kind", "device", "torch", "device name", "os", "created", "opcompat"],
        tablefmt="github"), ""]
    if mps:
        out += ["## MPS: op support by torch release", "",
                "float32, float16 and bfloat16 (MPS has no float64: every float64 op is `unsupported_dtype`). "
                "`fallback` means the op runs on the CPU when `PYTORCH_ENABLE_MPS_FALLBACK=1` is set and "
                "raises NotImplementedError when it is not.", "",
                op_table(mps, ops, MPS_DTYPES), ""]
    for name, columns in (("CPU", cpu), ("CUDA", cuda)):
        if columns:
            out += [f"## {name}: op support (measured)", "", op_table(columns, ops, DTYPE_ORDER), ""]
    out += ["## Runs on the device without any CPU fallback", "",
            "Per case: `yes` when the whole case ran on the device with no fallback; otherwise the ops that "
            "fell back (or the reason it did not run). MPS columns cover float32, float16 and bfloat16.", "",
            runs_table(mps + cpu + cuda, lambda d: MPS_DTYPES if d["machine"]["device"] == "mps" else DTYPE_ORDER),
            ""]
    judged = verdict_sections(records)
    if judged:
        out += ["## Verdicts: is each case equivalent to `torch.std_mean`?", "",
                "Each case against CPU `torch.std_mean` at the caller's correction, on the fixed witness battery "
                "(`python -m matrix verdicts`); NOT names the causes found. Per device, the newest measured "
                "release in full, then each other result file as the cells that differ from it.", "", *judged]
    if speed:
        out += ["## Speed", "", *speed_section(speed)]
    out += ["## Legend", "", tabulate([[s, m] for s, m in LEGEND.items()], headers=["status", "meaning"],
                                      tablefmt="github"), "",
            "Dtypes: " + ", ".join(f"{v} = {k}" for k, v in SHORT.items()) + ".", ""]
    if skipped:
        out += ["## Skipped result files", ""] + [f"- `{Path(p).name}`: {reason}" for p, reason in skipped] + [""]
    return "\n".join(out), len(records), skipped
