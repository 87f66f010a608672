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
from matrix.predicted_rows import PREDICTED_MACHINE, predicted_rows
from matrix.simulated_mps import DEVICE_NAME as SIMULATED_DEVICE_NAME
from opcompat import devices, records
from opcompat.records import TorchInfo
from opcompat.vocab import DTYPE_NAMES


def add_arguments(parser):
    parser.add_argument("--device", help="device to probe: cpu, cuda, cuda:N or mps")
    parser.add_argument("--simulate", action="store_true",
                        help="probe the simulated MPS backend (needs --device mps; results are never published)")
    parser.add_argument("--dtype", action="append", choices=DTYPE_NAMES,
                        help=f"probe these dtypes (default: {', '.join(DTYPE_NAMES)})")
    parser.add_argument("--mps-fallback", choices=probing.MPS_FALLBACK_MODES, default="both",
                        help="MPS: probe without PYTORCH_ENABLE_MPS_FALLBACK, with it, or both (default: both)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one item may take (default: 120)")
    parser.add_argument("--write", action="store_true", help="write the result file (default: print only)")
    parser.add_argument("--force", action="store_true", help="with --write: replace a result file committed to git")
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
    kind = "simulated" if args.simulate else "measured"
    machine = devices.machine(args.device, simulated_name=SIMULATED_DEVICE_NAME if args.simulate else None)
    if args.write:  # refuse before the probe, not after it
        try:
            results.check_overwrite(
                Path(args.results) / records.result_filename(kind, devices.torch_info(), machine), args.force)
        except results.ClobberError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    found = probing.probe(args.device, dtypes=tuple(args.dtype or DTYPE_NAMES), simulate=args.simulate,
                          mps_fallback=args.mps_fallback, runner=probing.Runner(item_timeout=args.timeout))
    print(render(found))
    if args.write:
        record = results.make(kind, devices.torch_info(), machine, found.ops, found.cases)
        print(f"wrote {results.write(record, args.results, force=args.force)}")
    return 0


def render(found) -> str:
    dtypes = list(dict.fromkeys(r.dtype for r in found.ops))
    ops = list(dict.fromkeys(r.op for r in found.ops))
    status = {(r.op, r.dtype): r.status for r in found.ops}
    table = tabulate([[op, *(status[(op, d)] for d in dtypes)] for op in ops], headers=["op", *dtypes],
                     tablefmt="github")
    runs = {(r.case, r.dtype): ("yes" if r.runs_on_device else "no: " + (
        ", ".join(r.fallback_ops) or r.message[:60])) for r in found.cases}
    names = list(dict.fromkeys(r.case for r in found.cases))
    case_table = tabulate([[n, *(runs[(n, d)] for d in dtypes)] for n in names], headers=["case", *dtypes],
                          tablefmt="github")
    head = f"{'simulated ' if found.simulated else ''}{found.device}: " + ", ".join(
        f"{n} {s}" for s, n in Counter(r.status for r in found.ops).most_common())
    return f"{head}\n\n{table}\n\nRuns on {found.device} without CPU fallback:\n\n{case_table}"


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
        op_rows, case_rows = predicted_rows(predictions, case_ops)
        record = results.make("predicted", TorchInfo(version), PREDICTED_MACHINE, op_rows, case_rows)
        if _unchanged(record, directory):
            print(f"unchanged {version}")
            continue
        # A prediction is regenerated from its wheel, never contributed: replacing the committed one is the point.
        print(f"wrote {results.write(record, directory, force=True)}")
    return 1 if failed else 0


def _unchanged(record, directory) -> bool:
    """The file already says the same (only its time would change): leave it, and its diff, alone."""
    try:
        old = results.load(Path(directory) / record.filename())
    except results.ResultFileError:
        return False
    return records.to_json(old) == {**records.to_json(record), "created": old.created}
