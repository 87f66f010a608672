"""``predict()``: the library entry point, tying version, wheel, rules and dtype rules together."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from matrix.predict import dtype_rules, release_data, statuses
from matrix.predict.model import Prediction
from matrix.predict.opnames import base, canonical, display
from matrix.predict.release_data import ReleaseData
from matrix.predict.releases import resolve_version
from matrix.predict.rules import Resolver


def predict(torch_version: str, ops: Iterable[str], *,
            decompositions: Mapping[str, Sequence[str]] | None = None,
            dtypes: Sequence[str] = dtype_rules.DEFAULT_DTYPES, download: bool = True,
            cache_dir: Path | None = None) -> dict[str, Prediction]:
    """{op as given: Prediction} for torch ``torch_version`` ("2.2" or "2.2.2") on MPS.

    ``ops``: aten overloads, "aten::std_mean.correction" or "std_mean.correction" ("sqrt.default" =
    "sqrt"). ``decompositions``: {op: [ops it reaches]} from the tracer, used for composite ops.
    ``dtype_status`` is keyed by canonical dtype names ("double" -> "float64"). ``download``: fetch the
    macOS wheel with pip when it is not cached. ``cache_dir``: default $OPCOMPAT_CACHE/wheels.
    Raises a PredictError subclass for an unknown version or dtype, a corrupt wheel, a failed download.
    """
    return predict_release(torch_version, ops, decompositions=decompositions, dtypes=dtypes, download=download,
                           cache_dir=cache_dir)[1]


def predict_release(torch_version: str, ops: Iterable[str], *,
                    decompositions: Mapping[str, Sequence[str]] | None = None,
                    dtypes: Sequence[str] = dtype_rules.DEFAULT_DTYPES, download: bool = True,
                    cache_dir: Path | None = None) -> tuple[ReleaseData, dict[str, Prediction]]:
    """``predict``, plus the release data it read (the CLI names the wheel it came from)."""
    version = resolve_version(torch_version)
    wanted = list(dict.fromkeys(dtype_rules.canonical_dtype(d) for d in dtypes))
    ops = [ops] if isinstance(ops, str) else list(ops)  # a lone "sqrt" is one op, not four letters
    release = release_data.load(version, download=download, directory=cache_dir)
    resolver = Resolver(release, decompositions)
    lists = release.test_lists
    all_keys = list({k for entries in (lists or {}).get("lists", {}).values() for k in entries}
                    | {k for names in (lists or {}).get("sets", {}).values() for k in names})
    yaml_bases = {base(name) for name in release.ops}
    out = {}
    for op in ops:
        name = canonical(op)
        verdict = resolver.resolve(name)
        if verdict.status in statuses.RESULT_FILE_WORDS:  # forced_cpu/error: the result files' words
            verdict = replace(verdict, status=statuses.RESULT_FILE_WORDS[verdict.status])
        keys = dtype_rules.opinfo_keys(base(name), all_keys, yaml_bases)
        per_dtype, why = {}, []
        for dtype in wanted:
            per_dtype[dtype], lines = dtype_rules.dtype_status(version, verdict.status, dtype, keys, lists)
            why.extend(lines)
        out[op] = Prediction(op=display(name), status=verdict.status, dtype_status=per_dtype,
                             evidence=(*verdict.evidence, *why))
    return release, out
