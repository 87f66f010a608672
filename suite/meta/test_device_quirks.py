"""Device quirks excuse a failure only when the device's own std_mean fails the same input the same way."""

from __future__ import annotations

import pytest
import torch

import cases
from opcompat import device_quirks, family
from opcompat.compare import Target, evaluate, run
from opcompat.samples import Sample

pytestmark = pytest.mark.meta

SUBNORMAL = Sample(shape=(64,), dtype="float32", regime="subnormal", scale=1e-39, correction=0)
CPU_QUIRK = device_quirks.Quirk("cpu", "subnormal", ("float32",), "test quirk")


def _flushing_fused(monkeypatch):
    """Pretend the device's std_mean flushes subnormal spreads, as CUDA's does."""
    flushing = cases.Case("fused", cases.get("two_pass_corrected").fn, "torch.std_mean", cases.Claim(), source="t")
    monkeypatch.setattr(device_quirks, "FUSED", flushing)


def test_no_quirk_on_cpu_for_a_flushing_form():
    """two_pass_biased flushes subnormal squares; the CPU's std_mean does not: not excused."""
    case = cases.get("two_pass_biased")
    outcome = evaluate(case, SUBNORMAL, "cpu", target=Target(0))
    assert not outcome.ok
    assert device_quirks.explains(case, SUBNORMAL, "cpu", outcome) is None


def test_quirk_needs_the_fused_op_to_fail_too(monkeypatch):
    monkeypatch.setattr(device_quirks, "QUIRKS", (CPU_QUIRK,))
    case = cases.get("two_pass_biased")
    outcome = evaluate(case, SUBNORMAL, "cpu", target=Target(0))
    # the real fused op passes: the quirk does not apply
    assert device_quirks.explains(case, SUBNORMAL, "cpu", outcome) is None
    # a device whose fused op flushes too: excused, with the quirk's note
    _flushing_fused(monkeypatch)
    assert device_quirks.explains(case, SUBNORMAL, "cpu", outcome) is CPU_QUIRK
    # ... but not for another regime or dtype
    other = Sample(shape=(64,), dtype="float64", regime="subnormal", scale=1e-300)
    assert device_quirks.explains(case, other, "cpu", evaluate(case, other, "cpu")) is None


def test_a_different_failure_on_the_same_input_is_not_excused(monkeypatch):
    """The fused op flushes the std; a case that also gets the mean wrong there is not excused."""
    monkeypatch.setattr(device_quirks, "QUIRKS", (CPU_QUIRK,))
    _flushing_fused(monkeypatch)

    def flush_and_bad_mean(x, *, dim, correction, keepdim):
        std, mean = cases.get("two_pass_corrected").fn(x, dim=dim, correction=correction, keepdim=keepdim)
        return std, mean + 1.0

    case = cases.Case("bad_mean", flush_and_bad_mean, "torch.std_mean", cases.Claim(), source="t")
    outcome = evaluate(case, SUBNORMAL, "cpu")
    assert {m.output for m in outcome.mismatches} == {"std", "mean"}
    assert device_quirks.explains(case, SUBNORMAL, "cpu", outcome) is None


def test_fused_is_judged_at_the_callers_correction_not_the_claim(monkeypatch):
    """A biased form is compared with its claim (correction 0); the fused op must be judged at the caller's
    correction, where it passes -- so a wrong std from the case is never excused by the fused op failing
    a target it was never meant to meet."""
    monkeypatch.setattr(device_quirks, "QUIRKS", (CPU_QUIRK,))

    def doubled(x, *, dim, correction, keepdim):
        std, mean = torch.std_mean(x, dim=dim, correction=0, keepdim=keepdim)
        return std * 2, mean

    case = cases.Case("doubled", doubled, "torch.std_mean", cases.Claim(correction=0), source="t")
    sample = Sample(shape=(64,), dtype="float32", regime="subnormal", scale=1e-39, correction=1)
    outcome = evaluate(case, sample, "cpu")
    assert not outcome.ok
    assert device_quirks.explains(case, sample, "cpu", outcome) is None


def test_cuda_quirks_are_declared():
    assert device_quirks.matching("cuda:0", "subnormal", "float32") is not None
    assert device_quirks.matching("cuda", "subnormal", "float64") is None
    assert device_quirks.matching("cpu", "subnormal", "float32") is None
    assert device_quirks.matching("cuda", "nonfinite", "float16") is not None


# -- other families: the same two conditions, with the family's own reference op on the device ----------
def _battery_input(case, dtype, regime):
    return next(s for r, s in family.get(case.family).battery(case, dtype, None) if r == regime)


def test_a_family_quirk_needs_the_devices_own_op_to_fail_too(monkeypatch):
    quirk = device_quirks.Quirk("cpu", "masked_row", ("float16",), "test quirk", family="attention")
    monkeypatch.setattr(device_quirks, "QUIRKS", (quirk,))
    textbook = cases.get("attention_textbook")  # NaN on a fully masked row, where sdpa gives 0
    sample = _battery_input(textbook, "float16", "masked_row")
    outcome = run(textbook, sample, "cpu", against="reference")
    assert not outcome.ok
    # the real sdpa passes on this device: not excused
    assert device_quirks.explains(textbook, sample, "cpu", outcome) is None
    # a device whose own sdpa does what the textbook form does: excused, with the quirk's note
    monkeypatch.setattr(device_quirks, "_reference_case", lambda name: textbook)
    assert device_quirks.explains(textbook, sample, "cpu", outcome) is quirk
    # ... but not for another family's row, regime or dtype
    monkeypatch.setattr(device_quirks, "QUIRKS", (device_quirks.Quirk("cpu", "masked_row", ("float16",), "x"),))
    assert device_quirks.explains(textbook, sample, "cpu", outcome) is None
    monkeypatch.setattr(device_quirks, "QUIRKS", (quirk,))
    other = _battery_input(textbook, "float32", "masked_row")
    assert device_quirks.explains(textbook, other, "cpu", run(textbook, other, "cpu", against="reference")) is None


def test_an_any_regime_row_matches_every_regime_of_its_family_only():
    row = next(q for q in device_quirks.QUIRKS if q.family == "weight_norm" and q.regime == device_quirks.ANY_REGIME)
    assert device_quirks.matching("cuda", "normal", "float64", "weight_norm") == row
    assert device_quirks.matching("cuda", "normal", "float32", "weight_norm") is None
    assert device_quirks.matching("cuda", "normal", "float64", "attention") is None
    assert device_quirks.matching("cpu", "normal", "float64", "weight_norm") is None
