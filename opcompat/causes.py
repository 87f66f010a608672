"""Causes any family can name from its failures: errors, shapes, dtypes, NaN/inf patterns, overflow.

A failure is ``(regime, input, outcome)``. A family adds its own causes (std_mean: wrong correction,
epsilon bias, cancellation, wrong dims; isin: shape; cumsum: integer overflow) on top of these.
"""

from __future__ import annotations


def add(causes: list, text: str) -> None:
    """Append ``text`` once."""
    if text and text not in causes:
        causes.append(text)


def errors(failures) -> list:
    """The call raised: the first message, as the verdict's only cause (nothing else was computed)."""
    found = [m for _, _, o in failures for m in o.mismatches if m.kind == "error"]
    return [f"error: {found[0].message}"] if found else []


def basic(mismatch, regime) -> str:
    """The cause one mismatch shows by itself, or '' (a plain value mismatch)."""
    if mismatch.kind == "nonfinite":
        grew = " got +inf" in mismatch.message or " got -inf" in mismatch.message
        return f"overflow ({mismatch.output}, {regime})" if grew else f"NaN/inf pattern ({mismatch.output}, {regime})"
    if mismatch.kind in ("shape", "dtype"):
        return f"{mismatch.kind}: {mismatch.message}"
    return ""


def generic(case, failures, device) -> list:
    """Causes of a family with nothing more to say: errors, shapes, dtypes, non-finite patterns, and
    which regimes a plain value mismatch showed up in."""
    found = errors(failures)
    if found:
        return found
    causes, unnamed = [], set()
    for regime, _, outcome in failures:
        named = [basic(m, regime) for m in outcome.mismatches]
        for text in named:
            add(causes, text)
        if not any(named):
            unnamed.add(regime)
    if unnamed:
        causes.append(f"value mismatch ({', '.join(sorted(unnamed))})")
    return causes
