"""A prediction (matrix.predict) in the probe's terms: op rows, and case rows from the ops each case reaches.

float64 is refused by the MPS framework whatever the dispatch table says; it is recorded so.
"""

from __future__ import annotations

import torch
from packaging.version import Version

from matrix.predict import predict
from matrix.simulated_mps import prediction_table
from opcompat.records import CaseRow, MachineInfo, OpRow
from opcompat.vocab import DTYPE_NAMES

FLOAT64_EVIDENCE = "the MPS framework has no float64: moving a float64 tensor to mps raises TypeError"
PREDICTED_MACHINE = MachineInfo("mps", "Apple MPS (predicted from the release's macOS arm64 wheel)", "macOS (arm64)",
                                "", "predicted")


def installed_torch_version() -> str:
    """The installed torch's release, without the local build tag ("2.13.0+cpu" -> "2.13.0")."""
    return Version(torch.__version__).base_version


def installed_prediction(ops) -> dict:
    """What matrix.predict says the installed torch's macOS build does with ``ops`` (simulated MPS)."""
    return prediction_table(predict(installed_torch_version(), list(ops), download=False))


def ops_at(by_trace_dtype: dict, dtype: str) -> list:
    """The (op, dtype) pairs a case reaches at ``dtype``: half dtypes follow the float16 trace, the rest the
    float32 one; an op at the trace's dtype moves to ``dtype``, one the case upcast stays where it was."""
    source = "float16" if dtype in ("float16", "bfloat16") and "float16" in by_trace_dtype else "float32"
    found = by_trace_dtype.get(source) or next(iter(by_trace_dtype.values()), [])
    return list(dict.fromkeys((op, dtype if d == source else d) for op, d in found))


def predicted_rows(predictions: dict, case_ops: dict, dtypes=DTYPE_NAMES):
    """([OpRow], [CaseRow]): each op at each dtype, and whether every op a case reaches is native."""
    ops, status = [], {}
    for op, p in predictions.items():
        data = p.to_json() if hasattr(p, "to_json") else dict(p)
        for dtype in dtypes:
            s = (data.get("dtype_status") or {}).get(dtype) or data.get("status", "unknown_op")
            evidence = list(data.get("evidence") or ())
            if dtype == "float64":
                s, evidence = "unsupported_dtype", [FLOAT64_EVIDENCE]
            status[(op, dtype)] = s
            ops.append(OpRow(op, dtype, s, "", evidence))
    rows = [_predicted_case(name, dtype, ops_at(by_trace_dtype, dtype), status)
            for name, by_trace_dtype in case_ops.items() for dtype in dtypes]
    return ops, rows


def _predicted_case(name, dtype, reached, status) -> CaseRow:
    if dtype == "float64":
        return CaseRow(name, dtype, False, [], "unsupported_dtype: MPS has no float64")
    found = {}
    for op, at in reached:
        found.setdefault(status.get((op, at), "unknown"), []).append(op)
    fallback = sorted(set(found.get("fallback", [])))
    problems = [f"{s}: {', '.join(sorted(set(found[s])))}" for s in ("unsupported_dtype", "unknown_op", "unknown")
                if s in found]
    return CaseRow(name, dtype, not fallback and not problems, fallback, "; ".join(problems))
