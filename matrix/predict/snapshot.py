"""Compact per-release all-op predictions for committing: ``python -m matrix.predict.snapshot [DIR]``.

The full answer (evidence for ~3,300 overloads x 4 dtypes) is ~3 MB per release, too big to commit; a
snapshot keeps the status of every op grouped by status word, min_macos where a gate applies, and the
dtypes whose answer differs from the op's (float64, refused by MPS in every release, is left out: it is
always ``unsupported_dtype`` where the op exists). Regenerate them from the wheels; never edit by hand.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from matrix.predict import statuses
from matrix.predict.allops import predict_all

DEFAULT_DIR = Path(__file__).parent / "snapshots"


def compact(version: str, predictions: dict) -> dict:
    by_status: dict[str, list[str]] = {}
    min_macos, dtypes = {}, {}
    for op, p in sorted(predictions.items()):
        by_status.setdefault(p.status, []).append(op)
        if p.status == statuses.NATIVE_MACOS:
            min_macos[op] = p.min_macos
        odd = {d: w for d, w in p.dtype_status.items() if w != p.status and d != "float64"}
        if odd:
            dtypes[op] = {d: (f"{w}({p.dtype_min_macos[d]})" if d in p.dtype_min_macos else w)
                          for d, w in odd.items()}
    return {"torch": version, "counts": dict(Counter({s: len(v) for s, v in by_status.items()})),
            "descriptions": statuses.DESCRIPTIONS, "ops_by_status": by_status, "min_macos": min_macos,
            "dtype_differs": dtypes}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else DEFAULT_DIR
    out.mkdir(parents=True, exist_ok=True)
    found = predict_all(progress=lambda m: print(f"snapshot: {m}", file=sys.stderr))
    for version, preds in found.items():
        path = out / f"mps-{version}.json"
        path.write_text(json.dumps(compact(version, preds), indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
