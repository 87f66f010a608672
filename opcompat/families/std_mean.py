"""The std_mean family: ``torch.std_mean(x, dim, correction=c, keepdim)`` and its replacements.

Truth is float64 std_mean on the CPU; the engine is ``compare.evaluate`` (per-element budgets that know
N, kappa and the slice's magnitude), claims may change the semantics (correction, eps) and narrow
the domain (regimes, max_kappa); verdicts are given per correction and dtype. Causes: see
``opcompat.std_mean_causes``.
"""

from __future__ import annotations

import torch

from .. import compare, witnesses
from ..devices import supports_fractional_correction
from ..family import Family, register
from ..registry import EQUIVALENT, OUTPUTS, PARAMS, Case
from ..std_mean_causes import causes
from ..strategies import samples as draw_samples
from ..tolerances import SMALLEST_NORMAL
from ..vocab import DTYPE_NAMES, REGIMES

STD_MEAN_CALL = "torch.std_mean(x, dim, correction=c, keepdim)"


def fused(x, *, dim, correction, keepdim):
    return torch.std_mean(x, dim=dim, correction=correction, keepdim=keepdim)


def _samples(case, dtypes):
    return draw_samples(dtypes=dtypes, regimes=[r for r in REGIMES if r not in case.claim.excludes],
                        ndim=case.ndim, fractional_correction=supports_fractional_correction(),
                        exclude_layouts=case.claim.excludes)


def _in_claim(case, sample) -> bool:
    """The claim's domain beyond its regimes: kappa, and slices whose squared deviations are subnormal."""
    pinned = compare.pin(case, sample)  # as the call site calls it: its pinned dim/keepdim/correction
    if case.claim.max_kappa is None and "subnormal" not in case.claim.excludes:
        return True
    x64 = pinned.build("cpu").double()
    if case.claim.max_kappa is not None and compare.max_kappa(x64, pinned.dim) > case.claim.max_kappa:
        return False
    # the regime is a property of the data: any slice whose squared deviations are subnormal
    return not ("subnormal" in case.claim.excludes
                and compare.min_slice_variance(x64, pinned.dim) < SMALLEST_NORMAL[sample.torch_dtype])


def _battery(case, dtype, correction):
    return witnesses.battery(dtype, correction, ndim=case.ndim)


def _evaluate(case, sample, device, against="claim"):
    target = compare.reference_target(case, sample) if against == "reference" else None
    return compare.evaluate(case, sample, device, target=target)


FAMILY = register(Family(
    name="std_mean", call=STD_MEAN_CALL, ops=("aten::std_mean.correction",), reference=fused,
    outputs=OUTPUTS, dtypes=DTYPE_NAMES, regimes=REGIMES, samples=_samples, battery=_battery,
    budget="std_mean", causes=causes, evaluate=_evaluate, params=PARAMS, in_claim=_in_claim,
    corrections=True, notes="the op whose MPS fallback started it all"))

FUSED = Case("fused", fused, STD_MEAN_CALL, EQUIVALENT,
             source="torch.std_mean itself: the reference, run on the device",
             notes="the op whose MPS fallback started it all")


__all__ = ["FAMILY", "FUSED", "STD_MEAN_CALL", "fused"]
