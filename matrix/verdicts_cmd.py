"""``python -m matrix verdicts``: the verdict table for this machine's torch on one device."""

from __future__ import annotations

import json
import sys
import warnings

from tabulate import tabulate

import cases
from opcompat import devices, family
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
    if problems:  # a broken case file must not read as a complete table
        raise cases.CaseError("case files with problems:\n" + "\n".join(f"  {p}" for p in problems))
    chosen = [cases.get(n) for n in args.case] if args.case else found
    # integer families (isin, cumsum) are judged at their own dtypes, on every device
    if not args.dtype:
        own = [d for name in dict.fromkeys(c.family for c in chosen) for d in family.get(name).dtypes]
        dtypes = tuple(dict.fromkeys([*dtypes, *(d for d in own if not d.startswith(("float", "bfloat")))]))
    return device, dtypes, chosen


def run(args) -> int:
    try:
        device, dtypes, chosen = selected(args)
    except (devices.DeviceError, KeyError, cases.CaseError) as exc:
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
    """One table per family (its own dtype columns), in the order the families' cases come."""
    by_key = {(v.case, v.correction, v.dtype): v for v in verdicts}
    info = devices.describe(device)
    parts = [f"Verdicts on {info['device']} ({info['device_name']}), torch {info['torch']}: "
             "each case vs its family's op on the CPU (std_mean: at the caller's correction)"]
    for name in dict.fromkeys(case.family for case in chosen):
        fam = family.get(name)
        columns = [d for d in fam.dtypes if d in dtypes or not d.startswith(("float", "bfloat"))]
        rows = []
        for case in (c for c in chosen if c.family == name):
            for c in corrections_for(case, corrections):
                rows.append([name, case.name, "-" if c is None else f"{c:g}", case.claim.describe(name)]
                            + [by_key[(case.name, c, d)].cell() if (case.name, c, d) in by_key else "-"
                               for d in columns])
        parts.append(f"{fam.call} ({', '.join(fam.ops)}):\n\n"
                     + tabulate(rows, headers=["family", "case", "correction", "claims", *columns],
                                tablefmt="github"))
    return "\n\n".join(parts)
