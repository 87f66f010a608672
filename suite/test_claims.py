"""Every case must compute what it claims, on the device under test, for every input in its domain,
whatever its op family.

A case that claims equivalence and is wrong fails here with hypothesis' shrunk counterexample, the
comparison report, and a runnable repro. Each case's property has its own hypothesis database key
(``claim_property``), so an example saved for one case is never replayed against another.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings

import cases
from opcompat import device_quirks, family
from opcompat.compare import pinned, run

CASES, PROBLEMS = cases.all_cases()


def test_case_files_load():
    """A case file that fails to import or declares nonsense fails the run, by name."""
    assert not PROBLEMS, "case files with problems:\n" + "\n".join(f"  {p}" for p in PROBLEMS)


def database_key(case) -> bytes:
    """What makes a case's property test its own in hypothesis' example database."""
    return f"opcompat-claim:{case.family}:{case.module}:{case.name}".encode()


def claim_property(case, device, dtypes):
    """The hypothesis test of ``case``'s claim on ``device`` over ``dtypes``: a fresh ``@given`` per case,
    whose digest (hence database key and derandomized seed) includes the case's identity."""
    fam = family.get(case.family)

    @given(sample=fam.samples(case, dtypes))
    def claim_holds(sample):
        __tracebackhide__ = True
        if fam.in_claim is not None:
            assume(fam.in_claim(case, sample))
        outcome = run(case, sample, device)
        if not outcome.ok and not device_quirks.explains(case, sample, device, outcome):
            message = f"claim broken: {case.claim.describe(case.family)}\n{outcome.report()}"
            repro = "repro:\n" + pinned(case, sample).repro(case.name, str(device))
            if not hasattr(AssertionError, "add_note"):  # Python < 3.11 (torch 1.13 runs on 3.10)
                raise AssertionError(f"{message}\n{repro}")
            error = AssertionError(message)
            error.add_note(repro)
            raise error

    # A family whose examples cost more (attention, grid_sample with gradients...) draws a share of the
    # profile's examples (Family.extra["examples_share"]): ci 200 -> 40 at 0.2, thorough 2000 -> 400.
    share = fam.extra.get("examples_share")
    if share is not None:
        claim_holds = settings(max_examples=max(1, round(settings().max_examples * share)))(claim_holds)
    # hypothesis keys its database by the inner test's digest, the same for every case of this
    # nested function; _hypothesis_internal_add_digest is what its pytest plugin sets per parametrization.
    claim_holds.hypothesis.inner_test._hypothesis_internal_add_digest = database_key(case)
    return claim_holds


def claim_dtypes(case, device_dtypes) -> list:
    """The dtypes a case's claim covers on this device: its family's, the device's float ones, minus excluded."""
    fam = family.get(case.family)
    own = [d for d in fam.dtypes if d not in case.claim.excludes]
    return [d for d in own if d in device_dtypes or not d.startswith(("float", "bfloat"))]


@pytest.mark.claims
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_claim(case, device, device_dtypes):
    dtypes = claim_dtypes(case, device_dtypes)
    if not dtypes:
        pytest.skip(f"{case.name} claims nothing for the dtypes {device} has ({', '.join(device_dtypes)})")
    claim_property(case, device, dtypes)()
