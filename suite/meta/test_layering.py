"""The layering contract: opcompat (the library floor) <- cases <- matrix (the CLI); nothing imports suite.

The contract itself is data in pyproject.toml ([tool.importlinter]); import-linter checks it. These tests
run it on the real tree, show that it fails on a planted violation, and forbid function-local imports
of project modules outside the tests (they used to hide import cycles).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.meta

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("opcompat", "cases", "matrix", "suite")
LIBRARY_AND_CLIENTS = ("opcompat", "cases", "matrix")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def local_project_imports(source: str, filename: str = "<string>") -> list:
    """'file:line: module' for every import of a project module inside a function body."""
    found = []
    for fn in ast.walk(ast.parse(source, filename)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            found += [f"{filename}:{node.lineno}: {n}" for n in names
                      if n.startswith(".") or n.split(".")[0] in PROJECT]
    return found


def _copy_tree(dst: Path) -> Path:
    for name in (*LIBRARY_AND_CLIENTS, "suite"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "fixtures", "*.json",
                                                                                "*.svg", "*.md"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_tree_keeps_the_contract():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(("where", "planted", "contract"), [
    ("opcompat/vocab.py", "import matrix.build\n", "layers: matrix on cases on opcompat"),
    ("opcompat/compare.py", "import cases\n", "layers: matrix on cases on opcompat"),
    ("matrix/build.py", "import suite.meta\n", "nothing outside the tests imports the test folder"),
])
def test_a_planted_violation_breaks_the_contract(tmp_path, where, planted, contract):
    tree = _copy_tree(tmp_path)
    target = tree / where
    target.write_text(target.read_text() + planted)  # at the end: after any __future__ import
    run = lint_imports(tree)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{contract} BROKEN" in run.stdout, run.stdout


def test_no_function_local_imports_of_project_modules():
    found = []
    for package in LIBRARY_AND_CLIENTS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "fixtures" not in path.parts:
                found += local_project_imports(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, "function-local imports of project modules (import at the top instead):\n" + "\n".join(found)


def test_the_local_import_check_can_fail():
    planted = "def f():\n    from opcompat import compare\n    import json\n    from . import vocab\n"
    assert local_project_imports(planted, "x.py") == ["x.py:2: opcompat", "x.py:4: ."]
