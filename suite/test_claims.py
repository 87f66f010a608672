"""Every case must compute what it claims, on the device under test, for every input in its domain.

A case that claims equivalence and is wrong fails here with hypothesis' shrunk counterexample, the
comparison report, and a runnable repro.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given

import cases
from cases import REGIMES
from opcompat import device_quirks
from opcompat.compare import evaluate, max_kappa, min_slice_variance, pin
from opcompat.devices import supports_fractional_correction
from opcompat.strategies import samples
from opcompat.tolerances import SMALLEST_NORMAL

CASES, PROBLEMS = cases.all_cases()


def test_case_files_load():
    """A case file that fails to import or declares nonsense fails the run, by name."""
    assert not PROBLEMS, "case files with problems:\n" + "\n".join(f"  {p}" for p in PROBLEMS)


@pytest.mark.claims
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_claim(case, device, device_dtypes):
    domain = [r for r in REGIMES if r not in case.claim.excludes]
    dtypes = [d for d in device_dtypes if d not in case.claim.excludes]
    if not dtypes:
        pytest.skip(f"{case.name} claims nothing for the dtypes {device} has ({', '.join(device_dtypes)})")
    strategy = samples(dtypes=dtypes, regimes=domain, ndim=case.ndim,
                       fractional_correction=supports_fractional_correction(),
                       exclude_layouts=case.claim.excludes)

    @given(sample=strategy)
    def claim_holds(sample):
        __tracebackhide__ = True
        pinned = pin(case, sample)  # as the call site calls it: its pinned dim/keepdim/correction
        if case.claim.max_kappa is not None or "subnormal" in case.claim.excludes:
            x64 = pinned.build("cpu").double()
        if case.claim.max_kappa is not None:
            assume(max_kappa(x64, pinned.dim) <= case.claim.max_kappa)
        if "subnormal" in case.claim.excludes:
            # the regime is a property of the data: any slice whose squared deviations are subnormal
            assume(min_slice_variance(x64, pinned.dim) >= SMALLEST_NORMAL[sample.torch_dtype])
        outcome = evaluate(case, sample, device)
        if not outcome.ok and not device_quirks.explains(case, sample, device, outcome):
            message = f"claim broken: {case.claim.describe()}\n{outcome.report()}"
            repro = "repro:\n" + pinned.repro(case.name, str(device))
            if not hasattr(AssertionError, "add_note"):  # Python < 3.11 (torch 1.13 runs on 3.10)
                raise AssertionError(f"{message}\n{repro}")
            error = AssertionError(message)
            error.add_note(repro)
            raise error

    claim_holds()
