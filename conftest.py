"""Root pytest configuration: the --device option, hypothesis profiles, the report header.

Every option lives here, once; the README quotes these defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from opcompat import devices
from suite.bench import sweep as bench_sweep

settings.register_profile(
    "ci", derandomize=True, max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULT_PROFILE = "ci"


def pytest_addoption(parser):
    group = parser.getgroup("opcompat")
    group.addoption("--device", default="cpu",
                    help="torch device the decompositions run on: cpu, cuda, cuda:N, mps, ... (default: cpu)")
    group.addoption("--bench-tables", action="store_true",
                    help="print pytest-benchmark's tables for the quick sweep too (the full sweep prints them; "
                         "the quick one, in the default run, only runs its code and checks)")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own pytest_configure reads --benchmark-quiet
def pytest_configure(config):
    # The quick sweep runs in the default `pytest` to keep the bench's code alive; its timing tables of
    # tiny CPU inputs would only bury a failure.
    if bench_sweep.current().name == "quick" and not config.getoption("--bench-tables"):
        config.option.benchmark_quiet = True
    # Fail the whole run up front for an absent device: a green run of skips would read as "supported".
    try:
        config.opcompat_device = devices.resolve(config.getoption("--device"))
    except devices.DeviceError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not config.getoption("--hypothesis-profile", default=None):
        settings.load_profile(DEFAULT_PROFILE)


def pytest_report_header(config):
    info = devices.describe(config.opcompat_device)
    extra = ", ".join(f"{k} {info[k]}" for k in ("cuda", "macos") if info.get(k))
    return [f"opcompat: device {info['device']} ({info['device_name']}), torch {info['torch']}, "
            f"{info['os']}" + (f", {extra}" if extra else ""),
            f"hypothesis profile: {settings._current_profile}"]


META_TESTS = Path(__file__).resolve().parent / "suite" / "meta"


def unmarked_meta_tests(items, folder=META_TESTS) -> list:
    """The node ids of tests under suite/meta/ that lack the meta marker (``-m meta`` would miss them)."""
    return [item.nodeid for item in items
            if Path(item.path).resolve().is_relative_to(folder) and item.get_closest_marker("meta") is None]


def pytest_collection_modifyitems(config, items):
    unmarked = unmarked_meta_tests(items)
    if unmarked:
        raise pytest.UsageError(f"{len(unmarked)} test(s) under suite/meta/ lack the meta marker (add "
                                f"`pytestmark = pytest.mark.meta` to their module): {', '.join(unmarked[:5])}")


@pytest.fixture(scope="session")
def device(pytestconfig):
    return pytestconfig.opcompat_device


@pytest.fixture(scope="session")
def device_dtypes(device):
    return devices.supported_dtypes(device)
