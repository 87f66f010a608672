"""Fixtures shared by the meta tests."""

from __future__ import annotations

import pytest

from matrix.predict import wheels


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """$OPCOMPAT_CACHE in tmp_path; the installed torch is never used; pip must not run."""
    monkeypatch.setenv("OPCOMPAT_CACHE", str(tmp_path))
    monkeypatch.setattr(wheels, "installed_origin", lambda version, directory: None)

    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip ran: {args}")

    monkeypatch.setattr(wheels.subprocess, "run", no_pip)
    return tmp_path / "wheels"
