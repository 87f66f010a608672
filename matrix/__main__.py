"""``python -m matrix COMMAND``: every opcompat command line in one place.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported only when chosen, so a broken optional piece does not take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "verdicts": ("matrix.verdicts_cmd", "print the verdict table: is each case equivalent to torch.std_mean?"),
    "predict": ("matrix.predict.cli", "predict MPS support of ops for a torch release from its macOS wheel"),
    "trace": ("matrix.trace_cmd", "list the aten overloads each case reaches"),
    "probe": ("matrix.probe_cmd", "probe ops and cases on a device and write a result file"),
    "here": ("matrix.here", "produce this machine's rows: probe + verdicts + matrix"),
    "build": ("matrix.build", "merge result files into matrix/MATRIX.md"),
    "speed": ("matrix.speed", "summarise benchmark JSON: recommendation per device and a chart"),
    "scan": ("matrix.scan.cli", "scan a workload: its aten ops x dtypes and their MPS status in every release"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m matrix", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    if hasattr(module, "main"):  # a command with its own parser (predict)
        return module.main(rest)
    cmd = argparse.ArgumentParser(prog=f"python -m matrix {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd)
    return module.run(cmd.parse_args(rest))


if __name__ == "__main__":
    sys.exit(main())
