"""MATRIX.md's "Other op families" section: families come from the result files, "Use" names only equivalent
cases, MPS status is release ranges from the predictor's snapshots (synthetic fixtures here, no network)."""

from __future__ import annotations

import json
import re

import pytest

from matrix import results, traces
from matrix.__main__ import main as matrix_main
from matrix.render.common import WIDTH

pytestmark = pytest.mark.meta

TITLE = "## Other op families: does it fall back, and what should I use?"
CPU = {"device": "cpu", "device_name": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "os": "Linux", "python": "3.11",
       "slug": "linux-x86-64-intel-xeon"}
CUDA = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "os": "Linux", "python": "3.11", "slug": "h100"}
FROB_OP, NAT_OP, ISIN_OP = "aten::frobnicate.default", "aten::natural.default", "aten::isin.Tensor_Tensor"


def row(family, op, call, case, dtype, equivalent, device="cpu", causes=()):
    return {"case": case, "correction": None, "dtype": dtype, "device": device, "equivalent": equivalent,
            "causes": list(causes), "failing_regimes": [], "counterexample": "", "device_notes": [],
            "family": family, "replaces": call, "ops": [op]}


def frob(case, dtype, equivalent, device="cpu", causes=()):
    return row("frobnicate", FROB_OP, "torch.frobnicate(x)", case, dtype, equivalent, device, causes)


def write_snapshot(directory, version, by_status, differs=None):
    directory.mkdir(exist_ok=True)
    data = {"torch": version, "counts": {k: len(v) for k, v in by_status.items()}, "descriptions": {},
            "ops_by_status": by_status, "min_macos": {}, "dtype_differs": differs or {}}
    (directory / f"mps-{version}.json").write_text(json.dumps(data))


def write_traces(directory):
    """A trace of torch 2.13 and one of 2.20: the nearest (2.13 for every release here) speaks; ops not in a
    snapshot ("aten::view.default") are fine, FROB_OP falls back ≤ 2.3."""
    def traced(*ops, dtypes=("float32", "float16")):
        return {d: [(op, d) for op in ops] for d in dtypes}

    family_ops = {"frob_safe": traced("aten::view.default", NAT_OP), "frob_fast": traced(NAT_OP),
                  "frob_per_sample": traced("aten::slice.Tensor", FROB_OP, "aten::cat.default"),
                  "frob_round_trip": traced(FROB_OP), "isin_broadcast_any": traced("aten::eq.Tensor")}
    leaves = {name: name == "frob_round_trip" for name in family_ops}
    traces.write(traces.make("2.13.0", [], {}, family_ops, leaves), directory)
    # a newer trace in which frob_fast reached FROB_OP: the nearer 2.13 trace must win
    traces.write(traces.make("2.20.0", [], {}, {"frob_fast": traced(FROB_OP)}, {"frob_fast": False}), directory)


@pytest.fixture
def matrix_text(tmp_path, capsys):
    info = {"version": "2.13.0", "git": None, "cuda": None}
    cpu = [frob("frob_safe", "float32", True), frob("frob_safe", "float16", True),
           frob("frob_fast", "float32", True),
           # equivalent everywhere, but each fails one of the MPS conditions (see write_traces)
           *(frob(c, d, True, dev) for c in ("frob_per_sample", "frob_round_trip", "frob_untraced")
             for d in ("float32", "float16") for dev in ("cpu", "cuda")),
           frob("frob_fast", "float16", False, causes=["overflow (out, big: a long story the JSON keeps)"]),
           frob("frob_bad", "float32", False, causes=["error for batched inputs ((2, 3) and (2,)): RuntimeError: x"]),
           frob("frob_bad", "float16", False, causes=["value mismatch (out, normal: off by 3 ulp)"]),
           row("natural", NAT_OP, "torch.natural(x)", "natural_manual", "float32", True),
           row("isin", ISIN_OP, "torch.isin(a, b)", "torch_isin", "float32", True),
           row("isin", ISIN_OP, "torch.isin(a, b)", "isin_broadcast_any", "float32", True)]
    cuda = [frob("frob_safe", "float32", False, "cuda", ["NaN/inf pattern (out, inf: inf in, NaN out)"]),
            frob("frob_safe", "float16", True, "cuda"), frob("frob_fast", "float32", True, "cuda"),
            frob("frob_fast", "float16", False, "cuda", ["overflow (out, big: a long story)"])]
    cuda = cuda + [r for r in cpu if r["device"] == "cuda"]
    cpu = [r for r in cpu if r["device"] == "cpu"]
    write_traces(tmp_path / "traces")
    results.write(results.make("measured", {**info, "version": "2.13.0+cpu"}, CPU, [], [], cpu), tmp_path)
    results.write(results.make("measured", {**info, "version": "2.11.0+cu130"}, CUDA, [], [], cuda), tmp_path)
    snaps = tmp_path / "snapshots"
    # frobnicate: float32 falls back up to 2.3, float16 only up to 2.2 (a per-dtype exception in 2.3.1)
    write_snapshot(snaps, "2.2.2", {"fallback": [FROB_OP, ISIN_OP], "native": [NAT_OP]})
    write_snapshot(snaps, "2.3.1", {"fallback": [FROB_OP, ISIN_OP], "native": [NAT_OP]},
                   differs={FROB_OP: {"float16": "native"}})
    write_snapshot(snaps, "2.4.1", {"native": [FROB_OP, NAT_OP, ISIN_OP]})
    out = tmp_path / "MATRIX.md"
    assert matrix_main(["build", "--results", str(tmp_path), "--out", str(out), "--snapshots", str(snaps)]) == 0
    capsys.readouterr()
    return out.read_text(encoding="utf-8")


def section(text):
    start = text.index(TITLE)
    return text[start: text.index("\n## ", start + 1)]


def family_bullet(text, name):
    found = re.search(rf"^- \*\*{name}\*\*.*?(?=^- |^$)", section(text), re.S | re.M)
    assert found, f"no bullet for {name} in:\n{section(text)}"
    return " ".join(found.group(0).split())


def sub_bullet(block, head):
    found = re.search(rf"- {re.escape(head)}.*?(?= - [A-Z]|$)", block)
    assert found, f"no sub-bullet {head!r} in: {block}"
    return found.group(0)


def test_a_family_named_only_by_a_result_file_gets_its_bullet(matrix_text):
    assert "frobnicate" not in (results.RESULTS_DIR / "..").resolve().joinpath("MATRIX.md").read_text("utf-8")
    block = family_bullet(matrix_text, "frobnicate")
    assert block.startswith("- **frobnicate** (`torch.frobnicate(x)`)")
    assert matrix_text.index(TITLE) > matrix_text.index("## Does `torch.std_mean` fall back"), "after std_mean's"
    assert max(len(line) for line in section(matrix_text).splitlines()) <= WIDTH


def test_release_ranges_come_from_the_snapshots_per_dtype_where_they_differ(matrix_text):
    block = family_bullet(matrix_text, "frobnicate")
    assert (f"`{FROB_OP}`: f32: falls back ≤ 2.3 · native ≥ 2.4 | f16: falls back ≤ 2.2 · native ≥ 2.3 (P)"
            in block)
    assert f"`{ISIN_OP}`: falls back ≤ 2.3 · native ≥ 2.4 (P)" in family_bullet(matrix_text, "isin")
    assert "MPS (P): falls back on torch ≤ 2.3" in block


def test_a_not_equivalent_case_is_never_under_use(matrix_text):
    block = family_bullet(matrix_text, "frobnicate")
    cpu = sub_bullet(block, "CPU (M, torch 2.13)")
    use, _, not_ = cpu.partition(". Not: ")
    assert ("f32: frob_safe, frob_fast, frob_per_sample, frob_round_trip, frob_untraced · f16: frob_safe, "
            "frob_per_sample, frob_round_trip, frob_untraced.") in use + ".", cpu
    assert "frob_bad" not in use and "frob_fast" not in use.split("f16:")[1]
    assert "frob_bad (raises for batched inputs; off beyond the budget (normal))" in not_
    assert "frob_fast (overflow (big) [f16])" in not_, "only f16 fails: the dtype is named, the long story is not"
    cuda = sub_bullet(block, "CUDA (M, torch 2.11)")
    assert "f32: frob_fast, frob_per_sample, frob_round_trip, frob_untraced · f16: frob_safe," in cuda
    mps = sub_bullet(block, "MPS (P)")
    # equivalent on every measured device only: frob_safe fails f32 on CUDA, frob_fast fails f16 on both; f16
    # falls back only up to 2.2
    assert ("on ≤ 2.2 **Use (P)** f32: frob_fast · f16: frob_safe (equivalent on cpu and cuda; ops traced on torch "
            "2.13)") in mps
    assert "on 2.3 **Use (P)** f32: frob_fast (equivalent on cpu and cuda; ops traced on torch 2.13)" in mps


def test_mps_never_recommends_a_case_that_calls_the_falling_back_op_or_leaves_the_device(matrix_text):
    mps = sub_bullet(family_bullet(matrix_text, "frobnicate"), "MPS (P)")
    uses = re.findall(r"\*\*Use \(P\)\*\* ([^(;]*)", mps)
    assert len(uses) == 2, mps
    for use in uses:
        assert "frob_per_sample" not in use and "frob_round_trip" not in use and "frob_untraced" not in use, mps
    assert "not on MPS: frob_per_sample (`frobnicate` falls back), frob_round_trip (leaves the device)" in mps
    assert "untraced: frob_untraced;" in mps


def test_with_no_trace_file_every_candidate_is_untraced_and_none_is_used(tmp_path, capsys, matrix_text):
    assert "isin_broadcast_any (equivalent on cpu; ops traced on torch 2.13)" in family_bullet(matrix_text, "isin")
    for path in (tmp_path / "traces").iterdir():
        path.unlink()
    out = tmp_path / "MATRIX.md"
    assert matrix_main(["build", "--results", str(tmp_path), "--out", str(out), "--snapshots",
                        str(tmp_path / "snapshots")]) == 0
    capsys.readouterr()
    mps = sub_bullet(family_bullet(out.read_text(encoding="utf-8"), "isin"), "MPS (P)")
    assert mps.startswith("- MPS (P): falls back on torch ≤ 2.3; there **Use (P)** f32: none known; untraced: "
                          "isin_broadcast_any."), mps


def test_the_op_itself_is_never_recommended_where_it_falls_back(matrix_text):
    mps = sub_bullet(family_bullet(matrix_text, "isin"), "MPS (P)")
    assert "**Use (P)** f32: isin_broadcast_any " in mps and "torch_isin" not in mps


def test_a_family_whose_op_is_native_everywhere_says_so(matrix_text):
    block = family_bullet(matrix_text, "natural")
    assert f"`{NAT_OP}`: native everywhere (P)" in block
    assert "MPS (P): no replaced op falls back on any release predicted: **use** `torch.natural(x)` itself." in block
