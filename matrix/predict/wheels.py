"""Where a release's files come from: the cached macOS wheel, the installed torch, or ``pip download``.

Members are read straight out of the zip: a wheel is 50-140 MB and we need ~1 MB of it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version

from matrix.predict.errors import CorruptWheelError, DownloadError, WheelNotFoundError
from matrix.predict.releases import python_tag

MEMBERS = {
    "native_functions": "torchgen/packaged/ATen/native/native_functions.yaml",
    "mps_init": "torch/backends/mps/__init__.py",
    "common_mps": "torch/testing/_internal/common_mps.py",  # only in >= 2.8
    "torch_init": "torch/__init__.py",  # only to confirm that torch calls torch.backends.mps._init()
}
REQUIRED = ("native_functions", "mps_init")
# Read as bytes, not text: the compiled library, for registrations, symbols and macOS strings (binary.py).
BINARY_MEMBERS = {"libtorch_cpu": "torch/lib/libtorch_cpu.dylib"}
PLATFORM = "macosx_14_0_arm64"
# Strings pip/urllib3 print when there is no network; anything else is reported as pip's own words.
_NETWORK_HINTS = ("Failed to establish a new connection", "NewConnectionError", "Temporary failure in name",
                  "Name or service not known", "nodename nor servname", "Network is unreachable",
                  "Connection refused", "Max retries exceeded", "ConnectTimeout", "timed out",
                  "No route to host", "ProxyError")


@dataclass(frozen=True)
class Origin:
    """One release's files: ``label`` for evidence, ``fingerprint`` keys the parsed-JSON cache."""

    label: str
    fingerprint: str
    json_path: Path
    read: object  # () -> {member key: text or None}


def cache_dir() -> Path:
    return Path(os.environ.get("OPCOMPAT_CACHE") or "~/.cache/opcompat").expanduser() / "wheels"


def _wheel_pattern(version: str) -> re.Pattern:
    # torch-2.10.0-2-cp311-none-macosx_11_0_arm64.whl has a build tag ("-2"); accept it.
    return re.compile(rf"^torch-{re.escape(version)}(?:-(\d+)[^-]*)?-cp\d+-[^-]+-macosx_\d+_\d+_arm64\.whl$")


def find_cached_wheel(version: str, directory: Path) -> Path | None:
    pattern = _wheel_pattern(version)
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = pattern.match(path.name)
            if match:
                found.append((int(match.group(1) or 0), path.name, path))
    return max(found)[2] if found else None  # highest build tag wins


def download_wheel(version: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", PLATFORM,
           "--python-version", python_tag(version), f"torch=={version}", "-d", str(directory)]
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)  # a local pip.conf may cap torch's version
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as exc:
        raise DownloadError(f"could not run pip to download torch {version}: {exc}") from None
    if done.returncode != 0:
        output = (done.stderr or "") + (done.stdout or "")
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        if any(hint in output for hint in _NETWORK_HINTS):
            why = "no network? pip could not reach the package index"
        elif "No matching distribution" in output or "Could not find a version" in output:
            why = f"the index has no macOS arm64 wheel of torch=={version}"
        else:
            why = "pip download failed"
        raise DownloadError(f"could not download the macOS arm64 wheel of torch {version} into {directory}: "
                            f"{why} ({last}). Cached wheels are used without the network: put "
                            f"torch-{version}-*-macosx_*_arm64.whl there.")
    wheel = find_cached_wheel(version, directory)
    if wheel is None:
        raise DownloadError(f"pip download of torch {version} succeeded but left no macOS arm64 wheel in "
                            f"{directory}")
    return wheel


def read_wheel(path: Path) -> dict:
    """{member key: text or None for an optional member that is absent}; CorruptWheelError otherwise."""
    hint = f"delete {path} and run again to download it afresh"
    try:
        with zipfile.ZipFile(path) as wheel:
            names = set(wheel.namelist())
            out = {}
            for key, member in MEMBERS.items():
                if member not in names:
                    if key in REQUIRED:
                        raise CorruptWheelError(f"{path}: missing member {member}; is it a torch wheel? {hint}")
                    out[key] = None
                    continue
                out[key] = wheel.read(member).decode("utf-8")
            for key, member in BINARY_MEMBERS.items():
                out[key] = wheel.read(member) if member in names else None
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError) as exc:
        raise CorruptWheelError(f"{path}: not a readable wheel ({type(exc).__name__}: {exc}); {hint}") from None


def wheel_origin(path: Path) -> Origin:
    stat = path.stat()
    return Origin(label=path.name, fingerprint=f"wheel {path.name} {stat.st_size} {stat.st_mtime_ns}",
                  json_path=path.with_name(path.name + ".predict.json"), read=lambda: read_wheel(path))


def installed_origin(version: str, directory: Path) -> Origin | None:
    """The installed torch's own copies, when it is this release (the files are the same on every OS)."""
    try:
        dist = metadata.distribution("torch")
        if Version(dist.version).base_version != version:
            return None
    except (metadata.PackageNotFoundError, InvalidVersion):
        return None
    paths = {key: Path(str(dist.locate_file(member))) for key, member in MEMBERS.items()}
    if not all(paths[key].is_file() for key in REQUIRED):
        return None
    stamps = " ".join(f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths.values() if p.is_file())

    def read() -> dict:
        try:
            return {key: (p.read_text(encoding="utf-8") if p.is_file() else None) for key, p in paths.items()}
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptWheelError(f"installed torch {dist.version}: unreadable file ({exc})") from None

    return Origin(label=f"installed torch {dist.version}", fingerprint=f"installed {dist.version} {stamps}",
                  json_path=directory / f"torch-{version}-installed.predict.json", read=read)


def locate(version: str, *, download: bool, directory: Path | None = None, prefer_wheel: bool = False) -> Origin:
    """Cached wheel first (the macOS build itself), then the installed torch, then pip download.

    ``prefer_wheel``: download before settling for the installed torch, whose library is not the macOS one
    (the all-op prediction needs libtorch_cpu.dylib); without downloads the installed torch still answers.
    """
    directory = directory or cache_dir()
    wheel = find_cached_wheel(version, directory)
    if wheel is not None:
        return wheel_origin(wheel)
    installed = installed_origin(version, directory)
    if installed is not None and not (prefer_wheel and download):
        return installed
    if not download:
        raise WheelNotFoundError(f"no cached macOS arm64 wheel of torch {version} in {directory} and "
                                 f"downloading is off (--no-download / download=False)")
    return wheel_origin(download_wheel(version, directory))
