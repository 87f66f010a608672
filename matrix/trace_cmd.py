"""``python -m matrix trace``: which aten overloads the reference calls and every case reach."""

from __future__ import annotations

import json
import sys

import cases
from opcompat.trace import trace_all


def add_arguments(parser):
    parser.add_argument("--dtype", default="float32", help="dtype of the traced input (default: float32)")
    parser.add_argument("--json", action="store_true", help="print the calls with their arguments as JSON")


def run(args) -> int:
    traced = trace_all(cases.of_family("std_mean"), args.dtype)
    if args.json:
        json.dump({k: [c.to_json() for c in v] for k, v in traced.items()}, sys.stdout, indent=1)
        print()
        return 0
    for name, calls in traced.items():
        print(f"{name}: {', '.join(c.op for c in calls)}")
    return 0
