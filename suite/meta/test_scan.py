"""``python -m matrix scan``: tracing a workload, statuses per release from a fixture source (never the
network), the summary, replacement cases, bad input, and the --device mps logic under the simulated backend."""

from __future__ import annotations

import json
import warnings
from types import MappingProxyType

import pytest
import torch

import cases
from matrix import build, results
from matrix.scan import cli, measure, replacements, report, status_source, target, workload
from matrix.scan.status_source import FixtureSource
from matrix.simulated_mps import SimulatedMPS
from opcompat import devices
from opcompat.trace import CountingRecorder

pytestmark = pytest.mark.meta

UNET = "matrix.examples.toy_unet:denoise_step"
TEXT = "matrix.examples.text_generation:generate_step"
RELEASES = ["2.1.2", "2.2.2", "2.3.1", "2.4.1"]
ISIN = "aten::isin.Tensor_Tensor"


@pytest.fixture(scope="module")
def unet():
    return workload.workload_of(target.parse(UNET))


@pytest.fixture(scope="module")
def textgen():
    return workload.workload_of(target.parse(TEXT))


def all_native(work, releases=RELEASES, **planted):
    """A fixture table: every op the workload calls native in every release, except ``planted``
    {release: {op: status}}."""
    table = {r: {op: "native" for op, _ in work.pairs} for r in releases}
    for release, ops in planted.items():
        table[release].update(ops)
    return table


def scan(work, table, releases=RELEASES, lookup=None):
    source = FixtureSource(table)
    rep = report.Report(work, source.label, "predicted", releases, source.answer(releases, work.pairs))
    rep.replacements = replacements.replacements_for([(o, d) for o, d, _, _ in rep.still_on_cpu()], lookup)
    return rep


# -- tracing ---------------------------------------------------------------------------------------------
def test_counting_recorder_counts_calls_per_op_and_dtype():
    x = torch.randn(2, 4, 3, 3)
    recorder = CountingRecorder()
    with recorder:
        for _ in range(3):
            torch.nn.functional.group_norm(x, 2)
        torch.isin(torch.arange(5), torch.tensor([1, 3]))
        torch.where(x > 0, x, x)
    counts = recorder.counts
    assert counts[("aten::native_group_norm.default", "float32")] == 3
    assert counts[(ISIN, "int64")] == 1
    assert counts[("aten::where.self", "float32")] == 1  # keyed by the values, not the bool condition
    # what the composite kernel calls is the installed release's choice (var_mean on 2.13, batch_norm on 2.11)
    callees = recorder.callees["aten::native_group_norm.default"]
    assert callees and all(op.startswith("aten::") for op in callees)
    assert "aten::native_group_norm.default" not in callees


def test_examples_reach_the_ops_they_are_about(unet, textgen):
    unet_ops = {op for op, _ in unet.pairs}
    assert {"aten::native_group_norm.default", "aten::upsample_nearest2d.default",
            "aten::upsample_bicubic2d.default", "aten::bmm.default", "aten::std.correction"} <= unet_ops
    # attention goes the math way MPS goes, never through the CPU-only flash kernel
    assert not any("for_cpu" in op for op in unet_ops)
    assert workload.SDPA_NOTE in unet.notes
    assert unet.counts[("aten::std.correction", "float32")] == 2  # rescale_cfg: std of text and of guided
    assert textgen.counts[(ISIN, "int64")] == 1
    assert textgen.counts[("aten::cumsum.default", "float32")] == 1
    # convolution's CPU-chosen kernel (mkldnn) is mapped to the one MPS runs
    assert "aten::_mps_convolution.default" in unet.callees["aten::_convolution.default"]


@pytest.mark.slow  # the first meta-device run loads torch's meta registrations (~4 s)
def test_meta_device_traces_the_same_ops(unet):
    meta = workload.workload_of(target.parse(UNET), on="meta")
    assert set(meta.counts) == set(unet.counts)


# -- statuses per release --------------------------------------------------------------------------------
def test_planted_fallback_in_2_2_native_in_2_3_shows_exactly_that_range(textgen):
    table = all_native(textgen, **{"2.1.2": {ISIN: "fallback"}, "2.2.2": {ISIN: "fallback"}})
    rep = scan(textgen, table)
    cells = {r: rep.answers[r].get(ISIN, "int64").status for r in RELEASES}
    assert cells == {"2.1.2": "fallback", "2.2.2": "fallback", "2.3.1": "native", "2.4.1": "native"}
    assert [rep.summaries[r].runs_on_mps for r in RELEASES] == [False, False, True, True]
    assert rep.summaries["2.2.2"].on_cpu == [(ISIN, "int64")]
    assert rep.first_on_mps.release == "2.3.1"
    assert rep.still_on_cpu() == []
    text = report.render_text(rep)
    isin_line = next(line for line in text.splitlines() if line.startswith(ISIN))
    assert isin_line.split()[-4:] == ["CPU", "CPU", "ok", "ok"]
    assert "from torch 2.3.1" in text
    brief = report.render_text(rep, only_problems=True)
    assert ISIN in brief and "aten::view.default" not in brief


def test_a_release_that_falls_back_again_ends_the_run(textgen):
    table = all_native(textgen, **{"2.2.2": {ISIN: "fallback"}, "2.4.1": {ISIN: "fallback"}})
    rep = scan(textgen, table)
    assert rep.first_on_mps is None
    assert rep.still_on_cpu() == [(ISIN, "int64", 1, "fallback")]


def test_native_from_a_macos_version_names_it(textgen):
    cumsum = {"status": "native", "dtype_status": {"float32": "native_macos"}, "min_macos": "13.3"}
    rep = scan(textgen, all_native(textgen, **{r: {"aten::cumsum.default": cumsum} for r in RELEASES}))
    assert rep.first_on_mps.release == "2.1.2" and rep.first_on_mps.min_macos == "13.3"
    assert "ok≥13.3" in report.render_text(rep)


def test_op_unknown_to_a_release_is_not_in_this_release(textgen):
    table = all_native(textgen)
    del table["2.1.2"]["aten::_safe_softmax.default"]
    rep = scan(textgen, table)
    assert rep.answers["2.1.2"].get("aten::_safe_softmax.default", "float32").status == "not_in_release"
    assert rep.summaries["2.1.2"].runs_on_mps is False
    assert "— not in this release" in report.LEGEND


def test_unreadable_release_is_named_and_its_column_unknown(textgen, tmp_path, capsys):
    table = all_native(textgen)
    table["2.3.1"] = {"error": "could not download the macOS arm64 wheel of torch 2.3.1: no network?"}
    path = tmp_path / "statuses.json"
    path.write_text(json.dumps(table))
    rc = cli.main([TEXT, "--statuses", str(path), "--torch", *RELEASES, "--json", "--verdicts", "none"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "torch 2.3.1: no answer" in err and "no network?" in err
    data = json.loads(out)
    isin = next(row for row in data["statuses"] if row["op"] == ISIN)
    assert isin["releases"]["2.3.1"]["status"] == "unknown" and isin["releases"]["2.4.1"]["status"] == "native"
    assert data["unreadable_releases"] == [{"release": "2.3.1", "error": table["2.3.1"]["error"]}]
    assert data["first_release_on_mps"] == "2.1.2"  # an unreadable release neither starts nor ends the run


def test_predictor_source_reports_a_missing_wheel_and_goes_on(monkeypatch, tmp_path):
    monkeypatch.setattr("matrix.predict.wheels.installed_origin", lambda version, directory: None)
    source = status_source.PredictorSource(download=False, cache_dir=tmp_path)  # empty cache, no download
    answers = source.answer(["2.2.2", "2.3.1"], [(ISIN, "int64")])
    assert all("no cached macOS arm64 wheel" in answers[r].error for r in ("2.2.2", "2.3.1"))
    assert answers["2.2.2"].get(ISIN, "int64").status == "unknown"


# -- replacements --------------------------------------------------------------------------------------
def test_std_family_cases_replace_the_newest_fallback_with_committed_verdicts(tmp_path):
    listing = tmp_path / "ops.txt"
    listing.write_text("aten::std_mean.correction float32 3\naten::add.Tensor float32 9\n")
    work = workload.workload_of(target.parse(str(listing)))
    table = all_native(work, **{r: {"aten::std_mean.correction": "fallback"} for r in RELEASES})
    rep = scan(work, table, lookup=replacements.VerdictLookup(compute=False))
    assert rep.still_on_cpu() == [("aten::std_mean.correction", "float32", 3, "fallback")]
    found = rep.replacements["aten::std_mean.correction"]
    expected = {c.name for c in cases.all_cases()[0] if "aten::std_mean.correction" in replacements.replaces_ops(c)}
    assert expected and {r.case for r in found} == expected
    assert "fused" in expected  # cases/std_mean.py: torch.std_mean itself
    for rep_case in found:
        assert rep_case.verdict_from.startswith("measured-cpu-") and rep_case.verdict_from.endswith(".json")
        assert rep_case.verdict.startswith(("equivalent at float32", "NOT equivalent at float32"))
    assert "replace with case fused" in report.render_text(rep)


class _IsinCase:
    name, replaces, source, family = "isin_by_broadcast", "torch.isin(a, b)", "a forum", "isin"
    replaces_ops = ("aten::isin.Tensor_Tensor",)
    fixed = MappingProxyType({})

    class claim:  # stands in for a Claim
        @staticmethod
        def describe():
            return "isin"


class _FamilyIsinCase(_IsinCase):  # the op families' spelling of the same declaration
    replaces_ops = None
    ops = ("aten::isin.Tensor_Tensor",)


@pytest.mark.parametrize("case_type", [_IsinCase, _FamilyIsinCase])
def test_a_case_declaring_replaces_ops_is_joined_and_judged(case_type):
    judged = []

    class Stub:
        def __init__(self, equivalent):
            self.equivalent = equivalent

        def to_json(self):
            return {"equivalent": self.equivalent, "correction": 0, "causes": ["value mismatch"]}

    def judge(case, correction, dtype, device):
        judged.append((case.name, dtype, device))
        return Stub(False)

    lookup = replacements.VerdictLookup(committed=[], judge_fn=judge)
    found = replacements.replacements_for([(ISIN, "int64")], lookup, registry=[case_type(), *cases.all_cases()[0]])
    registry = {c.name: c for c in cases.all_cases()[0]}
    names = [r.case for r in found[ISIN]]
    assert names[0] == "isin_by_broadcast"
    assert all(ISIN in replacements.replaces_ops(registry[n]) for n in names[1:])  # the families' isin cases
    dtype = replacements.judged_dtype(case_type(), "int64")  # int64 where the isin family exists, else float32
    assert ("isin_by_broadcast", dtype, "cpu") in judged
    assert found[ISIN][0].verdict.startswith(f"NOT equivalent at {dtype}")


# -- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, words", [
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    ("matrix.examples.toy_unet:no_such_fn", "'no_such_fn' not found"),
    ("opcompat.vocab:dtype_name", "needs inputs it was not given (parameters: dtype)"),
    ("missing_script.py", "no such script"),
    ("not a target", "not module:function"),
])
def test_bad_target_is_named_exit_2_nothing_printed(spec, words, capsys):
    rc = cli.main([spec, "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert spec.strip() in err and words in err


def test_target_that_raises_is_named(tmp_path, capsys):
    script = tmp_path / "broken.py"
    script.write_text("import torch\n\ndef step():\n    torch.ones(2) + 1\n    raise ValueError('boom')\n")
    rc = cli.main([f"{script}:step", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert f"TARGET {script}:step raised ValueError: boom" in err


def test_script_target_gets_its_arguments(tmp_path, capsys):
    script = tmp_path / "job.py"
    script.write_text("import sys, torch\nfor _ in range(int(sys.argv[1])):\n    torch.ones(3).cumsum(0)\n")
    path = tmp_path / "statuses.json"
    path.write_text(json.dumps({"2.2.2": {"aten::cumsum.default": "fallback"}}))
    rc = cli.main([str(script), "--statuses", str(path), "--torch", "2.2", "--json", "--quiet", "--", "4"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert {(r["op"], r["count"]) for r in data["statuses"]} >= {("aten::cumsum.default", 4)}
    assert data["still_on_cpu"][0]["op"] == "aten::cumsum.default"


def test_saved_op_list_round_trips(textgen, tmp_path, capsys):
    path = tmp_path / "statuses.json"
    path.write_text(json.dumps(all_native(textgen, releases=["2.2.2"])))
    assert cli.main([TEXT, "--statuses", str(path), "--torch", "2.2", "--json", "--quiet"]) == 0
    saved = tmp_path / "scan.json"
    saved.write_text(capsys.readouterr().out)
    again = workload.workload_of(target.parse(str(saved)))
    assert again.counts == textgen.counts
    listing = tmp_path / "ops.txt"
    listing.write_text("# from a log\naten::isin.Tensor_Tensor int64 7\naten::cumsum float32\n")
    ops = workload.workload_of(target.parse(str(listing)))
    assert ops.counts == {(ISIN, "int64"): 7, ("aten::cumsum.default", "float32"): 1}


# -- --device mps, through the simulated backend ------------------------------------------------------
FIVE_CALLS = "import torch\n\ndef step(x):\n    for _ in range(3):\n        torch.isin(x, x)\n    x.cumsum(0)\n" \
             "    return x.float().sin()\n\ndef example_inputs():\n    return (torch.arange(6),)\n"


def _simulated(tmp_path, fallback_enabled=True):
    path = tmp_path / "five.py"
    path.write_text(FIVE_CALLS)
    spec = target.parse(f"{path}:step")
    table = {ISIN: {"status": "fallback", "dtype_status": {}}, "aten::cumsum.default": {"status": "fallback"}}
    return measure.measure(spec, target.runner(spec), "simulated MPS", SimulatedMPS(table, fallback_enabled))


def test_every_fallback_call_is_pinned_on_its_op(tmp_path):
    # The real warning is TORCH_WARN_ONCE; only set_warn_always makes the 2nd op's fallback visible.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing else may leak out as a warning
        found = _simulated(tmp_path)
    statuses = {k: found.answer.get(*k).status for k in found.workload.counts}
    assert statuses[(ISIN, "int64")] == "fallback" and statuses[("aten::cumsum.default", "int64")] == "fallback"
    assert statuses[("aten::sin.default", "float32")] == "native"
    assert found.workload.counts[(ISIN, "int64")] == 3
    assert found.fallback_names[("aten::cumsum.default", "int64")] == {"aten::cumsum"}
    assert found.stopped is None and not torch.is_warn_always_enabled()


def test_without_the_fallback_the_run_stops_at_the_op(tmp_path):
    found = _simulated(tmp_path, fallback_enabled=False)
    assert found.stopped.startswith(f"{ISIN} (int64): not_implemented")
    assert found.answer.get(ISIN, "int64").status == "not_implemented"


def test_measured_row_is_valid_and_simulated_never_published(tmp_path):
    found = _simulated(tmp_path)
    written = measure.write_row(found, tmp_path, simulated=True)
    data = results.load(written)
    assert data.kind == "simulated"
    rows = {(r.op, r.dtype): r.status for r in data.ops}
    assert rows[(ISIN, "int64")] == "fallback" and rows[("aten::sin.default", "float32")] == "native"
    with pytest.raises(results.PublishError):
        measure.write_row(found, results.RESULTS_DIR, simulated=True)


def test_simulated_device_cli_reports_the_fallbacks(textgen, tmp_path, capsys):
    path = tmp_path / "statuses.json"
    release = status_source.releases_from([torch.__version__.split("+")[0]])[0]
    path.write_text(json.dumps(all_native(textgen, releases=[release], **{release: {ISIN: "fallback"}})))
    rc = cli.main([TEXT, "--device", "simulated-mps", "--statuses", str(path), "--json", "--verdicts", "none"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["kind"] == "simulated"
    assert [(r["op"], r["dtype"]) for r in data["still_on_cpu"]] == [(ISIN, "int64")]


def test_a_measured_row_is_one_the_matrix_builds_from(tmp_path):
    work = workload.Workload("t", {("aten::std_mean.correction", "float32"): 2, (ISIN, "int64"): 1}, {}, "x")
    answer = status_source.ReleaseAnswer("mps (measured)", {
        ("aten::std_mean.correction", "float32"): status_source.OpAnswer("fallback", evidence=("warning named it",)),
        (ISIN, "int64"): status_source.OpAnswer("native")})
    rows = measure.op_rows(measure.Measurement(work, answer))
    data = results.make("measured", devices.torch_info(), devices.machine("mps"), rows, [], [])
    results.write(data, tmp_path)
    text, used, skipped = build.build(tmp_path)
    assert used == 1 and not skipped
    flat = " ".join(text.split())  # matrix/build.py: op rows as release ranges, provenance once per table
    assert "| std_mean.correction | all | fallback |" in flat and "(M: mps," in flat


def test_device_mps_without_a_mac_says_so(monkeypatch, capsys):
    monkeypatch.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1")  # else scan restarts itself with it set
    rc = cli.main([TEXT, "--device", "mps", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert "--device mps: MPS is not available here" in err


def test_write_row_needs_a_device(capsys):
    assert cli.main([TEXT, "--write-row"]) == 2
    assert "--write-row needs --device" in capsys.readouterr().err
