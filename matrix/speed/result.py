"""The result file: everything the analysis found, as JSON with one row per line."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

from . import recommend as rec
from .load import SpeedError, machine_of
from .rows import TIMER_TEXT, add_ratios, fallback_kind, measurements, rank_timer
from .spread import spread

SCHEMA_VERSION = 2
ROW_FIELDS = ("variant", "kind", "equivalent", "label", "dtype", "shape", "numel", "dims", "repeat", "median_s",
              "GBps", "frac_copy_bw", "speedup_vs_fallback", "slowdown_vs_fused", "times", "ratio", "ratio_spread",
              "rounds", "calls_per_round", "graph_calls", "graph_error", "sm_clock_mhz", "computes", "output_ok",
              "falls_back", "fallback_ops", "uses_fused_op")


def analyse(runs, results_dir=None, rank_by=None) -> dict:
    """The result; ``rank_by`` names the ranking timer (default: rows.rank_timer's choice)."""
    rows, fallbacks = measurements(runs)
    timer = rank_by or rank_timer(rows)
    if not any(r["times"].get(timer) for r in rows if r["kind"] == "case"):
        raise SpeedError(f"no decomposition was timed by {timer!r} in these files")
    copy_bw = add_ratios(rows, fallbacks, timer)
    machine = machine_of(runs)
    cautions = rec.caveats(rows, machine, **({"results_dir": results_dir} if results_dir else {}))
    recommendation = rec.recommend(rows, timer, cautions)
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "measured",
        "machine": machine,
        "timer": timer,
        "timer_note": f"ranked by {TIMER_TEXT[timer]}; eager wall time beside it; speedups against the "
                      "fallback from eager wall time",
        "runs": [Path(r["_path"]).name for r in runs],
        "copy_bandwidth_GBps": statistics.fmean(copy_bw.values()) if copy_bw else None,
        "copy_bandwidth_by_repeat": [copy_bw[k] for k in sorted(copy_bw)],
        "copy_bandwidth_note": f"device-to-device copy: (bytes read + bytes written) / median time ({timer}), "
                               "best size",
        "fallback": fallback_kind(fallbacks),
        "rows": [{k: r.get(k) for k in ROW_FIELDS} for r in rows if r["kind"] != "copy"]
                + [{k: f.get(k) for k in ROW_FIELDS} for f in fallbacks],
        "copies": [{k: r.get(k) for k in ROW_FIELDS} for r in rows if r["kind"] == "copy"],
        "recommendation": recommendation,
        "summary": rec.summary(recommendation),
        "spread": spread(rows, timer),
        "caveats": {v: cautions["texts"][v] for v in sorted({r["variant"] for r in recommendation if r["variant"]})
                    if v in cautions["texts"]},
        "device_notes": cautions["notes"],
    }


def dumps(result) -> str:
    """The result as JSON with one list item (a row) per line: diffable, and a fraction of indent=1's size."""
    parts = []
    for key, value in _rounded(result).items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join("  " + json.dumps(v) for v in value)
            parts.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _rounded(value, digits=4):
    """Floats to ``digits`` significant digits: timings are not more precise than that."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-")


def stem(machine: dict) -> str:
    """speed-<device>-<torch>, e.g. speed-cuda-nvidia-h100-80gb-hbm3-torch2.11.0-cu128."""
    kind = machine.get("device", "").split(":")[0]
    return f"speed-{slug(kind + '-' + machine.get('device_name', ''))}-torch{slug(machine.get('torch', ''))}"
