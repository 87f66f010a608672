"""``python -m matrix verdicts``: the verdict table for this machine's torch on one device."""

from __future__ import annotations

import json
import sys
import warnings

from tabulate import tabulate

import cases
from opcompat import devices
from opcompat.verdicts import CORRECTIONS, corrections_for, table


def add_arguments(parser):
    parser.add_argument("--device", default="cpu", help="device the cases run on (default: cpu)")
    parser.add_argument("--dtype", action="append", help="limit to these dtypes (default: all the device has)")
    parser.add_argument("--case", action="append", help="limit to these cases (default: all)")
    parser.add_argument("--correction", action="append", type=float,
                        help=f"corrections for generic cases (default: {', '.join(map(str, CORRECTIONS))})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def selected(args):
    """Device, dtypes and cases the arguments ask for; a usage error names what is wrong."""
    device = devices.resolve(args.device)
    available = devices.supported_dtypes(device)
    dtypes = tuple(args.dtype or available)
    missing = [d for d in dtypes if d not in available]
    if missing:
        raise devices.DeviceError(f"--dtype {', '.join(missing)}: not supported on {device} "
                                  f"(supported: {', '.join(available)})")
    found, problems = cases.all_cases()
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    chosen = [cases.get(n) for n in args.case] if args.case else found
    return device, dtypes, chosen


def run(args) -> int:
    try:
        device, dtypes, chosen = selected(args)
    except (devices.DeviceError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    corrections = tuple(args.correction or CORRECTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # std_mean warns for N - correction <= 0; the table says it
        verdicts = table(chosen, dtypes, device, corrections)
    if args.json:
        print(json.dumps([v.to_json() for v in verdicts], indent=1))
        return 0
    print(render(verdicts, chosen, dtypes, corrections, device))
    return 0


def render(verdicts, chosen, dtypes, corrections, device) -> str:
    by_key = {(v.case, v.correction, v.dtype): v for v in verdicts}
    rows = []
    for case in chosen:
        for c in corrections_for(case, corrections):
            rows.append([case.name, f"{c:g}", case.claim.describe()]
                        + [by_key[(case.name, c, d)].cell() for d in dtypes])
    info = devices.describe(device)
    head = (f"Verdicts on {info['device']} ({info['device_name']}), torch {info['torch']}: "
            "each case vs CPU torch.std_mean at the caller's correction")
    return head + "\n\n" + tabulate(rows, headers=["case", "correction", "claims", *dtypes], tablefmt="github")
