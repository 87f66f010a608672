"""Every aten overload of every release, per dtype, in the user-facing vocabulary of statuses.py.

Stable API (the ``scan`` command calls it):

    predict_all(releases=None, ops=None, dtypes=DEFAULT_DTYPES, download=True, progress=None,
                decompositions=None, cache_dir=None) -> {release: {op: Prediction}}
        releases: versions as resolve_version() takes them (default: all of RELEASES);
        ops: overload names ("aten::sqrt.default", "std_mean.correction"); default: every overload of each
        release's native_functions.yaml (the union over releases when several are asked for, so each column
        answers the same rows: an op a release lacks is ``not_in_release``);
        progress(message): told of downloads and parses (the CLI prints to stderr);
        decompositions: the tracer's {op: [ops it reaches]}, which turns ``composite`` into ``composite_mps``.
        A release whose wheel cannot be had is reported through progress and answers ``unknown`` for every op.
    first_native_release(op, dtype, predictions) -> "2.3.1" or None
        the oldest release from which the op runs on MPS for that dtype in every later release predicted.

Prediction.status is one of statuses.ORDER; dtype_status adds ``unsupported_dtype``; min_macos is the
oldest macOS it runs natively on (a gate from the library's strings, else the backend's own minimum).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from packaging.version import Version

from matrix.predict import crosscheck, dtype_rules, macos_gates, release_data, statuses
from matrix.predict.errors import PredictError
from matrix.predict.model import Prediction
from matrix.predict.opnames import base, canonical, display
from matrix.predict.release_data import ReleaseData
from matrix.predict.releases import RELEASES, resolve_version
from matrix.predict.rules import Resolver

DEFAULT_DTYPES = dtype_rules.DEFAULT_DTYPES


def predict_all(releases: Iterable[str] | None = None, ops: Iterable[str] | None = None, *,
                dtypes: Sequence[str] = DEFAULT_DTYPES, download: bool = True,
                progress: Callable[[str], None] | None = None,
                decompositions: Mapping[str, Sequence[str]] | None = None,
                cache_dir: Path | None = None) -> dict[str, dict[str, Prediction]]:
    say = progress or (lambda message: None)
    versions = [resolve_version(v) for v in (releases or RELEASES)]
    wanted = list(dict.fromkeys(dtype_rules.canonical_dtype(d) for d in dtypes))
    loaded: dict[str, ReleaseData | None] = {}
    for version in versions:
        try:
            loaded[version] = release_data.load(version, download=download, directory=cache_dir, progress=say,
                                                 prefer_wheel=True)
        except PredictError as exc:
            say(f"torch {version}: skipped, its column is 'unknown': {exc}")
            loaded[version] = None
    if ops is None:
        names = sorted({name for r in loaded.values() if r for name in r.ops})
    else:
        names = [canonical(op) for op in ([ops] if isinstance(ops, str) else ops)]
    out = {}
    for version, release in loaded.items():
        if release is None:
            why = (f"torch {version}: the release could not be read (see the message above), so nothing is "
                   f"known about it",)
            out[version] = {display(n): Prediction(display(n), statuses.UNKNOWN, dict.fromkeys(wanted, "unknown"),
                                                   why) for n in names}
        else:
            out[version] = predict_release_ops(release, names, wanted, decompositions)
    return out


def predict_release_ops(release: ReleaseData, names: Sequence[str], dtypes: Sequence[str],
                        decompositions=None) -> dict[str, Prediction]:
    """{display name: Prediction} for canonical op ``names`` of one parsed release."""
    resolver = Resolver(release, decompositions)
    gates = release.gates
    lists = release.test_lists
    all_keys = list({k for entries in (lists or {}).get("lists", {}).values() for k in entries}
                    | {k for names_ in (lists or {}).get("sets", {}).values() for k in names_})
    keys_by_base = dtype_rules.opinfo_index(all_keys, {base(n) for n in release.ops})
    out = {}
    for name in names:
        verdict = resolver.resolve(name)
        status, evidence, min_macos = _op_status(release, verdict, name, gates)
        disagreement = crosscheck.explain(release, name) if status != statuses.NOT_IN_RELEASE else None
        if disagreement:  # the yaml and the compiled library differ: say why, next to the answer
            evidence = (*evidence, disagreement)
        per_dtype, dtype_macos, why = {}, {}, []
        if status in (statuses.NOT_IN_RELEASE, statuses.UNKNOWN):
            per_dtype = dict.fromkeys(dtypes, status)
        else:
            keys = keys_by_base.get(base(name), [])
            for dtype in dtypes:
                word, lines = dtype_rules.dtype_status(release.version, status, dtype, keys, lists)
                gate = gates["dtypes"].get(dtype)
                if gate and word in statuses.RUNS_ON_MPS:
                    word = statuses.NATIVE_MACOS if word != statuses.COMPOSITE_MPS else word
                    dtype_macos[dtype] = gate["min_macos"]
                    lines = [*lines, f"{dtype}: needs macOS {gate['min_macos']}+: libtorch_cpu.dylib "
                                     f"{release.version} says \"{gate['text']}\""]
                per_dtype[dtype] = word
                why.extend(lines)
        out[display(name)] = Prediction(display(name), status, per_dtype, (*evidence, *why),
                                        min_macos=min_macos, dtype_min_macos=dtype_macos)
    return out


def _op_status(release: ReleaseData, verdict, name: str, gates: dict) -> tuple[str, tuple, str | None]:
    lib = f"libtorch_cpu.dylib {release.version}"
    if verdict.status == "unknown_op":
        return statuses.NOT_IN_RELEASE, verdict.evidence, None
    if verdict.status != "native":
        return verdict.status, verdict.evidence, None
    backend = gates.get("backend_min")
    evidence = list(verdict.evidence)
    if backend:
        evidence.append(f"{lib}: \"The MPS backend is supported on macOS {backend}+\"")
    for note in macos_gates.partial_notes(base(name), gates):
        evidence.append(f"{lib}: part of the op needs a newer macOS: \"{note}\"")
    if verdict.composite:
        return statuses.COMPOSITE_MPS, tuple(evidence), backend
    gate = macos_gates.op_gate(base(name), gates)
    if gate:
        evidence.append(f"{lib}: \"{gate['text']}\" → native from macOS {gate['min_macos']}; older macOS runs "
                        f"it on the CPU or refuses it")
        return statuses.NATIVE_MACOS, tuple(evidence), gate["min_macos"]
    return statuses.NATIVE, tuple(evidence), backend


def first_native_release(op: str, dtype: str, predictions: Mapping[str, Mapping[str, Prediction]]) -> str | None:
    """The oldest predicted release from which ``op`` runs on MPS (native, native_macos or composite_mps)
    for ``dtype`` in that release and every later one predicted; None if the newest does not."""
    key = display(canonical(op))
    dtype = dtype_rules.canonical_dtype(dtype)
    first = None
    for version in sorted(predictions, key=Version):
        pred = predictions[version].get(key)
        word = pred.dtype_status.get(dtype, pred.status) if pred else statuses.NOT_IN_RELEASE
        if word in statuses.RUNS_ON_MPS:
            first = first or version
        elif word != statuses.UNKNOWN:  # an unreadable release neither breaks nor starts a run
            first = None
    return first
