"""Which device a run targets, whether it is really there, and what it supports.

A device that is absent is a usage error with the reason, never a run of skips.
"""

from __future__ import annotations

import platform

import torch


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
    names = ["float32", "float16", "bfloat16", "float64"]
    if device.type == "mps":
        names.remove("float64")
        if not _mps_bf16_ok(device):
            names.remove("bfloat16")
    return tuple(names)


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


def describe(device: torch.device) -> dict:
    """Name and versions for report headers and result files."""
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }
    if device.type == "cpu":
        info["device_name"] = platform.processor() or platform.machine()
    elif device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    elif device.type == "mps":
        info["device_name"] = "Apple MPS"
        info["macos"] = platform.mac_ver()[0]
    return info
