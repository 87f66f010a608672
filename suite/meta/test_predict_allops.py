"""matrix.predict all-op prediction: forced-CPU ops, macOS gates, not_in_release, unreadable releases,
first_native_release, and the yaml-vs-library cross-check, without network or real wheels.

The compiled library is the part a test cannot ship, so each test wheel carries a tiny arm64 Mach-O
built here from fixtures/predict/library-<v>.json (an excerpt of what binary.scan() read from that
release's real libtorch_cpu.dylib): one TORCH_LIBRARY_IMPL init function that loads each kernel's
address, then the op name, then calls torch::Library::_impl, exactly the instruction pattern binary.py
walks, plus the release's macOS strings in __cstring. So the Mach-O reader and the ADRP/ADD/BL decoding
run for real, and the expectations come from the fixtures, never from the code under test.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

import pytest

from matrix.predict import binary, crosscheck, macos_gates, release_data, statuses, wheels
from matrix.predict.allops import first_native_release, predict_all
from matrix.predict.cli import main

pytestmark = pytest.mark.meta
FIXTURES = Path(__file__).parent / "fixtures" / "predict"
YAML = (FIXTURES / "allops_native_functions.yaml").read_text()
MPS_INIT = (FIXTURES / "mps_init.py").read_text()
LIBRARY = {v: json.loads((FIXTURES / f"library-{v}.json").read_text()) for v in ("2.2.2", "2.13.0")}
IMPL = "__ZNR5torch7Library5_implEPKcONS_11CppFunctionENS_17_RegisterOrVerifyE"
INIT = "__ZN2atL34TORCH_LIBRARY_IMPL_init_aten_MPS_3ERN5torch7LibraryE"
KERNEL_SYMBOLS = {  # how each kind of kernel is named in the real symbol table
    "cpu_fallback": "__ZN3c1011BoxedKernel19make_boxed_functionIXadL_ZN2atL12mps_fallbackERKNS_14OperatorHandleEE",
    "error_fallback": "__ZN3c1011BoxedKernel19make_boxed_functionIXadL_ZN2atL18mps_error_fallbackERKNS_14OperatorHE",
}


def build_macho(registrations: dict, strings: list[str]) -> bytes:
    """A thin arm64 dylib whose one init function registers ``registrations`` the way the real ones do."""
    kernels = {}
    for reg in registrations.values():
        if reg["kind"] == "wrapper":
            sym = reg["symbol"]
            kernels[sym] = f"__ZN3c104impl6detail_ZNS4_12_GLOBAL__N_1{len(sym)}{sym}ES7_EEE"
        elif reg["kind"] in KERNEL_SYMBOLS:
            kernels[reg["kind"]] = KERNEL_SYMBOLS[reg["kind"]]
        else:
            kernels["custom"] = "__ZN2atL23slow_conv2d_forward_mpsERKNS_6TensorE"
    names = list(registrations)
    cstrings = [*names, *strings]
    text_addr = 0x1000
    n_ins = 5 * len(names) + 1
    fn_addrs = {}  # kernels and _impl: one RET each after the init function
    addr = text_addr + 4 * n_ins
    for key in [*kernels, "impl"]:
        fn_addrs[key] = addr
        addr += 4
    text_size = addr - text_addr
    cstr_addr = (addr + 0xFFF) & ~0xFFF
    blob, str_addrs = b"", {}
    for s in cstrings:
        str_addrs.setdefault(s, cstr_addr + len(blob))
        blob += s.encode() + b"\0"

    def adrp(pc, rd, target):
        imm = ((target & ~0xFFF) - (pc & ~0xFFF)) >> 12
        return 0x90000000 | (imm & 3) << 29 | ((imm >> 2) & 0x7FFFF) << 5 | rd

    def add(rd, rn, target):
        return 0x91000000 | (target & 0xFFF) << 10 | rn << 5 | rd

    code, pc = [], text_addr
    for name in names:
        reg = registrations[name]
        kernel = fn_addrs[reg["symbol"] if reg["kind"] == "wrapper" else reg["kind"]]
        for ins in (adrp(pc, 1, kernel), add(1, 1, kernel), adrp(pc + 8, 0, str_addrs[name]),
                    add(0, 0, str_addrs[name]), 0x94000000 | ((fn_addrs["impl"] - (pc + 16)) >> 2) & 0x3FFFFFF):
            code.append(ins)
        pc += 20
    code.append(0xD65F03C0)
    code += [0xD65F03C0] * (len(kernels) + 1)
    text = struct.pack(f"<{len(code)}I", *code)
    symbols = [(text_addr, INIT), *((fn_addrs[k], v) for k, v in kernels.items()), (fn_addrs["impl"], IMPL)]
    strtab, nlist = b"\0", b""
    for value, sym in symbols:
        nlist += struct.pack("<IBBHQ", len(strtab), 0x0E, 1, 0, value)
        strtab += sym.encode() + b"\0"
    symoff = cstr_addr + len(blob)
    sections = [("__text", text_addr, text_size), ("__cstring", cstr_addr, len(blob))]
    seg = struct.pack("<II16sQQQQIIII", 0x19, 72 + 80 * len(sections), b"__TEXT", 0, symoff, 0, symoff, 5, 5,
                      len(sections), 0)
    for name, a, size in sections:
        seg += struct.pack("<16s16sQQIIIIIIII", name.encode(), b"__TEXT", a, size, a, 0, 0, 0, 0, 0, 0, 0)
    symtab = struct.pack("<IIIIII", 0x2, 24, symoff, len(symbols), symoff + len(nlist), len(strtab))
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x0100000C, 0, 6, 2, len(seg) + len(symtab), 0, 0)
    out = bytearray(symoff)
    out[:len(header) + len(seg) + len(symtab)] = header + seg + symtab
    out[text_addr:text_addr + len(text)] = text
    out[cstr_addr:cstr_addr + len(blob)] = blob
    return bytes(out) + nlist + strtab


def make_wheel(directory: Path, version: str, yaml_text: str = YAML, library: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"torch-{version}-cp311-none-macosx_11_0_arm64.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(wheels.MEMBERS["native_functions"], yaml_text)
        zf.writestr(wheels.MEMBERS["mps_init"], MPS_INIT)
        zf.writestr(wheels.MEMBERS["torch_init"], "import torch.backends.mps\ntorch.backends.mps._init()\n")
        if library is not None:
            zf.writestr(binary.MEMBER, build_macho(library["registrations"], library["macos_strings"]))
    return path


@pytest.mark.parametrize("version", sorted(LIBRARY))
def test_the_library_scan_reads_back_every_registration(version):
    lib = LIBRARY[version]
    scanned = binary.scan(build_macho(lib["registrations"], lib["macos_strings"]))
    assert {op: reg["kind"] for op, reg in scanned["registrations"].items()} == {
        op: reg["kind"] for op, reg in lib["registrations"].items()}
    wrappers = {r["symbol"] for r in lib["registrations"].values() if r["kind"] == "wrapper"}
    assert wrappers and set(scanned["wrappers"]) == wrappers
    assert set(scanned["macos_strings"]) == {s.strip() for s in lib["macos_strings"]}


@pytest.mark.parametrize("version", sorted(LIBRARY))
def test_forced_cpu_list_per_release_comes_from_the_library(cache, version):
    lib = LIBRARY[version]
    make_wheel(cache, version, library=lib)
    forced = {op for op, reg in lib["registrations"].items() if reg["kind"] == "cpu_fallback"}
    in_yaml = {op for op in forced if re.search(rf"^- func: {re.escape(op)}\(", YAML, re.M)}
    assert in_yaml, "the fixture yaml must hold some of the release's forced-CPU ops"
    preds = predict_all([version], download=False)[version]
    got = {p.op.removeprefix("aten::").removesuffix(".default") for p in preds.values()
           if p.status == statuses.FORCED_CPU}
    assert got == in_yaml
    # an op the yaml sends to the CPU fallback but the library does not force stays "fallback"
    assert preds["aten::planted_op.default"].status == statuses.FALLBACK


def test_forced_cpu_lists_differ_between_releases(cache):
    # 2.2 still forces im2col to the CPU; by 2.13 it has an MPS kernel (the fixtures say so, not the code)
    for version, lib in LIBRARY.items():
        make_wheel(cache, version, library=lib)
    found = predict_all(list(LIBRARY), ["im2col"], download=False)
    for version, lib in LIBRARY.items():
        forced = lib["registrations"].get("im2col", {}).get("kind") == "cpu_fallback"
        assert (found[version]["aten::im2col.default"].status == statuses.FORCED_CPU) == forced


def test_macos_gate_string_gives_native_macos_with_its_version(cache):
    lib = LIBRARY["2.2.2"]
    gate = next(s for s in lib["macos_strings"] if s.startswith("MPS: nonzero op is supported natively"))
    version = re.search(r"macOS (\d+\.\d+)", gate).group(1)
    make_wheel(cache, "2.2.2", library=lib)
    pred = predict_all(["2.2.2"], ["nonzero"], download=False)["2.2.2"]["aten::nonzero.default"]
    assert pred.status == statuses.NATIVE_MACOS
    assert pred.min_macos == version
    assert any(gate.strip() in line for line in pred.evidence)
    assert pred.dtype_status["float32"] == statuses.NATIVE_MACOS


def test_gate_at_or_below_the_backend_minimum_is_dropped():
    floor = "MPS backend is supported on macOS 14.0+. "
    gates = macos_gates.parse([f"The {floor}", "MPS: nonzero op is supported natively starting from macOS 13.0. ",
                               "MPS: median op is supported natively starting from macOS 14.5. "])
    assert gates["backend_min"] == "14.0"
    assert set(gates["ops"]) == {"median"}


def test_bfloat16_gate_read_from_the_strings(cache):
    lib = dict(LIBRARY["2.2.2"], macos_strings=[*LIBRARY["2.2.2"]["macos_strings"],
                                                "MPS BFloat16 is only supported on MacOS 14 or newer"])
    make_wheel(cache, "2.3.1", library=lib)
    pred = predict_all(["2.3.1"], ["add.Tensor"], download=False)["2.3.1"]["aten::add.Tensor"]
    assert pred.dtype_status["bfloat16"] == statuses.NATIVE_MACOS
    assert pred.dtype_min_macos == {"bfloat16": "14.0"}
    assert pred.dtype_status["float64"] == statuses.UNSUPPORTED_DTYPE


def test_op_not_in_the_yaml_is_not_in_release(cache):
    make_wheel(cache, "2.2.2", library=LIBRARY["2.2.2"])
    pred = predict_all(["2.2.2"], ["aten::no_such_op.default"], download=False)["2.2.2"]
    only = pred["aten::no_such_op.default"]
    assert only.status == statuses.NOT_IN_RELEASE
    assert set(only.dtype_status.values()) == {statuses.NOT_IN_RELEASE}


def test_failed_download_marks_that_release_unknown_and_goes_on(cache):
    make_wheel(cache, "2.2.2", library=LIBRARY["2.2.2"])
    messages = []
    found = predict_all(["2.2.2", "2.3.1"], ["nonzero"], download=False, progress=messages.append)
    assert {p.status for p in found["2.3.1"].values()} == {statuses.UNKNOWN}
    assert found["2.2.2"]["aten::nonzero.default"].status != statuses.UNKNOWN
    assert any("2.3.1" in m and "unknown" in m for m in messages)


def test_planted_op_is_native_from_the_release_that_adds_its_mps_key(cache):
    make_wheel(cache, "2.2.2", library=LIBRARY["2.2.2"])
    with_mps = YAML.replace("    CPU, CUDA: planted_op\n", "    CPU, CUDA, MPS: planted_op\n")
    assert with_mps != YAML
    make_wheel(cache, "2.3.1", yaml_text=with_mps, library=LIBRARY["2.2.2"])
    found = predict_all(["2.2.2", "2.3.1"], ["planted_op"], download=False)
    assert found["2.2.2"]["aten::planted_op.default"].status == statuses.FALLBACK
    assert found["2.3.1"]["aten::planted_op.default"].status == statuses.NATIVE
    assert first_native_release("planted_op", "float32", found) == "2.3.1"
    assert first_native_release("planted_op", "float64", found) is None
    assert first_native_release("aten::planted_op.default", "float32", {"2.2.2": found["2.2.2"]}) is None


def test_every_status_has_one_description():
    assert set(statuses.ORDER) <= set(statuses.DESCRIPTIONS)
    assert all(isinstance(text, str) and text for text in statuses.DESCRIPTIONS.values())


def test_crosscheck_explains_structured_delegates_and_hand_registrations(cache):
    lib = LIBRARY["2.2.2"]
    make_wheel(cache, "2.2.2", library=lib)
    checks = {c.op: c for c in crosscheck.check_release(release_data.load("2.2.2", download=False))}
    assert checks["add.out"].verdict == crosscheck.AGREE  # MPS key and a wrapper
    if "add.Tensor" in lib["registrations"]:
        assert checks["add.Tensor"].verdict == "structured_delegate"
    assert checks["im2col"].verdict == "mps_fallback_registration"
    assert checks["planted_op"].verdict == crosscheck.AGREE  # neither


def test_cli_all_ops_and_crosscheck(cache, capsys):
    make_wheel(cache, "2.2.2", library=LIBRARY["2.2.2"])
    assert main(["--all-ops", "--torch", "2.2.2", "--op", "im2col", "nonzero", "--json", "--no-download"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["2.2.2"]["aten::im2col.default"]["status"] == statuses.FORCED_CPU
    assert "min_macos" in data["2.2.2"]["aten::nonzero.default"]
    assert main(["--crosscheck", "--torch", "2.2.2", "--json", "--no-download"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["checked"] >= summary["agree"] > 0


def test_fft_gate_covers_the_fft_family_and_complex_gate_the_dtype():
    fft = "FFT operations are only supported on MacOS 14+"
    complex_ = "MPS complex types are only supported on MacOS 14.0 or newer."
    gates = macos_gates.parse(["The MPS backend is supported on MacOS 12.3+.", fft, complex_])
    want = re.search(r"MacOS (\d+)", fft).group(1) + ".0"
    assert macos_gates.op_gate("fft_rfft", gates)["min_macos"] == want
    assert macos_gates.op_gate("_fft_r2c", gates)["text"] == fft
    assert macos_gates.op_gate("rfft_helper", gates) is None
    assert gates["dtypes"]["complex64"]["text"] == complex_
