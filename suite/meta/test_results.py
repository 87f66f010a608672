"""Result files: names, atomic writes under a lock, validation that names the file and the reason."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time

import pytest

from matrix import results
from opcompat import records

pytestmark = pytest.mark.meta

MACHINE = {"device": "cpu", "device_name": "Test CPU", "os": "Linux", "python": "3.11", "slug": "linux-test-cpu"}
TORCH = {"version": "2.13.0+cpu", "git": "abc", "cuda": None}
OPS = [{"op": "aten::std_mean.correction", "dtype": "float32", "status": "native", "message": "", "evidence": []}]
CASES = [{"case": "fused", "dtype": "float32", "runs_on_device": True, "fallback_ops": [], "message": ""}]


def record(kind="measured", **changes):
    return records.from_json(records.ResultFile, {**records.to_json(results.make(kind, TORCH, MACHINE, OPS, CASES)),
                                                  **changes})


def test_write_then_load_round_trips_under_the_documented_name(tmp_path):
    data = record()
    path = results.write(data, tmp_path)
    assert path.name == "measured-cpu-2.13.0-linux-test-cpu.json"
    assert results.load(path) == data
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left behind"
    assert path.stat().st_mode & 0o044, "a result file is readable by others (it is for sharing)"
    predicted = results.make("predicted", {"version": "2.2.2", "git": None, "cuda": None},
                             {**MACHINE, "device": "mps", "slug": "predicted"}, OPS, CASES)
    assert predicted.filename() == "predicted-mps-2.2.2.json"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "is empty"),
    ('{"schema_version": 1, "kind": "measured", "ops": [', "is not valid JSON (truncated"),
    ("[1, 2]", "the top level: is a list, not an object"),
    ('{"schema_version": 1, "kind": "measured"}', "torch: missing; machine: missing; created: missing; ops: missing"),
    ('{"schema_version": 7, "kind": "measured"}', "schema_version: 7 is not 1 (written by another opcompat?)"),
])
def test_malformed_and_partial_files_are_named_with_the_reason(tmp_path, text, reason):
    path = tmp_path / "measured-cpu-2.13.0-x.json"
    path.write_text(text)
    with pytest.raises(results.ResultFileError) as err:
        results.load(path)
    assert str(path) in str(err.value) and reason in str(err.value), str(err.value)


def test_bad_rows_are_named(tmp_path):
    bad = records.to_json(record())
    bad["ops"] = [{**OPS[0], "status": "fine"}, {"op": "aten::x.default"}]
    path = tmp_path / "measured-cpu-2.13.0-x.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(results.ResultFileError) as err:
        results.load(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert "ops[0].status: 'fine' is not one of native, fallback" in text
    assert "ops[1].dtype: missing; ops[1].status: missing" in text


def test_write_refuses_an_invalid_record(tmp_path):
    with pytest.raises(records.RecordError, match=r"the result: ops\[0\]\.dtype: missing"):
        results.write({**records.to_json(record()), "ops": [{"op": "x"}]}, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_simulated_result_is_never_written_into_the_published_folder(tmp_path):
    sim = record("simulated", machine={**MACHINE, "device": "mps", "slug": "linux-simulated"})
    assert sim.kind == "simulated"
    with pytest.raises(results.PublishError, match="never written into"):
        results.write(sim, results.RESULTS_DIR)
    assert not list(results.RESULTS_DIR.glob("simulated-*"))
    assert results.write(sim, tmp_path).name.startswith("simulated-mps-"), "elsewhere it may be written"


def test_a_second_writer_waits_for_the_lock(tmp_path):
    release = threading.Event()

    def hold():
        with results.locked(tmp_path):
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    with pytest.raises(results.LockTimeout, match="another writer holds the lock"):
        results.write(record(), tmp_path, lock_timeout=0.3)
    assert not list(tmp_path.iterdir()), "a writer that gave up leaves nothing"
    threading.Timer(0.3, release.set).start()
    path = results.write(record(), tmp_path, lock_timeout=5)  # waits for the holder, then writes
    holder.join()
    assert results.load(path).kind == "measured"


def _writer(directory, name):
    data = results.make("measured", {"version": "2.13.0", "git": None, "cuda": None},
                        {"device": "cpu", "device_name": name, "os": "", "python": "", "slug": "same"},
                        [{"op": "aten::x.default", "dtype": "float32", "status": "native", "message": "m" * 20000,
                          "evidence": []}] * 20, [])
    for _ in range(15):
        results.write(data, directory)


# Forked, not spawned: a spawned writer spends seconds importing torch (opcompat.vocab) before it writes.
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_writing_the_same_file_never_leave_it_torn(tmp_path):
    fork = multiprocessing.get_context("fork")
    writers = [fork.Process(target=_writer, args=(tmp_path, name)) for name in ("writer-a", "writer-b")]
    for w in writers:
        w.start()
    target = tmp_path / "measured-cpu-2.13.0-same.json"
    seen = set()
    while any(w.is_alive() for w in writers):
        if target.exists():
            seen.add(results.load(target).machine.device_name)  # raises if torn
    for w in writers:
        w.join()
    assert [w.exitcode for w in writers] == [0, 0]
    seen.add(results.load(target).machine.device_name)
    assert seen <= {"writer-a", "writer-b"} and seen
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_load_dir_keeps_good_files_and_names_bad_ones(tmp_path):
    good = results.write(record(), tmp_path)
    (tmp_path / "measured-cpu-2.0.0-broken.json").write_text('{"schema_version": 1,')
    (tmp_path / "speed-cpu.json").write_text("not ours")  # another tool's file: not read here
    found, skipped = results.read_dir(tmp_path)
    assert [p for p, _ in found] == [good]
    assert [(p.name, r.split(" (")[0]) for p, r in skipped] == [("measured-cpu-2.0.0-broken.json",
                                                                 "is not valid JSON")]
