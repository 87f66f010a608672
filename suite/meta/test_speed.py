"""The speed tooling itself: the timing instrument (opcompat.timing), the bench's sweep and runner
(suite/bench), and the analysis of matrix/speed on small synthetic pytest-benchmark files with known
ratios; one real quick run read back (slow), so the two sides cannot drift apart.
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

import conftest as root_conftest
from matrix.speed import cli, load, recommend, result, rows, spread
from opcompat import timing
from opcompat.verdicts import Verdict
from suite.bench import runner, session
from suite.bench import sweep as sw

pytestmark = pytest.mark.meta
ROOT = Path(__file__).resolve().parents[2]
BIG = (2, 4, 512, 512)  # 2M elements
SMALL = (2, 4, 8, 8)  # below the spread check's 131k
MS = 1e-3


# -- a synthetic benchmark file --------------------------------------------------------------------------
def stats(median, spread=0.01):
    return {"median": median, "q1": median * (1 - spread / 2), "q3": median * (1 + spread / 2), "spread": spread,
            "n": 20}


def variant(name, ratio, *, kind="case", equivalent=True, computes="std_mean", uses_fused_op=False, eager=None,
            output_ok=True, device_notes=(), causes=(), graph=True, base=1.0 * MS):
    """A variant whose per-round graph ratio is ``ratio`` and eager ratio ``eager`` (default: ``ratio``).
    Its median times are set 10 % off those ratios on purpose: the analysis must use the per-round ratios."""
    eager = ratio if eager is None else eager
    times = {"eager_wall": stats(base * eager * 1.1 * 1.3), "eager_events": stats(base * eager * 1.1 * 1.2)}
    ratios = {"eager_wall": stats(eager), "eager_events": stats(eager)}
    if graph:
        times["graph"], ratios["graph"] = stats(base * ratio * 1.1), stats(ratio)
    label = "equivalent" if equivalent else "not equivalent: " + "; ".join(causes or ("wrong correction",))
    return {"variant": name, "kind": kind, "equivalent": equivalent, "label": label, "computes": computes,
            "uses_fused_op": uses_fused_op, "falls_back": False, "fallback_ops": [], "device_notes": list(device_notes),
            "causes": list(causes), "output_ok": output_ok,
            "output_problem": "" if output_ok else "std off by inf relative, more than 0.01",
            "calls_per_round": 10, "graph_calls": 10 if graph else 0, "graph_error": "", "bytes_moved": 8 * MS,
            "times": times, "ratio_vs_fused": ratios}


def standard(scale=1.0, **kw):
    """fused, two equivalent forms with the same aten calls (a tie), a faster non-equivalent one, one that is
    the fused op itself, one computing only the std, and the copy."""
    return [
        variant("fused", 1.0, kind="fused", uses_fused_op=True, **kw),
        variant("aniso_std_and_mean", 1.5 * scale, **kw),
        variant("std_plus_mean", 1.51 * scale, **kw),  # within 2 % of aniso_std_and_mean: a tie
        variant("var_mean_sqrt", 1.0, equivalent=False, causes=("overflow (std, near_overflow)",), **kw),
        variant("upcast", 1.0, uses_fused_op=True, **kw),
        variant("rescale_manual", 0.9, computes="std", equivalent=False, **kw),
        {**variant("copy", 0.5, kind="copy", equivalent=None, computes=None, **kw), "bytes_moved": 16 * MS},
    ]


def group_item(members, shape=BIG, dtype="float32", dims=(1, 2, 3)):
    numel = 1
    for n in shape:
        numel *= n
    extra = {"kind": "group", "dtype": dtype, "shape": list(shape), "numel": numel,
             "dims": None if dims is None else list(dims), "input_bytes": numel * 4, "sweep": "full",
             "reference": "fused", "rounds": 20, "warmup_rounds": 3, "sm_clock_mhz": 1980,
             "variants": copy.deepcopy(members)}
    return {"group": "g", "name": f"test_speed[{dtype}-{shape}-{dims}-group]", "extra_info": extra,
            "stats": {"median": 0.05, "rounds": 20}}


def fallback_item(seconds, shape=BIG, dtype="float32", dims=(1, 2, 3)):
    numel = 1
    for n in shape:
        numel *= n
    extra = {"kind": "fallback", "variant": "fallback", "fallback": "emulated", "label": "fallback (emulated)",
             "dtype": dtype, "shape": list(shape), "numel": numel, "dims": None if dims is None else list(dims),
             "equivalent": True, "computes": "std_mean", "falls_back": False, "rounds": 3,
             "times": {"eager_wall": stats(seconds)}, "output_ok": True}
    return {"group": "g", "name": "test_speed[fallback]", "extra_info": extra, "stats": {"median": seconds}}


def run_json(benchmarks, *, device="cuda", device_name="Test GPU", torch_version="2.11.0", sweep="full"):
    return {"machine_info": {"opcompat": {"device": device, "device_name": device_name, "torch": torch_version,
                                          "cuda": "12.8", "sweep": sweep}},
            "commit_info": {}, "benchmarks": benchmarks, "datetime": "2026-01-01", "version": "5.1.0"}


def write_runs(tmp_path, *runs, **kw):
    paths = []
    for i, benchmarks in enumerate(runs, start=1):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(run_json(benchmarks, **kw)))
        paths.append(path)
    return paths


@pytest.fixture
def no_result_files(monkeypatch):
    """The analysis reads matrix/results for caveats: none here, unless a test puts some."""
    monkeypatch.setattr(recommend.result_files, "load_dir", lambda directory: ([], []))


@pytest.fixture
def two_runs(tmp_path, no_result_files):
    """Two repeats of one group and its fallback; in repeat 2 aniso_std_and_mean's ratio is 1 % higher."""
    first = [group_item(standard()), fallback_item(100 * MS)]
    second = copy.deepcopy(first)
    for v in second[0]["extra_info"]["variants"]:
        if v["variant"] == "aniso_std_and_mean":
            v["ratio_vs_fused"]["graph"]["median"] *= 1.01
    return write_runs(tmp_path, first, second)


def analyse(paths, **kw):
    return result.analyse(load.load(paths), **kw)


def rows_by(res, **match):
    return [r for r in res["rows"] if all(r[k] == v for k, v in match.items())]


# -- rows and ratios -------------------------------------------------------------------------------------
def test_ratios_are_the_per_round_ratios_of_the_ranking_timer(two_runs):
    res = analyse(two_runs)
    assert res["timer"] == "graph" and "CUDA graph" in res["timer_note"]
    (row,) = rows_by(res, variant="std_plus_mean", repeat=1)
    assert row["slowdown_vs_fused"] == pytest.approx(1.51)  # the per-round ratio, not 1.51 * 1.1 / 1.1
    assert row["median_s"] == pytest.approx(1.51 * 1.1 * MS)
    assert row["ratio"]["eager_wall"] == pytest.approx(1.51)
    # speedup against the fallback: eager wall of both, what a program sees
    assert row["speedup_vs_fallback"] == pytest.approx(100 / (1.51 * 1.1 * 1.3))
    (fallback,) = rows_by(res, variant="fallback", repeat=1)
    assert fallback["speedup_vs_fallback"] == 1.0
    assert fallback["slowdown_vs_fused"] == pytest.approx(100 / (1.1 * 1.3))
    # the copy: bandwidth from eager events (bytes read + written over its time), kept out of the rows
    assert res["copy_bandwidth_by_repeat"][0] == pytest.approx(16 * MS / (0.5 * MS * 1.1 * 1.2) / 1e9)
    assert not rows_by(res, variant="copy") and res["copies"][0]["variant"] == "copy"


def test_eager_wall_ranks_where_a_row_lacks_graph_times(tmp_path, no_result_files):
    members = standard()
    members[2] = variant("std_plus_mean", 1.51, graph=False)
    res = analyse(write_runs(tmp_path, [group_item(members)]))
    assert res["timer"] == "eager_wall"
    assert analyse(write_runs(tmp_path, [group_item(standard())]), rank_by="eager_wall")["timer"] == "eager_wall"
    with pytest.raises(load.SpeedError, match="no decomposition was timed by 'graph'"):
        analyse(write_runs(tmp_path, [group_item([variant("x", 1.0, graph=False)])]), rank_by="graph")


# -- recommendation --------------------------------------------------------------------------------------
def test_recommends_the_fastest_equivalent_decomposition(two_runs):
    res = analyse(two_runs)
    (rec,) = res["recommendation"]
    # var_mean_sqrt is as fast but not equivalent; upcast is the fused op itself; rescale_manual computes only
    # the std: none of them may be recommended. std_plus_mean is within 2 %: a tie, named after.
    assert rec["variant"] == "aniso_std_and_mean" and rec["ties"] == ["std_plus_mean"]
    assert rec["ratio_vs_fused"] == pytest.approx((1.5 * 1.5 * 1.01) ** 0.5)
    assert rec["throughput_ratio_vs_fused"] == pytest.approx(1 / rec["ratio_vs_fused"])
    assert rec["timer"] == "graph" and rec["repeats_agree"] is True
    assert rec["picks_by_repeat"] == ["aniso_std_and_mean", "aniso_std_and_mean"]
    assert rec["caveat"] == "" and rec["portable"] == "aniso_std_and_mean"
    (summary,) = res["summary"]
    assert summary["variant"] == "aniso_std_and_mean" and summary["wins"] == summary["of"] == 1


def test_ties_go_to_the_registry_order_and_repeats_that_differ_say_so(tmp_path, no_result_files):
    first = [group_item(standard())]
    second = copy.deepcopy(first)
    for v in second[0]["extra_info"]["variants"]:
        if v["variant"] == "aniso_std_and_mean":
            v["ratio_vs_fused"]["graph"]["median"] = 1.6  # 6 % slower than std_plus_mean in repeat 2
    (rec,) = analyse(write_runs(tmp_path, first, second))["recommendation"]
    assert rec["picks_by_repeat"] == ["aniso_std_and_mean", "std_plus_mean"]
    assert rec["repeats_agree"] is False


def test_the_eager_pick_is_named_where_eager_ranks_otherwise(tmp_path, no_result_files):
    members = standard()
    members[1] = variant("aniso_std_and_mean", 1.5, eager=3.0)  # fewer device cycles, more launches
    (rec,) = analyse(write_runs(tmp_path, [group_item(members)]))["recommendation"]
    assert rec["variant"] == "aniso_std_and_mean" and rec["eager_ratio_vs_fused"] == pytest.approx(3.0)
    assert rec["eager_choice"] == "std_plus_mean" and rec["eager_choice_ratio_vs_fused"] == pytest.approx(1.51)


def test_caveats_name_other_dtypes_and_other_devices(tmp_path, monkeypatch):
    """A form equivalent here in float32 but not in float16, nor on the CPU: recommended with its caveat; the
    no-caveat pick is the other form."""
    f32 = standard()
    f32[1] = variant("aniso_std_and_mean", 1.2, device_notes=("cuda flushes subnormal spreads to 0, std_mean too",))
    f16 = standard()
    f16[1] = variant("aniso_std_and_mean", 1.2, equivalent=False, causes=("overflow (std, near_overflow)",))
    cpu = {"kind": "measured", "torch": {"version": "2.11.0+cpu"}, "machine": {"device": "cpu"},
           "verdicts": [{"case": "aniso_std_and_mean", "correction": 1, "dtype": "float32", "equivalent": False,
                         "causes": ["underflow (std flushed to 0)"]},
                        {"case": "std_plus_mean", "correction": 0, "dtype": "float32", "equivalent": False}]}
    monkeypatch.setattr(recommend.result_files, "load_dir",
                        lambda directory: ([(Path("measured-cpu-2.11.0-x.json"), cpu)], []))
    res = analyse(write_runs(tmp_path, [group_item(f32), group_item(f16, dtype="float16")]))
    rec = next(r for r in res["recommendation"] if r["dtype"] == "float32")
    assert rec["variant"] == "aniso_std_and_mean"
    assert rec["caveat"] == "not equivalent in float16 on cuda; float32 on cpu (torch 2.11.0)"
    assert rec["portable"] == "std_plus_mean"  # its CPU failure is at another correction
    texts = res["caveats"]["aniso_std_and_mean"]
    assert texts[0] == "not equivalent in float16 on cuda: overflow (std, near_overflow)"
    assert texts[1].startswith("NOT equivalent on cpu (torch 2.11.0) in float32: underflow")
    assert "the fused op does the same here" in res["device_notes"]["aniso_std_and_mean"][0]
    rec16 = next(r for r in res["recommendation"] if r["dtype"] == "float16")
    assert rec16["variant"] == "std_plus_mean"  # not equivalent in float16: never recommended there


def test_a_wrong_output_at_the_benchmark_size_disqualifies(tmp_path, no_result_files):
    members = standard()
    members[1] = variant("aniso_std_and_mean", 1.5, output_ok=False)
    res = analyse(write_runs(tmp_path, [group_item(members)]))
    assert res["recommendation"][0]["variant"] == "std_plus_mean"
    (row,) = rows_by(res, variant="aniso_std_and_mean")
    assert row["label"] == "equivalent; wrong output at this size: std off by inf relative, more than 0.01"


def test_no_equivalent_decomposition_says_so(tmp_path, no_result_files):
    members = [m for m in standard() if m["variant"] in ("fused", "var_mean_sqrt", "copy")]
    (rec,) = analyse(write_runs(tmp_path, [group_item(members)]))["recommendation"]
    assert rec["variant"] is None and "no equivalent" in rec["reason"]


def test_without_a_native_fused_op_candidates_are_ranked_by_time(tmp_path, no_result_files):
    """On MPS before torch 2.3 the fused op falls back: no ratio to it; the times rank."""
    members = [m for m in standard() if m["kind"] != "fused"]
    for m in members:
        m["ratio_vs_fused"] = {}
    (rec,) = analyse(write_runs(tmp_path, [group_item(members)], device="mps"))["recommendation"]
    assert rec["variant"] == "aniso_std_and_mean" and rec["ratio_vs_fused"] == pytest.approx(1.5 * 1.1 * MS)


# -- spread between repeats ------------------------------------------------------------------------------
def test_spread_of_the_ratio_between_repeats_per_size(two_runs):
    sp = analyse(two_runs)["spread"]
    assert sp["repeats"] == 2 and sp["rank_timer"] == "graph"
    graph = sp["by_timer"]["graph"]
    (size,) = graph["by_size"]
    assert size["numel"] == 2 * 4 * 512 * 512 and size["rows"] == 5  # the cases, not fused or copy
    assert size["max"] == pytest.approx(0.01) and size["median"] == pytest.approx(0.0)
    assert sp["over_limit"] == [] and sp["by_timer"]["eager_wall"]["max"] == pytest.approx(0.0)


def test_spread_lists_rows_over_the_limit_and_skips_small_sizes(tmp_path, no_result_files):
    first = [group_item(standard()), group_item(standard(), shape=SMALL)]
    second = copy.deepcopy(first)
    for item in second:
        for v in item["extra_info"]["variants"]:
            if v["variant"] == "std_plus_mean":
                v["ratio_vs_fused"]["graph"]["median"] *= 1.2
                v["ratio_vs_fused"]["graph"]["spread"] = 0.15
    sp = analyse(write_runs(tmp_path, first, second))["spread"]
    (over,) = sp["over_limit"]  # SMALL is below 131k elements: not checked
    assert over["variant"] == "std_plus_mean" and over["shape"] == "2x4x512x512"
    assert over["spread"] == pytest.approx(0.2) and over["within_repeat_spread"] == [0.01, 0.15]
    assert spread.SPREAD_MIN_NUMEL == 2 * 4 * 128 * 128


# -- reading errors --------------------------------------------------------------------------------------
def test_load_refuses_foreign_old_and_mixed_files(tmp_path, two_runs):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"benchmarks": [], "machine_info": {}}))
    with pytest.raises(load.SpeedError, match=r"foreign\.json: no machine_info\.opcompat"):
        load.load([foreign])
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    with pytest.raises(load.SpeedError, match="not a pytest-benchmark JSON"):
        load.load([junk])
    old = tmp_path / "old.json"
    old.write_text(json.dumps(run_json([{"extra_info": {"variant": "fused", "kind": "fused"}, "stats": {}}])))
    with pytest.raises(load.SpeedError, match="older suite/bench"):
        load.load([old])
    other = tmp_path / "other.json"
    other.write_text(json.dumps(run_json([group_item(standard())], torch_version="2.10.0")))
    with pytest.raises(load.SpeedError, match="different devices or torch versions"):
        load.load([two_runs[0], other])


# -- writing, printing, charting -------------------------------------------------------------------------
def test_command_writes_result_and_chart(two_runs, tmp_path, capsys):
    out = tmp_path / "out"
    args = Namespace(runs=two_runs, out=out, chart_dir=None, chart_format="svg", no_write=False, rows=True,
                     rank_by=None)
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    assert "aniso_std_and_mean" in printed and "copy bandwidth" in printed and "All rows" in printed
    assert "0 row(s) above 5% (graph)" in printed
    name = "speed-cuda-test-gpu-torch2.11.0"
    written = json.loads((out / f"{name}.json").read_text())
    assert written["schema_version"] == result.SCHEMA_VERSION and written["source"] == "measured"
    assert written["recommendation"][0]["variant"] == "aniso_std_and_mean"
    pytest.importorskip("matplotlib")
    assert written["chart"] == f"{name}.svg"
    svg = (out / f"{name}.svg").read_text()
    assert "std_plus_mean" in svg and "fallback" in svg


def test_a_file_that_cannot_be_read_exits_2(tmp_path, capsys):
    args = Namespace(runs=[tmp_path / "missing.json"], out=None, chart_dir=None, chart_format="svg",
                     no_write=True, rows=False, rank_by=None)
    assert cli.run(args) == 2
    assert "cannot read JSON" in capsys.readouterr().err


def test_quick_sweep_is_not_written_to_the_results_by_default(tmp_path, monkeypatch, capsys, no_result_files):
    (path,) = write_runs(tmp_path, [group_item(standard())], sweep="quick")
    monkeypatch.setattr(cli, "RESULTS", tmp_path / "results")
    args = Namespace(runs=[path], out=None, chart_dir=tmp_path, chart_format="svg", no_write=False, rows=False,
                     rank_by=None)
    assert cli.run(args) == 0
    assert "smoke test" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_chart_is_reproducible(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    from matrix.speed.chart import chart

    res = analyse(two_runs)
    assert chart(res, tmp_path / "a.svg").read_bytes() == chart(res, tmp_path / "b.svg").read_bytes()


def test_dumps_is_json_with_rounded_floats(two_runs):
    res = analyse(two_runs)
    back = json.loads(result.dumps(res))
    assert back["rows"][1]["speedup_vs_fallback"] == pytest.approx(res["rows"][1]["speedup_vs_fallback"], rel=1e-3)
    assert len(result.dumps(res).splitlines()) < len(json.dumps(res, indent=1).splitlines()) / 5


def test_stem_names_device_and_torch():
    machine = {"device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu128"}
    assert result.stem(machine) == "speed-cuda-nvidia-h100-80gb-hbm3-torch2.11.0-cu128"


# -- the instrument --------------------------------------------------------------------------------------
def test_rotation_count_exceeds_the_budget_and_stops_at_one():
    assert timing.rotation_count(512 * 1024, 200 * timing.MiB) == 400
    assert timing.rotation_count(timing.GiB, 200 * timing.MiB) == 1
    assert timing.rotation_count(1, timing.GiB) == timing.MAX_ROTATION
    assert timing.graph_calls(3, 400) == timing.GRAPH_MAX_CALLS and timing.graph_calls(3, 1) == 3
    assert timing.graph_calls(300, 400) == 300


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
    assert policy.rounds(1e-5) == 100 and policy.rounds(0.01) == 25 and policy.rounds(1.0) == 5
    assert policy.warmup_rounds(2e-3) == 50
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


class FakeGraph:
    def __init__(self, clock, calls, ms_per_call):
        self.clock, self.calls, self.ms = clock, calls, ms_per_call

    def replay(self):
        self.clock.now_ms += self.calls * self.ms


class FakeDeviceClock(timing.Clock):
    """A device with events and graphs, simulated: time moves only when a call or a replay says so."""

    def __init__(self):
        super().__init__(torch.device("cpu"))
        self.now_ms, self.synchronized = 0.0, 0

    @property
    def has_events(self):
        return True

    def event(self):
        return FakeEvent(self)

    def synchronize(self):
        self.synchronized += 1


def test_interleaved_rounds_rotate_the_order_and_ratios_pair_the_same_round():
    clock = FakeDeviceClock()
    rotation = timing.make_rotation((2,), torch.float32, "cpu", 5)
    drift = {"factor": 1.0}  # the device slows down round by round: the per-round ratio must not see it

    def timed(ms):
        def call(x):
            clock.now_ms += ms * drift["factor"]
        return call

    units = [timing.Unit("fused", clock, timed(1.0), rotation, 3, FakeGraph(clock, 4, 0.5), 4),
             timing.Unit("slow", clock, timed(2.0), rotation, 2, FakeGraph(clock, 4, 1.5), 4)]
    group = timing.Interleaved(units, reference="fused")
    for i in range(4):
        drift["factor"] = 1.0 + i
        group()
    assert group.orders == [["fused", "slow"], ["slow", "fused"], ["fused", "slow"], ["slow", "fused"]]
    assert group.times("slow", timing.EAGER_EVENTS) == pytest.approx([2e-3, 4e-3, 6e-3, 8e-3])  # per call
    assert group.ratios("slow", timing.EAGER_EVENTS, skip=1) == pytest.approx([2.0, 2.0, 2.0])
    assert group.ratios("slow", timing.GRAPH) == pytest.approx([3.0] * 4)  # graph replays: 1.5 / 0.5 ms a call
    assert len(group.times("slow", timing.EAGER_WALL)) == 4
    assert clock.synchronized >= 4 * 2 * 2  # before and after each eager burst and after each replay
    with pytest.raises(ValueError, match="reference 'nope'"):
        timing.Interleaved(units, reference="nope")
    with pytest.raises(ValueError, match="repeat"):
        timing.Interleaved([units[0], units[0]], reference=None)


def test_a_unit_without_events_has_only_the_wall_clock():
    unit = timing.Unit("x", timing.Clock(torch.device("cpu")), lambda x: x,
                       timing.make_rotation((2,), torch.float32, "cpu", 2), 2)
    unit.run()
    assert list(unit.times) == [timing.EAGER_WALL] and len(unit.times[timing.EAGER_WALL]) == 1
    with pytest.raises(ValueError, match="k >= 1"):
        timing.Unit("x", timing.Clock(torch.device("cpu")), lambda x: x, None, 0)


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
    policy = timing.RoundPolicy(target_s=1, min_rounds=1, max_rounds=2, burst_s=2e-3, max_burst=256, warm_s=0)
    rotation = timing.make_rotation((2,), torch.float32, "cpu", 100)
    clock = ScriptedClock(single_s=50e-6, per_call_s=20e-6)
    assert timing.calibrate(clock, None, rotation, policy) == (100, 20e-6)
    (inputs,) = clock.bursts
    assert len(inputs) == 40 and len({id(x) for x in inputs}) == 40
    slow = ScriptedClock(single_s=5e-3, per_call_s=5e-3)
    assert timing.calibrate(slow, None, rotation, policy) == (1, 5e-3) and slow.bursts == []


def test_summary_of_values():
    assert timing.summary([]) is None
    one = timing.summary([2.0])
    assert one["median"] == 2.0 and one["spread"] == 0.0
    s = timing.summary([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert s["median"] == 4.0 and s["q3"] - s["q1"] == pytest.approx(4.0) and s["spread"] == pytest.approx(1.0)


def test_watch_fallback_sees_the_warning_and_restores_warn_always():
    text = ("The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and will "
            "fall back to run on the CPU. This may have performance implications.")

    def falls_back():
        warnings.warn("something else", UserWarning, stacklevel=1)
        warnings.warn(text, UserWarning, stacklevel=1)
        return 42

    before = torch.is_warn_always_enabled()
    out, messages = timing.watch_fallback(falls_back)
    assert out == 42 and messages == [text]
    assert session.fallback_ops(messages) == ["aten::std_mean.correction"]
    assert torch.is_warn_always_enabled() == before
    assert timing.watch_fallback(lambda: 1) == (1, [])


def test_a_size_that_does_not_fit_is_refused_with_the_sizes(monkeypatch):
    monkeypatch.setattr(timing, "free_bytes", lambda device: 2 * timing.GiB)
    with pytest.raises(timing.DoesNotFit, match=r"needs about 4\.00 GiB on cpu, 2\.00 GiB free"):
        timing.check_fits(torch.device("cpu"), 4 * timing.GiB, "float32 2x4x8192x8192")
    timing.check_fits(torch.device("cpu"), timing.GiB, "fits")


# -- the sweep and the runner ----------------------------------------------------------------------------
def test_sweep_choice():
    assert sw.current({}).name == "quick"
    assert sw.current({sw.MODE_ENV: "full"}).name == "full"
    with pytest.raises(ValueError, match="unknown sweep; choose one of quick, full"):
        sw.current({sw.MODE_ENV: "fast"})


def test_full_sweep_spans_launch_bound_to_bandwidth_bound():
    full = sw.SWEEPS["full"]
    sizes = [sw.Point(s, "float32", None, sw.GROUP).numel for s in full.shapes]
    assert full.shapes[0] == (2, 4, 128, 128) and max(sizes) >= 256 * 2**20
    assert set(full.dtypes) == {"float32", "float16"} and set(full.dims) == {(1, 2, 3), None}


def test_groups_hold_the_fused_op_first_the_cases_that_fit_and_the_copy_last():
    by_dims = {dims: sw.variants(dims) for dims in ((1, 2, 3), None)}
    for found in by_dims.values():
        assert found[0] == sw.FUSED and found[-1] == sw.COPY and len(found) == len(set(found))
    assert {"aniso_manual_eps", "std_plus_mean"} <= set(by_dims[(1, 2, 3)])
    assert "gate_manual" in by_dims[None] and "aniso_manual_eps" not in by_dims[None]


def test_fallback_items_come_after_the_device_groups_of_their_inputs():
    """The fallback's host work must not sit between two device groups; inputs are made once per block."""
    points = sw.points(sw.SWEEPS["full"])
    assert len({str(p) for p in points}) == len(points)
    blocks = []
    for p in points:
        if not blocks or (blocks[-1][0].shape, blocks[-1][0].dtype) != (p.shape, p.dtype):
            blocks.append([])
        blocks[-1].append(p)
    assert len(blocks) == len(sw.SWEEPS["full"].shapes) * len(sw.SWEEPS["full"].dtypes)
    for block in blocks:
        assert [p.variant for p in block] == [sw.GROUP, sw.GROUP, sw.FALLBACK, sw.FALLBACK]


def fast_verdict(case, correction, dtype, device):
    """A stand-in verdict: a case is equivalent exactly when it claims plain equivalence."""
    equivalent = case.claim.is_equivalence
    return Verdict(case.name, correction, dtype, str(device), equivalent=equivalent,
                   causes=[] if equivalent else ["wrong correction (matches correction=0)"])


@pytest.fixture
def quick_bench(monkeypatch):
    monkeypatch.setattr(session, "judge", fast_verdict)  # the verdicts have their own tests
    return session.BenchSession(torch.device("cpu"), sw.SWEEPS["quick"], environ={})


def test_a_group_times_every_variant_in_every_round(quick_bench):
    point = sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.GROUP)
    extra, problems = runner.measure_group(point, quick_bench)
    assert problems == [] and extra["kind"] == "group" and extra["reference"] == sw.FUSED
    policy = sw.SWEEPS["quick"].policy
    assert extra["rounds"] == policy.min_rounds and extra["timers"] == [timing.EAGER_WALL]
    names = [v["variant"] for v in extra["variants"]]
    assert names == sw.variants((1, 2, 3))
    first, second = extra["first_orders"]
    assert sorted(first) == sorted(names) and second == first[1:] + first[:1]  # rotated by one each round
    for v in extra["variants"]:
        assert len(v["raw_s"][timing.EAGER_WALL]) == extra["rounds"]
        assert v["ratio_vs_fused"][timing.EAGER_WALL]["n"] == extra["rounds"]
    fused = extra["variants"][0]
    assert fused["ratio_vs_fused"][timing.EAGER_WALL]["median"] == 1.0 and fused["kind"] == "fused"
    biased = next(v for v in extra["variants"] if v["variant"] == "two_pass_biased")
    assert biased["equivalent"] is False and biased["label"].startswith("not equivalent: wrong correction")
    fb, problems = runner.measure_fallback(sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.FALLBACK), quick_bench)
    assert problems == [] and fb["label"] == "fallback (emulated)" and fb["rounds"] == 3


def test_output_check_catches_a_wrong_statistic(quick_bench):
    point = sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.GROUP)
    x = quick_bench.inputs(point).first
    std, mean = torch.std_mean(x, dim=(1, 2, 3), keepdim=True)
    runner.check_output("std_plus_mean", point, (std * 1.00002, mean), x, quick_bench)  # within the loose bound
    with pytest.raises(AssertionError, match=r"std: Mismatched elements: 2 / 2"):
        runner.check_output("std_plus_mean", point, (std * 1.05, mean), x, quick_bench)
    with pytest.raises(AssertionError, match=r"mean: Mismatched elements"):
        runner.check_output("std_plus_mean", point, (std, mean + std), x, quick_bench)
    assert runner.output_problem("gate_manual", sw.Point((2, 4, 8, 8), "float32", None, sw.GROUP),
                                 (torch.tensor(False),), x, quick_bench).startswith("decision")


def test_a_wrong_output_fails_unless_the_verdict_already_says_so(quick_bench, monkeypatch):
    point = sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.GROUP)
    real = runner.output_problem
    monkeypatch.setattr(runner, "output_problem", lambda variant, *a: "std off by 1 relative"
                        if variant in ("std_plus_mean", "two_pass_biased") else real(variant, *a))
    extra, problems = runner.measure_group(point, quick_bench)
    assert problems == ["std off by 1 relative"]  # std_plus_mean's; two_pass_biased is known not equivalent
    assert {v["variant"]: v["output_ok"] for v in extra["variants"]}["two_pass_biased"] is False


class FallingBackBench:
    """Where the fused op falls back, as torch.std_mean does on MPS in the releases that lack it."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def fused_fallback(self, point, watch):
        return ["The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and "
                "will fall back to run on the CPU. This may have performance implications."]


def test_where_the_fused_op_falls_back_the_group_has_no_reference(quick_bench):
    bench = FallingBackBench(quick_bench)
    extra, _ = runner.measure_group(sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.GROUP), bench)
    assert extra["reference"] is None and sw.FUSED not in [v["variant"] for v in extra["variants"]]
    assert "fallback (real)" in extra["not_timed"][0]["reason"]
    fb, _ = runner.measure_fallback(sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), sw.FALLBACK), bench)
    assert fb["fallback"] == "real" and fb["label"] == "fallback (real)"


def test_a_verdict_that_raises_is_labelled_not_lost(monkeypatch):
    import cases

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(session, "judge", broken)
    bench = session.BenchSession(torch.device("cpu"), sw.SWEEPS["quick"], environ={})
    info = bench.describe_case(cases.get("std_plus_mean"), sw.Point((2, 4, 8, 8), "float32", (1, 2, 3), "x"))
    assert info["equivalent"] is False and info["label"] == "no verdict (RuntimeError: boom)"
    assert info["verdict_error"] == "RuntimeError: boom" and info["uses_fused_op"] is False


def test_the_quick_sweep_prints_no_tables_unless_asked(monkeypatch):
    class Config:
        def __init__(self, tables):
            self.option = Namespace(benchmark_quiet=False)
            self.tables = tables

        def getoption(self, name, default=None):
            return {"--bench-tables": self.tables, "--device": "cpu", "--hypothesis-profile": "ci"}.get(name, default)

    monkeypatch.delenv(sw.MODE_ENV, raising=False)
    quiet, loud = Config(False), Config(True)
    root_conftest.pytest_configure(quiet)
    root_conftest.pytest_configure(loud)
    assert quiet.option.benchmark_quiet is True and loud.option.benchmark_quiet is False
    monkeypatch.setenv(sw.MODE_ENV, "full")
    full = Config(False)
    root_conftest.pytest_configure(full)
    assert full.option.benchmark_quiet is False


# -- one real run, read back -----------------------------------------------------------------------------
@pytest.mark.slow  # a subprocess: ~15 s, most of it importing torch and judging verdicts
def test_a_real_quick_run_reads_back(tmp_path):
    """The bench writes what matrix/speed reads: a real (CPU, quick, one dtype and size) run."""
    out = tmp_path / "run.json"
    env = {**os.environ, sw.MODE_ENV: "quick", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "suite/bench", "-q", "-p", "no:cacheprovider",
                           "-k", "float32-2x4x8x8", f"--benchmark-json={out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Legend" not in proc.stdout  # the quick sweep prints no timing table
    res = result.analyse(load.load([out]))
    assert res["machine"]["device"] == "cpu" and res["machine"]["sweep"] == "quick"
    assert res["timer"] == rows.EAGER_WALL
    variants = {r["variant"] for r in res["rows"]}
    assert {"fused", "fallback", "std_plus_mean", "gate_manual", "aniso_manual_eps"} <= variants
    labels = {r["variant"]: r["label"] for r in res["rows"] if r["dims"] == [1, 2, 3]}
    assert labels["aniso_manual_eps"].startswith("not equivalent: wrong correction")
    assert labels["fallback"] == "fallback (emulated)"
    assert res["copy_bandwidth_GBps"] > 0
    assert {r["variant"] for r in res["recommendation"]} <= {"std_plus_mean", "aniso_std_and_mean"}
    raw = json.loads(out.read_text())
    groups = [b["extra_info"] for b in raw["benchmarks"] if b["extra_info"]["kind"] == "group"]
    assert len(groups) == 2 and all(g["warmup_rounds"] >= 1 for g in groups)
    assert raw["machine_info"]["opcompat"]["round_policy"]["max_burst"] == sw.SWEEPS["quick"].policy.max_burst
