"""``python -m matrix scan TARGET``: which ops a workload calls, and their MPS status in every release.

    python -m matrix scan matrix.examples.toy_unet:denoise_step            # table, all 17 releases
    python -m matrix scan my_model.py:step --inputs my_model.py:make_inputs --torch 2.2 2.3 --markdown
    python -m matrix scan train.py -- --epochs 1                           # a script, with its arguments
    python -m matrix scan ops.txt --json                                   # a saved op list
    python -m matrix scan matrix.examples.toy_unet:denoise_step --device mps --write-row   # on a Mac

Exit status: 0 answered; 1 a measured run stopped at an op the device refused; 2 bad input (a target
that cannot be imported, raises, or needs inputs it was not given; an unknown release; an unreadable
--statuses file): a message naming it, and nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from matrix import results
from matrix.predict import PredictError, predict
from matrix.predict.releases import resolve_version
from matrix.scan import measure, replacements, report, status_source, target, workload
from matrix.simulated_mps import SimulatedMPS, prediction_table
from opcompat.vocab import FALLBACK_ENV, fallback_enabled

SIMULATED = "simulated-mps"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m matrix scan", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("target", metavar="TARGET",
                        help="module:function, file.py:function, a script.py, or a saved op list (.json/.txt/.ops)")
    parser.add_argument("--inputs", metavar="MODULE:FACTORY",  # a script's own arguments go after --
                        help="builds the function's arguments (default: the module's example_inputs(), if any)")
    parser.add_argument("--on", choices=("cpu", "meta"), default="cpu",
                        help="trace on the CPU (default) or the meta device (no data: faster, but a target "
                             "that reads values fails there)")
    parser.add_argument("--torch", nargs="+", metavar="VERSION",
                        help="releases to answer for, e.g. 2.2 2.3.1 (default: all 17, 1.13.1 .. 2.15.0)")
    parser.add_argument("--statuses", type=Path, metavar="JSON",
                        help="answer from this JSON {release: {op: status}} instead of the macOS wheels")
    parser.add_argument("--no-download", action="store_true",
                        help="use cached wheels only; a release without one is shown as unknown")
    parser.add_argument("--verdicts", choices=("auto", "committed", "none"), default="auto",
                        help="replacement verdicts: committed result files, else computed on the CPU (auto); "
                             "committed files only; or none")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true", help="print Markdown for an issue or PR")
    parser.add_argument("--device", choices=("mps", SIMULATED),
                        help="run the target on this device and record its fallbacks (mps: a real Mac; "
                             f"{SIMULATED}: the simulated backend, for testing: never a measurement)")
    parser.add_argument("--write-row", action="store_true",
                        help="with --device: merge the measured op rows into this machine's result file")
    parser.add_argument("--results", type=Path, default=results.RESULTS_DIR,
                        help=f"folder for --write-row (default: {results.RESULTS_DIR})")
    parser.add_argument("--only-problems", action="store_true",
                        help="table rows only for op x dtype pairs that are off MPS (or unknown) in some release")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _progress(quiet: bool):
    if quiet:
        return None
    return lambda message: print(f"scan: {message}", file=sys.stderr, flush=True)


def _source(args):
    if args.statuses is None:
        return status_source.PredictorSource(download=not args.no_download)
    try:
        table = json.loads(args.statuses.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise target.TargetError(f"--statuses {args.statuses}: cannot read it: {exc}") from None
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise target.TargetError(f"--statuses {args.statuses}: expected {{release: {{op: status}}}}")
    return status_source.FixtureSource({resolve_version(k): v for k, v in table.items()}, f"from {args.statuses}")


def _replacements(rep: report.Report, mode: str) -> dict:
    if mode == "none":
        return {}
    lookup = replacements.VerdictLookup(compute=(mode == "auto"))
    return replacements.replacements_for([(op, d) for op, d, _, _ in rep.still_on_cpu()], lookup)


def _print(rep: report.Report, args) -> None:
    if args.json:
        print(report.render_json(rep))
    elif args.markdown:
        print(report.render_markdown(rep, args.only_problems), end="")
    else:
        print(report.render_text(rep, args.only_problems))


def predicted_scan(args) -> int:
    spec = target.parse(args.target)
    releases = status_source.releases_from(args.torch)
    say = _progress(args.quiet) or (lambda message: None)
    say(f"tracing {spec.spec} on {args.on} ...")
    started = time.perf_counter()
    work = workload.workload_of(spec, args.inputs, args.on, _script_args(args))
    say(f"traced {len(work.counts)} op x dtype pairs, {sum(work.counts.values())} calls, in "
        f"{time.perf_counter() - started:.1f} s; statuses for {len(releases)} release(s) ...")
    source = _source(args)
    answers = source.answer(releases, work.pairs, work.callees, say)
    for release, answer in answers.items():
        if answer.error:  # said even with --quiet: a column of '?' needs its reason
            print(f"scan: torch {release}: no answer, its columns are unknown: {answer.error}", file=sys.stderr)
    rep = report.Report(work, source.label, source.kind, releases, answers)
    rep.replacements = _replacements(rep, args.verdicts)
    _print(rep, args)
    return 0


def _script_args(args) -> list:
    return list(getattr(args, "script_args", ()))


def _simulated_mode(args, spec):
    """The simulated MPS for the installed torch: predicted (or --statuses) statuses of what it calls."""
    release = resolve_version(torch.__version__.split("+")[0])
    cpu = workload.workload_of(spec, args.inputs, "cpu", _script_args(args))
    source = _source(args) if args.statuses else status_source.PredictorSource(download=not args.no_download)
    if args.statuses is None:
        found = predict(release, list(dict.fromkeys(op for op, _ in cpu.pairs)),
                        decompositions=cpu.callees, download=not args.no_download)
        return SimulatedMPS(prediction_table(found), fallback_enabled=True)
    answer = source.answer([release], cpu.pairs)[release]
    if answer.error:
        raise target.TargetError(f"--statuses {args.statuses}: {answer.error}")
    return SimulatedMPS(simulator_table(answer), fallback_enabled=True)


def simulator_table(answer: status_source.ReleaseAnswer) -> dict:
    """A ReleaseAnswer as the simulated backend's {op: {status, dtype_status}}, in its words."""
    words = {status_source.NATIVE_MACOS: "native", status_source.COMPOSITE_MPS: "native",
             status_source.FORCED_CPU: "fallback"}
    table = {}
    for (op, dtype), got in answer.answers.items():
        if got.status in (status_source.NOT_IN_RELEASE, status_source.UNKNOWN):
            continue  # the simulator runs an op it has no word for, as the real backend would try to
        word = words.get(got.status, got.status)
        entry = table.setdefault(op, {"status": word, "dtype_status": {}})
        entry["dtype_status"][dtype] = word
        if word == "fallback":
            entry["status"] = word  # the simulator keys non-float calls by the op alone
    return table


def measured_scan(args, argv) -> int:
    simulated = args.device == SIMULATED
    if not simulated and not fallback_enabled(os.environ):
        # libtorch reads the variable once, when it loads: only a fresh process gets the fallback.
        env = dict(os.environ, **{FALLBACK_ENV: "1"})
        return subprocess.call([sys.executable, "-m", "matrix", "scan", *argv], env=env)
    spec = target.parse(args.target)
    if spec.kind == "ops":
        raise target.TargetError(f"TARGET {args.target}: --device runs the target; an op list cannot be run")
    if simulated:
        mode, label, device = _simulated_mode(args, spec), "simulated MPS", "cpu"
    else:
        if not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
            raise target.TargetError("--device mps: MPS is not available here (needs a Mac with Apple silicon "
                                     f"and a macOS arm64 torch; this torch is {torch.__version__})")
        mode, label, device = None, "mps (measured)", "mps"
    run = target.runner(spec, args.inputs, device, _script_args(args))
    found = measure.measure(spec, run, label, mode)
    kind = "simulated" if simulated else "measured"
    source = ("SIMULATED on the CPU from predicted statuses: tests opcompat, says nothing about a Mac" if simulated
              else f"measured on this Mac (torch {torch.__version__}, fallback warnings caught per call)")
    rep = report.Report(found.workload, source, kind, [label], {label: found.answer})
    rep.replacements = _replacements(rep, args.verdicts)
    if found.stopped:
        print(f"scan: the run stopped at {found.stopped}", file=sys.stderr)
    if args.write_row:
        try:
            print(f"scan: wrote {measure.write_row(found, args.results, simulated)}", file=sys.stderr)
        except (results.PublishError, results.ClobberError) as exc:
            raise target.TargetError(f"--write-row: {exc}") from None
    _print(rep, args)
    return 1 if found.stopped else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, script_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    try:
        args = build_parser().parse_args(own)
    except SystemExit as exc:
        return int(exc.code or 0)
    args.script_args = script_args
    if args.write_row and not args.device:
        print("scan: error: --write-row needs --device (a predicted scan is not a measured row)", file=sys.stderr)
        return 2
    try:
        return measured_scan(args, argv) if args.device else predicted_scan(args)
    except (target.TargetError, PredictError) as exc:
        print(f"scan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
