"""Causes for the elementwise-budget families: the generic ones (errors, overflow, NaN/inf patterns,
value mismatches by regime), each followed by what the regime means for the family, so that a verdict
cell says why, not only where."""

from __future__ import annotations

from .. import causes as common


def causes_with_hints(hints, extra=None):
    """``causes(case, failures, device)``: generic causes per mismatch, with ``hints[regime]`` appended,
    then whatever ``extra(case, failures, device)`` names (family-specific checks)."""

    def causes(case, failures, device):
        found = common.errors(failures)
        if found:
            return found
        out = []
        if extra is not None:
            for text in extra(case, failures, device):
                common.add(out, text)
        for regime, _, outcome in failures:
            hint = hints.get(regime, "")
            for m in outcome.mismatches:
                text = common.basic(m, regime) or f"value mismatch ({m.output}, {regime})"
                if hint:
                    text = text[:-1] + f": {hint})"
                common.add(out, text)
        return out

    return causes
