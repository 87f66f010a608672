"""``python -m matrix scan``: the aten ops a workload calls and their MPS status in every torch release.

    from matrix.scan import scan_workload
    report = scan_workload("matrix.examples.toy_unet:denoise_step", releases=["2.2", "2.3"])
    report.first_on_mps, report.still_on_cpu()

Modules: target (what TARGET names, running it), workload (tracing it: op x dtype counts), status_source
(the one adapter to the predictor, or a fixture), replacements (registered cases and verdicts), report
(summaries and renderings), measure (``--device mps``: fallbacks measured on a Mac), cli.
"""

from matrix.scan.report import Report
from matrix.scan.status_source import FixtureSource, PredictorSource, releases_from
from matrix.scan.target import TargetError, parse
from matrix.scan.workload import Workload, workload_of


def scan_workload(spec: str, releases=None, source=None, inputs=None, on="cpu") -> Report:
    """Trace ``spec`` and answer for ``releases`` (default all) from ``source`` (default the wheels)."""
    work = workload_of(parse(spec), inputs, on)
    source = source or PredictorSource()
    chosen = releases_from(releases)
    return Report(work, source.label, source.kind, chosen, source.answer(chosen, work.pairs, work.callees))


__all__ = ["FixtureSource", "PredictorSource", "Report", "TargetError", "Workload", "releases_from",
           "scan_workload", "workload_of"]
