"""One release's parsed facts, cached as JSON next to its wheel so the second run skips zip and yaml.

The cache is keyed by the wheel's name, size and mtime plus ``SCHEMA``: a re-downloaded wheel or a
changed parser invalidates it. A cache we cannot write (read-only folder) is simply not kept.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from matrix.predict import binary, macos_gates, mps_python, mps_test_lists, native_yaml, wheels
from matrix.predict.errors import CorruptWheelError

SCHEMA = 6  # bump whenever a parser's output changes (4: libtorch_cpu.dylib facts; 6: hand-written kernel names)


@dataclass(frozen=True)
class ReleaseData:
    version: str
    origin: str  # the wheel's file name, or "installed torch 2.13.0+cpu"
    ops: dict  # native_yaml.parse()
    python_kernels: list  # mps_python.parse()
    test_lists: dict | None  # mps_test_lists.parse(), None before 2.8
    library: dict | None = None  # binary.scan() of libtorch_cpu.dylib; None where there is none (Linux torch)

    @property
    def gates(self) -> dict:
        return macos_gates.parse((self.library or {}).get("macos_strings", []))

    def to_json(self) -> dict:
        return {"version": self.version, "origin": self.origin, "ops": self.ops,
                "python_kernels": self.python_kernels, "test_lists": self.test_lists, "library": self.library}


def parse_members(version: str, origin: str, members: dict) -> ReleaseData:
    """Parse the texts read from a wheel; CorruptWheelError names the member that does not parse."""
    parsed = {}
    for key, parser in (("native_functions", native_yaml.parse),
                        ("mps_init", lambda text: mps_python.parse(text, members.get("torch_init"))),
                        ("common_mps", mps_test_lists.parse)):
        if members.get(key) is None:
            parsed[key] = None
            continue
        try:
            parsed[key] = parser(members[key])
        except ValueError as exc:
            raise CorruptWheelError(f"{origin}: {wheels.MEMBERS[key]} does not parse ({exc}); delete the wheel "
                                    f"and run again to download it afresh") from None
    library = None
    if members.get("libtorch_cpu") is not None:
        try:
            library = binary.scan(members["libtorch_cpu"])
        except (ValueError, IndexError, struct.error) as exc:
            raise CorruptWheelError(f"{origin}: {binary.MEMBER} is not an arm64 Mach-O library we can read "
                                    f"({exc}); delete the wheel and run again to download it afresh") from None
    return ReleaseData(version, origin, parsed["native_functions"], parsed["mps_init"], parsed["common_mps"],
                       library)


def _read_cache(path: Path, key: str) -> ReleaseData | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        body = data["data"]
        return ReleaseData(body["version"], body["origin"], body["ops"], body["python_kernels"],
                           body["test_lists"], body.get("library"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, torn or stale: parse again


def _write_cache(path: Path, key: str, release: ReleaseData) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "data": release.to_json()}, handle, separators=(",", ":"))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache is shared like the wheels
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def load(version: str, *, download: bool = True, directory: Path | None = None, progress=None,
         prefer_wheel: bool = False) -> ReleaseData:
    """``progress(message)``: told before the slow steps (a download, a parse), never on a cache hit."""
    say = progress or (lambda message: None)
    fetching = download and wheels.find_cached_wheel(version, directory or wheels.cache_dir()) is None
    if fetching and (prefer_wheel or wheels.installed_origin(version, directory or wheels.cache_dir()) is None):
        say(f"torch {version}: no cached wheel, downloading the macOS arm64 wheel with pip ...")
    origin = wheels.locate(version, download=download, directory=directory, prefer_wheel=prefer_wheel)
    fetching = fetching and origin.label.endswith(".whl")
    if fetching:
        say(f"torch {version}: downloaded {origin.label}{_size(origin)}")
    key = f"schema {SCHEMA}; {origin.fingerprint}"
    cached = _read_cache(origin.json_path, key)
    if cached is not None:
        return cached
    say(f"torch {version}: parsing {origin.label}{_size(origin)}")
    release = parse_members(version, origin.label, origin.read())
    _write_cache(origin.json_path, key, release)
    return release


def _size(origin) -> str:
    path = origin.json_path.with_name(origin.json_path.name.removesuffix(".predict.json"))
    return f" ({path.stat().st_size / 1e6:.0f} MB)" if path.is_file() else ""
