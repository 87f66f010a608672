"""Batch vs loop: a registered case applied to a batch equals the same case applied to each sample in
turn, on the device under test (diffusers' MPS page: batched generation "may crash or be unreliable;
iterate instead").

For every case whose family declares a batch axis (``Family.extra["batch"]``: the family's
``split(args, kwargs, i)``), hypothesis draws a batched call from the case's claim domain; sample i of
the batched result is judged by the one engine (``compare.close``, through the family's elementwise
budget) against float64 truth, with the per-sample loop as the reference: it passes within budget, or
no more than k_ref times the loop's own error. A failure names the sample and gives a runnable repro.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import assume, given, settings

import cases
from opcompat import family
from opcompat.compare import Outcome, _call_case
from opcompat.families._bounded import compare_outputs, inputs64, outputs

# The per-sample cases (cases/batching.py) are loops by construction: nothing to compare them with.
CASES = [c for c in cases.all_cases()[0] if "batch" in family.get(c.family).extra and c.module != "cases/batching.py"]
# Families without a batch axis, and why: a new family must say which it is.
NO_BATCH_AXIS = {
    "weight_norm": "a weight has no batch axis",
    "std_mean": "a batch axis exists only where dim leaves axis 0 alone (its call sites); not declared yet",
    "isin": "elements have no batch semantics (test_elements is shared); not declared yet",
    "cumsum": "not declared yet",
}
# A batch example runs the case B + 1 times and the op at two dtypes per sample: a twentieth of the profile.
EXAMPLES_SHARE = 0.05


def test_every_family_says_whether_it_has_a_batch_axis():
    undecided = [n for n in family.known() if "batch" not in family.get(n).extra and n not in NO_BATCH_AXIS]
    assert not undecided, f"families that neither declare extra['batch'] nor appear in NO_BATCH_AXIS: {undecided}"
    both = [n for n in NO_BATCH_AXIS if n in family.known() and "batch" in family.get(n).extra]
    assert not both, f"families listed as having no batch axis but declaring one: {both}"


def batch_mismatches(case, call, device):
    """[(sample index, Outcome)] where the batched call's sample differs from the loop's, on ``device``."""
    fam = family.get(case.family)
    split = fam.extra["batch"]
    names = case.outputs or fam.outputs
    args, kwargs = call.build(device)
    batched = Outcome(case, call, str(device), None)
    if not _call_case(batched, lambda: case.fn(*args, **kwargs), device):
        return [(None, batched)]
    cpu_args, cpu_kwargs = call.build("cpu")
    bad = []
    for i in range(args[0].shape[0]):
        dev_i, dev_kw = split(args, kwargs, i)
        loop = Outcome(case, call, str(device), None, note=f"sample {i} alone")
        if not _call_case(loop, lambda a=dev_i, k=dev_kw: case.fn(*a, **k), device):
            bad.append((i, loop))
            continue
        a64, kw64 = inputs64(*split(cpu_args, cpu_kwargs, i))
        truth = outputs(fam.truth(*a64, **kw64) if fam.truth else fam.reference(*a64, **kw64))
        got = [o[i:i + 1] for o in batched.actual]
        # the loop's outputs in the reference slot: the batch must be as good as iterating
        ref = tuple(loop.actual[names.index(n)] if n in names else truth[j] for j, n in enumerate(fam.outputs))
        out = Outcome(case, call, str(device), None, note=f"sample {i} of the batch vs sample {i} alone")
        out.mismatches = compare_outputs(fam, names, got, ref, truth, call.torch_dtype, (a64, kw64))
        if out.mismatches:
            bad.append((i, out))
    return bad


@pytest.mark.claims
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_batch_equals_loop(case, device, device_dtypes):
    fam = family.get(case.family)
    dtypes = [d for d in fam.dtypes if d not in case.claim.excludes and d in device_dtypes]
    if not dtypes:
        pytest.skip(f"{case.name} claims nothing for the dtypes {device} has ({', '.join(device_dtypes)})")

    @settings(max_examples=max(1, round(settings().max_examples * EXAMPLES_SHARE)))
    @given(call=fam.samples(case, dtypes))
    def batch_is_loop(call):
        __tracebackhide__ = True
        args, _ = call.build("cpu")
        assume(args[0].shape[0] >= 2)
        if fam.in_claim is not None:
            assume(fam.in_claim(case, call))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bad = batch_mismatches(case, call, device)
        if bad:
            i, outcome = bad[0]
            where = "the batched call failed" if i is None else f"sample {i}: batch != loop"
            raise AssertionError(f"{where}\n{outcome.report()}\nrepro:\n{call.repro(case.name, str(device))}")

    batch_is_loop.hypothesis.inner_test._hypothesis_internal_add_digest = (
        f"opcompat-batch:{case.family}:{case.module}:{case.name}".encode())
    batch_is_loop()
