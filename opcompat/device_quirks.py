"""Behaviour of a device's own op (``torch.std_mean``, or another family's reference op) that differs
from the CPU, kept as data.

A decomposition is not blamed for what the op itself does on the same device: a failure counts as a
quirk only when (1) a row below matches the family, the device type, the input regime and the dtype,
and (2) the device's own op fails the very same input too, in the same outputs and kinds. Should a torch
release stop showing the behaviour, condition (2) no longer holds and the failure counts again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import family
from .compare import evaluate, pin, reference_target, run
from .reference import FUSED
from .registry import EQUIVALENT, Case


@dataclass(frozen=True)
class Quirk:
    device_type: str
    regime: str
    dtypes: tuple
    note: str  # what a verdict cell says
    family: str = "std_mean"


ANY_REGIME = "*"


QUIRKS = (
    # Measured on an H200 with torch 2.11 (matrix/results/measured-cuda-*): std_mean returns 0 for
    # float32/bfloat16 spreads around 1e-38, as the CUDA reduction kernels flush subnormals to zero.
    Quirk("cuda", "subnormal", ("float32", "bfloat16"), "cuda flushes subnormal spreads to 0, std_mean too"),
    # Seen on the same H200: var_mean's mean is NaN for a slice holding +inf (torch.mean says inf): the
    # Welford update computes inf - inf. The CPU's std_mean does the same in some layouts.
    Quirk("cuda", "nonfinite", ("float32", "float16", "bfloat16", "float64"),
          "cuda's Welford mean is NaN next to +-inf, std_mean too"),
    # Measured on an H100 with torch 2.11 (python -m matrix here --device cuda): with every key of a query
    # row masked, CUDA's fused half-precision sdpa averages V where the CPU (and CUDA in float32) gives 0.
    Quirk("cuda", "masked_row", ("float16", "bfloat16"),
          "cuda's sdpa averages V on a fully masked row (CPU: 0), sdpa itself too", family="attention"),
    # Same run: torch._weight_norm on CUDA overflows in the backward for rows of ~1e-20 (g / n^2, as the
    # unfused forms do) and is off by ~2e-8 relative in float64 (float32-level) on every input.
    Quirk("cuda", "tiny", ("float32", "bfloat16"),
          "cuda's fused weight_norm backward overflows for tiny rows too", family="weight_norm"),
    Quirk("cuda", ANY_REGIME, ("float64",),
          "cuda's weight_norm is off by ~2e-8 relative in float64, the op itself too", family="weight_norm"),
)


def matching(device, regime: str, dtype: str, family_name: str = "std_mean"):
    kind = torch.device(device).type
    for quirk in QUIRKS:
        if (quirk.family == family_name and quirk.device_type == kind and quirk.regime in (regime, ANY_REGIME)
                and dtype in quirk.dtypes):
            return quirk
    return None


def _reference_case(family_name: str) -> Case:
    """The family's own op as a case, to run on the device."""
    fam = family.get(family_name)
    return Case(f"{family_name}_op_on_device", fam.reference, replaces=fam.call, claim=EQUIVALENT,
                source="the family's reference op, run on the device", family=family_name)


def _family_quirk(case, sample, device, outcome):
    quirk = matching(device, sample.regime, sample.dtype, case.family)
    if quirk is None:
        return None
    own = run(_reference_case(case.family), sample, device, against="reference")
    return quirk if _fails_alike(own, outcome) else None


def _fails_alike(own, outcome) -> bool:
    """The device's own op failed too, in every (output, kind) the case failed in."""
    shared = {(m.output, m.kind) for m in own.mismatches}
    return not own.ok and {(m.output, m.kind) for m in outcome.mismatches} <= shared


def explains(case, sample, device, outcome):
    """The quirk that explains ``outcome`` (a failure of ``case`` on ``sample``), or None.

    The device's ``torch.std_mean`` is judged against the caller's reference (never a case's own
    claim) and must fail the same input in the same way: every (output, kind) of the case's
    mismatches must be among its own.
    """
    if case.family != "std_mean":
        return _family_quirk(case, sample, device, outcome)
    sample = pin(case, sample)  # the fused op is called as the case's caller calls it
    quirk = matching(device, sample.regime, sample.dtype)
    if quirk is None or case.outputs == ("decision",):
        return None
    if case.name == "fused" and torch.device(device).type == "cpu":
        return None
    fused = evaluate(FUSED, sample, device, target=reference_target(case, sample))
    return quirk if _fails_alike(fused, outcome) else None
