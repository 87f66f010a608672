"""Device resolution: an absent device is refused with the reason, never skipped."""

from __future__ import annotations

import pytest
import torch

from opcompat import devices

pytestmark = pytest.mark.meta


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


def test_meta_device_is_refused_with_the_reason():
    with pytest.raises(devices.DeviceError, match="meta tensors carry shapes and dtypes but no values"):
        devices.resolve("meta")


def test_machine_is_the_one_description():
    here = devices.machine("cpu")
    info = devices.describe(torch.device("cpu"))
    assert (info["device_name"], info["os"], info["python"]) == (here.device_name, here.os, here.python)
    assert here.device == "cpu" and here.slug == devices.slugify(here.slug), "a slug is already slug-shaped"
    simulated = devices.machine("mps", simulated_name="simulated MPS")
    assert (simulated.device, simulated.device_name) == ("mps", "simulated MPS")
    assert simulated.slug.endswith("-simulated"), "a simulated machine's files say so in their name"


@pytest.mark.parametrize(("text", "slug"), [
    ("Linux-x86_64-Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
     "linux-x86-64-intel-xeon-platinum-8375c-cpu-2-90ghz"),
    ("macos14-arm64-Apple MPS, Apple M2 Pro", "macos14-arm64-apple-mps-apple-m2-pro"),
])
def test_slugify(text, slug):
    assert devices.slugify(text) == slug


def test_every_meta_test_carries_the_meta_marker(request):
    """The collection hook in conftest.py refuses a meta test without the marker; here, that it can."""
    hook = next(p for p in request.config.pluginmanager.get_plugins()
                if getattr(p, "__name__", "") == "conftest" and hasattr(p, "unmarked_meta_tests"))

    class Unmarked:
        nodeid = "suite/meta/test_new.py::test_x"
        path = hook.META_TESTS / "test_new.py"

        def get_closest_marker(self, name):
            return None

    assert hook.unmarked_meta_tests([request.node]) == []
    assert hook.unmarked_meta_tests([request.node, Unmarked()]) == [Unmarked.nodeid]
    with pytest.raises(pytest.UsageError, match="lack the meta marker"):
        hook.pytest_collection_modifyitems(request.config, [Unmarked()])
