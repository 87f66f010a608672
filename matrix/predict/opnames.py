"""The ops the predictor answers for by default. How an overload is spelled (the tracer's
"aten::sqrt.default", the yaml's "sqrt", c10's printed "aten::sqrt") is opcompat.vocab's, re-exported here."""

from __future__ import annotations

from opcompat.vocab import base, canonical, display, printed

__all__ = ["DEFAULT_OPS", "OUT_FORMS", "base", "canonical", "display", "printed"]

# What the CLI predicts when no --op is given: the ops of the std_mean cases and their decompositions.
DEFAULT_OPS = (
    "std_mean.correction", "std_mean.dim", "var_mean.correction", "std.correction", "std.dim",
    "var.correction", "var.dim", "mean.dim", "sum.dim_IntList", "sub.Tensor", "pow.Tensor_Scalar",
    "sqrt.default", "mul.Tensor", "div.Scalar", "add.Tensor",
)
# The out= forms, listed only for releases whose yaml has them (explicit or autogen'd).
OUT_FORMS = (
    "std.out", "std.correction_out", "var.out", "var.correction_out",
    "std_mean.correction_out", "var_mean.correction_out",
)
