"""The reference a std_mean case is judged against: ``torch.std_mean`` itself, as a case.

The library needs it without the case folder (device quirks run the device's own fused op on the
input a case failed); ``cases/std_mean.py`` lists the same record, so it is tested like any case.
It is defined with its family (``opcompat.families.std_mean``) and re-exported here.
"""

from __future__ import annotations

from .families.std_mean import FUSED, STD_MEAN_CALL, fused

__all__ = ["FUSED", "STD_MEAN_CALL", "fused"]
