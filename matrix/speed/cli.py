"""``python -m matrix speed RUN.json [RUN2.json]``: read, analyse, print, write the result and the chart."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .chart import chart
from .load import SpeedError, load
from .render import render
from .result import analyse, dumps, stem

HERE = Path(__file__).resolve().parent.parent  # matrix/
RESULTS = HERE / "results"


def add_arguments(parser):
    parser.add_argument("runs", nargs="+", metavar="RUN.json",
                        help="pytest-benchmark JSON from suite/bench, one per repeat of the sweep")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for speed-<device>-<torch>.json (default: matrix/results; a quick sweep is "
                             "written only where --out says)")
    parser.add_argument("--chart-dir", type=Path, default=None,
                        help="folder for the chart (default: matrix/, or --out when given)")
    parser.add_argument("--chart-format", choices=("svg", "png"), default="svg", help="chart format (default: svg)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no result file and no chart")
    parser.add_argument("--rows", action="store_true", help="print every row too")
    parser.add_argument("--rank-by", choices=("graph", "eager_events", "eager_wall"), default=None,
                        help="timer the recommendation ranks by (default: graph, the device time, where every "
                             "row has it; else eager_wall)")


def run(args) -> int:
    try:
        result = analyse(load(args.runs), rank_by=getattr(args, "rank_by", None))
    except SpeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(result, with_rows=args.rows))
    if args.no_write:
        return 0
    refusal = refuse_default_write(result)
    if args.out is None and refusal:
        print(f"\nnot written: {refusal}; pass --out DIR to write it anyway", file=sys.stderr)
        return 0
    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    name = stem(result["machine"])
    chart_dir = args.chart_dir or (args.out if args.out else HERE)
    try:
        drawn = chart(result, chart_dir / f"{name}.{args.chart_format}")
        result["chart"] = relative(drawn, out)
        print(f"\nwrote {drawn}")
    except ImportError as exc:
        print(f"\nno chart: matplotlib is not installed ({exc})", file=sys.stderr)
    except SpeedError as exc:
        print(f"\nno chart: {exc}", file=sys.stderr)
    target = out / f"{name}.json"
    target.write_text(dumps(result))
    print(f"wrote {target}")
    return 0


def relative(path, out) -> str:
    """The chart's path from the repository root (matrix/speed-....svg) when it is inside the repository,
    else from the result file's folder."""
    path, root = Path(path).resolve(), HERE.parent.resolve()
    base = root if root in path.parents else Path(out).resolve()
    return Path(os.path.relpath(path, base)).as_posix()


def refuse_default_write(result) -> str:
    """Why a result should not land in matrix/results/ by default ('' when it may)."""
    m = result["machine"]
    if "simulated" in str(m.get("device_name", "")).lower():
        return "a simulated device is not a measurement"
    if m.get("sweep") != "full":
        return f"the {m.get('sweep')!r} sweep is a smoke test, not a measurement to publish"
    return ""
