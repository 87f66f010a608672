"""Static MPS support prediction for any torch release 1.13 -> 2.15, without a Mac.

Reads three files out of the release's macOS arm64 wheel (never importing it): the dispatch table
(torchgen's native_functions.yaml), Python-registered MPS kernels (torch/backends/mps/__init__.py) and,
from 2.8, the test suite's dtype expectations (torch/testing/_internal/common_mps.py).

    from matrix.predict import predict
    predict("2.2", ["aten::std_mean.correction"])["aten::std_mean.correction"].status  # "fallback"
"""

from matrix.predict.api import predict
from matrix.predict.errors import (
    CorruptWheelError,
    DownloadError,
    PredictError,
    UnknownDtypeError,
    UnknownVersionError,
    WheelNotFoundError,
)
from matrix.predict.model import Prediction
from matrix.predict.releases import RELEASES

__all__ = [
    "RELEASES",
    "CorruptWheelError",
    "DownloadError",
    "PredictError",
    "Prediction",
    "UnknownDtypeError",
    "UnknownVersionError",
    "WheelNotFoundError",
    "predict",
]
