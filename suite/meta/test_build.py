"""The MATRIX.md builder: answers first, only equivalent cases recommended, each release's cells from the ops
traced on that release, provenance once per source, bad files named and skipped, simulated never shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from matrix import results, traces
from matrix.__main__ import main as matrix_main
from matrix.render import ops as ops_render
from matrix.render.model import Model
from opcompat import records

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.meta

STD_MEAN, VAR_MEAN, STD, MEAN, SQRT = ("aten::std_mean.correction", "aten::var_mean.correction",
                                       "aten::std.correction", "aten::mean.dim", "aten::sqrt.default")
PREDICTED = {"device": "mps", "device_name": "Apple MPS (predicted)", "os": "macOS", "python": "", "slug": "predicted"}
MAC = {"device": "mps", "device_name": "Apple MPS, Apple M2", "os": "macOS 14.5 (arm64)", "python": "3.11",
       "slug": "macos14-arm64-apple-mps-apple-m2"}
CPU = {"device": "cpu", "device_name": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "os": "Linux", "python": "3.11",
       "slug": "linux-x86-64-intel-xeon"}
CUDA = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "os": "Linux", "python": "3.11", "slug": "h100"}
SIM = {"device": "mps", "device_name": "SIMULATED-MARK", "os": "Linux", "python": "3.11", "slug": "linux-simulated"}
BF16_GATE = 'bfloat16: native: needs macOS 14+: "MPS BFloat16 is only supported on MacOS 14 or newer"'
BACKEND = 'libtorch: "The MPS backend is supported on MacOS 13.0+"'
# The op lists a release traced: 2.2 and 2.13 the same set, 1.13 another one (its _refs reach prims).
TRACED = [STD_MEAN, VAR_MEAN, STD, MEAN, SQRT]
TRACED_113 = [STD_MEAN, STD, MEAN, "prims::var.default"]


def op_rows(statuses, evidence=()):
    """statuses: {op: {dtype: status}}."""
    return [{"op": op, "dtype": d, "status": s, "message": "", "evidence": list(evidence)}
            for op, by_dtype in statuses.items() for d, s in by_dtype.items()]


def mps_ops(fused, others, bf16="unsupported_dtype", evidence=()):
    fused_bf16 = bf16 if fused == "native" else "unsupported_dtype"
    out = {STD_MEAN: {"float32": fused, "float16": fused, "bfloat16": fused_bf16}}
    for op in (VAR_MEAN, STD, MEAN, SQRT):
        out[op] = {"float32": others, "float16": others, "bfloat16": bf16}
    return op_rows(out, evidence)


def native(ops, dtypes=("float32", "float16")):
    return op_rows({op: dict.fromkeys(dtypes, "native") for op in ops})


def stale_cases():
    """What predict_all wrote from a newer trace: refs reaching var_mean.correction (a fallback on 1.13)."""
    return [{"case": "refs", "dtype": "float32", "runs_on_device": False, "fallback_ops": [VAR_MEAN], "message": ""}]


def verdict(case, dtype, equivalent, device="cpu", causes=(), correction=1):
    return {"case": case, "correction": correction, "dtype": dtype, "device": device, "equivalent": equivalent,
            "causes": list(causes), "failing_regimes": [], "counterexample": "", "device_notes": []}


CPU_VERDICTS = [verdict("std_plus_mean", "float32", True), verdict("std_plus_mean", "float16", True),
                verdict("var_mean_sqrt", "float32", False, causes=["underflow (std flushed to 0)"]),
                verdict("var_mean_sqrt", "float16", False, causes=["overflow (std, near_overflow)"]),
                verdict("fused", "float32", True)]
CUDA_VERDICTS = [verdict("std_plus_mean", "float32", True, "cuda"), verdict("std_plus_mean", "float16", True, "cuda"),
                 verdict("var_mean_sqrt", "float32", True, "cuda"),
                 verdict("var_mean_sqrt", "float16", False, "cuda", ["overflow (std, near_overflow)"])]


def torch_info(version):
    return {"version": version, "git": None, "cuda": None}


def write_trace(folder, version, ops, case_ops):
    data = {"schema_version": 1, "torch": {"version": version}, "created": "2026-01-01T00:00:00+00:00", "ops": ops,
            "cases": {c: {"float32": [[o, "float32"] for o in reached], "float16": [[o, "float16"] for o in reached]}
                      for c, reached in case_ops.items()}}
    traces.write(data, folder / "traces")


@pytest.fixture
def folder(tmp_path):
    write = results.write
    for version, fused, evidence in (("1.13.1", "fallback", ()), ("2.2.2", "fallback", ()),
                                     ("2.13.0", "native", (BF16_GATE, BACKEND))):
        write(results.make("predicted", torch_info(version), PREDICTED,
                           mps_ops(fused, "native", bf16="native" if fused == "native" else "unsupported_dtype",
                                   evidence=evidence), stale_cases()), tmp_path)
    write(results.make("measured", torch_info("2.13.0+cpu"), CPU, native(TRACED), [], CPU_VERDICTS), tmp_path)
    older = [*CPU_VERDICTS[:2], verdict("var_mean_sqrt", "float32", True), *CPU_VERDICTS[3:]]
    write(results.make("measured", torch_info("2.2.2+cpu"), CPU, native(TRACED), [], older), tmp_path)
    write(results.make("measured", torch_info("1.13.1+cpu"), CPU, native(TRACED_113), [], CPU_VERDICTS), tmp_path)
    write(results.make("measured", torch_info("2.11.0+cu130"), CUDA, native(TRACED), [], CUDA_VERDICTS), tmp_path)
    write_trace(tmp_path, "2.13.0+cpu", TRACED, {"fused": [STD_MEAN], "std_plus_mean": [STD, MEAN],
                                                "var_mean_sqrt": [VAR_MEAN, SQRT], "refs": [VAR_MEAN, SQRT]})
    write(results.make("simulated", torch_info("2.13.0"), SIM, op_rows({STD_MEAN: {"float32": "wrong_result"}}), []),
          tmp_path)
    (tmp_path / "measured-cpu-2.0.0-broken.json").write_text('{"schema_version": 1, "kind": "meas')
    (tmp_path / "speed-broken.json").write_text("[")
    return tmp_path


def speed_row(variant, dtype, median, **extra):
    return {"variant": variant, "kind": "case", "equivalent": True, "label": "", "dtype": dtype, "shape": [8, 64],
            "numel": 512, "dims": [1], "median_s": median, "GBps": 1.0, "slowdown_vs_fused": 1.25,
            "speedup_vs_fallback": 10.0, **extra}


def build(folder, capsys, *extra):
    out = folder / "MATRIX.md"
    code = matrix_main(["build", "--results", str(folder), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, (out.read_text(encoding="utf-8") if out.exists() else ""), captured.err


def section(text, title):
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else None]


def bullet_for(block, head):
    """The bullet (with its wrapped lines) that starts with ``head``."""
    found = re.search(rf"^- {re.escape(head)}.*?(?=^- |^$|\Z)", block, re.S | re.M)
    assert found, f"no bullet {head!r} in:\n{block}"
    return " ".join(found.group(0).split())


def squeeze(text):
    return re.sub(r" {2,}", " ", text)


def test_the_answers_come_first_and_answer_the_m2_torch_22_question(folder, capsys):
    _, text, _ = build(folder, capsys)
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "Does `torch.std_mean` fall back, and what should I use?"
    answer = bullet_for(section(text, sections[0]), "**torch 2.2**")
    assert "**falls back to the CPU** for f32, f16" in answer
    # 2.2's own CPU verdicts (var_mean_sqrt equivalent in float32 there), CUDA's newest; float16 overflows.
    assert "**Use (P)**: f32: std_plus_mean, var_mean_sqrt · f16: std_plus_mean." in answer
    assert "per-case ops traced on 2.13; the measured run of this release traced the same op set" in answer
    newest = bullet_for(section(text, sections[0]), "**torch 2.13**")
    assert "(MPS needs macOS ≥ 13.0)" in newest, "the backend's own minimum, from the wheel's evidence"
    assert "bf16: native on macOS ≥ 14" in newest, "bfloat16's gate is newer than the backend's: said"
    assert "**Use** `torch.std_mean` itself" in newest


def test_a_case_is_recommended_only_where_its_verdict_is_equivalent(folder, capsys):
    _, text, _ = build(folder, capsys)
    answers = section(text, "Does `torch.std_mean` fall back")
    close = bullet_for(answers, "var_mean_sqrt:")
    assert "cpu: 0 where std < 1.1e-19 (f32); inf where std > 256 (f16)" in close
    cpu = bullet_for(answers[answers.index("### CPU"):], "**torch 2.13**")
    assert "f32, f16: std_plus_mean" in cpu and "var_mean_sqrt" not in cpu
    older_cpu = bullet_for(answers[answers.index("### CPU"):], "**torch 2.2**")
    assert "f32: std_plus_mean, var_mean_sqrt" in older_cpu, "2.2's own verdicts, not the newest release's"
    cuda = bullet_for(answers[answers.index("### CUDA"):], "**torch 2.11**")
    assert "f32: std_plus_mean, var_mean_sqrt · f16: std_plus_mean" in cuda


def test_ops_traced_on_another_release_are_never_applied_to_it(folder, capsys):
    _, text, _ = build(folder, capsys)
    answer = bullet_for(section(text, "Does `torch.std_mean` fall back"), "**torch 1.13**")
    assert "**Use (P)**: f32, f16: not known" in answer and "its op set differs from every traced release" in answer
    runs = squeeze(section(text, "Runs on the device"))
    assert "| refs | ≤ 1.13 | — | — | — |" in runs, "1.13's _refs were not traced per case: no cell from 2.13's"
    assert "| | 2.2 | yes | yes |" in runs
    mps_ops = squeeze(section(text, "std_mean family")).split("### CPU")[0]
    assert "| var_mean.correction | 2.2 | native | native | unsupported_dtype |" in mps_ops, "1.13 traced no var_mean"
    assert "| prims::var | ≤ 1.13 | unknown | unknown | unknown |" in mps_ops


def test_provenance_is_said_once_per_table_never_per_cell(folder, capsys):
    _, text, _ = build(folder, capsys)
    cells = [line for line in text.splitlines() if line.startswith("|")]
    assert cells and not [c for c in cells if "(P)" in c or "(M:" in c]
    for title in ("std_mean family", "Runs on the device", "Verdicts"):
        heads = re.findall(r"^### (.+)$", section(text, title), re.M)
        assert heads and all(re.search(r"\((P|M: (mps|cpu|cuda), [^)]+)", h) for h in heads), heads
    assert "(M: cpu, Intel Xeon Platinum 8375C)" in section(text, "Verdicts")


def test_macos_conditions_are_in_the_cells_where_they_apply(folder, capsys):
    _, text, _ = build(folder, capsys)
    mps_ops = squeeze(section(text, "std_mean family")).split("### CPU")[0]
    assert "| std.correction | ≤ 2.2 | native | native | unsupported_dtype |" in mps_ops
    assert "| | ≥ 2.13, macOS ≥ 13.0 | native | native | native (macOS ≥ 14) |" in mps_ops


def test_a_malformed_file_is_named_with_its_reason_and_every_other_row_survives(folder, capsys):
    code, text, err = build(folder, capsys)
    assert code == 0
    assert "measured-cpu-2.0.0-broken.json" in err and "not valid JSON" in err
    skipped = " ".join(section(text, "Skipped result files").split())
    assert "`measured-cpu-2.0.0-broken.json`: is not valid JSON (truncated" in skipped
    assert "`speed-broken.json`: unreadable speed result" in skipped
    sources = " ".join(section(text, "Sources").split())
    assert "torch 1.13.1+cpu, 2.2.2+cpu, 2.13.0+cpu" in sources and "predicted-mps-<torch>.json" in sources


def test_a_result_file_the_typed_records_reject_is_skipped_with_the_field_named(folder, capsys):
    data = records.to_json(results.make("measured", torch_info("2.3.0+cpu"), CPU, native(TRACED), [], []))
    data["ops"][0]["surprise"] = 1
    (folder / "measured-cpu-2.3.0-linux-x86-64-intel-xeon.json").write_text(json.dumps(data))
    _, text, _ = build(folder, capsys)
    skipped = " ".join(section(text, "Skipped result files").split())
    assert "`measured-cpu-2.3.0-linux-x86-64-intel-xeon.json`: ops[0]" in skipped and "surprise" in skipped


def test_simulated_results_are_never_published(folder, capsys):
    _, text, err = build(folder, capsys)
    assert "SIMULATED-MARK" not in text and "wrong_result" not in text.split("## Legend")[0]
    assert "simulated-mps-2.13.0-linux-simulated.json`: a simulated result is never published" in text
    assert "simulated-mps-2.13.0-linux-simulated.json" in err


def test_a_measured_mps_file_replaces_the_prediction_for_its_release(folder, capsys):
    runs = [{"case": "refs", "dtype": d, "runs_on_device": False, "fallback_ops": [SQRT], "message": ""}
            for d in ("float32", "float16", "bfloat16")]
    results.write(results.make("measured", torch_info("2.13.0"), MAC, mps_ops("native", "native", "native"), runs),
                  folder)
    _, text, _ = build(folder, capsys)
    runs_block = squeeze(section(text, "Runs on the device"))
    assert "| | ≥ 2.13 | no: sqrt | no: sqrt | no: sqrt |" in runs_block
    assert "2.13.0 (M: mps, Apple MPS, Apple M2)" in squeeze(section(text, "std_mean family"))


def test_speed_picks_only_cases_equivalent_on_that_device(folder, capsys):
    speed = {"schema_version": 1, "source": "measured",
             "machine": {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu130"},
             "rows": [speed_row("var_mean_sqrt", "float16", 1e-5), speed_row("std_plus_mean", "float16", 2e-5),
                      speed_row("var_mean_sqrt", "float32", 1e-5), speed_row("std_plus_mean", "float32", 2e-5),
                      speed_row("upcast", "float32", 1e-6, uses_fused_op=True)]}
    (folder / "speed-cuda-h100-torch2.11.0.json").write_text(json.dumps(speed))
    _, text, _ = build(folder, capsys)
    block = squeeze(section(text, "Speed"))
    assert "| f16 | 1 | 512 | std_plus_mean | 0.8 | 10 |" in block, "var_mean_sqrt overflows float16 on cuda"
    assert "| f32 | 1 | 512 | var_mean_sqrt |" in block, "equivalent on cuda in float32"
    assert "upcast" not in block, "calls torch.std_mean itself: not a replacement"
    assert "var_mean_sqrt is equivalent on cuda but not on the CPU: 0 where std < 1.1e-19 (f32)" in " ".join(
        block.split())


def test_every_op_section_reads_new_statuses_as_release_ranges():
    def predicted(version, statuses, min_macos=None):
        rows = []
        for op, status in statuses.items():
            row = {"op": op, "dtype": "float32", "status": status, "message": "", "evidence": []}
            if min_macos and status == "native_macos":
                row["min_macos"] = min_macos
            rows.append(row)
        return (None, {"kind": "predicted", "torch": torch_info(version), "machine": PREDICTED, "ops": rows,
                       "cases": [], "verdicts": []})

    releases = ["2.1.2", "2.2.2", "2.3.1", "2.4.1"]
    data = [predicted(v, {"aten::isin.Tensor_Tensor": "fallback" if v < "2.3" else "native",
                          "aten::relu.default": "native",
                          "aten::cumsum.default": "forced_cpu",
                          "aten::_new.default": "not_in_release" if v < "2.4" else "native",
                          "aten::erfinv.default": "native_macos" if v >= "2.3" else "fallback",
                          "aten::linear.default": "composite_mps"}, min_macos="15.0") for v in releases]
    text = "\n".join(ops_render.all_ops_section(Model(data, {})))
    rows = squeeze(text)
    assert "| isin.Tensor_Tensor | fallback ≤ 2.2 · native ≥ 2.3 |" in rows
    assert "| cumsum | forced_cpu everywhere |" in rows
    assert "| erfinv | fallback ≤ 2.2 · native (macOS ≥ 15.0) ≥ 2.3 |" in rows
    assert "| linear | composite_mps everywhere |" in rows
    assert "relu" not in rows and "_new" not in rows, "native wherever it exists: left out"


def test_nothing_to_build_exits_non_zero_and_says_why(tmp_path, capsys):
    (tmp_path / "measured-cpu-2.0.0-broken.json").write_text("{")
    code, text, err = build(tmp_path, capsys)
    assert code == 1 and not text
    assert "nothing to build" in err and "measured-cpu-2.0.0-broken.json" in err


def test_check_reports_a_stale_matrix(folder, capsys):
    assert build(folder, capsys)[0] == 0
    assert build(folder, capsys, "--check")[0] == 0
    (folder / "MATRIX.md").write_text("hand-edited")
    code, _, err = build(folder, capsys, "--check")
    assert code == 1 and "out of date" in err


def test_the_committed_matrix_is_generated_from_the_committed_results(capsys):
    code = matrix_main(["build", "--check"])
    assert code == 0, capsys.readouterr().err + " (run python -m matrix build)"


def test_the_committed_result_files_are_all_valid_and_publishable():
    found, skipped = results.load_dir(results.RESULTS_DIR)
    assert not skipped, f"unreadable committed result files: {skipped}"
    assert all(data["kind"] in results.PUBLISHABLE for _, data in found)
    found_traces, bad = traces.load_dir()
    assert not bad and found_traces, f"committed traces: {bad or 'none'}"


def test_the_committed_predictions_cover_every_release():
    from matrix.predict import RELEASES

    missing = [v for v in RELEASES if not (results.RESULTS_DIR / f"predicted-mps-{v}.json").is_file()]
    assert not missing, f"no predicted-mps file for {missing}: run python -m matrix probe --predict-all"


def test_trace_write_records_the_cases_of_the_installed_torch(tmp_path, capsys):
    assert matrix_main(["trace", "--write", "--traces", str(tmp_path)]) == 0
    found, bad = traces.load_dir(tmp_path)
    assert not bad and len(found) == 1
    (trace,) = found.values()
    reached = {op for op, _ in traces.case_ops(trace)["std_plus_mean"]["float32"]}
    assert reached == {STD, MEAN}
    assert {op for op, _ in traces.case_ops(trace)["fused"]["float16"]} == {STD_MEAN}
    (path,) = tmp_path.glob("traced-*.json")
    before = path.read_bytes()
    data = {**trace, "created": "2099-01-01T00:00:00+00:00"}
    traces.write(data, tmp_path)
    assert path.read_bytes() == before, "the same trace again: no diff"


def write_snapshot(directory, version, by_status, min_macos=None, differs=None):
    directory.mkdir(exist_ok=True)
    data = {"torch": version, "counts": {k: len(v) for k, v in by_status.items()}, "descriptions": {},
            "ops_by_status": by_status, "min_macos": min_macos or {}, "dtype_differs": differs or {}}
    (directory / f"mps-{version}.json").write_text(json.dumps(data))


def test_the_all_op_page_comes_from_the_prediction_snapshots(folder, capsys):
    snaps = folder.parent / "snapshots"
    isin = ["aten::isin.Tensor_Tensor", "aten::isin.Tensor_Tensor_out"]
    write_snapshot(snaps, "2.1.2", {"fallback": [*isin, STD_MEAN, "aten::cumsum.default"],
                                    "native": ["aten::relu.default"], "composite": ["aten::linear.default"]})
    write_snapshot(snaps, "2.2.2", {"fallback": [*isin, STD_MEAN], "native": ["aten::relu.default"],
                                    "native_macos": ["aten::cumsum.default"], "composite": ["aten::linear.default"]},
                   min_macos={"aten::cumsum.default": "13.0"})
    write_snapshot(snaps, "2.3.1", {"native": [*isin, STD_MEAN, "aten::relu.default", "aten::cumsum.default"],
                                    "composite": ["aten::linear.default"]},
                   differs={STD_MEAN: {"float32": "native_macos(15.0)"}})
    out = folder / "MATRIX.md"
    assert matrix_main(["build", "--results", str(folder), "--out", str(out), "--snapshots", str(snaps)]) == 0
    capsys.readouterr()
    summary = squeeze(section(out.read_text(encoding="utf-8"), "Every aten op on MPS (P)"))
    assert "| 2.2.2 | 1 | 1 | 1 | 3 |" in summary and "[MATRIX-mps-ops.md](MATRIX-mps-ops.md)" in summary
    page = (folder / "MATRIX-mps-ops.md").read_text(encoding="utf-8")
    assert "- `isin.{Tensor_Tensor, Tensor_Tensor_out}`: fallback ≤ 2.2 · native ≥ 2.3" in page
    assert "- `std_mean.correction`: fallback ≤ 2.2 · native (macOS ≥ 15.0) ≥ 2.3" in page, "a dtype's own gate"
    assert "- `cumsum`: fallback ≤ 2.1 · native (macOS ≥ 13.0) 2.2 · native ≥ 2.3" in page
    assert "relu" not in page and "linear" not in page, "native or composite everywhere: left out"
    (folder / "MATRIX-mps-ops.md").write_text("hand-edited")
    code = matrix_main(["build", "--results", str(folder), "--out", str(out), "--snapshots", str(snaps), "--check"])
    assert code == 1 and "MATRIX-mps-ops.md" in capsys.readouterr().err


def test_a_mac_that_judged_a_release_decides_its_recommendation(folder, capsys):
    runs = [{"case": c, "dtype": "float32", "runs_on_device": True, "fallback_ops": [], "message": ""}
            for c in ("std_plus_mean", "var_mean_sqrt")]
    mac_verdicts = [verdict("std_plus_mean", "float32", False, "mps", ["overflow (std, near_overflow)"]),
                    verdict("var_mean_sqrt", "float32", True, "mps")]
    results.write(results.make("measured", torch_info("2.2.2"), MAC, mps_ops("fallback", "native"), runs,
                               mac_verdicts), folder)
    _, text, _ = build(folder, capsys)
    answer = bullet_for(section(text, "Does `torch.std_mean` fall back"), "**torch 2.2**")
    assert "**Use (M)**: f32: var_mean_sqrt · f16: none known" in answer, "the Mac's verdicts, not CPU's and CUDA's"


def test_the_matrix_does_not_depend_on_the_hash_seed():
    """Sets iterate in an order that changes with PYTHONHASHSEED: the rendered text must not (int dtypes
    once came out as int64, int32 or int32, int64 from one process to the next)."""
    code = ("import sys; from matrix import build, results; "
            "sys.stdout.write(build.build(results.RESULTS_DIR, build.default_snapshots(results.RESULTS_DIR))[0])")
    texts = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout for seed in ("1", "2", "3")}
    assert len(texts) == 1
