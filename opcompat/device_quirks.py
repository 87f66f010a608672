"""Behaviour of a device's own ``torch.std_mean`` that differs from the CPU, kept as data.

A decomposition is not blamed for what the fused op does on the same device: a failure counts as a
quirk only when (1) a row below matches the device type, the input regime and the dtype, and (2) the
device's ``torch.std_mean`` fails the very same input too. Should a torch release stop showing the
behaviour, condition (2) no longer holds and the failure counts again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .compare import evaluate, pin, reference_target
from .reference import FUSED


@dataclass(frozen=True)
class Quirk:
    device_type: str
    regime: str
    dtypes: tuple
    note: str  # what a verdict cell says


QUIRKS = (
    # Measured on an H200 with torch 2.11 (matrix/results/measured-cuda-*): std_mean returns 0 for
    # float32/bfloat16 spreads around 1e-38, as the CUDA reduction kernels flush subnormals to zero.
    Quirk("cuda", "subnormal", ("float32", "bfloat16"), "cuda flushes subnormal spreads to 0, std_mean too"),
    # Seen on the same H200: var_mean's mean is NaN for a slice holding +inf (torch.mean says inf): the
    # Welford update computes inf - inf. The CPU's std_mean does the same in some layouts.
    Quirk("cuda", "nonfinite", ("float32", "float16", "bfloat16", "float64"),
          "cuda's Welford mean is NaN next to +-inf, std_mean too"),
)


def matching(device, regime: str, dtype: str):
    kind = torch.device(device).type
    for quirk in QUIRKS:
        if quirk.device_type == kind and quirk.regime == regime and dtype in quirk.dtypes:
            return quirk
    return None


def explains(case, sample, device, outcome):
    """The quirk that explains ``outcome`` (a failure of ``case`` on ``sample``), or None.

    The device's ``torch.std_mean`` is judged against the caller's reference (never a case's own
    claim) and must fail the same input in the same way: every (output, kind) of the case's
    mismatches must be among its own.
    """
    if case.family != "std_mean":  # the rows below are std_mean's; other families have none yet
        return None
    sample = pin(case, sample)  # the fused op is called as the case's caller calls it
    quirk = matching(device, sample.regime, sample.dtype)
    if quirk is None or case.outputs == ("decision",):
        return None
    if case.name == "fused" and torch.device(device).type == "cpu":
        return None
    fused = evaluate(FUSED, sample, device, target=reference_target(case, sample))
    if fused.ok:
        return None
    shared = {(m.output, m.kind) for m in fused.mismatches}
    if not {(m.output, m.kind) for m in outcome.mismatches} <= shared:
        return None
    return quirk
