"""Pinned verdicts of the attention, upsample, grid_sample and weight_norm families on their fixed
batteries: what each replacement does to the op it stands in for, per dtype, with its cause. If torch or
a case changes so that a verdict moves, this fails and names the row."""

from __future__ import annotations

import warnings

import pytest
import torch

import cases
from opcompat import device_quirks
from opcompat.verdicts import judge

ALL = ("float32", "float16", "bfloat16", "float64")
HALF = ("float32", "float16")  # pinned here; the full table per dtype: python -m matrix verdicts

# (case, dtypes, equivalent?, causes that must be named)
PINNED = [
    # -- attention (diffusers' MPS page: enable_attention_slicing; forum fixes: attention written out)
    ("attention_sliced", ("float16",), True, []),  # slicing batch*heads changes nothing beyond the budget
    ("attention_key_chunked", ("float16",), True, []),  # nor does a running-max online softmax over key chunks
    ("attention_prescaled_safe", ("float16",), True, []),
    ("attention_per_sample", ("float16",), True, []),  # "iterate instead of batching"
    # softmax(QKᵀ/√d)V: q·k overflows float16 before the scale; a fully masked row gives NaN, sdpa 0
    ("attention_textbook", ("float16",), False, ["unscaled logits q·k overflow", "masked_row"]),
    ("attention_textbook", ("float32",), False, ["NaN where sdpa returns 0"]),
    # diffusers' (1 - mask) * -10000 bias: swamped by large logits, and a fully masked row averages V
    ("attention_sliced_diffusers_mask", ("float32",), False, ["swamped", "averages V"]),
    # -- upsample_bicubic2d (falls back to the CPU on MPS up to torch 2.5)
    ("bicubic_cpu_round_trip", ALL, True, []),
    ("bicubic_manual", ALL, True, []),  # A = -0.75, aten's source index (no clamp at 0), border taps
    ("bicubic_per_sample", ("float16",), True, []),
    ("bicubic_as_bilinear", ALL, False, ["different kernel (computes bilinear, not bicubic)"]),
    # -- grid_sample forward and backward (the backward falls back up to torch 2.12)
    ("grid_sample_cpu_round_trip", ("float16",), True, []),
    ("grid_sample_gather", HALF, True, []),
    ("grid_sample_per_sample", ("float16",), True, []),
    # -- weight_norm (falls back up to torch 2.1): unfused forms store the row norm in the dtype
    ("weight_norm_norm_except_dim", ("float16",), False, ["large: a row norm past float16's 65504"]),
    ("weight_norm_vector_norm", ("float16",), False, ["large: a row norm past float16's 65504"]),
    ("weight_norm_sum_of_squares", ("bfloat16",), False, ["squares of the entries underflow"]),
    # ... and their autograd forms g / n^2, which overflows for tiny rows in every dtype
    ("weight_norm_vector_norm", ("float32",), False, ["overflow (grad_v, tiny"]),
]
ROWS = [(name, dtype, eq, causes) for name, dtypes, eq, causes in PINNED for dtype in dtypes]


@pytest.mark.verdict
@pytest.mark.parametrize(("name", "dtype", "equivalent", "causes"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_pinned_family_verdict(name, dtype, equivalent, causes, device, device_dtypes):
    if dtype not in device_dtypes:
        pytest.skip(f"{dtype} is not supported on {device}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = judge(cases.get(name), None, dtype, device)
    own_quirks = {q.note for q in device_quirks.QUIRKS
                  if q.family == verdict.family and q.device_type == torch.device(device).type}
    if not equivalent and verdict.equivalent and verdict.device_notes and set(verdict.device_notes) <= own_quirks:
        # a device whose own op fails the same way (a row of opcompat/device_quirks.py for this family and
        # device) makes the replacement as good as the op there (CUDA's weight_norm on tiny rows, torch 2.11)
        return
    assert verdict.equivalent == equivalent, (
        f"{name} ({dtype}) on {device}: expected {'equivalent' if equivalent else 'NOT equivalent'}, "
        f"got {verdict.cell()}\n{verdict.counterexample}")
    text = "; ".join(verdict.causes)
    missing = [c for c in causes if c not in text]
    assert not missing, f"{name} ({dtype}): causes {missing} not named in {text!r}"


def test_bilinear_counterexample_shows_the_input():
    """The verdict's counterexample is a runnable input: a bicubic and a bilinear resize of it differ."""
    verdict = judge(cases.get("bicubic_as_bilinear"), None, "float32")
    assert "input: (Tensor[size=" in verdict.counterexample and "mode=\"bicubic\"" in verdict.counterexample
    assert "Mismatched elements" in verdict.counterexample
