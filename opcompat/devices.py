"""Which device a run targets, whether it is really there, what it supports, and what machine it is.

A device that is absent is a usage error with the reason, never a run of skips. ``machine`` is the one
description of this machine (result files, report headers, benchmark machine_info all come from it).
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import torch
from packaging.version import Version

from .records import MachineInfo, TorchInfo
from .vocab import DTYPE_NAMES, MPS_DTYPES


class DeviceError(RuntimeError):
    """The requested device cannot be used here; the message says why."""


def resolve(name: str) -> torch.device:
    """Parse and check ``name`` (cpu, cuda, cuda:N, mps, or any torch device string)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"--device {name!r} is not a torch device string: {exc}") from None
    kind = device.type
    if kind == "cpu":
        return device
    if kind == "meta":
        raise DeviceError(f"--device {name}: meta tensors carry shapes and dtypes but no values, so there is "
                          "nothing to compare with the CPU; use cpu, cuda or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else f"torch {torch.__version__} was built with CUDA {torch.version.cuda} but sees no GPU")
            raise DeviceError(f"--device {name}: CUDA is not available ({why})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return device
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            raise DeviceError(f"--device {name}: MPS is not built into torch {torch.__version__} "
                              f"(MPS needs a macOS arm64 build; this is {platform.system()} {platform.machine()})")
        if not mps.is_available():
            raise DeviceError(f"--device {name}: MPS is built but not available "
                              "(needs macOS 12.3+ on Apple silicon)")
        return device
    try:
        torch.empty(1, device=device)
    except Exception as exc:
        raise DeviceError(f"--device {name}: cannot allocate a tensor there: {exc}") from None
    return device


def synchronize(device) -> None:
    """Wait for ``device`` to finish its queued work (torch.mps exists from torch 2.0 on)."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps" and hasattr(torch, "mps"):
        torch.mps.synchronize()


def supported_dtypes(device: torch.device) -> tuple:
    """Float dtypes to test on ``device``: MPS has no float64, and bfloat16 only from macOS 14."""
    if device.type != "mps":
        return DTYPE_NAMES
    return tuple(d for d in MPS_DTYPES if d != "bfloat16" or _mps_bf16_ok(device))


def _mps_bf16_ok(device):
    try:
        torch.ones(1, dtype=torch.bfloat16, device=device)
        return True
    except (RuntimeError, TypeError):
        return False


def supports_fractional_correction() -> bool:
    """torch 1.13 took correction as an int; 2.0 made it a Scalar."""
    try:
        torch.std_mean(torch.ones(3), correction=0.5)
        return True
    except (RuntimeError, TypeError):
        return False


def cpu_model() -> str:
    """'AMD EPYC 7R13 Processor', 'Apple M2': the CPU's marketing name, where the OS tells it."""
    system = platform.system()
    try:
        if system == "Linux":
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
        if system == "Darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def slugify(text: str) -> str:
    """'Linux-x86_64-Intel(R) Xeon(R) Processor' -> 'linux-x86-64-intel-xeon-processor'."""
    text = re.sub(r"\((?:r|tm)\)", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def machine(device, *, simulated_name=None) -> MachineInfo:
    """This machine as a result file names it: device kind, device name, OS, Python, and a hostname-free
    slug for file names. ``simulated_name``: the name of a simulated device (its slug says "simulated")."""
    device = torch.device(device)
    system, arch = platform.system(), platform.machine()
    if simulated_name:
        name = simulated_name
    elif device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = f"Apple MPS, {cpu_model()}"
    else:
        name = cpu_model()
    macos = platform.mac_ver()[0] if system == "Darwin" else ""
    os_name = f"macOS {macos} ({arch})" if macos else f"{system} {platform.release()} ({arch})"
    short_os = f"macos{Version(macos).major}" if macos else system
    slug = slugify(f"{short_os}-{arch}-{'simulated' if simulated_name else name}")
    return MachineInfo(device.type, name, os_name, platform.python_version(), slug)


def torch_info() -> TorchInfo:
    """The installed torch: version (with its local build tag), git commit, CUDA version."""
    return TorchInfo(torch.__version__, getattr(torch.version, "git_version", None), torch.version.cuda)


def describe(device: torch.device) -> dict:
    """``machine`` for report headers and benchmark machine_info: the device as given, torch, and the
    CUDA or macOS version where there is one."""
    here = machine(device)
    info = {"device": str(device), "device_name": here.device_name, "torch": torch.__version__,
            "python": here.python, "os": here.os}
    if torch.device(device).type == "cuda":
        info["cuda"] = torch.version.cuda
    elif torch.device(device).type == "mps":
        info["macos"] = platform.mac_ver()[0]
    return info
