"""Reading the benchmark files: pytest-benchmark JSON written by suite/bench, one file per repeat."""

from __future__ import annotations

import json
from pathlib import Path

GROUP, FALLBACK = "group", "fallback"  # the two kinds of item suite/bench writes (extra_info["kind"])


class SpeedError(ValueError):
    """A benchmark file that cannot be summarised; the message names the file and the reason."""


def load(paths) -> list:
    """The runs, each a pytest-benchmark dict with ``_path``; refuses foreign, old and mixed files."""
    runs = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SpeedError(f"{path}: cannot read JSON: {exc}") from None
        if not isinstance(data, dict) or "benchmarks" not in data:
            raise SpeedError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks')")
        if "opcompat" not in data.get("machine_info", {}):
            raise SpeedError(f"{path}: no machine_info.opcompat: not written by suite/bench "
                             "(run: pytest suite/bench --benchmark-json=FILE)")
        kinds = {(b.get("extra_info") or {}).get("kind") for b in data["benchmarks"]}
        if data["benchmarks"] and GROUP not in kinds and FALLBACK not in kinds:
            raise SpeedError(f"{path}: written by an older suite/bench (one benchmark per variant, no interleaved "
                             "groups); run the benchmarks again")
        data["_path"] = str(path)
        runs.append(data)
    if not runs:
        raise SpeedError("no benchmark files given")
    machines = {_machine_key(r["machine_info"]["opcompat"]) for r in runs}
    if len(machines) > 1:
        raise SpeedError("the files come from different devices or torch versions: "
                         + "; ".join(" ".join(m) for m in sorted(machines)))
    return runs


def _machine_key(info):
    return (info.get("device", ""), info.get("device_name", ""), info.get("torch", ""))


def machine_of(runs) -> dict:
    info = runs[0]["machine_info"]["opcompat"]
    keys = ("device", "device_name", "torch", "cuda", "macos", "python", "os", "sweep", "timers", "order")
    return {k: info[k] for k in keys if info.get(k) is not None}


def items(runs, kind):
    """(repeat, extra_info) of every item of ``kind`` in every run, repeats counted from 1."""
    for repeat, run in enumerate(runs, start=1):
        for bench in run["benchmarks"]:
            extra = bench.get("extra_info") or {}
            if extra.get("kind") == kind:
                yield repeat, extra
