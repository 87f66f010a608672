"""``python -m matrix here``: one result file per device, never clobbering a committed one, and a
result that says which case files failed to import and whether the harness had local changes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import cases
from matrix import harness, here, results
from matrix import probe as probing
from matrix.__main__ import main as matrix_main
from opcompat import devices, records
from opcompat.discovery import Problem
from opcompat.records import CaseRow, HarnessInfo, OpRow, VerdictRow

pytestmark = pytest.mark.meta
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

STD_MEAN = "aten::std_mean.correction"


def verdict(equivalent=True):
    return VerdictRow("fused", 1, "float32", "cpu", equivalent, [] if equivalent else ["wrong correction"])


@pytest.fixture
def quick_here(monkeypatch):
    """``here`` with the probe and the verdict child replaced: the bookkeeping in milliseconds.

    Returns the list of devices probed; ``.verdicts`` are what the next run's verdict child answers."""

    class State(list):
        def __init__(self):
            super().__init__()
            self.verdicts = [verdict()]

    state = State()

    def fake_probe(device, **kwargs):
        state.append(device)
        return probing.ProbeResult(device, False, [OpRow(STD_MEAN, "float32", "native", "", ["on cpu: native"])],
                                   [CaseRow("fused", "float32", True, [])], 1)

    monkeypatch.setattr(here.probing, "trace_cases", lambda registered=None: {})
    monkeypatch.setattr(here.probing, "probe", fake_probe)
    monkeypatch.setattr(here, "judge", lambda device, dtypes=None: (state.verdicts, ""))
    monkeypatch.setattr(here, "harness_info", lambda: HarnessInfo("abc123", False))
    return state


def test_here_writes_a_measured_file_per_device_and_builds(tmp_path, quick_here):
    assert matrix_main(["here", "--device", "cpu", "--results", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written[0] == "MATRIX.md" and written[1].startswith("measured-cpu-"), written
    record = results.load(tmp_path / written[1])
    assert (record.kind, record.machine, record.opcompat) == ("measured", devices.machine("cpu"),
                                                               HarnessInfo("abc123", False))
    text = (tmp_path / "MATRIX.md").read_text(encoding="utf-8")
    # Built from that folder (the layout is matrix/build.py's to test): its op, its case, its harness commit.
    assert "std_mean.correction" in text and "fused" in text and "abc123" in text


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@needs_git
def test_here_run_twice_never_changes_a_committed_file(tmp_path, quick_here, capsys):
    folder = tmp_path / "results"
    _git(tmp_path, "init", "-q")
    argv = ["here", "--device", "cpu", "--results", str(folder), "--no-build"]
    assert matrix_main(argv) == 0
    (path,) = folder.iterdir()
    quick_here.verdicts = [verdict(equivalent=False)]  # a second run that would write something else
    assert matrix_main(argv) == 0, "a file nobody committed yet is this machine's own: it may be replaced"
    assert not results.load(path).verdicts[0].equivalent
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "a contribution")
    committed = path.read_bytes()
    quick_here.verdicts = [verdict(equivalent=True)]
    del quick_here[:]
    capsys.readouterr()
    assert matrix_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path} is committed" in err and "--force" in err, err
    assert path.read_bytes() == committed, "a committed result file changed"
    assert quick_here == [], "the refusal comes before the probe, not after an hour of it"
    assert matrix_main([*argv, "--force"]) == 0
    assert results.load(path).verdicts[0].equivalent, "--force replaces it"


@needs_git
def test_every_committed_measured_file_is_refused_without_force():
    if harness.git("rev-parse", "HEAD") is None:
        pytest.skip("not a git checkout: nothing is committed")
    committed = [p for p in results.RESULTS_DIR.glob("measured-*.json") if harness.is_committed(p)]
    assert committed
    for path in committed:
        with pytest.raises(results.ClobberError, match="is committed"):
            results.check_overwrite(path)
        results.check_overwrite(path, force=True)


def test_here_names_a_broken_case_file_and_marks_the_result(tmp_path, quick_here, monkeypatch, capsys):
    problem = Problem("cases/broken.py", "failed to import: NameError: name 'torhc' is not defined (line 3)")
    fused = cases.get("fused")
    monkeypatch.setattr(cases, "all_cases", lambda: ([fused], [problem]))
    assert matrix_main(["here", "--device", "cpu", "--results", str(tmp_path), "--no-build"]) == 0
    err = capsys.readouterr().err
    assert "cases/broken.py: failed to import: NameError" in err and "left out of this result" in err
    (path,) = tmp_path.glob("measured-*.json")
    assert results.load(path).case_errors == [str(problem)]


def test_a_clean_run_records_no_case_errors(tmp_path, quick_here):
    assert matrix_main(["here", "--device", "cpu", "--results", str(tmp_path), "--no-build"]) == 0
    (path,) = tmp_path.glob("measured-*.json")
    assert "case_errors" not in records.to_json(results.load(path))


@needs_git
def test_dirty_counts_untracked_case_files(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "std_mean.py").write_text("CASES = []\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "cases")
    clean = harness.harness_info(tmp_path)
    assert clean.commit and clean.dirty is False and clean.untracked == []
    (tmp_path / "cases" / "mine.py").write_text("CASES = []\n")  # discovered and run, never committed
    dirty = harness.harness_info(tmp_path)
    assert dirty.dirty is True and dirty.untracked == ["cases/mine.py"]


def test_here_refuses_an_unknown_device(capsys):
    assert matrix_main(["here", "--device", "nonsense"]) == 2
    assert "not a torch device string" in capsys.readouterr().err


def test_here_refuses_the_meta_device(capsys):
    assert matrix_main(["here", "--device", "meta", "--no-build"]) == 2
    assert "--device meta: meta tensors carry shapes and dtypes but no values" in capsys.readouterr().err


@needs_git
def test_a_named_commit_wins_over_a_stale_git_history(tmp_path):
    """A copy of the tree on a lent machine may carry an old .git: the commit named in the environment is
    recorded instead, and whether the copy had changes is unknown (None), never a guessed False."""
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "std_mean.py").write_text("CASES = []\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "stale")
    stale = harness.harness_info(tmp_path, environ={})
    named = harness.harness_info(tmp_path, environ={harness.COMMIT_ENV: "e983a89"})
    assert stale.commit != "e983a89" and named.commit == "e983a89" and named.dirty is None
