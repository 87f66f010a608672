"""``python -m matrix here``: produce the matrix rows of this machine, then the matrix.

    python -m matrix here                      # every device here: cpu, cuda if present, mps on a Mac
    python -m matrix here --device cuda        # one device (repeat --device for more)
    python -m matrix here --quick              # float32 and float16 only
    python -m matrix here --no-build           # write the result files, leave MATRIX.md alone
    python -m matrix here --results DIR        # write elsewhere (MATRIX.md then goes to DIR/MATRIX.md)

For each device: trace the ops (once), probe every op and case there in child processes
(matrix.probe: on a Mac, with and without PYTORCH_ENABLE_MPS_FALLBACK, set only in the children),
judge every case against CPU torch.std_mean (``python -m matrix verdicts`` in a child), and write
``measured-<device>-<torch>-<machine>.json``. Then ``python -m matrix build``.

A result file that git tracks is never overwritten without ``--force``: a second run on the same
machine and torch stops before probing, so a committed contribution cannot change by accident. A case
file that fails to import is named, and the result records it (``case_errors``; MATRIX.md shows it).

A Mac user contributes a measured MPS column this way: run it, then open a pull request with the new
matrix/results/measured-mps-*.json (the command prints its path).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

import cases
from matrix import build as builder
from matrix import probe as probing
from matrix import results
from matrix.harness import ROOT, harness_info
from matrix.probe_runner import child_env
from opcompat import devices, records
from opcompat.records import VerdictRow
from opcompat.vocab import DTYPE_NAMES

QUICK_DTYPES = ("float32", "float16")
VERDICT_TIMEOUT = 1800.0


def add_arguments(parser):
    parser.add_argument("--device", action="append",
                        help="device to probe; repeatable (default: every device available here)")
    parser.add_argument("--results", type=Path, default=results.RESULTS_DIR,
                        help=f"folder for result files (default: {results.RESULTS_DIR})")
    parser.add_argument("--no-build", action="store_true", help="write the result files only, not MATRIX.md")
    parser.add_argument("--quick", action="store_true",
                        help=f"probe and judge {' and '.join(QUICK_DTYPES)} only (default: every dtype)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds one probed item may take before its child is killed (default: 120)")
    parser.add_argument("--force", action="store_true",
                        help="replace a result file that is committed to git (default: refuse, before probing)")


def available_devices() -> list:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def targets(chosen, directory, force):
    """{device: the result file it will write}; ClobberError before any work if one is committed."""
    paths = {}
    for device in chosen:
        name = records.result_filename("measured", devices.torch_info(), devices.machine(device))
        paths[device] = Path(directory) / name
        results.check_overwrite(paths[device], force)
    return paths


def run(args) -> int:
    chosen = args.device or available_devices()
    try:
        for name in chosen:
            devices.resolve(name)
        paths = targets(chosen, args.results, args.force)
    except (devices.DeviceError, results.ClobberError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dtypes = QUICK_DTYPES if args.quick else DTYPE_NAMES
    start = time.monotonic()
    registered, problems = cases.all_cases()
    case_errors = [str(p) for p in problems]
    for problem in case_errors:  # its cases are missing from every row: say so, and the file records it
        print(f"error: {problem}; its cases are left out of this result (recorded as case_errors)", file=sys.stderr)
    print(f"tracing the ops of torch.std_mean and every case ({', '.join(probing.TRACE_DTYPES)})", flush=True)
    traces = probing.trace_cases(registered)
    harness = harness_info()
    written = []
    for device in chosen:
        print(f"probing {device} ({', '.join(dtypes)})", flush=True)
        found = probing.probe(device, dtypes=dtypes, traces=traces, runner=probing.Runner(item_timeout=args.timeout))
        print(f"  ops: {summary(Counter(r.status for r in found.ops))}; cases running without fallback: "
              f"{sum(r.runs_on_device for r in found.cases)}/{len(found.cases)}", flush=True)
        print(f"judging the cases on {device}", flush=True)
        verdicts, problem = judge(device, QUICK_DTYPES if args.quick else None)
        if problem:  # a row without verdicts would read as complete: write nothing for this device
            print(f"error: no verdicts for {device}: {problem}", file=sys.stderr)
            return 1
        print(f"  verdicts: {sum(v.equivalent for v in verdicts)}/{len(verdicts)} equivalent", flush=True)
        record = results.make("measured", devices.torch_info(), devices.machine(device), found.ops, found.cases,
                              verdicts, harness_info=harness, case_errors=case_errors)
        assert record.filename() == paths[device].name  # the file checked before the probe is the one written
        try:
            path = results.write(record, args.results, force=args.force)
        except (results.LockTimeout, results.PublishError, results.ClobberError, OSError) as exc:
            print(f"error: cannot write the {device} result file: {exc}", file=sys.stderr)
            return 1
        written.append(path)
        print(f"  wrote {path}", flush=True)
    if not args.no_build:
        out = builder.DEFAULT_OUT if results.is_published(args.results) else Path(args.results) / "MATRIX.md"
        text, used, skipped = builder.build(args.results)
        for path, reason in skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} from {used} result file(s)")
    print(f"done in {time.monotonic() - start:.0f} s")
    if results.is_published(args.results) and written:
        print("to contribute these rows, open a pull request adding: "
              + " ".join(str(_relative(p)) for p in written))
    if case_errors:
        print(f"warning: {len(case_errors)} case file(s) failed to import; their cases are missing", file=sys.stderr)
    return 0


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def summary(counts) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.most_common())


def judge(device, dtypes=None):
    """([VerdictRow], problem or ''): ``python -m matrix verdicts`` in a child, never with the fallback set."""
    cmd = [sys.executable, "-m", "matrix", "verdicts", "--device", device, "--json"]
    for dtype in dtypes or ():
        cmd += ["--dtype", dtype]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(False), cwd=str(ROOT),
                              timeout=VERDICT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [], f"the verdict run took longer than {VERDICT_TIMEOUT:g} s and was stopped"
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-500:]
        return [], f"the verdict run failed (exit status {done.returncode}): {tail}"
    try:
        rows = json.loads(done.stdout)
        if not isinstance(rows, list):
            raise ValueError(f"a {type(rows).__name__}, not a list")
        return [records.from_json(VerdictRow, v, where=f"the verdict run's row {i}") for i, v in enumerate(rows)], ""
    except (ValueError, records.RecordError) as exc:  # JSONDecodeError is a ValueError
        return [], f"the verdict run printed no usable JSON ({exc})"
