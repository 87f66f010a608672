"""Result files: one JSON per (kind, device, torch version, machine) under matrix/results/.

Names: ``measured-cpu-2.13.0-linux-x86_64-intel-xeon.json``, ``predicted-mps-2.2.2.json``,
``simulated-mps-2.13.0-linux-x86_64-simulated.json`` (never in matrix/results/).

Fields (``schema_version`` 1):

- ``kind``: "measured" (a probe on real hardware), "predicted" (matrix.predict, from a release's macOS
  wheel) or "simulated" (the simulated MPS backend: tests opcompat, says nothing about a Mac);
- ``torch``: {version, git, cuda}; ``machine``: {device, device_name, os, python, slug};
  ``created``: UTC ISO-8601 time;
- ``ops``: [{op, dtype, status, message, evidence}]: one row per traced op overload and dtype;
- ``cases``: [{case, dtype, runs_on_device, fallback_ops, message}];
- ``verdicts``: [opcompat.verdicts.Verdict.to_json()] (measured files only; may be empty);
- optional ``opcompat``: {commit, dirty}: the harness that measured (verdicts change with its battery).

Writing is atomic (a temporary file in the same folder, then os.replace) and serialised by a lock, so
two writers never leave a torn file: the second waits for the first, or fails naming the lock after
``lock_timeout`` seconds. Reading validates and names the file and the reason for anything malformed.
A simulated result cannot be written into matrix/results/ (PublishError).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("measured", "predicted", "simulated")
PUBLISHABLE = ("measured", "predicted")
PROBE_STATUSES = ("native", "fallback", "not_implemented", "wrong_result", "unsupported_dtype", "error", "crashed",
                  "timeout")
PREDICTED_STATUSES = ("native", "fallback", "composite", "unknown_op", "unsupported_dtype", "unknown")
STATUSES = PROBE_STATUSES + tuple(s for s in PREDICTED_STATUSES if s not in PROBE_STATUSES)
RESULT_PREFIXES = tuple(f"{k}-" for k in KINDS)  # speed-*.json and others belong to other tools

REQUIRED = {"schema_version": int, "kind": str, "torch": dict, "machine": dict, "created": str, "ops": list,
            "cases": list, "verdicts": list}
OP_FIELDS = {"op": str, "dtype": str, "status": str, "message": str, "evidence": list}
CASE_FIELDS = {"case": str, "dtype": str, "runs_on_device": bool, "fallback_ops": list}


class ResultFileError(ValueError):
    """A result file that cannot be used; str() names the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


class PublishError(ValueError):
    """A simulated result headed for the published results."""


class LockTimeout(RuntimeError):
    """Another writer kept the results folder locked for longer than we would wait."""


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def make(kind, torch_info, machine, ops, cases, verdicts=()) -> dict:
    """A result record, validated; ``torch_info`` = {version, git, cuda}, ``machine`` see module doc."""
    data = {"schema_version": SCHEMA_VERSION, "kind": kind, "torch": dict(torch_info), "machine": dict(machine),
            "created": now(), "ops": list(ops), "cases": list(cases), "verdicts": list(verdicts)}
    problems = validate(data)
    if problems:
        raise ValueError("invalid result: " + "; ".join(problems))
    return data


def release(version: str) -> str:
    """'2.13.0+cpu' -> '2.13.0': the release a file is named after."""
    return version.split("+")[0]


def filename(data: dict) -> str:
    kind, device = data["kind"], data["machine"]["device"]
    version = release(data["torch"]["version"])
    if kind == "predicted":
        return f"predicted-{device}-{version}.json"
    return f"{kind}-{device}-{version}-{data['machine']['slug']}.json"


# -- validation -------------------------------------------------------------------------------------
def validate(data) -> list:
    """What is wrong with ``data`` as a result record (empty: nothing)."""
    if not isinstance(data, dict):
        return [f"the top level is a {type(data).__name__}, not an object"]
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        return [f"partial: missing field(s) {', '.join(missing)}"]
    problems = [f"field {k!r} is a {type(data[k]).__name__}, expected {t.__name__}"
                for k, t in REQUIRED.items() if not isinstance(data[k], t)]
    if problems:
        return problems
    if data["schema_version"] != SCHEMA_VERSION:
        return [f"schema_version {data['schema_version']} is not {SCHEMA_VERSION} (written by another opcompat?)"]
    if data["kind"] not in KINDS:
        problems.append(f"kind {data['kind']!r} is not one of {', '.join(KINDS)}")
    if not isinstance(data["torch"].get("version"), str):
        problems.append("torch.version is missing")
    for key in ("device", "device_name", "slug"):
        if not isinstance(data["machine"].get(key), str):
            problems.append(f"machine.{key} is missing")
    problems += _rows(data["ops"], "ops", OP_FIELDS)
    problems += _rows(data["cases"], "cases", CASE_FIELDS)
    for i, row in enumerate(data["ops"]):
        if isinstance(row, dict) and row.get("status") not in STATUSES:
            problems.append(f"ops[{i}] ({row.get('op')}, {row.get('dtype')}): unknown status {row.get('status')!r}")
    for i, row in enumerate(data["verdicts"]):
        if not isinstance(row, dict) or not {"case", "dtype", "equivalent"} <= set(row):
            problems.append(f"verdicts[{i}] lacks case/dtype/equivalent")
    return problems[:10]


def _rows(rows, name, fields):
    problems = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(f"{name}[{i}] is a {type(row).__name__}, not an object")
            continue
        for key, kind in fields.items():
            if not isinstance(row.get(key), kind):
                problems.append(f"{name}[{i}].{key} is missing or not a {kind.__name__}")
    return problems


def load(path) -> dict:
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
    problems = validate(data)
    if problems:
        raise ResultFileError(path, "; ".join(problems))
    return data


def result_paths(directory) -> list:
    """The result files of a folder (other tools' JSON, e.g. speed-*.json, is not ours)."""
    return sorted(p for p in Path(directory).glob("*.json") if p.name.startswith(RESULT_PREFIXES))


def load_dir(directory):
    """(records, [(path, reason)]): every readable result file, and every other one with its reason."""
    found, skipped = [], []
    for path in result_paths(directory):
        try:
            data = load(path)
        except ResultFileError as exc:
            skipped.append((path, exc.reason))
            continue
        expected = filename(data)
        if not path.name.startswith(data["kind"] + "-"):
            skipped.append((path, f"its kind is {data['kind']!r} but its name says otherwise (expected {expected})"))
            continue
        found.append((path, data))
    return found, skipped


# -- writing ----------------------------------------------------------------------------------------
def is_published(directory) -> bool:
    return Path(directory).resolve() == RESULTS_DIR


def check_publishable(data, directory):
    if data.get("kind") not in PUBLISHABLE and is_published(directory):
        raise PublishError(f"a {data.get('kind')} result is never written into {RESULTS_DIR}: it is not a "
                           "measurement of real hardware; write it elsewhere (--results DIR)")


def _lock_path(directory) -> Path:
    # Outside the folder, so a published folder holds result files only.
    key = hashlib.sha1(str(Path(directory).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"opcompat-results-{key}.lock"


@contextlib.contextmanager
def locked(directory, timeout=60.0):
    """Hold the folder's write lock; LockTimeout (naming the holder) after ``timeout`` seconds."""
    path = _lock_path(directory)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise LockTimeout(f"another writer (pid {holder}) holds the lock on {directory} ({path}); "
                                  f"waited {timeout:g} s. Let it finish, or remove {path} if no opcompat runs.")
            time.sleep(0.05)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            _unlock(handle)


try:
    import fcntl

    def _try_lock(handle):
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(handle):
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(handle):
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(handle):
        with contextlib.suppress(OSError):
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dumps(data: dict) -> str:
    """JSON with one line per op, case or verdict row: small diffs when a row changes."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write(data: dict, directory=RESULTS_DIR, *, lock_timeout=60.0) -> Path:
    """Write ``data`` to its file in ``directory`` atomically, under the folder's lock; the path."""
    problems = validate(data)
    if problems:
        raise ValueError("refusing to write an invalid result: " + "; ".join(problems))
    check_publishable(data, directory)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / filename(data)
    text = dumps(data)
    with locked(directory, lock_timeout):
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
