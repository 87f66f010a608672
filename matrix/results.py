"""Result files: one JSON per (kind, device, torch release, machine) under matrix/results/.

Names: ``measured-cpu-2.13.0-linux-x86-64-intel-xeon.json``, ``predicted-mps-2.2.2.json``,
``simulated-mps-2.13.0-linux-x86-64-simulated.json`` (never in matrix/results/).

The record is ``opcompat.records.ResultFile`` (its docstring and fields are the schema, ``schema_version``
1): kind ("measured" on real hardware, "predicted" from a release's macOS wheel, "simulated": the
simulated MPS backend, which says nothing about a Mac), torch and machine, the op, case and verdict rows,
the harness that measured (commit, dirty) and the case files that failed to import.

Writing is atomic (a temporary file in the same folder, then os.replace) and serialised by a lock
(filelock), so two writers never leave a torn file: the second waits for the first, or fails naming the
lock after ``lock_timeout`` seconds. A file committed to git is never overwritten without ``force``
(a second ``matrix here`` on the same machine must not rewrite a contribution). Reading validates and
names the file and the field of anything malformed. A simulated result cannot be written into
matrix/results/ (PublishError).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from matrix import harness
from opcompat import records
from opcompat.records import (
    KINDS,
    PUBLISHABLE,
    SCHEMA_VERSION,
    STATUSES,
    CaseRow,
    HarnessInfo,
    MachineInfo,
    OpRow,
    ResultFile,
    TorchInfo,
    VerdictRow,
    release,
)

__all__ = ["KINDS", "PUBLISHABLE", "RESULTS_DIR", "SCHEMA_VERSION", "STATUSES", "ClobberError", "LockTimeout",
           "PublishError", "ResultFileError", "load", "make", "read_dir", "release", "write"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULT_PREFIXES = tuple(f"{k}-" for k in KINDS)  # speed-*.json and others belong to other tools


class ResultFileError(ValueError):
    """A result file that cannot be used; str() names the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


class PublishError(ValueError):
    """A simulated result headed for the published results."""


class ClobberError(FileExistsError):
    """The result file is committed to git: overwriting it needs ``force``."""


class LockTimeout(RuntimeError):
    """Another writer kept the results folder locked for longer than we would wait."""


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _as(cls, value, where):
    return value if isinstance(value, cls) else records.from_json(cls, value, where=where)


def make(kind, torch_info, machine, ops, cases, verdicts=(), *, harness_info=None, case_errors=()) -> ResultFile:
    """A validated result record; rows and infos may be records or their JSON (dicts)."""
    return records.from_json(ResultFile, records.to_json(ResultFile(
        kind=kind, torch=_as(TorchInfo, torch_info, "torch"), machine=_as(MachineInfo, machine, "machine"),
        created=now(), ops=[_as(OpRow, r, f"ops[{i}]") for i, r in enumerate(ops)],
        cases=[_as(CaseRow, r, f"cases[{i}]") for i, r in enumerate(cases)],
        verdicts=[_as(VerdictRow, r, f"verdicts[{i}]") for i, r in enumerate(verdicts)],
        opcompat=None if harness_info is None else _as(HarnessInfo, harness_info, "opcompat"),
        case_errors=list(case_errors))), where="the new result")


# -- reading ----------------------------------------------------------------------------------------
def load(path) -> ResultFile:
    """The validated record in ``path``; ResultFileError naming the file and the reason otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(path, f"cannot be read: {exc}") from None
    if not text.strip():
        raise ResultFileError(path, "is empty (an interrupted write?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The parser stops at the end of the text (or inside a string that never ends): cut short.
        cut = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        where = "truncated" if cut else "malformed"
        raise ResultFileError(path, f"is not valid JSON ({where}: {exc.msg} at line {exc.lineno} column "
                                    f"{exc.colno})") from None
    try:
        return records.from_json(ResultFile, data)
    except records.RecordError as exc:
        raise ResultFileError(path, str(exc)) from None


def result_paths(directory) -> list:
    """The result files of a folder (other tools' JSON, e.g. speed-*.json, is not ours)."""
    return sorted(p for p in Path(directory).glob("*.json") if p.name.startswith(RESULT_PREFIXES))


def read_dir(directory):
    """([(path, ResultFile)], [(path, reason)]): every readable result file, and every other one with why."""
    found, skipped = [], []
    for path in result_paths(directory):
        try:
            record = load(path)
        except ResultFileError as exc:
            skipped.append((path, exc.reason))
            continue
        if not path.name.startswith(record.kind + "-"):
            skipped.append((path, f"its kind is {record.kind!r} but its name says otherwise "
                                  f"(expected {record.filename()})"))
            continue
        found.append((path, record))
    return found, skipped


def load_dir(directory):
    """``read_dir`` with each record as its JSON: for matrix/build.py until it reads records itself."""
    found, skipped = read_dir(directory)
    return [(path, records.to_json(record)) for path, record in found], skipped


# -- writing ----------------------------------------------------------------------------------------
def is_published(directory) -> bool:
    return Path(directory).resolve() == RESULTS_DIR


def check_publishable(record: ResultFile, directory):
    if record.kind not in PUBLISHABLE and is_published(directory):
        raise PublishError(f"a {record.kind} result is never written into {RESULTS_DIR}: it is not a "
                           "measurement of real hardware; write it elsewhere (--results DIR)")


def check_overwrite(target, force=False):
    """ClobberError when ``target`` is a file committed to git and ``force`` is not given."""
    target = Path(target)
    if force or not target.exists() or not harness.is_committed(target):
        return
    raise ClobberError(f"{target} is committed: a second run on this machine would rewrite someone's "
                       "contribution. Give --force to replace it, or --results DIR to write elsewhere.")


def _lock_path(directory) -> Path:
    # Outside the folder, so a published folder holds result files only.
    key = hashlib.sha1(str(Path(directory).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"opcompat-results-{key}.lock"


@contextlib.contextmanager
def locked(directory, timeout=60.0):
    """Hold the folder's write lock; LockTimeout after ``timeout`` seconds."""
    path = _lock_path(directory)
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeout(f"another writer holds the lock on {directory} ({path}); waited {timeout:g} s. "
                          "Let it finish (filelock frees it when that process exits).") from None
    try:
        yield
    finally:
        lock.release()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dumps(record: ResultFile) -> str:
    """JSON with one line per op, case or verdict row: small diffs when a row changes."""
    parts = []
    for key, value in records.to_json(record).items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write(record: ResultFile, directory=RESULTS_DIR, *, lock_timeout=60.0, force=False) -> Path:
    """Write ``record`` to its file in ``directory`` atomically, under the folder's lock; the path.

    ClobberError if that file is committed to git and ``force`` is false.
    """
    record = _as(ResultFile, record, "the result")
    check_publishable(record, directory)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / record.filename()
    text = dumps(record)
    with locked(directory, lock_timeout):
        check_overwrite(target, force)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a result file is for sharing
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return target
