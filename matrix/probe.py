"""Device probe: does each traced op overload, and each case, run on a device, and how?

For every op overload the tracer finds (``opcompat.trace.trace_all`` at float32 and float16) and every
probed dtype, the traced call is replayed in a child process (matrix.probe_child, run by
matrix.probe_runner) on the device and on the CPU, and gets one status (matrix.probe_status). Each case
runs too: does ``case.fn`` run on the device with no fallback, and which ops fell back.

MPS: PyTorch reads ``PYTORCH_ENABLE_MPS_FALLBACK`` once when it loads. Without it, an op with no MPS
kernel raises NotImplementedError; with it, the op runs on the CPU after a warning that is printed once
per process. So the variable is only ever set in a child's environment, never here; mode ``both``
first probes without it (native vs not implemented), then re-probes the not-implemented items with it
set (fallback vs not implemented), and a child stops after the first fallback warning it sees so that
each fallback is seen by a fresh process. CUDA and CPU have no fallback: their items are batched into
few children, restarted after a crash or hang so that one bad item costs only itself.

``simulate=True`` probes the simulated MPS backend (matrix.simulated_mps) with the same children and
the same parsing; its results say so and are never published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cases
from matrix.predicted_rows import installed_prediction
from matrix.probe_runner import Runner, child_env
from matrix.probe_status import case_row, classify, op_row, pass_labels
from opcompat.records import CaseRow, OpRow, ProbeItem
from opcompat.trace import FAMILY_CASE, MOVE_UNKNOWN, is_device_move, trace_all
from opcompat.vocab import DTYPE_NAMES

TRACE_DTYPES = ("float32", "float16")  # float16 reaches upcasts (_to_copy) that float32 does not
MPS_FALLBACK_MODES = ("both", "on", "off")


# -- what to probe ---------------------------------------------------------------------------------
def trace_cases(registered=None) -> dict:
    """{dtype: trace_all(cases, dtype)} at TRACE_DTYPES (default: every registered case)."""
    registered = cases.all_cases()[0] if registered is None else registered
    return {d: trace_all(registered, d) for d in TRACE_DTYPES}


def traced(traces=None):
    """(op calls, {case: {trace dtype: [(op, dtype it ran at)]}}) from the tracer at TRACE_DTYPES.

    The op calls are the matrix's op rows: each op keeps the first call seen, float32 first.
    ``traces`` (tests): {dtype: trace_all(dtype)}.
    """
    if traces is None:
        traces = trace_cases()
    calls, case_ops = {}, {}
    for dtype in TRACE_DTYPES:
        for name, found in traces.get(dtype, {}).items():
            if name.startswith(FAMILY_CASE):  # other families' cases are not probed: family_traced
                continue
            for call in found:
                calls.setdefault(call.op, call)
            if name.startswith("case:"):
                reached = case_ops.setdefault(name[len("case:"):], {}).setdefault(dtype, [])
                reached.extend((c.op, _call_dtype(c) or dtype) for c in found)
    return list(calls.values()), case_ops


def family_traced(traces=None):
    """({case: {trace dtype: [(op, dtype it ran at)]}}, {case: leaves the device: True, False, or None where
    unknown}) for the cases of families other than std_mean (``opcompat.trace.trace_family_case``)."""
    if traces is None:
        traces = trace_cases()
    case_ops, leaves = {}, {}
    for dtype in TRACE_DTYPES:
        for key, found in traces.get(dtype, {}).items():
            if not key.startswith(FAMILY_CASE):
                continue
            name, _, at = key[len(FAMILY_CASE):].rpartition("@")
            moves = [c for c in found if is_device_move(c)]
            case_ops.setdefault(name, {})[at] = [(c.op, _call_dtype(c) or at) for c in found if not is_device_move(c)]
            unknown = any(c.op == MOVE_UNKNOWN for c in moves)
            was = leaves.get(name, False)
            leaves[name] = True if was or (moves and not unknown) else (None if unknown else was)
    return case_ops, leaves


def _call_dtype(call):
    for value in (*call.args, *(v for _, v in call.kwargs)):
        if isinstance(value, dict) and "tensor" in value:
            return value["dtype"]
    return None


def _jsonable(value):
    return json.loads(json.dumps(value))


def op_item(call, dtype, seed) -> ProbeItem:
    return ProbeItem("op", dtype, seed, op=call.op, args=_jsonable(call.args), kwargs=_jsonable(call.kwargs))


def case_item(case, dtype, seed) -> ProbeItem:
    return ProbeItem("case", dtype, seed, case=case)


# -- the probe ---------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    device: str
    simulated: bool
    ops: list[OpRow]
    cases: list[CaseRow]
    children: int = 0


def probe(device: str, *, dtypes=DTYPE_NAMES, simulate=False, prediction=None, mps_fallback="both", runner=None,
          traces=None, case_names=None) -> ProbeResult:
    """Probe ``device`` ("cpu", "cuda", "cuda:1", "mps"; "mps" with ``simulate`` needs no Mac).

    - ``dtypes``: probed dtypes (default: all four; the device's refusals are statuses, not skips).
    - ``prediction``: for ``simulate``, {op: {status, dtype_status}} the simulated backend applies
      (default: matrix.predict for the installed torch).
    - ``mps_fallback``: "both" (default), "on" (only with the variable) or "off" (only without).
    - ``runner``: a Runner (timeouts, or a substitute child for tests); ``traces``: see ``traced``.
    - ``case_names``: cases to run (default: every traced case).
    """
    if mps_fallback not in MPS_FALLBACK_MODES:
        raise ValueError(f"mps_fallback={mps_fallback!r}: choose from {', '.join(MPS_FALLBACK_MODES)}")
    is_mps = simulate or device.startswith("mps")
    if simulate and not device.startswith("mps"):
        raise ValueError(f"simulate=True simulates MPS; device={device!r} is not mps")
    runner = runner or Runner()
    calls, case_ops = traced(traces)
    names = list(case_ops) if case_names is None else [n for n in case_names if n in case_ops]
    items = [op_item(c, d, seed=i) for i, (c, d) in enumerate((c, d) for c in calls for d in dtypes)]
    items += [case_item(n, d, seed=0) for n in names for d in dtypes]
    job = {"device": "mps" if simulate else device, "simulate": simulate}
    if simulate:
        job["prediction"] = prediction if prediction is not None else installed_prediction([c.op for c in calls])

    def pass_with(fallback, subset):
        return runner.run(job, [items[i] for i in subset], child_env(fallback))

    everything = list(range(len(items)))
    first_fallback = is_mps and mps_fallback == "on"
    first = dict(zip(everything, pass_with(first_fallback, everything)))
    second = {}
    if is_mps and mps_fallback == "both":
        again = [i for i in everything if classify(first[i])[0] == "not_implemented"]
        if again:
            second = dict(zip(again, pass_with(True, again)))
    labels = pass_labels(device, is_mps)
    ops = [op_row(item.op, item.dtype, first[i], second.get(i), labels, first_fallback)
           for i, item in enumerate(items) if item.kind == "op"]
    op_status = {(r.op, r.dtype): r.status for r in ops}
    found_cases = [case_row(item.case, item.dtype, first[i], second.get(i), op_status)
                   for i, item in enumerate(items) if item.kind == "case"]
    return ProbeResult("mps" if simulate else device, simulate, ops, found_cases, runner.children_started)
