"""Device quirks excuse a failure only when the device's own std_mean fails the same input."""

from __future__ import annotations

import cases
from suite import device_quirks
from suite.compare import Target
from suite.samples import Sample

SUBNORMAL = Sample(shape=(64,), dtype="float32", regime="subnormal", scale=1e-39, correction=0)


def test_no_quirk_on_cpu_for_a_flushing_form():
    """two_pass_biased flushes subnormal squares; the CPU's std_mean does not: not excused."""
    assert device_quirks.explains(cases.get("two_pass_biased"), SUBNORMAL, "cpu", Target(0)) is None


def test_quirk_needs_the_fused_op_to_fail_too(monkeypatch):
    quirk = device_quirks.Quirk("cpu", "subnormal", ("float32",), "test quirk")
    monkeypatch.setattr(device_quirks, "QUIRKS", (quirk,))
    case = cases.get("two_pass_biased")
    # the real fused op passes: the quirk does not apply
    assert device_quirks.explains(case, SUBNORMAL, "cpu", Target(0)) is None
    # a device whose fused op flushes too: excused, with the quirk's note
    flushing = cases.Case("fused", cases.get("two_pass_biased").fn, "torch.std_mean", cases.Claim(), source="t")
    monkeypatch.setattr(cases, "get", lambda name: flushing)
    assert device_quirks.explains(case, SUBNORMAL, "cpu", Target(0)) is quirk
    # ... but not for another regime or dtype
    assert device_quirks.explains(case, Sample(shape=(64,), dtype="float64", regime="subnormal", scale=1e-300),
                                  "cpu", Target(0)) is None


def test_cuda_quirk_is_declared_for_float32_subnormals():
    assert device_quirks.matching("cuda:0", "subnormal", "float32") is not None
    assert device_quirks.matching("cuda", "subnormal", "float64") is None
    assert device_quirks.matching("cpu", "subnormal", "float32") is None
