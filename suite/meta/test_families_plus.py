"""The attention, upsample, grid_sample and weight_norm families can fail: a wrong replacement dropped
into cases/ fails its claim with a shrunk counterexample and a repro that runs; the batch-vs-loop property
catches a case that mixes samples; budgets are derived, not loose (a 1e-3 relative error fails float32).
The two planted failures whose shrinking costs seconds (bottom-right causal, detached grid weights) run
with ``-m slow``."""

from __future__ import annotations

import math

import pytest
import torch

import cases
from cases import Case, Claim
from cases.grid_sample import gather_bilinear
from opcompat import family
from opcompat.compare import run
from opcompat.families import attention, grid_sample, upsample
from opcompat.families._grads import with_grads
from suite.meta import planted
from suite.test_families_batching import batch_mismatches

pytestmark = pytest.mark.meta


def _bottom_right_causal(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    """flash-attn >= 2.1's causal convention (query i sees keys up to i + Lk - Lq), not sdpa's top-left."""
    if is_causal:
        lq, lk = q.shape[-2], k.shape[-2]
        attn_mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(diagonal=lk - lq)
    return attention.sdpa(q, k, v, attn_mask=attn_mask, scale=scale)


def _detached_grid(input, grid, *, padding_mode, align_corners):
    """Right values, but the sampling weights are cut from the graph: no gradient reaches the grid."""
    return gather_bilinear(input, grid.detach(), padding_mode=padding_mode, align_corners=align_corners)


def _first_key_for_all(q, k, v, **kw):
    """Uses sample 0's keys for every sample of the batch: right only for a batch of one."""
    return attention.sdpa(q, k[:1].expand_as(k), v, **kw)


WRONG = {
    # the textbook form claiming fully masked rows (drawn alone, so the search is short)
    "attention": Case("wrong_attention_textbook", cases.get("attention_textbook").fn, attention.CALL,
                      Claim(excludes=frozenset({"normal", "peaked", "large_logits"})), family="attention",
                      source="test: the textbook form, claiming fully masked rows"),
    "causal": Case("wrong_attention_causal", _bottom_right_causal, attention.CALL, Claim(), family="attention",
                   source="test: bottom-right causal alignment"),
    # (the planted claims below leave out regimes that only slow the search down)
    "upsample": Case("wrong_bicubic_bilinear", cases.get("bicubic_as_bilinear").fn, upsample.CALL,
                     Claim(excludes=frozenset({"near_overflow", "nonfinite"})), family="upsample",
                     source="test: bilinear claiming to be bicubic"),
    "grid_sample": Case("wrong_grid_detached", with_grads(_detached_grid), grid_sample.CALL,
                        Claim(excludes=frozenset({"outside", "aligned"})), family="grid_sample",
                        fixed={"padding_mode": "zeros", "align_corners": False},
                        source="test: weights detached from the grid"),
    "weight_norm": Case("wrong_weight_norm_squares", cases.get("weight_norm_sum_of_squares").fn, "w", Claim(),
                        family="weight_norm", source="test: sum of squares in the dtype, claiming everything"),
    "batch": Case("wrong_batch_attention", _first_key_for_all, attention.CALL, Claim(), family="attention",
                  source="test: mixes samples"),
}


@pytest.fixture(autouse=True)
def _wrong_cases_are_registered(monkeypatch):
    planted.register(monkeypatch, WRONG.values())


def test_textbook_attention_fails_on_a_fully_masked_row():
    text = planted.failure(WRONG["attention"], ["float32"])
    assert "claim broken: attention exactly as the op" in text and "[masked_row]" in text, text
    assert "non-finite pattern differs" in text and "got nan" in text, text  # sdpa: 0 there
    lq, lk = (int(s) for s in text.split("attn_mask=Tensor[size=(", 1)[1].split(")", 1)[0].split(", ")[-2:])
    assert lq * lk <= 4, text  # shrunk to a mask of a few entries
    assert planted.run_repro(text).count("tensor(") >= 2


def test_textbook_attention_overflows_float16_with_large_logits():
    call = attention.make_call(dtype="float16", regime="large_logits", b=1, h=1, lq=4, lk=4, d=16, dv=4, seed=2)
    outcome = run(cases.get("attention_textbook"), call)
    assert [m.kind for m in outcome.mismatches] == ["nonfinite"], outcome.report()
    assert run(cases.get("attention_prescaled_safe"), call).ok  # scaling q first keeps q·k/√d in range


@pytest.mark.slow  # ~300 shrink steps of attention calls: 2-3 s on a 2-core box
def test_bottom_right_causal_mask_is_found_with_unequal_lengths():
    text = planted.failure(WRONG["causal"], ["float32"])
    assert "is_causal=True" in text, text
    q_shape, k_shape = (tuple(int(s) for s in part.split("size=(", 1)[1].split(")", 1)[0].split(", "))
                        for part in text.split("input: (", 1)[1].split("Tensor[")[1:3])
    assert q_shape[-2] != k_shape[-2], text  # Lq != Lk: the only place the conventions differ
    assert q_shape[-2] + k_shape[-2] <= 6, text  # shrunk
    planted.run_repro(text)


def test_bilinear_for_bicubic_fails_shrunk_with_a_repro():
    text = planted.failure(WRONG["upsample"], ["float32"])
    assert "claim broken: upsample exactly as the op" in text and "Mismatched elements" in text
    size = text.split("input: (Tensor[size=", 1)[1].split("]", 1)[0]
    h, w = (int(s) for s in size.split(")")[0].strip("(").split(", ")[-2:])
    assert h * w <= 9, text  # a tiny image shows it
    assert planted.run_repro(text).count("tensor(") >= 2


@pytest.mark.slow  # ~300 shrink steps, each with three autograd passes: 3-4 s on a 2-core box
def test_detached_grid_weights_fail_on_the_grid_gradient_only():
    text = planted.failure(WRONG["grid_sample"], ["float32"])
    assert "grad_grid:" in text and "\n  out:" not in text and "grad_input:" not in text, text
    planted.run_repro(text)


def test_sum_of_squares_weight_norm_fails_where_the_squares_leave_the_range():
    text = planted.failure(WRONG["weight_norm"], ["float16"])
    assert "[large]" in text or "[tiny]" in text, text
    planted.run_repro(text)


def test_batch_property_catches_a_case_that_mixes_samples():
    call = attention.make_call(dtype="float32", b=2, h=1, lq=3, lk=3, d=4, dv=4, seed=1)
    bad = batch_mismatches(WRONG["batch"], call, torch.device("cpu"))
    assert [i for i, _ in bad] == [1], bad  # sample 0 is right, sample 1 used sample 0's keys
    assert batch_mismatches(cases.get("sdpa"), call, torch.device("cpu")) == []


@pytest.mark.parametrize("family_name", ["attention", "upsample", "grid_sample", "weight_norm"])
def test_a_relative_error_of_1e_3_fails_float32(family_name):
    """The budgets are error analysis at u = 2^-24, not a loose rtol: 1e-3 off must fail."""
    source = {"attention": "sdpa", "upsample": "bicubic", "grid_sample": "grid_sample", "weight_norm": "weight_norm"}
    ref = cases.get(source[family_name])

    def off(*args, **kw):
        return tuple(o * (1 + 1e-3) for o in ref.fn(*args, **kw))

    wrong = Case("off_by_1e_3", off, "test", Claim(), family=family_name, source="test")
    normal = [call for regime, call in family.get(family_name).battery(None, "float32") if regime == "normal"][:3]
    assert all(run(ref, call).ok for call in normal), family_name
    assert all(not run(wrong, call).ok for call in normal), family_name


def test_budget_grows_with_logit_size():
    """A logit error of u |S| moves the softmax by that much: the budget grows with max |S|."""
    q = torch.randn(1, 1, 2, 8, dtype=torch.float64)
    small = attention.stats(q, q, q)[1].max()
    large = attention.stats(q * 30, q * 30, q)[1].max()
    assert large > 100 * small and math.isfinite(float(large))
