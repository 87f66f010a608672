"""What a release's compiled library says about MPS, read from torch/lib/libtorch_cpu.dylib of its wheel.

``scan(dylib bytes)`` -> a JSON-able dict, cached with the rest of the release's parsed facts:

- ``registrations``: {op: {"kind", "symbol"}} for every ``m.impl("op", kernel)`` in a
  ``TORCH_LIBRARY_IMPL(aten, MPS, m)`` block (RegisterMPS.cpp, MPSFallback.mm, hand-written ones), found by
  walking each init function's address loads in order (see macho.py). kind: "wrapper" (a generated
  ``wrapper_MPS_*`` kernel), "cpu_fallback" (MPSFallback.mm's boxed ``mps_fallback``: the op always runs on
  the CPU, no environment variable needed), "error_fallback" (``mps_error_fallback``), "custom" (a
  hand-written kernel, e.g. ``slow_conv2d_forward_mps``).
- ``wrappers``: every ``wrapper_MPS_<overload>_<name>`` function name in the symbol table (from 2.0).
- ``macos_strings``: the literals that mention a macOS version (gates, the backend's own minimum).
"""

from __future__ import annotations

import re

from matrix.predict.macho import MachO

MEMBER = "torch/lib/libtorch_cpu.dylib"
INIT_FUNCTIONS = "TORCH_LIBRARY_IMPL_init_aten_MPS_"
_IMPL_CALL = "7Library5_impl"  # torch::Library::_impl(const char*, CppFunction&&, ...)
_OP_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_]+)?$")
_WRAPPER = re.compile(r"(\d+)(wrapper_MPS_[A-Za-z0-9_]+)")
_MACOS = re.compile(r"mac ?os ?1\d|MacOS|macOS")


def scan(data: bytes) -> dict:
    """ValueError if ``data`` is not an arm64 Mach-O library."""
    lib = MachO(data)
    return {"registrations": registrations(lib), "wrappers": wrappers(lib),
            "macos_strings": sorted({s.strip() for s in lib.c_strings() if _MACOS.search(s) and len(s) < 300})}


def registrations(lib: MachO) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for function, refs in lib.function_refs(INIT_FUNCTIONS).items():
        boxed = None  # a boxed kernel is loaded once and reused by the following m.impl calls
        segment: list[tuple[str, str]] = []
        for kind, value in refs:
            if kind == "call" and _IMPL_CALL in value:
                names = [v for k, v in segment if k == "str" and _OP_NAME.match(v)]
                # 1.13 calls makeFromBoxedFunction<&mps_fallback>; later ones load the boxed kernel's address
                kernels = [v for k, v in segment if k == "fn" or "mps_fallback" in v or "wrapper_MPS_" in v]
                boxed = next((k for k in kernels if "mps_fallback" in k), boxed)
                if names:
                    out.setdefault(names[-1], _kernel(kernels, boxed, function))
                segment = []
            else:
                segment.append((kind, value))
    return out


def _kernel(kernels: list[str], boxed: str | None, function: str) -> dict:
    texts = kernels or ([boxed] if boxed else [])
    for text in texts:
        if "mps_error_fallback" in text:
            return {"kind": "error_fallback", "symbol": "mps_error_fallback"}
        if "mps_fallback" in text:
            return {"kind": "cpu_fallback", "symbol": "mps_fallback"}
        wrapper = _WRAPPER.search(text)
        if wrapper:
            return {"kind": "wrapper", "symbol": _unmangle(*wrapper.groups())}
    # a hand-written kernel's mangled name: "__ZN2at23slow_conv2d_forward_mpsERKNS_6TensorE..."
    for text in texts:
        # every length prefix, also one glued to a number before it ("_GLOBAL__N_1" + "19bitwise_and_out_mps")
        for digits in re.finditer(r"\d+", text):
            for i in range(len(digits.group())):
                name = text[digits.end():digits.end() + int(digits.group()[i:])]
                if name.endswith("_mps") and re.fullmatch(r"[a-z_]\w*", name):
                    return {"kind": "custom", "symbol": name}
    return {"kind": "custom", "symbol": f"a kernel in {function}"}


def _unmangle(digits: str, rest: str) -> str:
    """A length-prefixed Itanium name: "123wrapper_MPS_out_abs_outES8_" -> "wrapper_MPS_out_abs_out".

    The digits may follow another number ("_GLOBAL__N_1" + "23"): take the shortest suffix whose length
    fits; names are at least 13 characters, so a one-digit suffix never fits.
    """
    for i in range(len(digits) - 1, -1, -1):
        n = int(digits[i:])
        if 12 < n <= len(rest):
            return rest[:n]
    return rest


def wrappers(lib: MachO) -> list[str]:
    found = set()
    for _, name in lib.symbols():
        if "wrapper_MPS_" in name:
            for digits, rest in _WRAPPER.findall(name):
                found.add(_unmangle(digits, rest))
    return sorted(found)
