"""Where scan gets each release's MPS status for an op at a dtype: one adapter, so one place changes.

``PredictorSource`` asks ``matrix.predict`` (from each release's macOS arm64 wheel, cached in
~/.cache/opcompat/wheels); ``FixtureSource`` answers from a plain dict (tests, offline demos). Both
answer in the predictor's status words (matrix/predict/statuses.py, plus the measured
``not_implemented``): a release whose wheel cannot be had is answered with its ``error`` and
every op ``unknown``, and the scan goes on with the other releases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from matrix.predict import RELEASES, PredictError, statuses
from matrix.predict.allops import predict_all
from matrix.predict.dtype_rules import canonical_dtype
from matrix.predict.opnames import canonical, display
from matrix.predict.releases import resolve_version
from opcompat.trace import NO_TENSOR

NATIVE, NATIVE_MACOS, COMPOSITE_MPS, COMPOSITE = (statuses.NATIVE, statuses.NATIVE_MACOS, statuses.COMPOSITE_MPS,
                                                  statuses.COMPOSITE)
FALLBACK, FORCED_CPU, ERROR = statuses.FALLBACK, statuses.FORCED_CPU, statuses.ERROR
NOT_IN_RELEASE, UNSUPPORTED_DTYPE, UNKNOWN = statuses.NOT_IN_RELEASE, statuses.UNSUPPORTED_DTYPE, statuses.UNKNOWN
NOT_IMPLEMENTED = "not_implemented"  # measured only: no MPS kernel and PYTORCH_ENABLE_MPS_FALLBACK unset
RUNS_ON_MPS = statuses.RUNS_ON_MPS
ON_CPU = (FALLBACK, FORCED_CPU)  # the op runs, on the CPU: what the MPS fallback warning names
# The predictor's older words (predict(), the result files) in the new vocabulary.
OLD_WORDS = {"unknown_op": NOT_IN_RELEASE}
# An op-level answer that holds at every dtype: a dtype rule that cannot tell does not blur it.
DTYPE_BLIND = (FALLBACK, FORCED_CPU, ERROR, NOT_IN_RELEASE)

Progress = Callable[[str], None]  # told of each release's download, parse or failure


@dataclass(frozen=True)
class OpAnswer:
    status: str
    min_macos: str | None = None  # runs on MPS from this macOS on (a kernel's gate, or the backend's minimum)
    evidence: tuple[str, ...] = ()


@dataclass
class ReleaseAnswer:
    release: str
    answers: dict = field(default_factory=dict)  # {(op, dtype): OpAnswer}
    error: str | None = None  # why this release has no answers (its wheel could not be downloaded, ...)
    origin: str = ""

    def get(self, op: str, dtype: str) -> OpAnswer:
        if self.error:
            return OpAnswer(UNKNOWN, evidence=(self.error,))
        return self.answers.get((op, dtype), OpAnswer(UNKNOWN))


def releases_from(texts: Iterable[str] | None) -> list[str]:
    """``["2.2", "2.3.1"]`` -> ["2.2.2", "2.3.1"] (oldest first); None: every release predict covers.
    UnknownVersionError (a PredictError) names a version that is not a release."""
    if not texts:
        return list(RELEASES)
    chosen = {resolve_version(t) for t in texts}
    return sorted(chosen, key=lambda v: tuple(int(p) for p in v.split(".")))


def _word(status: str | None) -> str:
    return OLD_WORDS.get(status, status) if status else UNKNOWN


def answer_from_prediction(prediction, dtype: str) -> OpAnswer:
    """One Prediction (old or new vocabulary) at one dtype."""
    op_status = _word(prediction.status)
    per_dtype = dict(getattr(prediction, "dtype_status", None) or {})
    status = op_status if dtype == NO_TENSOR else _word(per_dtype.get(dtype, op_status))
    if status == UNKNOWN and op_status in DTYPE_BLIND:
        status = op_status
    floor = (getattr(prediction, "dtype_min_macos", None) or {}).get(dtype) or getattr(prediction, "min_macos",
                                                                                         None)
    return OpAnswer(status, floor if status in RUNS_ON_MPS else None, tuple(prediction.evidence))


def _dtypes_for_predict(dtypes: Iterable[str]) -> list[str]:
    out = []
    for dtype in dtypes:
        try:
            out.append(canonical_dtype(dtype))
        except PredictError:
            continue  # a dtype the predictor has no rules for (NO_TENSOR, quantized...): op-level answer
    return list(dict.fromkeys(out)) or ["float32"]


class PredictorSource:
    """Static predictions from each release's macOS wheel (``matrix.predict.allops.predict_all``)."""

    kind = "predicted"

    def __init__(self, download: bool = True, cache_dir=None):
        self.download, self.cache_dir = download, cache_dir
        self.label = "predicted from each release's macOS arm64 wheel (matrix.predict)"

    def answer(self, releases: list[str], pairs: Iterable[tuple[str, str]], callees: Mapping | None = None,
               progress: Progress | None = None) -> dict[str, ReleaseAnswer]:
        pairs = list(pairs)
        ops = list(dict.fromkeys(op for op, _ in pairs))
        skipped: dict[str, str] = {}

        def told(message: str) -> None:
            # predict_all names an unreadable release as "torch 2.3.1: skipped, its column is 'unknown': why"
            match = re.match(r"torch (\S+): skipped, its column is 'unknown': (.*)", message, re.S)
            if match:
                skipped[match.group(1)] = match.group(2)
            if progress:
                progress(message)

        found = predict_all(releases, ops, dtypes=_dtypes_for_predict(d for _, d in pairs), download=self.download,
                            progress=told, decompositions={op: list(c) for op, c in (callees or {}).items()},
                            cache_dir=self.cache_dir)
        out = {}
        for release in releases:
            if release in skipped:
                out[release] = ReleaseAnswer(release, error=skipped[release])
                continue
            table = found[release]
            out[release] = ReleaseAnswer(release, {(op, d): answer_from_prediction(table[display(canonical(op))], d)
                                                   for op, d in pairs})
        return out


class FixtureSource:
    """Answers from a dict, for tests and offline use (a JSON file of the same shape with ``--statuses``):

        {"2.2.2": {"aten::isin.Tensor_Tensor": "fallback",
                   "aten::cumsum.default": {"status": "native", "dtype_status": {"int64": "native_macos"},
                                            "min_macos": "13.3"}},
         "2.3.1": {...}, "2.4.1": {"error": "could not download the wheel"}}

    An op a release's dict does not list is ``not_in_release`` there (that is what the wheel would say).
    """

    kind = "predicted"

    def __init__(self, table: Mapping, label: str = "fixture statuses"):
        self.table, self.label = table, label

    def answer(self, releases, pairs, callees=None, progress=None) -> dict[str, ReleaseAnswer]:
        pairs = list(pairs)
        out = {}
        for release in releases:
            if progress:
                progress(f"torch {release}: statuses {self.label}")
            entry = self.table.get(release)
            if entry is None or "error" in entry:
                why = (entry or {}).get("error") or f"no statuses for torch {release} in {self.label}"
                out[release] = ReleaseAnswer(release, error=why)
                continue
            answers = {}
            for op, dtype in pairs:
                spec = entry.get(op, NOT_IN_RELEASE)
                spec = {"status": spec} if isinstance(spec, str) else dict(spec)
                status = spec.get("dtype_status", {}).get(dtype, spec.get("status", UNKNOWN))
                answers[(op, dtype)] = OpAnswer(status, spec.get("min_macos") if status in RUNS_ON_MPS else None,
                                                (f"{self.label}: {status}",))
            out[release] = ReleaseAnswer(release, answers, origin=self.label)
        return out
