"""``python -m matrix probe``: probe one device, or write the predicted MPS files of every release.

    python -m matrix probe --device cpu                      # print the op and case table
    python -m matrix probe --device mps --write              # ...and write measured-mps-<torch>-<machine>.json
    python -m matrix probe --device mps --simulate --results /tmp/sim --write
                                                             # the simulated MPS backend (never published)
    python -m matrix probe --predict-all                     # predicted-mps-<v>.json for all 17 releases
    python -m matrix probe --predict-all --release 2.2.2     # ...or some of them

``--predict-all`` predicts from each release's macOS arm64 wheel (matrix.predict, cached wheels) for the
op overloads the tracer finds in the installed torch; the builder's MPS columns come from these files
until someone measures a release on a Mac (``python -m matrix here`` there).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from matrix import probe as probing
from matrix import results
from matrix.predict import RELEASES, PredictError, predict
from opcompat import devices


def add_arguments(parser):
    parser.add_argument("--device", help="device to probe: cpu, cuda, cuda:N or mps")
    parser.add_argument("--simulate", action="store_true",
                        help="probe the simulated MPS backend (needs --device mps; results are never published)")
    parser.add_argument("--dtype", action="append", choices=probing.DTYPES,
                        help=f"probe these dtypes (default: {', '.join(probing.DTYPES)})")
    parser.add_argument("--mps-fallback", choices=probing.MPS_FALLBACK_MODES, default="both",
                        help="MPS: probe without PYTORCH_ENABLE_MPS_FALLBACK, with it, or both (default: both)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one item may take (default: 120)")
    parser.add_argument("--write", action="store_true", help="write the result file (default: print only)")
    parser.add_argument("--results", default=str(results.RESULTS_DIR),
                        help=f"folder for result files (default: {results.RESULTS_DIR})")
    parser.add_argument("--predict-all", action="store_true",
                        help="write predicted-mps-<v>.json for every release in matrix.predict.RELEASES")
    parser.add_argument("--release", action="append", help="with --predict-all: only these releases")


def run(args) -> int:
    if args.predict_all:
        return predict_all(args.release, args.results)
    if not args.device:
        print("error: give --device (cpu, cuda, mps) or --predict-all", file=sys.stderr)
        return 2
    if args.simulate and args.device != "mps":
        print(f"error: --simulate simulates MPS; --device {args.device} is not mps", file=sys.stderr)
        return 2
    if args.simulate and args.write and results.is_published(args.results):
        print(f"error: simulated results are never written into {results.RESULTS_DIR}; give --results DIR",
              file=sys.stderr)
        return 2
    if not args.simulate:
        try:
            devices.resolve(args.device)
        except devices.DeviceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    found = probing.probe(args.device, dtypes=tuple(args.dtype or probing.DTYPES), simulate=args.simulate,
                          mps_fallback=args.mps_fallback, runner=probing.Runner(item_timeout=args.timeout))
    print(render(found))
    if args.write:
        kind = "simulated" if args.simulate else "measured"
        data = results.make(kind, probing.torch_info(), probing.machine_info(args.device, args.simulate),
                            found.ops, found.cases)
        print(f"wrote {results.write(data, args.results)}")
    return 0


def render(found) -> str:
    dtypes = list(dict.fromkeys(r["dtype"] for r in found.ops))
    ops = list(dict.fromkeys(r["op"] for r in found.ops))
    status = {(r["op"], r["dtype"]): r["status"] for r in found.ops}
    table = tabulate([[op, *(status[(op, d)] for d in dtypes)] for op in ops], headers=["op", *dtypes],
                     tablefmt="github")
    runs = {(r["case"], r["dtype"]): ("yes" if r["runs_on_device"] else "no: " + (
        ", ".join(r["fallback_ops"]) or r["message"][:60])) for r in found.cases}
    names = list(dict.fromkeys(r["case"] for r in found.cases))
    case_table = tabulate([[n, *(runs[(n, d)] for d in dtypes)] for n in names], headers=["case", *dtypes],
                          tablefmt="github")
    head = f"{'simulated ' if found.simulated else ''}{found.device}: " + ", ".join(
        f"{n} {s}" for s, n in Counter(r["status"] for r in found.ops).most_common())
    return f"{head}\n\n{table}\n\nRuns on {found.device} without CPU fallback:\n\n{case_table}"


def predicted_machine() -> dict:
    return {"device": "mps", "device_name": "Apple MPS (predicted from the release's macOS arm64 wheel)",
            "os": "macOS (arm64)", "python": "", "slug": "predicted"}


def predict_all(releases=None, directory=results.RESULTS_DIR) -> int:
    calls, case_ops = probing.traced()
    ops = [c.op for c in calls]
    failed = 0
    for version in releases or RELEASES:
        try:
            predictions = predict(version, ops)
        except PredictError as exc:
            print(f"error: {version}: {exc}", file=sys.stderr)
            failed += 1
            continue
        op_rows, case_rows = probing.predicted_rows(predictions, case_ops)
        data = results.make("predicted", {"version": version, "git": None, "cuda": None}, predicted_machine(),
                            op_rows, case_rows)
        if _unchanged(data, directory):
            print(f"unchanged {version}")
            continue
        print(f"wrote {results.write(data, directory)}")
    return 1 if failed else 0


def _unchanged(data, directory) -> bool:
    """The file already says the same (only its time would change): leave it, and its diff, alone."""
    path = Path(directory) / results.filename(data)
    try:
        old = results.load(path)
    except results.ResultFileError:
        return False
    return {k: v for k, v in old.items() if k != "created"} == {k: v for k, v in data.items() if k != "created"}
