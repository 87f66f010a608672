"""Fixtures and hooks of the benchmarks: the session state, and device and torch in machine_info.

Options live in the root conftest; the sweep is chosen by OPCOMPAT_BENCH (see sweep.py), the time
budget by OPCOMPAT_BENCH_BUDGET_S (see session.py).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from opcompat import devices

from . import sweep as sw
from .session import BenchSession
from .timing import Clock, fallback_enabled


@pytest.fixture(scope="session")
def bench(device):
    if device.type == "mps" and not fallback_enabled():
        pytest.skip("the MPS benchmarks need the real CPU fallback: start Python with "
                    "PYTORCH_ENABLE_MPS_FALLBACK=1 in the environment (libtorch reads it once, when it loads)")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # CUDA events record on the current device
    return BenchSession(device, sw.current())


def pytest_benchmark_update_machine_info(config, machine_info):
    device = getattr(config, "opcompat_device", None)
    if device is None:
        return
    info = devices.describe(device)
    sweep = sw.current()
    info.update(sweep=sweep.name, timer=Clock(device).name, correction=sw.CORRECTION,
                round_policy=dataclasses.asdict(sweep.policy), mps_fallback_enabled=fallback_enabled())
    machine_info["opcompat"] = info
