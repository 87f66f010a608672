"""``python -m matrix trace``: which aten overloads the reference calls and every case reach.

    python -m matrix trace [--dtype D] [--json]
    python -m matrix trace --write [--traces DIR]   # matrix/results/traces/traced-<installed release>.json

``--write`` records, for the installed torch, the ops each case reaches at float32 and float16 (another
family's case: at those its family takes, or int64, and whether it leaves the device); tox's
torchXY environments run it so that each release's cells use the ops traced on that release.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import cases
from matrix import probe, traces
from opcompat.trace import trace_all


def add_arguments(parser):
    parser.add_argument("--dtype", default="float32", help="dtype of the traced input (default: float32)")
    parser.add_argument("--json", action="store_true", help="print the calls with their arguments as JSON")
    parser.add_argument("--write", action="store_true",
                        help="write the per-case trace of the installed torch (float32 and float16)")
    parser.add_argument("--traces", type=Path, default=traces.TRACES_DIR,
                        help=f"folder for --write (default: {traces.TRACES_DIR})")


def run(args) -> int:
    if args.write:
        traced = probe.trace_cases()
        calls, case_ops = probe.traced(traced)
        family_ops, leaves = probe.family_traced(traced)
        path = traces.write(traces.make(torch.__version__, calls, case_ops, family_ops, leaves), args.traces)
        print(f"trace of torch {torch.__version__}: {path}")
        return 0
    traced = trace_all(cases.all_cases()[0], args.dtype)
    if args.json:
        json.dump({k: [c.to_json() for c in v] for k, v in traced.items()}, sys.stdout, indent=1)
        print()
        return 0
    for name, calls in traced.items():
        print(f"{name}: {', '.join(c.op for c in calls)}")
    return 0
