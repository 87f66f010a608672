"""Every failure ``predict`` raises on purpose: one base class, one subclass per kind of bad input.

Callers catch ``PredictError``; the CLI turns it into a one-line message and a non-zero exit.
"""

from __future__ import annotations


class PredictError(Exception):
    """Base class: str() is a complete, user-facing message naming the thing that is wrong."""


class UnknownVersionError(PredictError, ValueError):
    """Not a torch release this tool knows (e.g. "2.99", "abc")."""


class UnknownDtypeError(PredictError, ValueError):
    """A dtype name that is not a torch dtype (e.g. "float33")."""


class WheelNotFoundError(PredictError):
    """No cached wheel for the release and downloading was switched off."""


class DownloadError(PredictError):
    """``pip download`` of the macOS wheel failed (no network, no such wheel on the index, ...)."""


class CorruptWheelError(PredictError):
    """A cached wheel that is not a valid zip, lacks a member we need, or holds an unparsable member."""
