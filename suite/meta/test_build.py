"""The MATRIX.md builder: every cell with its provenance, bad files named and skipped, simulated never shown."""

from __future__ import annotations

import json
import re

import pytest

from matrix import results
from matrix.__main__ import main as matrix_main

pytestmark = pytest.mark.meta

STD_MEAN = "aten::std_mean.correction"
PREDICTED = {"device": "mps", "device_name": "Apple MPS (predicted)", "os": "macOS", "python": "", "slug": "predicted"}
MAC = {"device": "mps", "device_name": "Apple MPS, Apple M2", "os": "macOS 14.5 (arm64)", "python": "3.11",
       "slug": "macos14-arm64-apple-mps-apple-m2"}
CPU = {"device": "cpu", "device_name": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "os": "Linux", "python": "3.11",
       "slug": "linux-x86-64-intel-xeon"}
SIM = {"device": "mps", "device_name": "SIMULATED-MARK", "os": "Linux", "python": "3.11", "slug": "linux-simulated"}


def ops(status_by_dtype, op=STD_MEAN):
    return [{"op": op, "dtype": d, "status": s, "message": "", "evidence": []} for d, s in status_by_dtype.items()]


def cases(runs, fallback=()):
    return [{"case": "fused", "dtype": "float32", "runs_on_device": runs, "fallback_ops": list(fallback),
             "message": ""}]


def torch_info(version):
    return {"version": version, "git": None, "cuda": None}


@pytest.fixture
def folder(tmp_path):
    write = results.write
    write(results.make("predicted", torch_info("2.2.2"), PREDICTED,
                       ops({"float32": "fallback", "float16": "fallback", "bfloat16": "native"}),
                       cases(False, [STD_MEAN])), tmp_path)
    write(results.make("predicted", torch_info("2.13.0"), PREDICTED, ops({"float32": "native"}), cases(True)),
          tmp_path)
    write(results.make("measured", torch_info("2.13.0"), MAC, ops({"float32": "native"}), cases(True)), tmp_path)
    verdict = {"case": "fused", "correction": 1, "dtype": "float32", "device": "cpu", "equivalent": False,
               "causes": ["wrong correction"], "failing_regimes": ["normal"], "counterexample": ""}
    write(results.make("measured", torch_info("2.13.0+cpu"), CPU, ops({"float32": "native", "float64": "native"}),
                       cases(True), [verdict]), tmp_path)
    older = {**verdict, "equivalent": True, "causes": []}
    write(results.make("measured", torch_info("2.2.2+cpu"), CPU,
                       ops({"float32": "native"}) + ops({"float32": "native"}, op="prims::var.default"), cases(True),
                       [older]), tmp_path)
    write(results.make("simulated", torch_info("2.13.0"), SIM, ops({"float32": "wrong_result"}), cases(False)),
          tmp_path)
    (tmp_path / "measured-cpu-2.0.0-broken.json").write_text('{"schema_version": 1, "kind": "meas')
    speed = {"schema_version": 1, "source": "measured", "machine": {"device": "cuda", "device_name": "H100"},
             "summary": [{"dtype": "float16", "variant": "two_pass_corrected", "wins": 3, "of": 4}],
             "recommendation": [{"dtype": "float16", "shape": [8, 64], "variant": "two_pass_corrected"}],
             "rows": [{"x": 1}]}
    (tmp_path / "speed-cuda-h100-torch2.11.0.json").write_text(json.dumps(speed))
    (tmp_path / "speed-broken.json").write_text("[")
    return tmp_path


def build(folder, capsys, *extra):
    out = folder / "MATRIX.md"
    code = matrix_main(["build", "--results", str(folder), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, (out.read_text() if out.exists() else ""), captured.err


def section(text, title):
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else None]


def table_cells(block):
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| op overload")
            and not line.startswith("| case ")]
    return [cell.strip() for row in rows for cell in row.strip("|").split("|")[1:]]


def test_a_malformed_file_is_named_with_its_reason_and_every_other_row_survives(folder, capsys):
    code, text, err = build(folder, capsys)
    assert code == 0
    assert "measured-cpu-2.0.0-broken.json" in err and "not valid JSON" in err
    skipped = section(text, "Skipped result files")
    assert "`measured-cpu-2.0.0-broken.json`: is not valid JSON (truncated" in skipped
    assert "`speed-broken.json`: unreadable speed result" in skipped
    for name in ("predicted-mps-2.2.2.json", "measured-mps-2.13.0-macos14-arm64-apple-mps-apple-m2.json",
                 "measured-cpu-2.13.0-linux-x86-64-intel-xeon.json"):
        assert f"| {name}" in section(text, "Sources"), name


def test_simulated_results_are_never_published(folder, capsys):
    _, text, err = build(folder, capsys)
    assert "SIMULATED-MARK" not in text and "wrong_result (" not in text
    assert "simulated-mps-2.13.0-linux-simulated.json`: a simulated result is never published" in text
    assert "simulated-mps-2.13.0-linux-simulated.json" in err


def test_every_cell_says_where_it_comes_from(folder, capsys):
    _, text, _ = build(folder, capsys)
    cells = []
    for title in ("MPS: op support by torch release", "CPU: op support (measured)",
                  "Runs on the device without any CPU fallback"):
        cells += table_cells(section(text, title))
    assert cells
    bad = [c for c in cells if not re.search(r"\((P|M: (mps|cpu|cuda), [^)]+)\)$", c)]
    assert not bad, f"cells without provenance: {bad}"


def test_mps_columns_are_predicted_unless_a_release_was_measured(folder, capsys):
    _, text, _ = build(folder, capsys)
    mps = section(text, "MPS: op support by torch release")
    header = mps.splitlines()[4]
    assert [h.strip() for h in header.strip("|").split("|")] == ["op overload", "2.2.2", "2.13.0 · Apple MPS, Apple M2"]
    assert f"| {STD_MEAN} | f32, f16: fallback · bf16: native (P) | native (M: mps, Apple MPS, Apple M2) |" in (
        re.sub(r" {2,}", " ", mps))
    runs = re.sub(r" {2,}", " ", section(text, "Runs on the device without any CPU fallback"))
    assert "| fused | no: std_mean.correction (P) | yes (M: mps, Apple MPS, Apple M2) | yes (M: cpu, Intel Xeon " \
           "Platinum 8375C) |" in runs
    verdicts = re.sub(r" {2,}", " ", section(text, "Verdicts"))
    assert "### cpu · torch 2.13.0+cpu" in verdicts, "the newest release in full"
    assert "NOT: wrong correction (M: cpu, Intel Xeon Platinum 8375C)" in verdicts
    assert "#### cpu · torch 2.2.2+cpu · Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz: the cells that differ" \
        in verdicts
    assert "| fused | 1 | float32 | equivalent (M: cpu, Intel Xeon Platinum 8375C) | NOT: wrong correction" in verdicts


def test_speed_results_get_a_section(folder, capsys):
    _, text, _ = build(folder, capsys)
    speed = section(text, "Speed")
    assert "cuda · H100" in speed and "two_pass_corrected" in speed and "1 timing rows" in speed


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


def test_the_committed_result_files_are_all_valid_and_publishable():
    found, skipped = results.load_dir(results.RESULTS_DIR)
    assert not skipped, f"unreadable committed result files: {skipped}"
    assert all(data["kind"] in results.PUBLISHABLE for _, data in found)


def test_the_committed_predictions_cover_every_release():
    from matrix.predict import RELEASES

    missing = [v for v in RELEASES if not (results.RESULTS_DIR / f"predicted-mps-{v}.json").is_file()]
    assert not missing, f"no predicted-mps file for {missing}: run python -m matrix probe --predict-all"


def test_an_op_only_some_files_have_is_marked_absent_where_missing_and_kept_off_other_devices(folder, capsys):
    _, text, _ = build(folder, capsys)
    cpu = re.sub(r" {2,}", " ", section(text, "CPU: op support (measured)"))
    assert "| prims::var.default | native (M: cpu, Intel Xeon Platinum 8375C) | not probed (M: cpu, Intel Xeon " in cpu
    assert "prims::var.default" not in section(text, "MPS: op support by torch release")
