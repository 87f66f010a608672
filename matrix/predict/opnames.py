"""Spelling of aten overload names: the tracer's "aten::sqrt.default" vs the yaml's "sqrt"."""

from __future__ import annotations

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


def canonical(op: str) -> str:
    """The yaml's key: "aten::std_mean.correction" -> "std_mean.correction", "aten::sqrt.default" -> "sqrt".

    Other namespaces ("prims::x") keep their prefix, so they are reported as not in native_functions.yaml.
    """
    name = str(op).strip()
    if name.startswith("aten::"):
        name = name[len("aten::"):]
    if name.endswith(".default"):
        name = name[: -len(".default")]
    return name


def display(name: str) -> str:
    """The dispatcher's spelling, as the tracer and MPS warnings print it: "aten::sqrt.default"."""
    if "::" in name:
        return name
    return f"aten::{name}" if "." in name else f"aten::{name}.default"


def warning_name(name: str) -> str:
    """How MPSFallback.mm names the op in its warning: the default overload has no suffix."""
    return f"aten::{name}"


def base(name: str) -> str:
    """Function name without the overload: "std_mean.correction" -> "std_mean"."""
    return name.split("::")[-1].split(".", 1)[0]
