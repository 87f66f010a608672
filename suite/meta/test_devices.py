"""Device resolution: an absent device is refused with the reason, never skipped."""

from __future__ import annotations

import pytest
import torch

from opcompat import devices


@pytest.mark.parametrize(("name", "needle"), [
    ("nonsense", "is not a torch device string"),
    ("cuda:7", "CUDA"),
    ("mps", "MPS"),
])
def test_absent_device_is_refused_with_reason(name, needle):
    if name == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    if name.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(devices.DeviceError, match=needle):
        devices.resolve(name)


def test_cpu_resolves_and_is_described():
    device = devices.resolve("cpu")
    info = devices.describe(device)
    assert device.type == "cpu"
    assert info["torch"] == torch.__version__
    assert set(devices.supported_dtypes(device)) == {"float32", "float16", "bfloat16", "float64"}


def test_mps_dtypes_never_include_float64(monkeypatch):
    monkeypatch.setattr(devices, "_mps_bf16_ok", lambda device: False)
    assert devices.supported_dtypes(torch.device("mps")) == ("float32", "float16")
