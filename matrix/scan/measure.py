"""``scan --device mps``: run the target on a real Mac and record every op that falls back to the CPU.

PyTorch's MPS fallback warns with TORCH_WARN_ONCE ("The operator 'aten::X' is not currently supported on
the MPS backend and will fall back to run on the CPU", aten/src/ATen/mps/MPSFallback.mm): once per
process, whichever op comes first. ``torch.set_warn_always(True)`` makes TORCH_WARN_ONCE warn every
time (c10/util/Exception.h: WarningUtils::get_warnAlways), so each call's warnings are caught around
that very call and the fallback is pinned on the op that made it. The fallback itself exists only when
PYTORCH_ENABLE_MPS_FALLBACK=1 was set before libtorch loaded; the CLI restarts itself with it set.

The same code runs under the simulated backend (matrix/simulated_mps.py) to test it here; a simulated
row is labelled so and is never written where measured rows are published (results.PublishError).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import torch

from matrix import results
from matrix.harness import harness_info
from matrix.scan import status_source as st
from matrix.scan.target import Target, TargetError, run_guarded
from matrix.scan.workload import Workload, math_sdpa, sorted_counts
from matrix.simulated_mps import DEVICE_NAME as SIMULATED_DEVICE_NAME
from opcompat import devices, records
from opcompat.records import OpRow
from opcompat.trace import CountingRecorder
from opcompat.vocab import FALLBACK_WARNING, MPS_NOT_IMPLEMENTED, UNSUPPORTED_DTYPE, display


@dataclass
class Measurement:
    workload: Workload
    answer: st.ReleaseAnswer
    stopped: str | None = None  # the op error that ended the run early, if any
    fallback_names: dict = field(default_factory=dict)  # {(op, dtype): {ops the warnings named}}


class _Watch:
    """The per-call hook: run the op, catch its warnings and errors, remember what happened."""

    def __init__(self):
        self.fallbacks: dict = {}
        self.failed: tuple | None = None  # (op, dtype, status, message)

    def __call__(self, op, dtype, func, args, kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = func(*args, **kwargs)
            except NotImplementedError as exc:
                status = st.NOT_IMPLEMENTED if MPS_NOT_IMPLEMENTED.search(str(exc)) else st.ERROR
                self.failed = (op, dtype, status, str(exc))
                raise
            except (TypeError, RuntimeError) as exc:
                status = st.UNSUPPORTED_DTYPE if UNSUPPORTED_DTYPE.search(str(exc)) else st.ERROR
                self.failed = (op, dtype, status, str(exc))
                raise
        for warning in caught:
            match = FALLBACK_WARNING.search(str(warning.message))
            if match:
                self.fallbacks.setdefault((op, dtype), set()).add(match.group(1))
            else:  # not ours: let the user see it as they would have
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return out


@contextlib.contextmanager
def _warn_always():
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        yield
    finally:
        torch.set_warn_always(before)


def measure(target: Target, run, label: str, device_mode=None) -> Measurement:
    """Run ``run()`` (inputs already on the device) under the recorder; ``device_mode``: a dispatch mode
    that plays the device (the simulated MPS), entered below the recorder."""
    watch = _Watch()
    recorder = CountingRecorder(on_call=watch)

    def observed():
        with _warn_always(), (device_mode or contextlib.nullcontext()), recorder:
            run()

    stopped = None
    try:
        # The simulated device lives on the CPU, where SDPA would pick the CPU-only flash kernel; the
        # statuses it plays were predicted for the math path MPS takes (see workload.SDPA_NOTE).
        run_guarded(target, observed, "cpu" if device_mode is not None else "mps",
                    math_sdpa() if device_mode is not None else None)
    except TargetError:
        if watch.failed is None:
            raise  # the target's own failure, not an op the device refused
        op, dtype, status, message = watch.failed
        recorder.counts[(op, dtype)] += 1
        stopped = f"{op} ({dtype}): {status}: {message.splitlines()[0][:300]}"
    answers = {}
    for key in recorder.counts:
        if watch.failed and key == watch.failed[:2]:
            answers[key] = st.OpAnswer(watch.failed[2], evidence=(watch.failed[3][:500],))
        elif key in watch.fallbacks:
            named = ", ".join(sorted(watch.fallbacks[key]))
            answers[key] = st.OpAnswer(st.FALLBACK, evidence=(f"the MPS fallback warning named {named}",))
        else:
            answers[key] = st.OpAnswer(st.NATIVE, evidence=("ran on the device without a fallback warning",))
    workload = Workload(target.spec, sorted_counts(recorder.counts), {}, f"torch {torch.__version__} on {label}")
    return Measurement(workload, st.ReleaseAnswer(label, answers, origin=label), stopped, dict(watch.fallbacks))


# -- the row the matrix takes ------------------------------------------------------------------------
RESULT_WORDS = {st.NATIVE: "native", st.FALLBACK: "fallback", st.NOT_IMPLEMENTED: "not_implemented",
                st.UNSUPPORTED_DTYPE: "unsupported_dtype", st.ERROR: "error"}


def op_rows(measurement: Measurement) -> list[OpRow]:
    rows = []
    for (op, dtype), n in measurement.workload.counts.items():
        got = measurement.answer.get(op, dtype)
        message = got.evidence[0] if got.status not in (st.NATIVE, st.FALLBACK) and got.evidence else ""
        rows.append(OpRow(display(op), dtype, RESULT_WORDS.get(got.status, "error"), message,
                          [f"scan of {measurement.workload.target}: {n} call(s); {'; '.join(got.evidence)}"]))
    return rows


def write_row(measurement: Measurement, directory, simulated: bool) -> str:
    """Merge this scan's op rows into this machine's result file (kept: its other rows, cases, verdicts)."""
    kind = "simulated" if simulated else "measured"
    machine = devices.machine("mps", simulated_name=SIMULATED_DEVICE_NAME if simulated else None)
    ops, cases, verdicts = op_rows(measurement), [], []
    path = results.RESULTS_DIR if directory is None else directory
    existing_path = path / records.result_filename(kind, devices.torch_info(), machine)
    if existing_path.exists():
        old = results.load(existing_path)
        new_keys = {(r.op, r.dtype) for r in ops}
        ops = [r for r in old.ops if (r.op, r.dtype) not in new_keys] + ops
        cases, verdicts = old.cases, old.verdicts
    record = results.make(kind, devices.torch_info(), machine, ops, cases, verdicts, harness_info=harness_info())
    return str(results.write(record, path))
