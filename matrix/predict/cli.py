"""``python -m matrix predict --torch 2.2.2 [--json] [--op OP ...] [--dtype ...] [--no-download]``.

Exit status: 0 answered; 1 a PredictError (unknown version or dtype, corrupt wheel, failed download);
2 bad arguments; 3 answered, but some op is not in that release's native_functions.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from tabulate import tabulate

from matrix.predict import cli_all
from matrix.predict.api import predict_release
from matrix.predict.dtype_rules import DEFAULT_DTYPES
from matrix.predict.errors import PredictError
from matrix.predict.opnames import DEFAULT_OPS, OUT_FORMS
from matrix.predict.releases import RELEASES

EVIDENCE_WIDTH = 100


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m matrix predict",
        description="Predict, from a torch release's macOS arm64 wheel, whether aten ops run natively on MPS, "
                    "fall back to the CPU, or decompose into other ops.")
    parser.add_argument("--torch", action="extend", nargs="+", metavar="VERSION",
                        help=f"torch release, e.g. 2.2 or 2.2.2 (known: {RELEASES[0]} ... {RELEASES[-1]}); "
                             f"several, or none for all, with --all-ops / --crosscheck")
    parser.add_argument("--all-ops", action="store_true",
                        help="every aten overload of the releases (default: all 17), per dtype")
    parser.add_argument("--crosscheck", action="store_true",
                        help="compare the yaml's MPS keys with the MPS registrations in libtorch_cpu.dylib "
                             "(releases >= 2.0)")
    parser.add_argument("--op", action="extend", nargs="+", metavar="OP",
                        help="aten overloads, e.g. aten::std_mean.correction sqrt.default (default: the ops "
                             "of the std_mean cases, plus the out= forms of std/var/std_mean/var_mean)")
    parser.add_argument("--dtype", action="extend", nargs="+", metavar="DTYPE",
                        help=f"dtypes to answer for (default: {' '.join(DEFAULT_DTYPES)})")
    parser.add_argument("--decompositions", type=Path, metavar="JSON",
                        help="decomposition map {op: [ops it reaches]} (the tracer's) to resolve composite ops")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-download", action="store_true",
                        help="use cached wheels (or the installed torch) only; never run pip download")
    return parser


def _load_map(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PredictError(f"cannot read the decomposition map {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise PredictError(f"decomposition map {path}: expected a JSON object {{op: [ops it reaches]}}")
    return data


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:  # tolerate being handed the subcommand's own name
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits; a library main() returns
        return int(exc.code or 0)
    try:
        if args.crosscheck or args.all_ops:
            args.decompositions_map = _load_map(args.decompositions)
            return cli_all.run_crosscheck(args) if args.crosscheck else cli_all.run_all_ops(args)
    except PredictError as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        return 1
    if not args.torch or len(args.torch) != 1:
        print("predict: error: give one --torch VERSION (or --all-ops / --crosscheck)", file=sys.stderr)
        return 2
    args.torch = args.torch[0]
    ops = args.op or [*DEFAULT_OPS, *OUT_FORMS]
    try:
        release, found = predict_release(args.torch, ops, decompositions=_load_map(args.decompositions),
                                         dtypes=args.dtype or DEFAULT_DTYPES, download=not args.no_download)
    except PredictError as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        return 1
    if not args.op:  # the default out= forms only where this release has them
        found = {op: p for op, p in found.items() if op not in OUT_FORMS or p.status != "unknown_op"}
    if args.json:
        print(json.dumps({"torch": release.version, "origin": release.origin,
                          "predictions": {op: p.to_json() for op, p in found.items()}}, indent=2,
                         ensure_ascii=False))
    else:
        print(render(release, found))
    unknown = [op for op, p in found.items() if p.status == "unknown_op"]
    if unknown:
        print(f"predict: unknown op(s) {', '.join(unknown)}: not in native_functions.yaml of torch "
              f"{release.version}", file=sys.stderr)
        return 3
    return 0


def render(release, found: dict) -> str:
    dtypes = list(dict.fromkeys(d for p in found.values() for d in p.dtype_status))
    rows = []
    for op, p in found.items():
        evidence = "\n".join(textwrap.fill(line, EVIDENCE_WIDTH, subsequent_indent="    ") for line in p.evidence)
        rows.append([op, p.status, *(p.dtype_status.get(d, "") for d in dtypes), evidence])
    table = tabulate(rows, headers=["op", "status", *dtypes, "evidence"], tablefmt="grid")
    return f"torch {release.version} on MPS, predicted from {release.origin}\n{table}"


if __name__ == "__main__":
    sys.exit(main())
