"""The speed tooling itself: ratios, recommendation, spread, chart and command line of matrix/speed.py on
a small synthetic pytest-benchmark JSON with known medians; the timing helpers and the sweep of
suite/bench; and one real quick run read back, so the two sides cannot drift apart.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import warnings
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from matrix import speed
from suite.bench import sweep as sw
from suite.bench import timing
from suite.bench.session import fallback_ops

pytestmark = pytest.mark.meta
ROOT = Path(__file__).resolve().parents[2]
BIG = (2, 4, 512, 512)  # 2M elements: inside the spread check
SMALL = (2, 4, 128, 128)
MS = 1e-3


# -- a synthetic benchmark file --------------------------------------------------------------------------
def bench(variant, median, *, shape=BIG, dtype="float32", dims=(1, 2, 3), kind="case", equivalent=True,
          computes="std_mean", uses_fused_op=False, falls_back=False, events=True, **extra):
    numel = 1
    for n in shape:
        numel *= n
    nbytes = numel * (4 if dtype == "float32" else 2)
    info = {"variant": variant, "dtype": dtype, "shape": list(shape), "numel": numel,
            "dims": None if dims is None else list(dims), "input_bytes": nbytes,
            "bytes_moved": 2 * nbytes if kind == "copy" else nbytes, "kind": kind, "equivalent": equivalent,
            "label": extra.pop("label", "equivalent" if equivalent else "not equivalent: wrong correction"),
            "computes": computes, "uses_fused_op": uses_fused_op, "falls_back": falls_back,
            "fallback_ops": ["aten::std_mean.correction"] if falls_back else [],
            "device_median_s": median if events else None, **extra}
    return {"group": "g", "name": f"test_speed[{variant}]", "extra_info": info,
            "stats": {"median": median * 1.1, "rounds": 10, "min": median, "max": median}}


def group(shape=BIG, scale=1.0, **kw):
    """One point: fused 1 ms, the fallback 100 ms, and decompositions around them."""
    return [
        bench("fused", 1.0 * MS * scale, shape=shape, kind="fused", uses_fused_op=True, **kw),
        bench("std_plus_mean", 1.5 * MS * scale, shape=shape, **kw),
        bench("aniso_std_and_mean", 1.52 * MS * scale, shape=shape, **kw),  # same aten calls: a tie
        bench("var_mean_sqrt", 1.0 * MS * scale, shape=shape, equivalent=False, **kw),  # faster, not equivalent
        bench("upcast", 1.0 * MS * scale, shape=shape, uses_fused_op=True, **kw),  # equivalent but is the op
        bench("rescale_manual", 1.2 * MS * scale, shape=shape, computes="std", equivalent=False, **kw),
        bench("fallback", 100.0 * MS * scale, shape=shape, kind="fallback", label="fallback (emulated)",
              fallback="emulated", **kw),
    ]


def run_json(benchmarks, *, device="cuda", device_name="Test GPU", torch_version="2.11.0", sweep="full"):
    return {"machine_info": {"opcompat": {"device": device, "device_name": device_name, "torch": torch_version,
                                          "cuda": "12.8", "sweep": sweep, "timer": "cuda events"}},
            "commit_info": {}, "benchmarks": benchmarks, "datetime": "2026-01-01", "version": "5.1.0"}


def copy_bench(median, shape=BIG):
    return bench("copy", median, shape=shape, kind="copy", equivalent=None, dims=None, computes=None)


@pytest.fixture
def two_runs(tmp_path):
    """Repeat 1 and repeat 2; in repeat 2 the fallback at BIG is 20% slower, everything else 1%."""
    first = [copy_bench(2.0 * MS), *group(), *group(shape=SMALL, scale=0.1)]
    second = copy.deepcopy(first)
    for b in second:
        e = b["extra_info"]
        factor = 1.2 if (e["variant"], e["numel"]) == ("fallback", 2 * 4 * 512 * 512) else 1.01
        e["device_median_s"] *= factor
        b["stats"]["median"] *= factor
    paths = []
    for i, benchmarks in enumerate((first, second), start=1):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(run_json(benchmarks)))
        paths.append(path)
    return paths


def rows_by(result, **match):
    return [r for r in result["rows"] if all(r[k] == v for k, v in match.items())]


# -- ratios ----------------------------------------------------------------------------------------------
def test_ratios_come_from_the_same_run(two_runs):
    result = speed.analyse(speed.load(two_runs))
    assert result["timer"] == speed.EVENTS
    numel = 2 * 4 * 512 * 512
    copy_bw = 2 * numel * 4 / (2.0 * MS) / 1e9
    assert result["copy_bandwidth_by_repeat"][0] == pytest.approx(copy_bw)
    (row,) = rows_by(result, variant="std_plus_mean", numel=numel, repeat=1)
    assert row["median_s"] == pytest.approx(1.5 * MS)  # the event median, not the wall median
    assert row["wall_median_s"] == pytest.approx(1.65 * MS)
    assert row["GBps"] == pytest.approx(numel * 4 / (1.5 * MS) / 1e9)
    assert row["frac_copy_bw"] == pytest.approx(row["GBps"] / copy_bw)
    assert row["speedup_vs_fallback"] == pytest.approx(100 / 1.5)
    assert row["slowdown_vs_fused"] == pytest.approx(1.5)
    # repeat 2's fallback is 20% slower and its own speedup says so: no mixing of runs
    (row2,) = rows_by(result, variant="std_plus_mean", numel=numel, repeat=2)
    assert row2["speedup_vs_fallback"] == pytest.approx(100 * 1.2 / (1.5 * 1.01))
    (fallback,) = rows_by(result, variant="fallback", numel=numel, repeat=1)
    assert fallback["label"] == "fallback (emulated)" and fallback["speedup_vs_fallback"] == pytest.approx(1)


def test_row_fields_are_those_build_reads(two_runs):
    result = speed.analyse(speed.load(two_runs))
    assert result["schema_version"] == speed.SCHEMA_VERSION and result["source"] == "measured"
    assert {"device", "device_name", "torch", "cuda"} <= set(result["machine"])
    required = {"variant", "equivalent", "label", "dtype", "shape", "numel", "dims", "median_s", "GBps",
                "frac_copy_bw", "speedup_vs_fallback", "slowdown_vs_fused", "repeat"}
    assert all(required <= set(r) for r in result["rows"])
    assert {r["repeat"] for r in result["rows"]} == {1, 2}
    assert all(isinstance(r["equivalent"], bool) for r in result["rows"])


def test_wall_clock_when_any_benchmark_lacks_events(tmp_path):
    benchmarks = group()
    benchmarks[1]["extra_info"]["device_median_s"] = None
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json(benchmarks)))
    result = speed.analyse(speed.load([path]))
    assert result["timer"] == "wall clock"
    (row,) = rows_by(result, variant="std_plus_mean")
    assert row["median_s"] == pytest.approx(1.65 * MS)


# -- recommendation --------------------------------------------------------------------------------------
def test_recommends_the_fastest_equivalent_decomposition(two_runs):
    result = speed.analyse(speed.load(two_runs))
    recs = {r["size"]: r for r in result["recommendation"]}
    rec = recs[2 * 4 * 512 * 512]
    # var_mean_sqrt is faster but not equivalent; upcast is the fused op itself; rescale_manual computes
    # only the std: none of them may be recommended.
    assert rec["variant"] == "std_plus_mean"
    assert rec["ties"] == ["aniso_std_and_mean"]
    assert rec["throughput_ratio_vs_fused"] == pytest.approx(1 / 1.5)
    assert rec["speedup_vs_fallback"] == pytest.approx(((100 / 1.5) * (120 / 1.515)) ** 0.5)
    assert rec["repeats_agree"] is True
    assert rec["dtype"] == "float32" and rec["dims"] == [1, 2, 3] and rec["shape"] == list(BIG)
    (summary,) = result["summary"]
    assert summary["variant"] == "std_plus_mean" and summary["wins"] == summary["of"] == 2


def test_recommendation_where_the_fused_op_falls_back(tmp_path):
    """On MPS with a real fallback there is no native fused row: no slowdown against it, still a winner."""
    benchmarks = [b for b in group() if b["extra_info"]["kind"] != "fused"]
    fb = benchmarks[-1]["extra_info"]
    fb.update(label="fallback (real)", fallback="real", falls_back=True)
    # a decomposition that itself falls back does not stay on the device
    next(b for b in benchmarks if b["extra_info"]["variant"] == "std_plus_mean")["extra_info"]["falls_back"] = True
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json(benchmarks, device="mps", device_name="Apple MPS")))
    result = speed.analyse(speed.load([path]))
    (rec,) = result["recommendation"]
    assert rec["variant"] == "aniso_std_and_mean"
    assert rec["throughput_ratio_vs_fused"] is None
    assert rec["speedup_vs_fallback"] == pytest.approx(100 / 1.52)
    assert all(r["slowdown_vs_fused"] is None for r in result["rows"])
    assert result["fallback"] == "fallback (real)"


def test_a_wrong_output_at_the_benchmark_size_disqualifies(tmp_path):
    benchmarks = group()
    e = next(b for b in benchmarks if b["extra_info"]["variant"] == "std_plus_mean")["extra_info"]
    e.update(output_ok=False, output_problem="std off by inf relative, more than 0.01")
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json(benchmarks)))
    result = speed.analyse(speed.load([path]))
    (rec,) = result["recommendation"]
    assert rec["variant"] == "aniso_std_and_mean"
    (row,) = rows_by(result, variant="std_plus_mean")
    assert row["label"] == "equivalent; wrong output at this size: std off by inf relative, more than 0.01"


def test_no_equivalent_decomposition_says_so(tmp_path):
    benchmarks = [b for b in group() if b["extra_info"]["variant"] in ("fused", "var_mean_sqrt", "fallback")]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json(benchmarks)))
    (rec,) = speed.analyse(speed.load([path]))["recommendation"]
    assert rec["variant"] is None and "no equivalent" in rec["reason"]


# -- spread ----------------------------------------------------------------------------------------------
def test_spread_names_rows_apart_by_more_than_the_limit(two_runs):
    sp = speed.analyse(speed.load(two_runs))["spread"]
    assert sp["repeats"] == 2
    assert sp["checked"] == len(group()) + 1  # BIG rows and its copy; SMALL is below min_numel
    assert [o["variant"] for o in sp["over_limit"]] == ["fallback"]
    assert sp["over_limit"][0]["spread"] == pytest.approx(0.2)
    assert sp["over_limit"][0]["medians_s"] == pytest.approx([0.1, 0.12])
    assert sp["over_limit"][0]["reasons"] == ["fallback_cpu"]
    assert sp["reason_counts"] == {"fallback_cpu": 1}
    assert sp["max"] == pytest.approx(0.2)


MID = (2, 4, 512, 1024)  # 4M elements, inside the spread check too


def test_spread_says_why_where_the_data_can(tmp_path):
    """Each reason on a row built to show it, and a row that shows none of them."""
    first = [*group(), *group(shape=MID, scale=0.01), *group(dtype="float16")]
    second = copy.deepcopy(first)
    changes = {  # (variant, shape, dtype) -> factor in repeat 2, extra_info of repeat 1 and 2
        # float32 BIG: the whole group 30% slower; var_mean_sqrt 50%, more than the group explains
        **{(v, BIG, "float32"): (1.3, {}, {}) for v in ("fused", "std_plus_mean", "aniso_std_and_mean", "upcast",
                                                         "rescale_manual")},
        ("var_mean_sqrt", BIG, "float32"): (1.5, {}, {}),
        ("std_plus_mean", MID, "float32"): (1.1, {}, {}),  # 15 us a call
        ("std_plus_mean", BIG, "float16"): (1.1, {}, {"device_iqr_s": 0.2 * 1.65 * MS}),
        ("aniso_std_and_mean", BIG, "float16"): (1.1, {"sm_clock_mhz": 1980}, {"sm_clock_mhz": 1500}),
        ("upcast", BIG, "float16"): (1.1, {"sm_clock_mhz": 1980}, {"sm_clock_mhz": 1980}),
    }
    for b1, b2 in zip(first, second):
        e1, e2 = b1["extra_info"], b2["extra_info"]
        factor, extra1, extra2 = changes.get((e1["variant"], tuple(e1["shape"]), e1["dtype"]), (1.0, {}, {}))
        e2["device_median_s"] *= factor
        e1.update(extra1)
        e2.update(extra2)
    paths = []
    for i, benchmarks in enumerate((first, second), start=1):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(run_json(benchmarks)))
    sp = speed.analyse(speed.load(paths))["spread"]
    reasons = {(o["variant"], o["shape"], o["dtype"]): o["reasons"] for o in sp["over_limit"]}
    big, mid = "x".join(map(str, BIG)), "x".join(map(str, MID))
    assert reasons == {
        **{(v, big, "float32"): ["group_shift"] for v in ("fused", "std_plus_mean", "aniso_std_and_mean", "upcast",
                                                           "rescale_manual")},
        ("var_mean_sqrt", big, "float32"): ["group_shift_partial", "unexplained"],
        ("std_plus_mean", mid, "float32"): ["launch_bound"],
        ("std_plus_mean", big, "float16"): ["noisy"],
        ("aniso_std_and_mean", big, "float16"): ["sm_clock"],
        ("upcast", big, "float16"): ["unexplained"],
    }
    by_variant = {(o["variant"], o["shape"], o["dtype"]): o["explanation"] for o in sp["over_limit"]}
    assert "moved 30% between repeats" in by_variant[("fused", big, "float32")]
    assert "15.4% apart without that" in by_variant[("var_mean_sqrt", big, "float32")]
    assert by_variant[("std_plus_mean", mid, "float32")].startswith("15.0 us a call, under 20 us")
    assert "repeat 2 spread by 20%" in by_variant[("std_plus_mean", big, "float16")]
    assert "1500 to 1980 MHz" in by_variant[("aniso_std_and_mean", big, "float16")]
    assert sp["reason_counts"] == {"group_shift": 5, "group_shift_partial": 1, "launch_bound": 1, "noisy": 1,
                                   "sm_clock": 1, "unexplained": 2}


# -- reading errors --------------------------------------------------------------------------------------
def test_load_refuses_foreign_and_mixed_files(tmp_path, two_runs):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"benchmarks": [], "machine_info": {}}))
    with pytest.raises(speed.SpeedError, match=r"foreign\.json: no machine_info\.opcompat"):
        speed.load([foreign])
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    with pytest.raises(speed.SpeedError, match="not a pytest-benchmark JSON"):
        speed.load([junk])
    other = tmp_path / "other.json"
    other.write_text(json.dumps(run_json(group(), torch_version="2.10.0")))
    with pytest.raises(speed.SpeedError, match="different devices or torch versions"):
        speed.load([two_runs[0], other])


# -- writing, printing, charting -------------------------------------------------------------------------
def test_command_writes_result_and_chart(two_runs, tmp_path, capsys):
    out = tmp_path / "out"
    args = Namespace(runs=two_runs, out=out, chart_dir=None, chart_format="svg", no_write=False, rows=True)
    assert speed.run(args) == 0
    printed = capsys.readouterr().out
    assert "std_plus_mean" in printed and "copy bandwidth" in printed and "All rows" in printed
    assert "1 above 5% (fallback_cpu 1)" in printed and "(100000.0 / 120000.0 us): the fallback computes" in printed
    name = "speed-cuda-test-gpu-torch2.11.0"
    written = json.loads((out / f"{name}.json").read_text())
    assert written["recommendation"][0]["variant"] == "std_plus_mean"
    pytest.importorskip("matplotlib")  # optional (the "chart" extra); without it the command says so
    assert written["chart"] == f"{name}.svg"
    svg = (out / f"{name}.svg").read_text()
    assert "std_plus_mean" in svg and "fallback" in svg


def test_quick_sweep_is_not_written_to_the_results_by_default(tmp_path, monkeypatch, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_json(group(), sweep="quick")))
    monkeypatch.setattr(speed, "RESULTS", tmp_path / "results")
    args = Namespace(runs=[path], out=None, chart_dir=tmp_path, chart_format="svg", no_write=False, rows=False)
    assert speed.run(args) == 0
    assert "smoke test" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_chart_is_reproducible(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    result = speed.analyse(speed.load(two_runs))
    a = speed.chart(result, tmp_path / "a.svg").read_bytes()
    b = speed.chart(result, tmp_path / "b.svg").read_bytes()
    assert a == b


def test_dumps_is_json_with_rounded_floats(two_runs):
    result = speed.analyse(speed.load(two_runs))
    back = json.loads(speed.dumps(result))
    assert back["rows"][1]["speedup_vs_fallback"] == pytest.approx(result["rows"][1]["speedup_vs_fallback"], rel=1e-3)
    assert len(speed.dumps(result).splitlines()) < len(json.dumps(result, indent=1).splitlines()) / 5


def test_stem_names_device_and_torch():
    machine = {"device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu128"}
    assert speed.stem(machine) == "speed-cuda-nvidia-h100-80gb-hbm3-torch2.11.0-cu128"


# -- timing helpers --------------------------------------------------------------------------------------
def test_rotation_count_exceeds_the_budget_and_stops_at_one():
    assert timing.rotation_count(512 * 1024, 200 * timing.MiB) == 400
    assert timing.rotation_count(timing.GiB, 200 * timing.MiB) == 1
    assert timing.rotation_count(1, timing.GiB) == timing.MAX_ROTATION


def test_rotation_cycles_distinct_inputs():
    rot = timing.make_rotation((2, 3), torch.float32, "cpu", 3)
    seen = [rot.next() for _ in range(4)]
    assert seen[0] is not seen[1] and seen[3] is seen[0]
    assert not torch.equal(seen[0], seen[1])


def test_round_policy():
    policy = timing.RoundPolicy(target_s=0.25, min_rounds=5, max_rounds=100, burst_s=2e-3, max_burst=256,
                                warm_s=0.1)
    assert policy.calls_per_round(50e-6) == 40  # a 50 us call: 40 of them fill 2 ms
    assert policy.calls_per_round(1e-6) == 256 and policy.calls_per_round(0.0) == 256
    assert policy.calls_per_round(5e-3) == 1
    assert policy.rounds(1e-5) == 100
    assert policy.rounds(0.01) == 25
    assert policy.rounds(1.0) == 5
    assert policy.warmup_rounds(2e-3) == 50  # 0.1 s of rounds right before the timed ones
    assert policy.warmup_rounds(0.1) == 0 and policy.warmup_rounds(1.0) == 0
    with pytest.raises(ValueError, match="min_rounds"):
        timing.RoundPolicy(target_s=1, min_rounds=5, max_rounds=2, burst_s=0, max_burst=1, warm_s=0)
    with pytest.raises(ValueError, match="max_burst"):
        timing.RoundPolicy(target_s=1, min_rounds=1, max_rounds=2, burst_s=0, max_burst=0, warm_s=0)
    with pytest.raises(ValueError, match="warm_s=-1 is negative"):
        timing.RoundPolicy(target_s=1, min_rounds=1, max_rounds=2, burst_s=0, max_burst=1, warm_s=-1)


class FakeEvent:
    def __init__(self, clock):
        self.clock, self.at_ms = clock, None

    def record(self):
        self.at_ms = self.clock.now_ms

    def elapsed_time(self, end):
        return end.at_ms - self.at_ms


class FakeEventClock(timing.Clock):
    """A clock with events on a simulated device, where each call takes 2 ms."""

    def __init__(self):
        super().__init__(torch.device("cpu"))
        self.now_ms, self.synchronized = 0.0, 0

    def event(self):
        return FakeEvent(self)

    def synchronize(self):
        self.synchronized += 1


def test_a_burst_times_k_calls_on_distinct_inputs_between_one_pair_of_events():
    clock = FakeEventClock()
    rotation = timing.make_rotation((2, 3), torch.float32, "cpu", 5)
    seen = []

    def call(x):
        seen.append(x)
        clock.now_ms += 2.0

    k, warmup, rounds = 3, 2, 4
    burst = timing.Burst(clock, call, rotation, k, warmup + rounds)
    for _ in range(warmup + rounds):  # as pytest-benchmark's pedantic(iterations=k) calls it
        for _ in range(k):
            burst()
        assert clock.synchronized == burst.rounds_finished  # one synchronize per round, at its end
    burst()  # pytest-benchmark's extra call for the result, after the rounds
    burst.finish()
    assert burst.rounds_finished == warmup + rounds
    assert burst.device_seconds(skip=warmup) == pytest.approx([2e-3] * rounds)  # per call, not per round
    assert all(a is not b for a, b in zip(seen, seen[1:]))  # consecutive calls: distinct inputs
    assert seen[5] is seen[0]  # round-robin over the rotation
    with pytest.raises(ValueError, match="k >= 1"):
        timing.Burst(clock, call, rotation, 0, 1)


def test_a_burst_without_events_is_timed_by_the_wall_clock_only():
    burst = timing.Burst(timing.Clock(torch.device("cpu")), lambda x: x, timing.make_rotation((2,), torch.float32,
                                                                                               "cpu", 2), 2, 1)
    burst(), burst()
    assert burst.rounds_finished == 1 and burst.device_seconds(skip=0) == []


class ScriptedClock(timing.Clock):
    """One call takes ``single_s`` alone and ``per_call_s`` in a burst (launches overlap there)."""

    def __init__(self, single_s, per_call_s):
        super().__init__(torch.device("cpu"))
        self.single_s, self.per_call_s, self.bursts = single_s, per_call_s, []

    def seconds(self, call, x):
        return self.single_s

    def burst_seconds(self, call, inputs):
        self.bursts.append(list(inputs))
        return self.per_call_s * len(inputs)


def test_calibration_chooses_k_from_a_burst():
    policy = sw.SWEEPS["full"].policy
    rotation = timing.make_rotation((2,), torch.float32, "cpu", 100)
    clock = ScriptedClock(single_s=50e-6, per_call_s=20e-6)
    assert timing.calibrate(clock, None, rotation, policy) == (100, 20e-6)
    (inputs,) = clock.bursts
    assert len(inputs) == 40 and len({id(x) for x in inputs}) == 40
    slow = ScriptedClock(single_s=5e-3, per_call_s=5e-3)
    assert timing.calibrate(slow, None, rotation, policy) == (1, 5e-3) and slow.bursts == []


def test_interquartile_range():
    assert timing.interquartile_range([1.0]) is None
    assert timing.interquartile_range([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == pytest.approx(4.0)


def test_watch_fallback_sees_the_warning_and_restores_warn_always():
    text = ("The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and will "
            "fall back to run on the CPU. This may have performance implications.")

    def falls_back():
        warnings.warn("something else", UserWarning, stacklevel=1)
        warnings.warn(text, UserWarning, stacklevel=1)
        return 42

    before = torch.is_warn_always_enabled()
    result, messages = timing.watch_fallback(falls_back)
    assert result == 42 and messages == [text]
    assert fallback_ops(messages) == ["aten::std_mean.correction"]
    assert torch.is_warn_always_enabled() == before
    assert timing.watch_fallback(lambda: 1) == (1, [])


def test_a_size_that_does_not_fit_is_refused_with_the_sizes(monkeypatch):
    monkeypatch.setattr(timing, "free_bytes", lambda device: 2 * timing.GiB)
    with pytest.raises(timing.DoesNotFit, match=r"needs about 4\.00 GiB on cpu, 2\.00 GiB free"):
        timing.check_fits(torch.device("cpu"), 4 * timing.GiB, "float32 2x4x8192x8192")
    timing.check_fits(torch.device("cpu"), timing.GiB, "fits")


def test_fallback_variable_is_read_as_libtorch_reads_it():
    assert timing.fallback_enabled({"PYTORCH_ENABLE_MPS_FALLBACK": "1"})
    assert not timing.fallback_enabled({"PYTORCH_ENABLE_MPS_FALLBACK": "0"})
    assert not timing.fallback_enabled({"PYTORCH_ENABLE_MPS_FALLBACK": "yes"})
    assert not timing.fallback_enabled({})


# -- the sweep -------------------------------------------------------------------------------------------
def test_sweep_choice():
    assert sw.current({}).name == "quick"
    assert sw.current({sw.MODE_ENV: "full"}).name == "full"
    with pytest.raises(ValueError, match="unknown sweep; choose one of quick, full"):
        sw.current({sw.MODE_ENV: "fast"})


def test_full_sweep_spans_launch_bound_to_bandwidth_bound():
    full = sw.SWEEPS["full"]
    sizes = [sw.Point(s, "float32", None, "fused").numel for s in full.shapes]
    assert full.shapes[0] == (2, 4, 128, 128)
    assert max(sizes) >= 256 * 2**20
    assert set(full.dtypes) == {"float32", "float16"} and set(full.dims) == {(1, 2, 3), None}


def test_points_cover_each_variant_once_and_call_sites_only_where_they_fit():
    points = sw.points(sw.SWEEPS["quick"])
    ids = [str(p) for p in points]
    assert len(ids) == len(set(ids))
    by_dims = {}
    for p in points:
        by_dims.setdefault(p.dims, set()).add(p.variant)
    assert {"fused", "fallback", "aniso_manual_eps", "std_plus_mean"} <= by_dims[(1, 2, 3)]
    assert "gate_manual" in by_dims[None] and "aniso_manual_eps" not in by_dims[None]
    copies = [p for p in points if p.variant == sw.COPY]
    assert len(copies) == len(sw.SWEEPS["quick"].shapes) * len(sw.SWEEPS["quick"].dtypes)


def test_fallback_rows_come_after_the_device_rows_of_their_inputs():
    """The fallback's host work must not sit between two device benchmarks."""
    points = sw.points(sw.SWEEPS["full"])
    blocks = []
    for p in points:
        if not blocks or (blocks[-1][0].shape, blocks[-1][0].dtype) != (p.shape, p.dtype):
            blocks.append([])
        blocks[-1].append(p)
    assert len(blocks) == len(sw.SWEEPS["full"].shapes) * len(sw.SWEEPS["full"].dtypes)  # inputs made once each
    for block in blocks:
        kinds = ["fallback" if p.variant == sw.FALLBACK else "device" for p in block]
        assert kinds[0] == "device" and block[0].variant == sw.COPY
        assert kinds == sorted(kinds, key=lambda k: k == "fallback") and kinds.count("fallback") == 2, [
            str(p) for p in block]


def test_output_check_catches_a_wrong_statistic():
    from suite.bench.test_speed import check_output

    x = torch.randn(2, 4, 8, 8)
    point = sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), "std_plus_mean")
    std, mean = torch.std_mean(x, dim=(1, 2, 3), keepdim=True)
    check_output(point, (std * 1.001, mean), x)
    with pytest.raises(AssertionError, match=r"std off by 0\.05 relative"):
        check_output(point, (std * 1.05, mean), x)
    with pytest.raises(AssertionError, match="decision"):
        check_output(sw.Point((2, 4, 8, 8), "float32", None, "gate_manual"), (torch.tensor(False),), x)


class FallingBackBench:
    """A session whose fused op falls back, as torch.std_mean does on MPS in the releases that lack it."""

    device = torch.device("cpu")
    sweep = sw.SWEEPS["quick"]

    def fused_fallback(self, point, watch):
        return ["The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and "
                "will fall back to run on the CPU. This may have performance implications."]


def test_where_the_fused_op_falls_back_the_fallback_row_is_the_real_call():
    from suite.bench.test_speed import resolve

    shape = (2, 4, 8, 8)
    with pytest.raises(pytest.skip.Exception, match="measured as the 'fallback \\(real\\)' row"):
        resolve(sw.Point(shape, "float32", (1, 2, 3), sw.FUSED), FallingBackBench())
    call, info = resolve(sw.Point(shape, "float32", (1, 2, 3), sw.FALLBACK), FallingBackBench())
    assert info["label"] == "fallback (real)" and info["fallback"] == "real" and info["equivalent"] is True
    x = torch.randn(shape)
    assert all(torch.equal(a, b) for a, b in zip(call(x), torch.std_mean(x, dim=(1, 2, 3), keepdim=True)))


def test_a_verdict_that_raises_is_labelled_not_lost(monkeypatch):
    import cases
    from suite.bench import session

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(session, "judge", broken)
    bench = session.BenchSession(torch.device("cpu"), sw.SWEEPS["quick"], environ={})
    info = bench.describe_case(cases.get("std_plus_mean"), sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), "x"))
    assert info["equivalent"] is False and info["label"] == "no verdict (RuntimeError: boom)"
    assert info["verdict_error"] == "RuntimeError: boom" and info["uses_fused_op"] is False


# -- one real run, read back -----------------------------------------------------------------------------
@pytest.mark.slow  # a subprocess: ~10 s, nearly all of it importing torch
def test_a_real_quick_run_reads_back(tmp_path):
    """The bench writes what matrix/speed.py reads: a real (CPU, quick, one dtype and size) run."""
    out = tmp_path / "run.json"
    env = {**os.environ, sw.MODE_ENV: "quick", "PYTHONDONTWRITEBYTECODE": "1"}
    chosen = "float32-2x4x8x8 and (copy or fused or fallback or std_plus_mean or manual)"
    proc = subprocess.run([sys.executable, "-m", "pytest", "suite/bench", "-q", "-p", "no:cacheprovider",
                           "-k", chosen, f"--benchmark-json={out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = speed.analyse(speed.load([out]))
    assert result["machine"]["device"] == "cpu" and result["machine"]["sweep"] == "quick"
    variants = {r["variant"] for r in result["rows"]}
    assert variants == {"fused", "fallback", "std_plus_mean", "gate_manual", "aniso_manual_eps", "rescale_manual"}
    labels = {r["variant"]: r["label"] for r in result["rows"] if r["dims"] == [1, 2, 3]}
    assert labels["aniso_manual_eps"].startswith("not equivalent: wrong correction")
    assert labels["fallback"] == "fallback (emulated)"
    assert result["copy_bandwidth_GBps"] > 0
    assert {r["variant"] for r in result["recommendation"]} == {"std_plus_mean"}
    # Rounds are bursts: pytest-benchmark's statistics are per call (iterations = calls per round), the
    # quick sweep's bursts have more than one call, and warm-up rounds ran.
    raw = json.loads(out.read_text())
    assert raw["machine_info"]["opcompat"]["round_policy"]["max_burst"] == sw.SWEEPS["quick"].policy.max_burst
    extra = [(b["stats"]["iterations"], b["extra_info"]) for b in raw["benchmarks"]]
    assert all(it == e["calls_per_round"] for it, e in extra)
    assert any(e["calls_per_round"] > 1 for _, e in extra) and any(e["warmup_rounds"] >= 1 for _, e in extra)
    assert sorted(r["calls_per_round"] for r in result["rows"]) == sorted(
        e["calls_per_round"] for _, e in extra if e["kind"] != "copy")
