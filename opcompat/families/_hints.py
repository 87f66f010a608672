"""Causes for the elementwise-budget families: the generic kinds (errors, shapes, overflow, NaN/inf
patterns, value mismatches), one line per kind and regime naming the outputs it hit, followed by what the
regime means for the family, so that a verdict cell says why, not only where."""

from __future__ import annotations

from .. import causes as common


def _kind(m):
    """'overflow', 'NaN/inf pattern' or 'value mismatch' for one mismatch; '' for shape/dtype (said as is)."""
    if m.kind == "nonfinite":
        return "overflow" if (" got +inf" in m.message or " got -inf" in m.message) else "NaN/inf pattern"
    return "value mismatch" if m.kind == "value" else ""


def causes_with_hints(hints, extra=None):
    """``causes(case, failures, device)`` for a family.

    - ``hints``: {regime or (regime, mismatch kind): what it means}, appended to each line;
    - ``extra(case, failures, device) -> [str]``: the family's own checks (another kernel, a wrong
      gradient...); where they name something, plain value mismatches are not listed again.
    """

    def causes(case, failures, device):
        found = common.errors(failures)
        if found:
            return found
        named = list(extra(case, failures, device)) if extra is not None else []
        out, lines = [], {}  # (kind, regime, mismatch kind) -> outputs, in order of appearance
        for text in named:
            common.add(out, text)
        for regime, _, outcome in failures:
            for m in outcome.mismatches:
                kind = _kind(m)
                if not kind:
                    common.add(out, common.basic(m, regime))
                elif not (kind == "value mismatch" and named):
                    outputs = lines.setdefault((kind, regime, m.kind), [])
                    if m.output not in outputs:
                        outputs.append(m.output)
        for (kind, regime, mkind), outputs in lines.items():
            hint = hints.get((regime, mkind)) or hints.get(regime)
            common.add(out, f"{kind} ({', '.join(outputs)}, {regime}" + (f": {hint})" if hint else ")"))
        return out

    return causes
