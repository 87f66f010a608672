"""The three call sites in the Fooocus troubleshooting advice (shared/user-docs), with their real
signatures, and the replacements the advice proposes for each.

The advice says the replacements are "mathematically equivalent". The claims below say what each one
actually computes; the verdict table says whether that equals the original call.
"""

from __future__ import annotations

import torch

from . import SQUARING, Case, Claim

SITE_DIMS = (1, 2, 3)


# -- 1. anisotropic.py, adaptive_anisotropic_filter: s, m = torch.std_mean(g, dim=(1, 2, 3), keepdim=True)
ANISO = "torch.std_mean(g, dim=(1, 2, 3), keepdim=True)"
ANISO_FIXED = {"dim": SITE_DIMS, "keepdim": True, "correction": 1}


def aniso_std_and_mean(g, **_):
    s = torch.std(g, dim=SITE_DIMS, keepdim=True)
    m = torch.mean(g, dim=SITE_DIMS, keepdim=True)
    return s, m


def aniso_manual_eps(g, **_):
    m = torch.mean(g, dim=SITE_DIMS, keepdim=True)
    var = torch.mean((g - m) ** 2, dim=SITE_DIMS, keepdim=True)
    s = torch.sqrt(var + 1e-5)
    return s, m


# -- 2. external_model_advanced.py, RescaleCFG: ro_pos = torch.std(cond, dim=(1, 2, 3), keepdim=True),
#       and the same for x_cfg. Each call is one case; the rescale uses only ro_pos / ro_cfg.
RESCALE = "torch.std(x, dim=(1, 2, 3), keepdim=True)"


def rescale_manual(x, **_):
    mean = torch.mean(x, dim=SITE_DIMS, keepdim=True)
    var = torch.mean((x - mean) ** 2, dim=SITE_DIMS, keepdim=True)
    return (torch.sqrt(var),)


# -- 3. supported_models.py: if torch.std(out, unbiased=False) > 0.09: ...
THRESHOLD = 0.09
GATE = f"torch.std(out, unbiased=False) > {THRESHOLD}"


def gate_manual(out, **_):
    mean_out = torch.mean(out)
    var_out = torch.mean((out - mean_out) ** 2)
    std_out = torch.sqrt(var_out)
    return (std_out > THRESHOLD,)


SOURCE = "Fooocus advice (shared/user-docs, German, M3): "
CASES = [
    Case("aniso_std_and_mean", aniso_std_and_mean, ANISO, Claim(), fixed=ANISO_FIXED, ndim=4,
         source=SOURCE + "anisotropic.py, step-by-step fix: torch.std + torch.mean"),
    Case("aniso_manual_eps", aniso_manual_eps, ANISO, Claim(correction=0, eps=1e-5, excludes=SQUARING),
         fixed=ANISO_FIXED, ndim=4,
         source=SOURCE + "anisotropic.py: m = mean(g); var = mean((g - m) ** 2); s = sqrt(var + 1e-5)"),
    Case("rescale_manual", rescale_manual, RESCALE, Claim(correction=0, excludes=SQUARING),
         fixed=ANISO_FIXED, ndim=4, outputs=("std",),
         source=SOURCE + "external_model_advanced.py RescaleCFG: sqrt(mean((x - mean) ** 2)), twice",
         notes="each std is biased, but RescaleCFG uses ro_pos / ro_cfg, where the factor cancels"),
    Case("gate_manual", gate_manual, GATE, Claim(excludes=SQUARING),
         fixed={"dim": None, "keepdim": False, "correction": 0}, outputs=("decision",), threshold=THRESHOLD,
         source=SOURCE + "supported_models.py: sqrt(mean((out - mean) ** 2)) > 0.09"),
]
