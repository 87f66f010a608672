"""The reference a std_mean case is judged against: ``torch.std_mean`` itself, as a case.

The library needs it without the case folder (device quirks run the device's own fused op on the
input a case failed); ``cases/std_mean.py`` lists the same record, so it is tested like any case.
"""

from __future__ import annotations

import torch

from .registry import EQUIVALENT, Case

STD_MEAN_CALL = "torch.std_mean(x, dim, correction=c, keepdim)"


def fused(x, *, dim, correction, keepdim):
    return torch.std_mean(x, dim=dim, correction=correction, keepdim=keepdim)


FUSED = Case("fused", fused, STD_MEAN_CALL, EQUIVALENT,
             source="torch.std_mean itself: the reference, run on the device",
             notes="the op whose MPS fallback started it all")
