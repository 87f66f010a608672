"""opcompat's one vocabulary: every name and text that more than one module needs, spelled once.

dtypes, input regimes and layouts, the MPS fallback variable and what libtorch makes of it, the texts
the backends print (and the regexes that read them), how aten overloads are spelled, and the status
words of op and case rows. Nothing here imports anything of opcompat, cases or matrix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# -- dtypes ------------------------------------------------------------------------------------------
# The float dtypes every table lists, in this order.
DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64")
DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SHORT_DTYPE = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64"}
# The MPS framework has no float64; bfloat16 needs macOS 14 (and torch >= 2.3).
MPS_DTYPES = ("float32", "float16", "bfloat16")
# A case whose source says this is the family's op itself run on the device (cases/*.py): the matrix never
# recommends it where that op falls back.
REFERENCE_CASE_SOURCE = "the reference, run on the device"


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> "float32"."""
    return str(dtype).replace("torch.", "")


# -- inputs ------------------------------------------------------------------------------------------
# Input regimes a claim may leave out of its domain; the strategies draw from the same names.
REGIMES = (
    "normal",  # standard normal
    "ill_conditioned",  # |mean| >> std: catastrophic cancellation territory
    "tiny_spread",  # spread near the dtype's resolution of the mean
    "constant",  # every element equal: std is exactly 0
    "near_overflow",  # magnitudes whose squares overflow float16
    "subnormal",  # values in the subnormal range
    "nonfinite",  # NaN / +inf / -inf injected
)
# Memory layouts the strategies draw (an expanded axis makes every slice along it constant).
LAYOUTS = ("contiguous", "transposed", "expanded", "channels_last")
MAX_NDIM = 5  # the strategies draw ranks 0..5

# -- the MPS fallback --------------------------------------------------------------------------------
FALLBACK_ENV = "PYTORCH_ENABLE_MPS_FALLBACK"


def fallback_enabled(environ: Mapping[str, str]) -> bool:
    """What libtorch makes of PYTORCH_ENABLE_MPS_FALLBACK when it loads: a non-zero integer enables it."""
    try:
        return int(environ.get(FALLBACK_ENV, "").strip()) != 0
    except ValueError:
        return False


# The texts of aten/src/ATen/mps/MPSFallback.mm, with the operator as c10's OperatorName prints it
# (1.12-1.13 wrote "not current implemented").
FALLBACK_WARNING_TEXT = ("The operator '{op}' is not currently supported on the MPS backend and will fall back to "
                         "run on the CPU. This may have performance implications.")
NOT_IMPLEMENTED_TEXT = (
    "The operator '{op}' is not currently implemented for the MPS device. If you want this op to "
    "be considered for addition please comment on https://github.com/pytorch/pytorch/issues/141287 "
    "and mention use-case, that resulted in missing op as well as commit hash {commit}. As a "
    "temporary fix, you can set the environment variable `PYTORCH_ENABLE_MPS_FALLBACK=1` to use "
    "the CPU as a fallback for this op. WARNING: this will be slower than running natively on MPS.")
FLOAT64_ERROR_TEXT = ("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. "
                      "Please use float32 instead.")
FALLBACK_MARK = "will fall back to run on the CPU"  # the part of the warning every release prints
FALLBACK_WARNING = re.compile(r"The operator '([^']+)' is not currently supported on the MPS backend and will fall "
                              r"back to run on the CPU")
MPS_NOT_IMPLEMENTED = re.compile(r"The operator '([^']+)' is not current(?:ly)? implemented for the MPS device")
NO_KERNEL = re.compile(r"Could not run '([^']+)' with arguments from the '(\w+)' backend")
# Dtype refusals: MPS (no float64; bfloat16 before macOS 14) and CPU/CUDA kernels without a dtype.
UNSUPPORTED_DTYPE = re.compile(
    r"doesn't support float64|does not have support for that dtype|BFloat16 is (?:only|not) supported|"
    r"not implemented for '(?:Half|BFloat16|Double|Float)'|"
    r"MPS does not support (?:float64|double|bfloat16|float16|half)",
    re.IGNORECASE)

# -- op names ----------------------------------------------------------------------------------------
# Three spellings of one overload: the tracer's "aten::sqrt.default", the yaml's "sqrt", and c10's
# printed "aten::sqrt" (the default overload has no suffix in messages).


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
    """The dispatcher's spelling, as the tracer writes rows: "aten::sqrt.default"."""
    if "::" in name:
        return name if "." in name.split("::")[-1] else f"{name}.default"
    return f"aten::{name}" if "." in name else f"aten::{name}.default"


def printed(op: str) -> str:
    """How c10 prints the op in warnings and errors: "aten::sqrt.default" -> "aten::sqrt"."""
    op = display(op)
    return op[: -len(".default")] if op.endswith(".default") else op


def base(name: str) -> str:
    """Function name without the overload: "std_mean.correction" -> "std_mean"."""
    return name.split("::")[-1].split(".", 1)[0]


# -- statuses ----------------------------------------------------------------------------------------
# What a probe or a prediction says of one op at one dtype on one device.
OP_STATUSES = ("native", "fallback", "not_implemented", "wrong_result", "unsupported_dtype", "error", "crashed",
               "timeout")
# A prediction's extra words (matrix.predict): "composite" decomposes; "unknown" the rules cannot tell.
PREDICTED_STATUSES = ("native", "fallback", "composite", "unknown_op", "unsupported_dtype", "unknown")
