"""The answer for one op: its status, per-dtype status, and the rule trail that produced them."""

from __future__ import annotations

from dataclasses import dataclass, field

# predict()'s words (the result files'); predict_all() answers in statuses.py's vocabulary.
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
    min_macos: str | None = None  # the oldest macOS it runs natively on (the backend's own minimum if no gate)
    dtype_min_macos: dict[str, str] = field(default_factory=dict)  # where a dtype needs a newer macOS

    def to_json(self) -> dict:
        out = {"op": self.op, "status": self.status, "dtype_status": dict(self.dtype_status),
               "evidence": list(self.evidence), "source": self.source}
        if self.min_macos is not None:
            out["min_macos"] = self.min_macos
        if self.dtype_min_macos:
            out["dtype_min_macos"] = dict(self.dtype_min_macos)
        return out
