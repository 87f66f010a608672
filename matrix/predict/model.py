"""The answer for one op: its status, per-dtype status, and the rule trail that produced them."""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("native", "fallback", "composite", "unknown_op")
# Per dtype, in the result files' words (matrix/results.py): the op's status, or one of these two.
DTYPE_STATUSES = (*STATUSES, "unsupported_dtype", "unknown")


@dataclass(frozen=True)
class Prediction:
    op: str  # "aten::std_mean.correction", the dispatcher's spelling
    status: str  # one of STATUSES
    dtype_status: dict[str, str]  # {"float32": "native", "float64": "unsupported_dtype", ...}
    evidence: tuple[str, ...]  # human-readable rule trail, deciding rule first
    source: str = "predicted"

    def to_json(self) -> dict:
        return {"op": self.op, "status": self.status, "dtype_status": dict(self.dtype_status),
                "evidence": list(self.evidence), "source": self.source}
