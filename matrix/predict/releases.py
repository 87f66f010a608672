"""The torch releases we predict for, and turning a user's version string into one of them."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from matrix.predict.errors import UnknownVersionError

# Latest patch of every minor series with macOS arm64 wheels we cover; "2.2" means "2.2.2".
RELEASES = (
    "1.13.1", "2.0.1", "2.1.2", "2.2.2", "2.3.1", "2.4.1", "2.5.1", "2.6.0", "2.7.1",
    "2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.12.1", "2.13.0", "2.14.1", "2.15.0",
)
_LATEST = {Version(v).release[:2]: v for v in RELEASES}


def resolve_version(text: str) -> str:
    """ "2.2" -> "2.2.2"; "2.2.0" / "2.2.2" / "2.13.0+cpu" -> that patch; anything else: UnknownVersionError."""
    known = ", ".join(RELEASES)
    try:
        version = Version(str(text).strip())
    except InvalidVersion:
        raise UnknownVersionError(f"unknown torch version {text!r}: not a version number; "
                                  f"known releases: {known}") from None
    if version.is_prerelease or version.is_devrelease or version.epoch:
        raise UnknownVersionError(f"unknown torch version {text!r}: pre-releases are not covered; "
                                  f"known releases: {known}")
    series = version.release[:2]
    if len(version.release) > 3 or series not in _LATEST:
        raise UnknownVersionError(f"unknown torch version {text!r}: no torch {'.'.join(map(str, series))} "
                                  f"series here; known releases: {known}")
    if len(version.release) == 2:
        return _LATEST[series]
    # A patch we have no table entry for (e.g. 2.2.0) is still a real release of a known series.
    return ".".join(str(p) for p in version.release)


def series(version: str) -> tuple[int, int]:
    return Version(version).release[:2]


def python_tag(version: str) -> str:
    """The CPython whose macOS wheel we download: 1.13 has no cp311 wheel, everything later does."""
    return "3.10" if series(version) < (2, 0) else "3.11"
