"""The benchmark runner: what one item of the sweep times, and what the result file says about it.

A *group* (one shape, dtype and reduction) is the fused op, every case that fits the reduction and a
device-to-device copy, timed together by opcompat.timing.Interleaved: each variant first makes one
untimed probe call (it notices a CPU fallback; its output is checked against float64 std_mean: a wrong
result fails the test, except for forms the verdicts already call non-equivalent, where it is recorded
as a finding), then its eager burst size is calibrated and, on CUDA, its calls are captured in a graph;
then the rounds run, every variant once per round. The *fallback* item is the CPU fallback path alone.

``drive(round_fn, rounds, warmup) -> skip`` runs the rounds: pytest-benchmark's ``pedantic`` in the tests
(see test_speed.py), a plain loop elsewhere; it returns how many leading rounds were warm-up.
Everything matrix/speed needs goes into the returned dict (pytest-benchmark's ``extra_info``).
"""

from __future__ import annotations

import time

import torch

import cases
from opcompat.compare import close
from opcompat.timing import (
    EAGER_WALL,
    GRAPH,
    ORDER_NOTE,
    Interleaved,
    Unit,
    calibrate,
    capture_graph,
    graph_calls,
    summary,
    watch_fallback,
)

from . import sweep as sw
from .session import fallback_ops


def plain_drive(round_fn, rounds: int, warmup: int) -> int:
    for _ in range(warmup + rounds):
        round_fn()
    return warmup


# -- what each variant is ------------------------------------------------------------------------------
def resolve(variant: str, point: sw.Point, bench):
    """The callable for a variant of the point's group, and what the result file says about it."""
    info = {"variant": variant, "bytes_moved": point.nbytes}
    if variant == sw.COPY:
        info.update(kind="copy", label="device-to-device copy (bandwidth reference)", equivalent=None,
                    bytes_moved=2 * point.nbytes)
        return sw.copy_call(bench.copy_destination(point)), info
    case = cases.get(variant)
    info.update(bench.describe_case(case, point))
    if variant == sw.FUSED:
        info["kind"] = "fused"
    return sw.case_call(case, point.dims), info


def point_info(point: sw.Point, bench) -> dict:
    return {"dtype": point.dtype, "shape": list(point.shape), "numel": point.numel,
            "dims": None if point.dims is None else list(point.dims), "input_bytes": point.nbytes,
            "sweep": bench.sweep.name}


# -- a group -------------------------------------------------------------------------------------------
def measure_group(point: sw.Point, bench, drive=plain_drive):
    """(extra_info, problems): the interleaved rounds of the point's group; problems are wrong outputs of
    forms not known to be wrong, and verdicts that raised (the caller fails the test on them)."""
    clock, policy = bench.clock, bench.sweep.policy
    rotation = bench.inputs(point)
    native = not bench.fused_fallback(point, watch_fallback)
    members, skipped = [], []
    for variant in sw.variants(point.dims):
        if variant == sw.FUSED and not native:
            skipped.append({"variant": variant, "reason": f"torch.std_mean falls back to the CPU on {bench.device} "
                                                          "here: it is measured as the 'fallback (real)' item"})
            continue
        members.append(_prepare(variant, point, bench, rotation))
    group = Interleaved([m["unit"] for m in members], reference=sw.FUSED if native else None)
    round_s = sum(m["round_s"] for m in members)
    rounds, warmup = policy.rounds(round_s), policy.warmup_rounds(round_s)
    skip = drive(group, rounds, warmup)
    timed = group.rounds_done - skip
    if timed < 1:
        raise RuntimeError(f"{point}: no timed round ran ({group.rounds_done} rounds, {skip} of them warm-up)")
    sm_clock = clock.sm_clock_mhz()
    variants, problems = [], []
    for m in members:
        info = {**m["info"], **_timings(group, m["unit"], skip)}
        variants.append(info)
        problem = m["info"].get("output_problem")
        if problem and info.get("equivalent") is not False:
            problems.append(problem)
        if info.get("verdict_error"):
            problems.append(f"the verdict of {info['variant']} at {point.dtype} on {bench.device} raised "
                            f"{info['verdict_error']} (timing recorded, labelled 'no verdict')")
    for m in members:  # graphs hold their memory pools until dropped
        m["unit"].graph = None
    extra = {**point_info(point, bench), "kind": "group", "reference": group.reference, "timers": list(clock.timers),
             "rotation": len(rotation), "rounds": timed, "warmup_rounds": skip, "order": ORDER_NOTE,
             "first_orders": group.orders[skip:skip + 2], "sm_clock_mhz": sm_clock, "variants": variants,
             "not_timed": skipped}
    return extra, problems


def _prepare(variant, point, bench, rotation) -> dict:
    clock = bench.clock
    call, info = resolve(variant, point, bench)
    out, messages = watch_fallback(lambda: call(rotation.first))
    clock.synchronize()
    problem = output_problem(variant, point, out, rotation.first, bench)
    del out
    k, per_call = calibrate(clock, call, rotation, bench.sweep.policy)
    graph, g, graph_error, graph_s = None, 0, "", 0.0
    if GRAPH in clock.timers and not messages:
        g = graph_calls(k, len(rotation))
        try:
            graph, _ = capture_graph(call, [rotation.tensors[i % len(rotation)] for i in range(g)])
            clock.synchronize()
            start = time.perf_counter()
            graph.replay()
            clock.synchronize()
            graph_s = time.perf_counter() - start
        except Exception as exc:  # recorded: the row then has eager times only, and says why
            graph, g, graph_error = None, 0, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            clock.synchronize()
    info.update(falls_back=bool(messages), fallback_ops=fallback_ops(messages), calls_per_round=k, graph_calls=g,
                graph_error=graph_error, output_ok=problem is None, output_problem=problem or "")
    unit = Unit(variant, clock, call, rotation, k, graph, g)
    return {"unit": unit, "info": info, "round_s": k * per_call + graph_s}


def _timings(group: Interleaved, unit: Unit, skip: int) -> dict:
    """Per timer: the summary of the per-call times, of the per-round ratios to the reference, and the raw
    per-round values (kept so that any statistic can be recomputed from the file)."""
    times, ratios, raw = {}, {}, {}
    for timer in unit.times:
        values = group.times(unit.name, timer, skip)
        times[timer] = summary(values)
        ratios[timer] = summary(group.ratios(unit.name, timer, skip))
        raw[timer] = values
    return {"times": times, "ratio_vs_fused": ratios, "raw_s": raw}


# -- the fallback --------------------------------------------------------------------------------------
def measure_fallback(point: sw.Point, bench, drive=plain_drive):
    """(extra_info, problems): the CPU fallback path of the point, eager, on the host clock."""
    clock, policy = bench.clock, bench.sweep.fallback_policy
    rotation = bench.inputs(point)
    native = not bench.fused_fallback(point, watch_fallback)
    kind = "emulated" if native else "real"
    call = sw.emulated_fallback_call(point.dims) if native else sw.fused_call(point.dims)
    out, messages = watch_fallback(lambda: call(rotation.first))
    clock.synchronize()
    problem = output_problem(sw.FALLBACK, point, out, rotation.first, bench)
    del out
    k, per_call = calibrate(clock, call, rotation, policy)
    unit = Unit(sw.FALLBACK, clock, call, rotation, k)
    group = Interleaved([unit], reference=None)
    rounds = policy.rounds(k * per_call)
    skip = drive(group, rounds, policy.warmup_rounds(k * per_call))
    values = group.times(sw.FALLBACK, EAGER_WALL, skip)
    extra = {**point_info(point, bench), "kind": "fallback", "variant": sw.FALLBACK, "fallback": kind,
             "label": f"fallback ({kind})", "equivalent": True, "computes": "std_mean", "form": sw.FALLBACK_FORM,
             "falls_back": bool(messages), "fallback_ops": fallback_ops(messages), "calls_per_round": k,
             "rounds": len(values), "times": {EAGER_WALL: summary(values)}, "raw_s": {EAGER_WALL: values},
             "output_ok": problem is None, "output_problem": problem or ""}
    return extra, [problem] if problem else []


# -- is the output right? ------------------------------------------------------------------------------
def output_problem(variant: str, point: sw.Point, out, x, bench):
    """None when the variant computed what it stands for, else the first line of what is wrong."""
    try:
        check_output(variant, point, out, x, bench)
    except AssertionError as exc:
        return str(exc).splitlines()[0]
    return None


def check_output(variant: str, point: sw.Point, out, x, bench):
    """The variant computes the statistic it stands for (a copy: the input), within a loose bound;
    ``bench.truth`` gives float64 std and mean of ``x`` (computed once per group)."""
    __tracebackhide__ = True
    if variant == sw.COPY:
        assert torch.equal(out, x), f"copy differs from its source [{point}]"
        return
    if out[0].dtype == torch.bool:  # a decision case: std > threshold, at the call site's own dims/correction
        case = cases.get(variant)
        site = sw.call_kwargs(case, point.dims)
        std64, _ = bench.truth(point, site["dim"], site["correction"])
        got, expected = out[0].reshape(-1).cpu(), std64 > case.threshold
        assert torch.equal(got, expected), f"decision {got.tolist()}, should be {expected.tolist()} [{point}]"
        return
    loose_std_mean_check(out, bench.truth(point, point.dims, sw.CORRECTION), where=f"{variant} at {point}")


def loose_std_mean_check(out, truth, *, where=""):
    """std (and mean, if given) against the float64 ``truth`` = (std, mean), flattened, through the one
    comparison engine in loose mode (60 % of the dtype's digits; the mean's error in units of the std)."""
    __tracebackhide__ = True
    ref_std, ref_mean = truth
    std = out[0].reshape(-1).cpu()
    report = close(std, ref_std.to(std.dtype), truth=ref_std, mode="loose", name="std")
    assert report.ok, f"{report} [{where}]"
    if len(out) > 1:
        mean = out[1].reshape(-1).cpu()
        report = close(mean, ref_mean.to(mean.dtype), truth=ref_mean, mode="loose", name="mean", scale=ref_std)
        assert report.ok, f"{report} [{where}]"
