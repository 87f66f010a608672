"""matrix.predict: the dispatch rules, the dtype rules and the bad-input errors, on hand-made wheels.

No network and no macOS wheel: each test builds a tiny wheel-like zip in tmp_path from the fixtures in
fixtures/predict/ (a slice of native_functions.yaml, a torch/backends/mps/__init__.py, a common_mps.py)
and points $OPCOMPAT_CACHE at it. pip is never run: subprocess.run is replaced where a download would
happen. fixtures/predict/decompositions_std_var.json is what a TorchDispatchMode records when the CIA
overloads are called on torch 2.13 (std.dim reaches std.correction, etc.).
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from matrix.predict import (
    RELEASES,
    CorruptWheelError,
    DownloadError,
    PredictError,
    Prediction,
    UnknownDtypeError,
    UnknownVersionError,
    WheelNotFoundError,
    mps_python,
    mps_test_lists,
    native_yaml,
    predict,
    release_data,
    wheels,
)
from matrix.predict.cli import main
from matrix.predict.releases import resolve_version

pytestmark = pytest.mark.meta
FIXTURES = Path(__file__).parent / "fixtures" / "predict"
YAML = (FIXTURES / "native_functions.yaml").read_text()
MPS_INIT = (FIXTURES / "mps_init.py").read_text()
COMMON_MPS = (FIXTURES / "common_mps.py").read_text()
TORCH_INIT = "import torch.backends.mps\ntorch.backends.mps._init()\n"
DECOMPOSITIONS = json.loads((FIXTURES / "decompositions_std_var.json").read_text())
FOOOCUS = ("The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and will "
           "fall back to run on the CPU")


def make_wheel(directory: Path, version: str, members: dict | None = None, name: str | None = None) -> Path:
    """A zip named like a macOS torch wheel holding only the members predict reads."""
    if members is None:
        members = {"native_functions": YAML, "mps_init": MPS_INIT, "torch_init": TORCH_INIT}
        if Version(version) >= Version("2.8"):
            members["common_mps"] = COMMON_MPS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"torch-{version}-cp311-none-macosx_11_0_arm64.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for key, text in members.items():
            zf.writestr(wheels.MEMBERS.get(key, key), text)
    return path


@pytest.fixture
def v222(cache):
    make_wheel(cache, "2.2.2")
    return "2.2.2"


def one(version, op, **kwargs) -> Prediction:
    kwargs.setdefault("download", False)
    return predict(version, [op], **kwargs)[op]


# -- versions ------------------------------------------------------------------------------------------
def test_releases_are_the_17_latest_patches_oldest_first():
    assert len(RELEASES) == 17 and RELEASES[0] == "1.13.1" and RELEASES[-1] == "2.15.0"
    assert "2.2.2" in RELEASES and "2.10.0" in RELEASES
    assert list(RELEASES) == sorted(RELEASES, key=Version)


@pytest.mark.parametrize(("given", "expected"), [
    ("2.2", "2.2.2"), ("2.2.2", "2.2.2"), ("1.13", "1.13.1"), (" 2.10 ", "2.10.0"), ("2.13.0+cpu", "2.13.0"),
    ("2.2.0", "2.2.0"),  # a real patch of a known series: allowed (downloaded if not cached)
])
def test_version_strings(given, expected):
    assert resolve_version(given) == expected


@pytest.mark.parametrize("bad", ["2.99", "abc", "3.0", "1.12.1", "2.2.0rc1", "", "2.2.2.1"])
def test_unknown_version_is_a_clear_error(bad, cache):
    with pytest.raises(UnknownVersionError, match="unknown torch version") as info:
        predict(bad, ["sqrt"], download=False)
    assert repr(bad) in str(info.value) and isinstance(info.value, PredictError)


# -- op-level rules ------------------------------------------------------------------------------------
def test_no_mps_key_falls_back_with_the_fooocus_warning(v222):
    p = one(v222, "aten::std_mean.correction")
    assert p.status == "fallback" and p.op == "aten::std_mean.correction" and p.source == "predicted"
    assert p.evidence[0] == "native_functions.yaml 2.2.2: std_mean.correction dispatch CPU, CUDA (no MPS key)"
    assert FOOOCUS in p.evidence[1] and "PYTORCH_ENABLE_MPS_FALLBACK=1" in p.evidence[1]
    assert p.dtype_status["float32"] == p.dtype_status["float16"] == "fallback"


def test_mps_key_is_native_and_sparse_mps_is_not_mps(v222):
    p = one(v222, "std.correction")
    assert p.status == "native" and "dispatch MPS: std_mps" in p.evidence[0]
    sparse = one(v222, "sparse_only")
    assert sparse.status == "fallback" and "SparseCPU, SparseMPS (no MPS key)" in sparse.evidence[0]


def test_structured_delegate_follows_the_out_op(v222):
    p = one(v222, "aten::sqrt.default")
    assert p.status == "native" and p.op == "aten::sqrt.default"
    assert "structured_delegate sqrt.out" in p.evidence[0]
    assert "sqrt.out dispatch CPU, CUDA, MPS: sqrt_out" in p.evidence[1]
    q = one(v222, "erfinv")  # erfinv.out has CPU, CUDA and SparseMPS only
    assert q.status == "fallback" and "'aten::erfinv.out'" in " ".join(q.evidence)


def test_autogen_out_follows_the_op_it_is_generated_from(v222):
    out = one(v222, "aten::std_mean.correction_out")
    assert out.status == "fallback"
    assert "autogen` of std_mean.correction" in out.evidence[0]
    assert FOOOCUS in " ".join(out.evidence)  # the fallback happens at std_mean.correction
    assert one(v222, "var_mean.correction_out").status == "native"  # via the Python kernel
    assert one(v222, "bernoulli.float_out").status == "native"  # in-place parent with an MPS key


def test_explicit_out_without_mps_key_falls_back(v222):
    p = one(v222, "std.correction_out")
    assert p.status == "fallback" and "'aten::std.correction_out'" in p.evidence[1]


def test_composite_without_a_map_says_so(v222):
    implicit = one(v222, "std.dim")
    assert implicit.status == "composite"
    assert "no dispatch entry" in implicit.evidence[0]
    assert "no decomposition-map entry for aten::std.dim" in implicit.evidence[1]
    assert set(implicit.dtype_status.values()) == {"composite", "unsupported_dtype"}
    explicit = one(v222, "div.Scalar")
    assert explicit.status == "composite"
    assert "CompositeExplicitAutograd: div" in explicit.evidence[0]
    assert explicit.evidence[1].startswith("composite-explicit: depends on callees")
    assert one(v222, "reshape").status == "composite"  # explicit CompositeImplicitAutograd key


def test_composite_resolved_through_the_decomposition_map(v222):
    assert one(v222, "std.dim", decompositions=DECOMPOSITIONS).status == "native"
    p = one(v222, "aten::std.out", decompositions=DECOMPOSITIONS)
    assert p.status == "fallback"
    assert "decomposition map: aten::std.out → aten::std.correction_out" in p.evidence
    assert any("warning: \"The operator 'aten::std.correction_out'" in line for line in p.evidence)
    assert one(v222, "std_mean.dim", decompositions=DECOMPOSITIONS).status == "fallback"
    # the map lists div.Scalar itself (a tracer cannot see inside explicit composites): still composite
    assert one(v222, "div.Scalar", decompositions=DECOMPOSITIONS).status == "composite"
    # explicit composites resolve too when the map says what they call; bare names work as keys
    assert one(v222, "div.Scalar", decompositions={"div.Scalar": ["div.Tensor"]}).status == "native"
    mixed = one(v222, "std.dim", decompositions={"std.dim": ["std.correction", "nope.x"]})
    assert mixed.status == "composite" and any("nope.x" in line for line in mixed.evidence)


def test_a_cycle_in_the_map_does_not_hang(v222):
    p = one(v222, "std.dim", decompositions={"std.dim": ["std.out"], "std.out": ["std.dim"]})
    assert p.status == "composite"


def test_python_registered_mps_kernel_wins_over_the_yaml(v222):
    p = one(v222, "var_mean.correction")
    assert p.status == "native"
    assert "registers torch._refs.var_mean for MPS" in p.evidence[0]
    assert "_init(), which torch/__init__.py calls" in p.evidence[0]
    # registered in a function nothing calls: the yaml (CPU, CUDA) decides
    q = one(v222, "native_group_norm")
    assert q.status == "fallback" and "inactive" in q.evidence[0]


def test_unknown_op_is_an_answer_not_a_crash(v222):
    p = one(v222, "aten::no_such_op.Tensor")
    assert p.status == "unknown_op"
    assert p.evidence == ("unknown op: not in native_functions.yaml of 2.2.2",)
    assert set(p.dtype_status.values()) == {"unknown_op"}
    assert one(v222, "prims::var").status == "unknown_op"


def test_result_is_keyed_by_the_op_as_given(v222):
    got = predict("2.2", ["aten::sqrt.default", "sqrt", "sqrt"], download=False)
    assert list(got) == ["aten::sqrt.default", "sqrt"]
    assert got["sqrt"] == got["aten::sqrt.default"]
    assert predict("2.2", "sqrt", download=False)["sqrt"].status == "native"  # a lone string is one op
    data = got["sqrt"].to_json()
    assert data["status"] == "native" and data["source"] == "predicted" and isinstance(data["evidence"], list)
    assert json.loads(json.dumps(data)) == data


# -- dtype rules ---------------------------------------------------------------------------------------
def test_float64_is_never_supported(v222):
    p = one(v222, "std.correction", dtypes=("float32", "double", "torch.float64"))
    assert p.dtype_status == {"float32": "native", "float64": "unsupported_dtype"}
    assert any(line.startswith("float64: unsupported_dtype: MPS has no float64") for line in p.evidence)


@pytest.mark.parametrize(("version", "bf16"), [("1.13.1", "unsupported_dtype"), ("2.2.2", "unsupported_dtype"),
                                               ("2.5.1", "native"), ("2.9.1", "native")])
def test_bfloat16_by_release(cache, version, bf16):
    make_wheel(cache, version)
    p = one(version, "sqrt", dtypes=("bfloat16",))
    assert p.dtype_status == {"bfloat16": bf16}
    if version == "2.5.1":
        assert any("needs macOS 14+" in line for line in p.evidence)


def test_common_mps_dtype_lists(cache):
    make_wheel(cache, "2.9.1")
    dtypes = ("float32", "float16", "bfloat16", "float64", "int64", "int8", "uint8", "complex64")
    got = predict("2.9.1", ["std.correction", "sqrt", "std_mean.correction", "div.Scalar", "erfinv"],
                  dtypes=dtypes, download=False)
    std = got["std.correction"]
    assert std.dtype_status["float16"] == "unsupported_dtype"  # UNIMPLEMENTED_XFAILLIST["std"]
    assert std.dtype_status["float32"] == "native"  # the grad list's float32 does not count
    assert std.dtype_status["uint8"] == "native"  # "std_meanunbiased" is std_mean's, not std's
    assert std.dtype_status["complex64"] == "native"  # in SUPPORTED_COMPLEX_OPS
    assert any("xfails every op for torch.double" in line for line in std.evidence)
    assert any("SKIPLIST['std']" in line for line in std.evidence)
    sqrt = got["sqrt"]
    assert sqrt.dtype_status["int64"] == "native"  # only unimplemented when MACOS_VERSION < 14.0
    assert sqrt.dtype_status["float32"] == "native"  # the `if sparse:` update is not applied
    assert any("when macOS < 14.0" in line for line in sqrt.evidence)
    assert any("MACOS_BEFORE_14_4_XFAILLIST" in line and "macOS < 14.4" in line for line in sqrt.evidence)
    sm = got["std_mean.correction"]
    assert sm.status == "fallback"
    assert sm.dtype_status["int8"] == sm.dtype_status["uint8"] == "unsupported_dtype"  # + variant key
    assert sm.dtype_status["float32"] == "fallback"
    div = got["div.Scalar"]
    assert div.dtype_status["bfloat16"] == "unsupported_dtype"  # "divno_rounding_mode" is a div variant
    assert div.dtype_status["float16"] == "composite"  # UNDEFINED_XFAILLIST: evidence only
    assert div.dtype_status["complex64"] == "unsupported_dtype"  # not in SUPPORTED_COMPLEX_OPS
    assert got["erfinv"].dtype_status["float32"] == "fallback"  # macOS < 14 update: evidence only


def test_without_common_mps_other_dtypes_are_unknown(v222):
    p = one(v222, "sqrt", dtypes=("float32", "int64", "complex64"))
    assert p.dtype_status == {"float32": "native", "int64": "unknown", "complex64": "unknown"}


def test_unknown_dtype(v222):
    with pytest.raises(UnknownDtypeError, match="float33"):
        predict(v222, ["sqrt"], dtypes=("float33",), download=False)


# -- parsers -------------------------------------------------------------------------------------------
def test_yaml_parser_keeps_what_decides():
    ops = native_yaml.parse(YAML)
    assert ops["std_mean.correction"] == {"dispatch": {"CPU, CUDA": "std_mean"}}
    assert ops["std_mean.correction_out"] == {"autogen_of": "std_mean.correction"}
    assert ops["sqrt"]["delegate"] == "sqrt.out" and ops["std.dim"] == {}
    assert native_yaml.find_key(ops["sqrt.out"]["dispatch"], "MPS") == ("CPU, CUDA, MPS", "sqrt_out")
    assert native_yaml.find_key(ops["erfinv.out"]["dispatch"], "MPS") is None


def test_mps_init_parser():
    regs = {r["op"]: r for r in mps_python.parse(MPS_INIT, TORCH_INIT)}
    assert set(regs) == {"var_mean.correction", "native_group_norm"}  # the "CPU" impl is not MPS
    assert regs["var_mean.correction"]["kernel"] == "torch._refs.var_mean"
    assert regs["var_mean.correction"]["active"] and not regs["native_group_norm"]["active"]
    module_level = "import torch\nif is_built():\n    _lib = Library('aten', 'IMPL')\n    _lib.impl('x', f, 'MPS')\n"
    (reg,) = mps_python.parse(module_level)
    assert reg["active"] and reg["scope"] == "<module>" and reg["guard"] == "is_built()"


def test_common_mps_parser():
    parsed = mps_test_lists.parse(COMMON_MPS)
    lists = parsed["lists"]
    assert lists["UNIMPLEMENTED_XFAILLIST"]["sqrt"] == [
        {"dtypes": ["int64"], "when": "MACOS_VERSION < 14.0"}, {"dtypes": [], "when": "not (MACOS_VERSION < 14.0)"},
        {"dtypes": None, "when": "sparse"}]  # from .update(UNIMPLEMENTED_XFAILLIST_SPARSE) under `if sparse:`
    assert lists["UNIMPLEMENTED_XFAILLIST"]["bfloat16"] == [{"dtypes": None, "when": "MACOS_VERSION < 14.0"}]
    assert "XFAILLIST_GRAD" not in lists and lists["UNDEFINED_XFAILLIST"]["div"][0]["dtypes"] == ["float16"]
    assert parsed["all_ops_xfail"] == ["cdouble", "double"]
    assert set(parsed["sets"]["SUPPORTED_COMPLEX_OPS"]) == {"sqrt", "std"}


def test_installed_torch_yaml_parses_and_agrees_with_history():
    """The installed torch's own yaml (any release 1.13+): std/var have MPS kernels, their out= never did."""
    try:
        path = Path(str(metadata.distribution("torch").locate_file(wheels.MEMBERS["native_functions"])))
    except metadata.PackageNotFoundError:
        pytest.skip("no torch installed")
    if not path.is_file():
        pytest.skip(f"{path} absent")
    ops = native_yaml.parse(path.read_text(encoding="utf-8"))
    assert native_yaml.find_key(ops["std.correction"]["dispatch"], "MPS")
    assert native_yaml.find_key(ops["var.correction"]["dispatch"], "MPS")
    assert native_yaml.find_key(ops["std.correction_out"]["dispatch"], "MPS") is None
    assert ops["std_mean.correction_out"] == {"autogen_of": "std_mean.correction"}
    assert ops["sqrt"]["delegate"] == "sqrt.out"


# -- wheels, cache, bad input --------------------------------------------------------------------------
def test_parsed_release_is_cached_next_to_the_wheel(v222, cache, monkeypatch):
    wheel = cache / "torch-2.2.2-cp311-none-macosx_11_0_arm64.whl"
    first = one(v222, "std_mean.correction")
    cached = wheel.with_name(wheel.name + ".predict.json")
    assert cached.is_file() and cached.stat().st_size < 20_000
    monkeypatch.setattr(wheels, "read_wheel", lambda path: pytest.fail("the wheel was read again"))
    assert one(v222, "std_mean.correction") == first
    os.utime(wheel, ns=(0, 0))  # another wheel (new mtime): parse again
    monkeypatch.undo()
    monkeypatch.setenv("OPCOMPAT_CACHE", str(cache.parent))
    monkeypatch.setattr(wheels, "installed_origin", lambda version, directory: None)
    calls = []
    real = release_data.parse_members
    monkeypatch.setattr(release_data, "parse_members", lambda *a: calls.append(1) or real(*a))
    assert one(v222, "std_mean.correction") == first and calls == [1]


def test_build_tagged_wheel_name_is_found(cache):
    make_wheel(cache, "2.10.0", name="torch-2.10.0-2-cp311-none-macosx_11_0_arm64.whl")
    assert one("2.10", "sqrt").status == "native"


def test_corrupt_zip_names_the_file(cache):
    cache.mkdir(parents=True)
    bad = cache / "torch-2.2.2-cp311-none-macosx_11_0_arm64.whl"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(CorruptWheelError) as info:
        predict("2.2.2", ["sqrt"], download=False)
    assert str(bad) in str(info.value) and "delete" in str(info.value)


def test_missing_member_names_it(cache):
    make_wheel(cache, "2.2.2", members={"mps_init": MPS_INIT})
    with pytest.raises(CorruptWheelError, match="missing member torchgen/packaged/ATen/native/native_functions"):
        predict("2.2.2", ["sqrt"], download=False)


def test_unparsable_member_names_it(cache):
    make_wheel(cache, "2.2.2", members={"native_functions": "- func: [unclosed", "mps_init": MPS_INIT})
    with pytest.raises(CorruptWheelError, match=r"native_functions\.yaml does not parse"):
        predict("2.2.2", ["sqrt"], download=False)


def test_not_cached_and_no_download(cache):
    with pytest.raises(WheelNotFoundError, match=r"no cached macOS arm64 wheel of torch 2\.3\.1"):
        predict("2.3", ["sqrt"], download=False)


def test_no_network_is_said_so(cache, monkeypatch):
    seen = {}

    def offline_pip(cmd, **kwargs):
        seen["cmd"], seen["env"] = cmd, kwargs["env"]
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying ... NewConnectionError: Failed to "
                                           "establish a new connection: [Errno -3] Temporary failure in name "
                                           "resolution\nERROR: No matching distribution found for torch==1.13.1")

    monkeypatch.setattr(wheels.subprocess, "run", offline_pip)
    with pytest.raises(DownloadError, match="no network") as info:
        predict("1.13", ["sqrt"])
    assert "1.13.1" in str(info.value)
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "torch==1.13.1" in cmd
    assert cmd[cmd.index("--platform") + 1] == "macosx_14_0_arm64"
    assert cmd[cmd.index("--python-version") + 1] == "3.10" and "--only-binary=:all:" in cmd
    assert seen["env"]["PIP_CONFIG_FILE"] == os.devnull


def test_download_lands_in_the_cache(cache, monkeypatch):
    def fake_pip(cmd, **kwargs):
        make_wheel(Path(cmd[cmd.index("-d") + 1]), "2.4.1")
        return subprocess.CompletedProcess(cmd, 0, "Saved", "")

    monkeypatch.setattr(wheels.subprocess, "run", fake_pip)
    assert one("2.4", "sqrt", download=True).status == "native"


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_table(v222, capsys):
    assert main(["--torch", "2.2", "--op", "aten::std_mean.correction", "sqrt", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "torch 2.2.2 on MPS, predicted from torch-2.2.2-cp311" in out
    row = next(line for line in out.splitlines() if "aten::std_mean.correction" in line)
    assert "fallback" in row and "float32" in out and "evidence" in out


def test_cli_json_and_default_ops(v222, capsys):
    # 3: the fixture lacks some default ops (mean.dim, ...); the answer is printed all the same
    assert main(["predict", "--torch", "2.2.2", "--json", "--no-download"]) == 3
    data = json.loads(capsys.readouterr().out)
    preds = data["predictions"]
    assert data["torch"] == "2.2.2" and preds["std_mean.correction"]["status"] == "fallback"
    assert preds["std_mean.correction_out"]["status"] == "fallback"  # an out= form the fixture has
    assert "var.out" not in preds  # an out= form it lacks is left out of the default list
    assert "mean.dim" in preds and preds["mean.dim"]["status"] == "unknown_op"  # asked for by default


def test_cli_decomposition_map(v222, capsys):
    path = str(FIXTURES / "decompositions_std_var.json")
    assert main(["--torch", "2.2.2", "--op", "std.dim", "--json", "--decompositions", path]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"]["std.dim"]["status"] == "native"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--torch", "2.99"], 1, "unknown torch version '2.99'"),
    (["--torch", "abc"], 1, "unknown torch version 'abc'"),
    (["--torch", "2.3.1", "--no-download"], 1, "no cached macOS arm64 wheel of torch 2.3.1"),
    (["--torch", "2.2.2", "--dtype", "float33"], 1, "unknown dtype 'float33'"),
    (["--torch", "2.2.2", "--op", "nope.x"], 3, "unknown op(s) nope.x: not in native_functions.yaml"),
    ([], 2, "--torch"),
])
def test_cli_bad_input(v222, capsys, argv, code, message):
    assert main(argv) == code
    assert message in capsys.readouterr().err
