"""``python -m matrix build``: merge the result files into matrix/MATRIX.md.

    python -m matrix build [--results DIR] [--out FILE] [--snapshots DIR] [--check]

Reads every ``measured-*.json`` and ``predicted-*.json`` in the results folder (matrix/results/ by
default; see matrix/results.py for the schema), the per-release traces in ``traces/`` (matrix/traces.py)
and ``speed-*.json`` when there are any, and writes, answers first:

- per device and torch release range: does ``torch.std_mean`` fall back, and what to use instead (only
  cases equivalent on that device; on MPS, equivalent on CPU and CUDA and predicted to stay on MPS);
- the case names; op support and "runs on the device" as release ranges; verdicts; speed; the sources,
  once each;
- every aten op on MPS: counts per release here, and MATRIX-mps-ops.md next to it (each op that is not
  native everywhere, as release ranges) from the predictor's snapshots (matrix/predict/snapshots/); without
  snapshots, the ops of the predicted result files, in MATRIX.md.

Provenance: ``(P)`` predicted, ``(M: device, machine)`` measured, said once per table or source, never per
cell. Simulated results are never published: a simulated file found here is skipped, with the reason. So
is every file that cannot be read, named under "Skipped result files" (and on stderr), while every other
row is kept. No line is wider than ``matrix.render.common.WIDTH``. Exit status 1 only when nothing could
be built. The sections live in matrix/render/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cases as registry
from matrix import results, traces
from matrix.render import allops, answers, families, ops, runs, sources, verdicts
from matrix.render import speed as speed_render
from matrix.render.common import WIDTH, bullet, cut, para
from matrix.render.model import Model
from opcompat import records

DEFAULT_OUT = Path(__file__).resolve().parent / "MATRIX.md"
_DEFAULT = object()
LEGEND = {
    "native": "runs on the device's own kernel (predicted: an MPS kernel in that release)",
    "native (macOS ≥ X)": "native from that macOS on; older macOS refuses the dtype or runs it on the CPU",
    "fallback": "runs on the CPU through PyTorch's fallback with PYTORCH_ENABLE_MPS_FALLBACK=1, "
                "raises NotImplementedError without it",
    "forced_cpu": "predicted: the MPS backend always sends it to the CPU, no variable needed",
    "composite": "predicted: no kernel of its own, decomposes into other ops (supported if they are)",
    "composite_mps": "predicted: no kernel of its own, and every op it decomposes into runs on MPS",
    "not_implemented": "no kernel and no fallback: raises NotImplementedError",
    "wrong_result": "runs, but differs from the same call on the CPU beyond a loose tolerance",
    "unsupported_dtype": "the device refuses the dtype",
    "unknown_op / not_in_release": "predicted: the op does not exist in that release",
    "error": "raised something else (see the result file's message)",
    "crashed / timeout": "the probe's child process died or hung on this item",
    "unknown": "no answer (e.g. the op is not in that release's prediction file)",
    "—": "not traced or not probed on that release",
}


def add_arguments(parser):
    parser.add_argument("--results", type=Path, default=results.RESULTS_DIR,
                        help=f"folder of result files (default: {results.RESULTS_DIR})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"file to write (default: {DEFAULT_OUT})")
    parser.add_argument("--snapshots", type=Path, default=None,
                        help="folder of the predictor's all-op snapshots (default: matrix/predict/snapshots/ when "
                             f"--results is the published folder); their page goes next to --out as {allops.PAGE_NAME}")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if --out (or its ops page) differs from what would be written")


def run(args) -> int:
    if not args.results.is_dir():
        print(f"error: --results {args.results}: no such folder", file=sys.stderr)
        return 2
    snapshots = args.snapshots if args.snapshots is not None else default_snapshots(args.results)
    text, built, skipped = build(args.results, snapshots)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not built:
        print(f"error: nothing to build: no usable result file in {args.results}", file=sys.stderr)
        return 1
    outputs = [(args.out, text)]
    page = ops_page(snapshots)
    if page is not None:
        outputs.append((args.out.with_name(allops.PAGE_NAME), page))
    if args.check:
        stale = [str(path) for path, want in outputs
                 if (path.read_text(encoding="utf-8") if path.exists() else "") != want]
        if stale:
            print(f"{', '.join(stale)} out of date: run python -m matrix build", file=sys.stderr)
            return 1
        return 0
    for path, want in outputs:
        path.write_text(want, encoding="utf-8")
    print(f"wrote {', '.join(str(p) for p, _ in outputs)} from {built} result file(s)"
          + (f", skipped {len(skipped)}" if skipped else ""))
    return 0


def default_snapshots(directory):
    """The predictor's snapshots go with the published results only (a test's folder has its own or none)."""
    return allops.SNAPSHOTS_DIR if results.is_published(directory) else None


def ops_page(snapshots):
    """The text of MATRIX-mps-ops.md, or None without snapshots."""
    found, _ = allops.load(snapshots)
    return allops.page(allops.Snapshots(found)) if found else None


# -- reading ------------------------------------------------------------------------------------------
def gather(directory):
    """(publishable result files, skipped [(path, reason)], speed [(path, data)]), each read through the typed
    records of opcompat/records.py (one validator; its reason names the file and the field)."""
    found, skipped = results.read_dir(directory)  # each file validated as an opcompat.records.ResultFile
    chosen = []
    for path, record in found:
        if record.kind not in records.PUBLISHABLE:
            skipped.append((path, f"a {record.kind} result is never published (it measures no real hardware)"))
        else:
            chosen.append((path, records.to_json(record)))  # the renderer reads plain JSON values
    speed = []
    for path in sorted(Path(directory).glob("speed-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            skipped.append((path, f"unreadable speed result: {exc}"))
            continue
        if not isinstance(data, dict):
            skipped.append((path, f"unreadable speed result: the top level is a {type(data).__name__}, not an object"))
            continue
        if data.get("source", "measured") != "measured":
            skipped.append((path, f"a {data['source']} speed result is never published"))
            continue
        rows = data.get("rows") if isinstance(data.get("rows"), list) else []
        # The rows the renderer reads (the cases'), as records.BenchRow; a newer matrix.speed may add fields, and
        # its fallback rows leave timings null: neither makes a case row unusable.
        bad = [p for i, row in enumerate(rows) if not isinstance(row, dict) or row.get("kind") == "case"
               for p in records.problems(records.BenchRow, row, f"rows[{i}]") if "unknown field" not in p]
        if bad:
            skipped.append((path, "unusable speed result: " + "; ".join(bad[:records.MAX_PROBLEMS])))
            continue
        speed.append((path, data))
    return chosen, skipped, speed


# -- the document -----------------------------------------------------------------------------------------
def build(directory, snapshots=_DEFAULT):
    """(markdown, number of result files used, skipped [(path, reason)]); ``snapshots``: the predictor's all-op
    snapshot folder (default: see default_snapshots; None: the all-op section comes from the result files)."""
    if snapshots is _DEFAULT:
        snapshots = default_snapshots(directory)
    found, skipped, speed = gather(directory)
    snaps, bad_snaps = allops.load(snapshots)
    skipped += bad_snaps
    found_traces, bad_traces = traces.load_dir(Path(directory) / "traces")
    skipped += bad_traces
    if not found:
        return "", 0, skipped
    model = Model(found, found_traces)
    out = ["# opcompat compatibility matrix", "",
           "<!-- generated by `python -m matrix build` from matrix/results/; do not edit by hand -->", ""]
    out += para("Answers first: per device and torch release, does `torch.std_mean` fall back to the CPU, and "
                "what to use instead; then the case names, the evidence as release ranges, and the sources. "
                "**(P)**: predicted from the release's macOS arm64 wheel; **(M: device, machine)**: measured "
                "there by `python -m matrix here`; each table says which, once. Simulated results are never "
                "shown. Contribute a measured MPS row from a Mac: `python -m matrix here`, then a pull request "
                "with the new `matrix/results/measured-mps-*.json`.")
    out += ["", "## Does `torch.std_mean` fall back, and what should I use?", ""]
    out += answers.mps_answers(model)
    out += answers.measured_answers(model, "cpu", "CPU")
    out += answers.measured_answers(model, "cuda", "CUDA")
    out += answers.call_sites(model)
    out += families.section(model, allops.Snapshots(snaps) if snaps else None,
                            {c.name: c for c in registry.all_cases()[0]})
    out += answers.glossary(model)
    out += ["## std_mean family: op support by torch release", ""]
    out += para("The ops the tracer saw `torch.std_mean` and the cases reach (`python -m matrix trace`), never a "
                "hand-written list. A row covers the releases whose cells agree.")
    out.append("")
    out += ops.mps_family_table(model)
    out += ops.measured_family_table(model, "cpu", "CPU")
    out += ops.measured_family_table(model, "cuda", "CUDA")
    out += ["## Runs on the device without any CPU fallback", ""]
    out += runs.mps_table(model)
    out += runs.measured_line(model)
    out += verdicts.section(model)
    out += speed_render.section(model, speed)
    out += allops.summary(allops.Snapshots(snaps)) if snaps else ops.all_ops_section(model)
    out += ["## Legend", ""]
    for word, meaning in LEGEND.items():
        out += bullet(f"`{word}`: {meaning}.")
    out += ["", *para("Dtypes: f32 = float32, f16 = float16, bf16 = bfloat16, f64 = float64. Release ranges "
                      f"name minor releases (one patch release each was probed). Lines here are at most {WIDTH} "
                      "characters."), ""]
    out += sources.section(found, found_traces, speed)
    if skipped:
        out += ["## Skipped result files", ""]
        for path, reason in skipped:
            out += bullet(f"`{Path(path).name}`: {reason}")
        out.append("")
    # A heading cannot wrap: one naming a machine with a very long name is cut to the width.
    out = [cut(line, WIDTH) if line.startswith("#") else line for line in out]
    return "\n".join(out), len(found), skipped
