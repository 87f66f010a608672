"""``python -m matrix predict --all-ops`` and ``--crosscheck``: every op of one or more releases.

Progress (downloads, parses) goes to stderr; the answer to stdout, as a table or ``--json``.
"""

from __future__ import annotations

import json
import sys

from tabulate import tabulate

from matrix.predict import crosscheck, release_data, statuses
from matrix.predict.allops import DEFAULT_DTYPES, predict_all
from matrix.predict.errors import PredictError
from matrix.predict.releases import RELEASES, resolve_version, series


def _progress(message: str) -> None:
    print(f"predict: {message}", file=sys.stderr, flush=True)


def run_all_ops(args) -> int:
    found = predict_all(args.torch or None, args.op or None, dtypes=args.dtype or DEFAULT_DTYPES,
                        download=not args.no_download,
                        progress=_progress, decompositions=args.decompositions_map)
    if args.json:
        print(json.dumps({v: {op: p.to_json() for op, p in preds.items()} for v, preds in found.items()},
                         ensure_ascii=False))
        return 0
    versions = list(found)
    ops = list(next(iter(found.values()), {}))
    rows = [[op, *(_cell(found[v][op]) for v in versions)] for op in ops]
    print(tabulate(rows, headers=["op", *versions], tablefmt="plain"))
    print("\nstatus words:", file=sys.stderr)
    for word, text in statuses.DESCRIPTIONS.items():
        print(f"  {word}: {text}", file=sys.stderr)
    return 0


def _cell(p) -> str:
    return f"{p.status}({p.min_macos})" if p.status == statuses.NATIVE_MACOS else p.status


def run_crosscheck(args) -> int:
    versions = [resolve_version(v) for v in (args.torch or RELEASES)]
    results = {}
    for version in versions:
        if series(version) < (2, 0):
            _progress(f"torch {version}: skipped (no wrapper_MPS_* naming before 2.0)")
            continue
        try:
            results[version] = crosscheck.check_release(
                release_data.load(version, download=not args.no_download, progress=_progress, prefer_wheel=True))
        except PredictError as exc:
            _progress(f"torch {version}: skipped: {exc}")
    summary = crosscheck.summary(results)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"cross-checked {summary['checked']} op x release pairs over {len(results)} releases; "
          f"{summary['agree']} agree")
    for cls, count in sorted(summary["classes"].items(), key=lambda kv: -kv[1]):
        print(f"\n{cls}: {count}")
        for version, op, why in summary["examples"][cls]:
            print(f"  {version} {op}: {why}")
    return 1 if "unexplained" in summary["classes"] else 0
