"""Static MPS support prediction for any torch release 1.13 -> 2.15, without a Mac.

Reads three files out of the release's macOS arm64 wheel (never importing it): the dispatch table
(torchgen's native_functions.yaml), Python-registered MPS kernels (torch/backends/mps/__init__.py) and,
from 2.8, the test suite's dtype expectations (torch/testing/_internal/common_mps.py).

    from matrix.predict import predict
    predict("2.2", ["aten::std_mean.correction"])["aten::std_mean.correction"].status  # "fallback"

All ops, all releases (the API the ``scan`` command uses; see allops.py for the contract), answering in the
vocabulary of statuses.py (native / native_macos / composite_mps / composite / fallback / forced_cpu / error /
not_in_release / unknown), which also reads the release's torch/lib/libtorch_cpu.dylib (binary.py):

    preds = predict_all(releases=None, ops=None, dtypes=("float32",), progress=print)  # {release: {op: Prediction}}
    first_native_release("aten::std_mean.correction", "float32", preds)  # "2.3.1"
"""

from matrix.predict.allops import first_native_release, predict_all
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
    "first_native_release",
    "predict",
    "predict_all",
]
