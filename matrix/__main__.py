"""``python -m matrix COMMAND``: every opcompat command line in one place.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; its subparser gets them
with ``set_defaults(func=run)``. ``predict`` and ``scan`` parse their own arguments (``main(argv)`` in
their cli modules, which own their options): their subparsers take none and hand over everything after
the name.
"""

from __future__ import annotations

import argparse
import sys

from matrix import build, here, probe_cmd, speed, trace_cmd, verdicts_cmd
from matrix.predict import cli as predict_cli
from matrix.scan import cli as scan_cli

COMMANDS = {
    "verdicts": (verdicts_cmd, "print the verdict table: is each case equivalent to torch.std_mean?"),
    "predict": (predict_cli, "predict MPS support of ops for a torch release from its macOS wheel"),
    "trace": (trace_cmd, "list the aten overloads each case reaches"),
    "probe": (probe_cmd, "probe ops and cases on a device and write a result file"),
    "here": (here, "produce this machine's rows: probe + verdicts + matrix"),
    "build": (build, "merge result files into matrix/MATRIX.md"),
    "speed": (speed, "summarise benchmark JSON: recommendation per device and a chart"),
    "scan": (scan_cli, "scan a workload: its aten ops x dtypes and their MPS status in every release"),
}
OWN_PARSER = {"predict", "scan"}  # commands whose main(argv) parses their own arguments


def _own_parser(command):
    return lambda args, rest: COMMANDS[command][0].main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m matrix", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if name in OWN_PARSER:  # -h and every option go to the command's own parser
            cmd = sub.add_parser(name, help=help_text, add_help=False)
            cmd.set_defaults(func=_own_parser(name), own_parser=True)
            continue
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(func=lambda args, rest, run=module.run: run(args), own_parser=False)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if rest and not args.own_parser:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args, rest)


if __name__ == "__main__":
    sys.exit(main())
