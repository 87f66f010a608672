"""Long sequences and large images (``-m slow``): attention's reductions over thousands of keys are
where slicing and chunking change the summation order, and where float16 accumulation would show."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings

import cases
from opcompat import family
from opcompat.compare import run
from opcompat.families import attention, upsample

pytestmark = pytest.mark.slow

ATTENTION_CASES = [c for c in cases.all_cases()[0] if c.family == "attention"]


@pytest.mark.parametrize("case", ATTENTION_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_attention_over_4096_keys(case, dtype, device, device_dtypes):
    if dtype not in device_dtypes:
        pytest.skip(f"{dtype} is not supported on {device}")
    for mask in ("none", "causal", "additive"):
        call = attention.make_call(dtype=dtype, mask=mask, b=1, h=2, lq=128, lk=4096, d=64, dv=64, seed=11)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = run(case, call, device)
        assert outcome.ok, outcome.report()


@pytest.mark.parametrize("case", ATTENTION_CASES, ids=lambda c: c.name)
def test_attention_claims_at_long_lengths(case, device, device_dtypes):
    """The claim property over sequences up to 1024 keys (the default run draws up to 16)."""
    fam = family.get(case.family)
    dtypes = [d for d in fam.dtypes if d in device_dtypes and d not in case.claim.excludes]
    regimes = [r for r in attention.REGIMES if r not in case.claim.excludes]

    @settings(max_examples=20)
    @given(call=attention.calls(dtypes, regimes, max_len=1024, max_d=64))
    def holds(call):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = run(case, call, device)
        assert outcome.ok, outcome.report() + "\nrepro:\n" + call.repro(case.name, str(device))

    holds()


@pytest.mark.parametrize("name", ["bicubic_manual", "bicubic_cpu_round_trip"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_bicubic_at_a_latent_and_an_image_size(name, dtype, device, device_dtypes):
    if dtype not in device_dtypes:
        pytest.skip(f"{dtype} is not supported on {device}")
    for shape, size in (((1, 4, 64, 64), (512, 512)), ((1, 3, 512, 512), (384, 200))):
        call = upsample.make_call(dtype=dtype, n=shape[0], c=shape[1], h=shape[2], w=shape[3], out_h=size[0],
                                  out_w=size[1], seed=3)
        outcome = run(cases.get(name), call, device)
        assert outcome.ok, outcome.report()
