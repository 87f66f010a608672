"""The harness that measured: the git commit of this opcompat, whether it had local changes, and
whether a file is committed (a result file that is must not be silently rewritten).

Verdicts change with the battery, the cases and the comparison engine, so a result file names the commit
and ``dirty``: tracked changes under the folders that make a result, and any *untracked* case file (a new
case in cases/ is discovered and run without ever being committed).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from opcompat.records import HarnessInfo

ROOT = Path(__file__).resolve().parents[1]
# What makes a result: the library, the cases, the command line and the tests it runs. Result files and
# MATRIX.md are outputs, not harness: writing one row must not mark the next one dirty.
HARNESS_PATHS = ("opcompat", "cases", "suite", "matrix", ":(exclude)matrix/results", ":(exclude)matrix/MATRIX.md")
CASES_DIR = "cases"


def git(*args, cwd=ROOT):
    """git's stdout, stripped; None where there is no git or no repository."""
    try:
        done = subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# A copy of the tree without its own git history (a lent GPU machine gets the working tree, and at times a
# stale .git): the person running it names the commit the copy was made from; "dirty" is then unknown.
COMMIT_ENV = "OPCOMPAT_HARNESS_COMMIT"


def harness_info(root=ROOT, environ=os.environ) -> HarnessInfo:
    """The commit at ``root``, and whether its harness differs from it (untracked case files included)."""
    if environ.get(COMMIT_ENV, "").strip():
        return HarnessInfo(environ[COMMIT_ENV].strip(), None)
    commit = git("rev-parse", "HEAD", cwd=root)
    if not commit:
        return HarnessInfo(None, None)
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *HARNESS_PATHS, cwd=root)
    new_cases = git("ls-files", "--others", "--exclude-standard", "--", CASES_DIR, cwd=root)
    if changed is None or new_cases is None:
        return HarnessInfo(commit, None)
    untracked = sorted(line for line in new_cases.splitlines() if line.endswith(".py"))  # case files only
    return HarnessInfo(commit, bool(changed) or bool(untracked), untracked)


def is_committed(path) -> bool:
    """Whether git tracks ``path`` (False where there is no git or no repository)."""
    path = Path(path).resolve()
    return git("ls-files", "--error-unmatch", "--", path.name, cwd=path.parent) is not None
