"""From what a probe child saw to a status: one op row or one case row per item.

The statuses (opcompat.vocab.OP_STATUSES):

- ``native``: ran on the device, no CPU fallback, same result as the CPU (loose, per-dtype tolerance);
- ``fallback``: ran through PyTorch's CPU fallback (MPS only);
- ``not_implemented``: the device has no kernel and no fallback ran;
- ``wrong_result``: ran, but differs from the CPU;
- ``unsupported_dtype``: the device refuses the dtype (MPS has no float64; a CPU kernel without Half);
- ``error``: anything else raised (the message is kept);
- ``crashed`` / ``timeout``: the child died or hung on this item.

The same code reads real and simulated MPS: the simulated backend prints the real backend's texts.
"""

from __future__ import annotations

from opcompat.records import CaseRow, Observation, OpRow
from opcompat.vocab import FALLBACK_ENV, FALLBACK_WARNING, MPS_NOT_IMPLEMENTED, NO_KERNEL, UNSUPPORTED_DTYPE, display

MESSAGE_LIMIT = 300  # a row keeps this much of a message; the evidence lines a bit less each
EVIDENCE_LIMIT = 200


def short(text, limit=MESSAGE_LIMIT):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fallback_op(seen: Observation):
    """The op named by a CPU-fallback warning the item raised, or None."""
    for text in seen.warnings:
        m = FALLBACK_WARNING.search(text)
        if m:
            return display(m.group(1))
    return None


def classify(seen: Observation):
    """(status, message, op named by the backend or None) for one child observation."""
    if seen.outcome in ("crashed", "timeout"):
        return seen.outcome, seen.message, None
    fell_back = fallback_op(seen)
    if seen.outcome == "raised":
        text = f"{seen.error_type or 'Exception'}: {seen.message}"
        m = MPS_NOT_IMPLEMENTED.search(text)
        if m:
            return "not_implemented", text, display(m.group(1))
        if UNSUPPORTED_DTYPE.search(text):
            return "unsupported_dtype", text, None
        m = NO_KERNEL.search(text)
        if m and seen.error_type == "NotImplementedError":
            return "not_implemented", text, display(m.group(1))
        return "error", text, fell_back
    if seen.mismatch:
        prefix = f"fell back to the CPU ({fell_back}) and " if fell_back else ""
        return "wrong_result", prefix + "differs from the CPU: " + seen.mismatch, fell_back
    if fell_back:
        warning = next(w for w in seen.warnings if FALLBACK_WARNING.search(w))
        return "fallback", warning, fell_back
    return "native", "", None


def pass_labels(device: str, is_mps: bool) -> dict:
    """{fallback set?: how the evidence names the pass}."""
    if not is_mps:
        return {False: f"on {device}", True: f"on {device}"}
    return {False: f"without {FALLBACK_ENV}", True: f"with {FALLBACK_ENV}=1"}


def _evidence(label, seen):
    status, message, _ = classify(seen)
    head = f"{label}: " if label else ""
    return f"{head}{status}" + (f" ({short(message, EVIDENCE_LIMIT)})" if message else "")


def op_row(op, dtype, first: Observation, second, labels, first_fallback) -> OpRow:
    """The op's row from its first pass and, on MPS, its second pass with the fallback variable set."""
    status, message, _ = classify(first)
    evidence = [_evidence(labels[first_fallback], first)]
    if second is not None:
        evidence.append(_evidence(labels[True], second))
        again, again_message, _ = classify(second)
        if again == "native":  # ran once the variable was set: the CPU fallback ran (its warning already spent)
            status = "fallback"
        elif again in ("fallback", "wrong_result", "error", "crashed", "timeout"):
            status, message = again, again_message
    return OpRow(op, dtype, status, short(message), evidence)


def case_row(case, dtype, first: Observation, second, op_status: dict) -> CaseRow:
    """Whether the case ran on the device, and the ops that fell back (by their own op rows)."""
    status, message, named = classify(first)
    runs = status == "native"
    message = "" if runs else f"{status}: {message}"
    if second is not None:
        again, again_message, again_named = classify(second)
        named = named or again_named
        message = (f"runs only with {FALLBACK_ENV}=1 (CPU fallback)" if again in ("native", "fallback")
                   else f"{again}: {again_message}")
    # The ops the case reached on the device, each at the dtype it ran at (an upcast runs float32 ops).
    reached = [tuple(r) for r in (second or first).ops_reached]
    fell_back = sorted({o for o, d in reached if op_status.get((o, d)) in ("fallback", "not_implemented")}
                       | ({named} if named else set()))
    return CaseRow(case, dtype, runs, fell_back, short(message))
