"""The records that cross process and file boundaries, typed: one JSON path and one validator for all.

- ``OpRow``: what one op overload does at one dtype on one device (a probe or a prediction);
- ``CaseRow``: whether one case runs on the device at one dtype, and which ops fell back;
- ``VerdictRow``: is one case equivalent at one correction and dtype (opcompat.verdicts writes them);
- ``BenchRow``: one timed benchmark row of a speed result (matrix.speed);
- ``ProbeItem`` / ``Observation``: what a probe child runs, and what it saw (matrix.probe <-> probe_child);
- ``ResultFile``: a result file: kind, torch, machine and harness, and its op/case/verdict rows.

Every record is a frozen dataclass. ``to_json(record)`` gives plain JSON values, ``from_json(cls, data,
where=...)`` checks every field's type (and the words a field may hold) and builds the record, or raises
``RecordError`` whose message names the file and the field (``measured-cpu-….json: ops[3].status: ...``).
``problems(cls, data)`` lists the same findings without raising.

A field without a default must be in the JSON; one with a default may be missing and reads as it.
Fields marked OPTIONAL are also left out of the JSON while they hold their default: files written before
such a field existed load, and round-trip byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from packaging.version import InvalidVersion, Version

from .vocab import OP_STATUSES, PREDICTED_STATUSES

SCHEMA_VERSION = 1
# Result kinds: a probe on real hardware, a prediction from a release's macOS wheel, or the simulated MPS
# backend (evidence about opcompat's plumbing only; never published).
KINDS = ("measured", "predicted", "simulated")
PUBLISHABLE = ("measured", "predicted")
STATUSES = OP_STATUSES + tuple(s for s in PREDICTED_STATUSES if s not in OP_STATUSES)
OUTCOMES = ("ok", "raised", "crashed", "timeout")  # of one probed item
MAX_PROBLEMS = 10  # a broken file is named with its first few problems, not thousands


class RecordError(ValueError):
    """A record that does not validate: ``where`` (a file, or '') and ``problems``, each 'field: reason'."""

    def __init__(self, where, problems):
        self.where, self.problems = str(where or ""), list(problems)
        shown = "; ".join(self.problems[:MAX_PROBLEMS])
        more = len(self.problems) - MAX_PROBLEMS
        super().__init__((f"{self.where}: " if self.where else "") + shown + (f"; and {more} more" if more > 0 else ""))


# Field metadata: OPTIONAL fields are left out of the JSON while they hold their default (and read as it
# when absent); a string field with choices(...) must hold one of those words.
OPTIONAL = {"optional": True}


def choices(words) -> dict:
    return {"choices": tuple(words)}


def _not_a_dtype(text: str) -> str:
    """'' for a torch dtype's name ("float32", "int64", "bool"), else the reason."""
    return "" if isinstance(getattr(torch, text, None), torch.dtype) else f"{text!r} is not a torch dtype"


DTYPE = {"check": _not_a_dtype}  # the float dtypes of the matrix (vocab.DTYPE_NAMES), and the integer ones families use


def _not_a_version(text: str) -> str:
    try:
        Version(text)
    except InvalidVersion:
        return f"{text!r} is not a version (PEP 440)"
    return ""


# -- the rows ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpRow:
    op: str  # the dispatcher's spelling: "aten::sqrt.default"
    dtype: str = field(metadata=DTYPE)
    status: str = field(metadata=choices(STATUSES))
    message: str = ""
    evidence: list[str] = field(default_factory=list)  # how the status was found, one line per pass


@dataclass(frozen=True)
class CaseRow:
    case: str
    dtype: str = field(metadata=DTYPE)
    runs_on_device: bool  # the whole case ran on the device with no CPU fallback
    fallback_ops: list[str]  # the ops that ran on the CPU (or had no kernel) on the way
    message: str = ""  # why it did not run on the device


@dataclass(frozen=True)
class VerdictRow:
    case: str
    correction: Optional[float]  # None for a family without one (std_mean's is always set)
    dtype: str = field(metadata=DTYPE)
    device: str
    equivalent: bool
    causes: list[str] = field(default_factory=list)
    failing_regimes: list[str] = field(default_factory=list)
    counterexample: str = ""
    device_notes: list[str] = field(default_factory=list)
    # The op family the case belongs to; files written before families existed imply std_mean.
    family: str = field(default="std_mean", metadata=OPTIONAL)
    replaces: str = field(default="", metadata=OPTIONAL)  # the call the case stands in for
    ops: list[str] = field(default_factory=list, metadata=OPTIONAL)  # the aten overloads it replaces


@dataclass(frozen=True)
class BenchRow:
    """One benchmark row of a speed result (matrix.speed): the timing and the ratios within its run.

    matrix.speed writes schema 2: the per-timer fields (``times``, ``ratio``, ``ratio_spread``: {timer:
    value}) and the CUDA-graph ones; schema 1 files had ``wall_median_s`` and ``iqr_s`` instead. Copy and
    fallback rows leave the fields they have no value for null.
    """

    variant: str
    kind: str
    dtype: str
    shape: list[int]
    numel: int
    equivalent: Optional[bool] = None
    label: Optional[str] = None
    dims: Optional[list[int]] = None
    median_s: Optional[float] = None
    GBps: Optional[float] = None
    frac_copy_bw: Optional[float] = None
    speedup_vs_fallback: Optional[float] = None
    slowdown_vs_fused: Optional[float] = None
    repeat: int = 1
    rounds: Optional[int] = None
    calls_per_round: Optional[int] = None
    sm_clock_mhz: Optional[float] = None
    computes: Optional[str] = None
    output_ok: Optional[bool] = None
    falls_back: Optional[bool] = None
    fallback_ops: Optional[list[str]] = None
    uses_fused_op: Optional[bool] = None
    times: Optional[dict] = None  # {timer: median s}
    ratio: Optional[dict] = None  # {timer: median per-round ratio to the fused op}
    ratio_spread: Optional[dict] = None
    graph_calls: Optional[int] = None
    graph_error: Optional[str] = None
    wall_median_s: Optional[float] = field(default=None, metadata=OPTIONAL)  # schema 1 only
    iqr_s: Optional[float] = field(default=None, metadata=OPTIONAL)  # schema 1 only


@dataclass(frozen=True)
class ProbeItem:
    """One thing a probe child runs: an op overload replayed at a dtype, or a case run at a dtype."""

    kind: str = field(metadata=choices(("op", "case")))
    dtype: str = field(metadata=DTYPE)
    seed: int = 0  # the inputs' generator seed: the same item gets the same values in every child
    op: str = field(default="", metadata=OPTIONAL)  # an op item: the overload, its traced arguments
    args: list[Any] = field(default_factory=list, metadata=OPTIONAL)
    kwargs: list[Any] = field(default_factory=list, metadata=OPTIONAL)  # [[name, value]]
    case: str = field(default="", metadata=OPTIONAL)  # a case item: the case's name


@dataclass(frozen=True)
class Observation:
    """What a probe child saw of one item; the parent (matrix.probe) turns it into a status."""

    outcome: str = field(default="ok", metadata=choices(OUTCOMES))
    error_type: str = ""
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    # How the device's result differs from the CPU's ('' when it matches).
    mismatch: str = field(default="", metadata=OPTIONAL)
    # The same call on the CPU raised: nothing to compare with, the device's own outcome stands.
    reference_error: str = field(default="", metadata=OPTIONAL)
    # [[op, dtype it ran at]] of a case on MPS: which ops fell back needs the ops reached.
    ops_reached: list[list[str]] = field(default_factory=list, metadata=OPTIONAL)


# -- the file --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchInfo:
    version: str = field(metadata={"check": _not_a_version})  # torch.__version__, local build tag included
    git: Optional[str] = None
    cuda: Optional[str] = None


@dataclass(frozen=True)
class MachineInfo:
    device: str  # the device kind: cpu, cuda, mps
    device_name: str
    os: str
    python: str
    slug: str  # hostname-free name of this kind of machine, for file names


@dataclass(frozen=True)
class HarnessInfo:
    """The opcompat that measured: verdicts change with its battery, so a result names it."""

    commit: Optional[str] = None
    dirty: Optional[bool] = None  # local changes, untracked case files included
    untracked: list[str] = field(default_factory=list, metadata=OPTIONAL)  # the untracked files that made it dirty


@dataclass(frozen=True)
class ResultFile:
    """One result file (matrix/results/), schema_version 1.

    ``kind``: "measured" (a probe on real hardware), "predicted" (from a release's macOS wheel) or
    "simulated" (the simulated MPS backend: tests opcompat's plumbing, says nothing about a Mac).
    ``opcompat``: the harness that measured; ``case_errors``: case files that failed to import then.
    """

    kind: str = field(metadata=choices(KINDS))
    torch: TorchInfo
    machine: MachineInfo
    created: str  # UTC, ISO 8601
    ops: list[OpRow]
    cases: list[CaseRow]
    verdicts: list[VerdictRow]  # measured files only; may be empty
    opcompat: Optional[HarnessInfo] = field(default=None, metadata=OPTIONAL)
    # Case files that failed to import when it was measured: their rows are missing, and build says so.
    case_errors: list[str] = field(default_factory=list, metadata=OPTIONAL)
    schema_version: int = SCHEMA_VERSION  # written first (see to_json): a reader looks there before anything

    def filename(self) -> str:
        return result_filename(self.kind, self.torch, self.machine)


def result_filename(kind: str, torch: TorchInfo, machine: MachineInfo) -> str:
    """Where a result is written: predicted-<device>-<release>.json, <kind>-<device>-<release>-<slug>.json."""
    if kind == "predicted":
        return f"predicted-{machine.device}-{release(torch.version)}.json"
    return f"{kind}-{machine.device}-{release(torch.version)}-{machine.slug}.json"


def release(version: str) -> str:
    """'2.13.0+cpu' -> '2.13.0': the release a file is named after (the local build tag dropped)."""
    return Version(version).public


# -- one JSON path --------------------------------------------------------------------------------------
def to_json(record) -> dict:
    """``record`` as plain JSON values (optional fields at their default left out)."""
    out = {}
    fields = _fields(type(record))
    # schema_version first: a reader checks it before anything else.
    for name in sorted(fields, key=lambda n: n != "schema_version"):
        f = fields[name]
        value = getattr(record, name)
        if f.metadata.get("optional") and value == _default(f):
            continue
        out[name] = _plain(value)
    return out


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def problems(cls, data, where: str = "") -> list:
    """Every reason ``data`` is not a valid ``cls`` (empty: none), each naming the field."""
    found = []
    _check(cls, data, where, found)
    return found


def from_json(cls, data, where: str = ""):
    """``data`` (parsed JSON) as a ``cls``; RecordError naming ``where`` and each bad field otherwise."""
    found = problems(cls, data)
    if found:
        raise RecordError(where, found)
    return _build(cls, data)


@functools.cache
def _hints(cls):
    return typing.get_type_hints(cls)


@functools.cache
def _fields(cls):
    return {f.name: f for f in dataclasses.fields(cls)}


def _check(cls, data, path, found):
    if not isinstance(data, dict):
        found.append(f"{path or 'the top level'}: is {_kind(data)}, not an object")
        return
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        found.append(f"{path + '.' if path else ''}schema_version: {data['schema_version']!r} is not "
                     f"{SCHEMA_VERSION} (written by another opcompat?)")
        return  # another schema: its other fields mean other things
    hints, fields = _hints(cls), _fields(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        found.append(f"{path or 'the top level'}: unknown field(s) {', '.join(unknown)} (a newer opcompat wrote it?)")
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            if _default(f) is dataclasses.MISSING:
                found.append(f"{where}: missing")
            continue
        _check_value(hints[name], data[name], where, found)
        if "choices" in f.metadata and isinstance(data[name], str) and data[name] not in f.metadata["choices"]:
            found.append(f"{where}: {data[name]!r} is not one of {', '.join(f.metadata['choices'])}")
        if "check" in f.metadata and isinstance(data[name], str):
            reason = f.metadata["check"](data[name])
            if reason:
                found.append(f"{where}: {reason}")


def _is_union(hint) -> bool:
    origin = typing.get_origin(hint)
    return origin is Union or origin is getattr(types, "UnionType", Union)


def _check_value(hint, value, where, found):
    if hint is Any:
        return
    if _is_union(hint):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return
        hint = next(a for a in args if a is not type(None))
    if dataclasses.is_dataclass(hint):
        _check(hint, value, where, found)
        return
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            found.append(f"{where}: is {_kind(value)}, expected a list")
            return
        (item,) = typing.get_args(hint) or (Any,)
        for i, v in enumerate(value):
            _check_value(item, v, f"{where}[{i}]", found)
        return
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            found.append(f"{where}: is {_kind(value)}, expected an object")
        return
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}[hint](value)
    if not ok:
        found.append(f"{where}: is {_kind(value)}, expected {_NAMES[hint]}")


_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}


def _kind(value) -> str:
    return {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _build(cls, data):
    hints = _hints(cls)
    return cls(**{name: _value(hints[name], data[name]) for name in _fields(cls) if name in data})


def _value(hint, value):
    if value is None:
        return None
    if _is_union(hint):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (Any,)
        return [_value(item, v) for v in value]
    return value
