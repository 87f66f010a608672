"""Helpers for meta tests that plant a wrong case: register it as if it were a file in cases/, run its
claim property, and run the repro its failure prints."""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest
import torch

import cases
from suite.test_claims import claim_property


def register(monkeypatch, wrong_cases):
    """As if each wrong case were a file in cases/: the repro finds it with cases.get."""
    found, problems = cases.all_cases()
    monkeypatch.setattr(cases, "_cache", ([*found, *wrong_cases], problems))


def failure(case, dtypes) -> str:
    """The failure message (with its notes: the repro) of ``case``'s claim property on the CPU."""
    with warnings.catch_warnings(), pytest.raises(AssertionError) as info:
        warnings.simplefilter("ignore")
        claim_property(case, torch.device("cpu"), dtypes)()
    error = info.value
    return str(error) + "\n" + "\n".join(getattr(error, "__notes__", []))


def run_repro(text: str) -> str:
    """Run the repro printed in a failure message; return what it prints."""
    source = text.split("repro:\n", 1)[1].split("\nFailing test case", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, "<repro>", "exec"), {})
    return out.getvalue()
