"""opcompat.records: one JSON path and one validator for every record that crosses a file or a process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opcompat import records
from opcompat.records import BenchRow, CaseRow, Observation, OpRow, RecordError, ResultFile, VerdictRow

pytestmark = pytest.mark.meta

RESULTS = Path(__file__).resolve().parents[2] / "matrix" / "results"
COMMITTED = sorted(p for p in RESULTS.glob("*.json") if p.name.startswith(("measured-", "predicted-")))


def test_every_committed_result_file_round_trips_unchanged():
    assert COMMITTED, f"no result files under {RESULTS}"
    for path in COMMITTED:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = records.from_json(ResultFile, data, where=path.name)
        assert records.to_json(record) == data, path.name
        assert list(records.to_json(record)) == list(data), f"{path.name}: key order changed"
        assert record.filename() == path.name


def test_committed_speed_rows_are_bench_rows():
    for path in RESULTS.glob("speed-*.json"):
        for i, row in enumerate(json.loads(path.read_text(encoding="utf-8"))["rows"]):
            assert records.to_json(records.from_json(BenchRow, row, where=f"{path.name}: rows[{i}]")) == row


def _file(**changes):
    data = records.to_json(ResultFile(
        kind="measured", torch=records.TorchInfo("2.13.0+cpu"),
        machine=records.MachineInfo("cpu", "x", "Linux", "3.11", "s"),
        created="2026-01-01T00:00:00+00:00", ops=[OpRow("aten::sqrt.default", "float32", "native")],
        cases=[CaseRow("naive", "float32", True, [])], verdicts=[VerdictRow("naive", 1, "float32", "cpu", True)]))
    data.update(changes)
    return data


@pytest.mark.parametrize(("mutate", "named"), [
    (lambda d: d["ops"][0].update(status="maybe"), "bad.json: ops[0].status: 'maybe' is not one of"),
    (lambda d: d["ops"][0].update(dtype="float8"), "bad.json: ops[0].dtype: 'float8' is not a torch dtype"),
    (lambda d: d["cases"][0].pop("fallback_ops"), "bad.json: cases[0].fallback_ops: missing"),
    (lambda d: d["cases"][0].update(runs_on_device="yes"), "cases[0].runs_on_device: is a string, expected true"),
    (lambda d: d["verdicts"][0].update(equivalent=1), "verdicts[0].equivalent: is an integer, expected true/false"),
    (lambda d: d["verdicts"][0].update(correction=True), "verdicts[0].correction: is true/false, expected a number"),
    (lambda d: d["machine"].pop("device_name"), "bad.json: machine.device_name: missing"),
    (lambda d: d["torch"].update(version=2), "torch.version: is an integer, expected a string"),
    (lambda d: d.update(kind="guessed"), "bad.json: kind: 'guessed' is not one of measured, predicted, simulated"),
    (lambda d: d.update(surprise=1), "unknown field(s) surprise"),
    (lambda d: d.pop("created"), "bad.json: created: missing"),
    (lambda d: d.update(schema_version=2), "bad.json: schema_version: 2 is not 1"),
    (lambda d: d.update(ops={}), "bad.json: ops: is an object, expected a list"),
])
def test_a_bad_field_is_named_with_the_file(mutate, named):
    data = _file()
    records.from_json(ResultFile, data)  # valid before the mutation
    mutate(data)
    with pytest.raises(RecordError) as info:
        records.from_json(ResultFile, data, where="bad.json")
    assert named in str(info.value)


def test_optional_fields_are_left_out_at_their_default_and_read_back():
    row = VerdictRow("naive", 0.5, "float16", "cpu", True)
    assert "family" not in records.to_json(row)
    assert records.from_json(VerdictRow, records.to_json(row)).family == "std_mean"
    other = VerdictRow("naive", 0.5, "float16", "cpu", True, family="var_mean")
    assert records.to_json(other)["family"] == "var_mean"
    assert records.from_json(VerdictRow, records.to_json(other)) == other
    data = _file(case_errors=["cases/broken.py: failed to import: NameError"])
    assert records.from_json(ResultFile, data).case_errors == ["cases/broken.py: failed to import: NameError"]


def test_schema_version_is_written_first():
    assert next(iter(records.to_json(records.from_json(ResultFile, _file())))) == "schema_version"


def test_observation_round_trip():
    seen = Observation(outcome="raised", error_type="NotImplementedError", message="m", warnings=["w"],
                       ops_reached=[["aten::sqrt.default", "float32"]])
    assert records.from_json(Observation, json.loads(json.dumps(records.to_json(seen)))) == seen
    with pytest.raises(RecordError, match="outcome: 'exploded' is not one of"):
        records.from_json(Observation, {**records.to_json(seen), "outcome": "exploded"})


def test_a_field_with_a_default_may_be_missing_one_without_may_not():
    row = {"case": "naive", "correction": 1, "dtype": "float32", "device": "cpu", "equivalent": True}
    assert records.from_json(VerdictRow, row).device_notes == []
    del row["device"]
    with pytest.raises(RecordError, match=r"r\.json: device: missing"):
        records.from_json(VerdictRow, row, where="r.json")


def test_a_verdict_of_another_family_reads_as_opcompat_verdicts_writes_it():
    # opcompat.verdicts.Verdict.to_json with families: family, replaces, ops, and no correction for most.
    row = {"family": "isin", "case": "isin_mps_friendly", "correction": None, "dtype": "float32", "device": "mps",
           "equivalent": True, "causes": [], "failing_regimes": [], "counterexample": "", "device_notes": [],
           "replaces": "torch.isin(x, values)", "ops": ["aten::isin.Tensor_Tensor"]}
    verdict = records.from_json(VerdictRow, row)
    assert (verdict.family, verdict.correction, verdict.ops) == ("isin", None, ["aten::isin.Tensor_Tensor"])
    assert records.to_json(verdict) == {k: row[k] for k in records.to_json(verdict)} and set(row) == set(
        records.to_json(verdict))


def test_bench_rows_of_both_speed_schemas():
    v2 = {"variant": "copy", "kind": "copy", "equivalent": None, "label": None, "dtype": "float32",
          "shape": [8, 64], "numel": 512, "dims": None, "repeat": 1, "median_s": 1e-05, "GBps": 400.0,
          "times": {"cuda graph": 1e-05, "eager wall": 2e-05}, "ratio": {}, "ratio_spread": {}, "graph_calls": 64,
          "graph_error": ""}
    row = records.from_json(BenchRow, v2)
    assert row.times["eager wall"] == 2e-05 and row.graph_calls == 64
    with pytest.raises(RecordError, match=r"times: is a list, expected an object"):
        records.from_json(BenchRow, {**v2, "times": [1e-05]})


def test_probe_items_carry_only_what_their_kind_needs():
    op = records.ProbeItem("op", "float16", 3, op="aten::sqrt.default", args=[{"tensor": [2], "dtype": "float32"}])
    case = records.ProbeItem("case", "float32", case="fused")
    assert set(records.to_json(case)) == {"kind", "dtype", "seed", "case"}
    for item in (op, case):
        assert records.from_json(records.ProbeItem, json.loads(json.dumps(records.to_json(item)))) == item
    with pytest.raises(RecordError, match="item 0: kind: 'run' is not one of op, case"):
        records.from_json(records.ProbeItem, {"kind": "run", "dtype": "float32"}, where="item 0")
