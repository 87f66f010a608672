"""Fixtures and hooks of the benchmarks: the session state, and device and torch in machine_info.

Options live in the root conftest; the sweep is chosen by OPCOMPAT_BENCH (see sweep.py), the time
budget by OPCOMPAT_BENCH_BUDGET_S (see session.py).
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from opcompat import devices
from opcompat.timing import ORDER_NOTE, Clock
from opcompat.vocab import FALLBACK_ENV, fallback_enabled

from . import sweep as sw
from .session import BenchSession


@pytest.fixture(scope="session")
def bench(device):
    if device.type == "mps" and not fallback_enabled(os.environ):
        pytest.skip(f"the MPS benchmarks need the real CPU fallback: start Python with {FALLBACK_ENV}=1 in the "
                    "environment (libtorch reads it once, when it loads)")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # CUDA events and graphs use the current device
    return BenchSession(device, sw.current())


def pytest_benchmark_update_machine_info(config, machine_info):
    device = getattr(config, "opcompat_device", None)
    if device is None:
        return
    info = devices.describe(device)
    sweep = sw.current()
    info.update(sweep=sweep.name, timers=list(Clock(device).timers), order=ORDER_NOTE, correction=sw.CORRECTION,
                round_policy=dataclasses.asdict(sweep.policy),
                fallback_round_policy=dataclasses.asdict(sweep.fallback_policy),
                mps_fallback_enabled=fallback_enabled(os.environ))
    machine_info["opcompat"] = info
