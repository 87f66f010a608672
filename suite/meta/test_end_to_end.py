"""The suite as a user meets it: a new case file is picked up and judged; a bad --device is refused.

Each test runs pytest in a subprocess on a copy of the project, so nothing is dropped into the real
cases/ folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.meta, pytest.mark.slow]  # slow: each test starts pytest in a subprocess: ~10 s apiece

WRONG = """
    import torch
    from cases import Case, Claim

    def biased(x, *, dim, correction, keepdim):  # ignores the caller's correction
        return torch.std_mean(x, dim=dim, correction=0, keepdim=keepdim)

    CASES = [Case("my_biased", biased, "torch.std_mean", Claim(), source="a forum post")]
"""
RIGHT = """
    import torch
    from cases import Case, Claim
    from opcompat.forms import mean

    def via_var(x, *, dim, correction, keepdim):  # var in float64: no float16 overflow, no underflow
        var = torch.var(x.double(), dim=dim, correction=correction, keepdim=keepdim)
        return torch.sqrt(var).to(x.dtype), mean(x, dim, keepdim)

    CASES = [Case("my_via_var", via_var, "torch.std_mean", Claim(), source="a forum post")]
"""


def _project_copy(tmp_path):
    for name in ("opcompat", "cases", "suite", "conftest.py", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "meta"))
        else:
            shutil.copy(src, tmp_path / name)
    return tmp_path


def _pytest(cwd, *args):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.meta
def test_wrong_case_file_fails_with_shrunk_counterexample(tmp_path):
    project = _project_copy(tmp_path)
    (project / "cases" / "my_wrong.py").write_text(textwrap.dedent(WRONG))
    run = _pytest(project, "suite/test_claims.py", "-k", "my_biased", "--hypothesis-profile=dev", "--hypothesis-seed=0")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "claim broken: std_mean at the caller's correction" in out
    assert "Falsifying example" in out or "Failing test case" in out  # wording of hypothesis < / >= 6.1xx
    assert "repro:" in out and "cases.get('my_biased')" in out
    assert "1 failed" in out


@pytest.mark.meta
def test_right_case_file_passes(tmp_path):
    project = _project_copy(tmp_path)
    (project / "cases" / "my_right.py").write_text(textwrap.dedent(RIGHT))
    run = _pytest(project, "suite/test_claims.py", "-k", "my_via_var or case_files_load",
                  "--hypothesis-profile=dev", "--hypothesis-seed=0")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 passed" in out


@pytest.mark.meta
def test_broken_case_file_fails_the_run_by_name(tmp_path):
    project = _project_copy(tmp_path)
    (project / "cases" / "my_broken.py").write_text("import torch\nraise RuntimeError('half-written')\n")
    run = _pytest(project, "suite/test_claims.py", "-k", "case_files_load")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "cases/my_broken.py: failed to import: RuntimeError: half-written (line 2)" in out


@pytest.mark.meta
def test_pytest_device_mps_without_mps_is_a_usage_error():
    import torch

    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    run = _pytest(ROOT, "--device", "mps", "suite/test_bad_input.py")
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage-error exit code
    assert "--device mps: MPS is" in run.stderr
    assert "passed" not in run.stdout
