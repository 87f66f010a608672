"""Honest device timing: synchronize inside the timed rounds, rotate inputs out of the cache, time bursts
of calls on a warm device, and notice when an op silently runs on the CPU.

pytest-benchmark's timer measures wall time around the call it is given. A GPU call returns once its
kernels are queued, so every timed round here ends with a device synchronize; on CUDA each round is also
bracketed by events, which give the device's own view of the same round.

A round is a burst of ``k`` back-to-back calls, each on the next rotated input, timed as one and reported
per call (pytest-benchmark's ``iterations``). One ~50 µs call between two events is at the mercy of
launch latency and host jitter, and a device left idle between such calls lets its clocks drop (an H200
here read 345 MHz idle, 1980 MHz under load); timed that way, whole groups of rows came out 30-58 %
slower in one repeat of the sweep than in the other. ``k`` is chosen so that a round lasts about
``RoundPolicy.burst_s``, and untimed rounds right before the timed ones (``RoundPolicy.warm_s`` of them)
bring the clocks up. The time per call is therefore that of a stream of calls, as a program issues them,
not the latency of one call on an idle device.
"""

from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

from opcompat import devices

MiB = 1024**2
GiB = 1024**3
# The MPS fallback's warning (aten/src/ATen/mps/MPSFallback.mm):
# "The operator 'aten::std_mean.correction' is not currently supported on the MPS backend and will fall
#  back to run on the CPU. This may have performance implications."
FALLBACK_MARK = "fall back to run on the CPU"
MAX_ROTATION = 2048  # distinct inputs at most; more only costs set-up time
WORKSPACE_FACTOR = 4  # temporaries a variant may need, in input sizes: (x - m), its square, a float32 upcast


# -- synchronizing and timing ------------------------------------------------------------------------
class Clock:
    """Makes a call return only once the device has finished it; CUDA events where the device has them."""

    def __init__(self, device: torch.device):
        self.device = device

    @property
    def name(self) -> str:
        return "cuda events" if self.device.type == "cuda" else "wall clock"

    def synchronize(self):
        devices.synchronize(self.device)

    def event(self):
        """A CUDA timing event, or None where the wall clock is the only timer."""
        return torch.cuda.Event(enable_timing=True) if self.device.type == "cuda" else None

    def seconds(self, call, x) -> float:
        """Wall time of one synchronized call (to choose the rounds; not a measurement)."""
        return self.burst_seconds(call, [x])

    def burst_seconds(self, call, inputs) -> float:
        """Wall time of back-to-back calls on ``inputs``, synchronized once at the end (not a measurement)."""
        self.synchronize()
        start = time.perf_counter()
        for x in inputs:
            call(x)
        self.synchronize()
        return time.perf_counter() - start

    def sm_clock_mhz(self) -> Optional[int]:
        """The SM clock NVML reports now, or None (not CUDA, or no nvidia-ml-py): read right after the timed
        rounds, it records the clock they ran at, so that a spread between repeats can be traced to it."""
        if self.device.type != "cuda":
            return None
        try:
            return int(torch.cuda.clock_rate(self.device))
        except Exception:  # no pynvml, no NVML in the container, an older torch: a diagnostic, not a need
            return None


class Burst:
    """One benchmark's callable, for ``benchmark.pedantic(burst, rounds=R, warmup_rounds=W, iterations=k)``.

    pytest-benchmark calls it ``k`` times inside one timer reading and divides by ``k``. The first call of a
    round records the start event, every call takes the next rotated input, and the k-th records the end
    event and synchronizes: a round's wall time and event time both cover all k calls, and no call of one
    round overlaps the next round.
    """

    def __init__(self, clock: Clock, call, rotation, k: int, rounds: int):
        if k < 1:
            raise ValueError(f"Burst: need k >= 1 calls per round, got {k}")
        self.clock, self.call, self.rotation, self.k = clock, call, rotation, k
        # Events are made here, outside the timed rounds: creating one costs host time. One pair to spare:
        # with iterations > 1, pytest-benchmark makes one more call after the rounds, for the result.
        self._pairs = [(clock.event(), clock.event()) for _ in range(rounds + 1)]
        self._finished = []  # the event pairs of complete rounds, in order
        self._pair = (None, None)
        self._position = 0  # calls made in the current round

    def __call__(self):
        if self._position == 0:
            index = len(self._finished)
            self._pair = self._pairs[index] if index < len(self._pairs) else (None, None)
            if self._pair[0] is not None:
                self._pair[0].record()
        out = self.call(self.rotation.next())
        self._position += 1
        if self._position == self.k:
            if self._pair[1] is not None:
                self._pair[1].record()
            self.clock.synchronize()
            self._finished.append(self._pair)
            self._position = 0
        return out

    @property
    def rounds_finished(self) -> int:
        return len(self._finished)

    def finish(self):
        """Wait for the device and drop an unfinished round (pytest-benchmark's extra call for the result)."""
        self.clock.synchronize()
        self._position = 0

    def device_seconds(self, skip: int) -> list:
        """Event time per call of each complete round after the first ``skip`` (the warm-up), in seconds."""
        return [start.elapsed_time(end) / 1e3 / self.k for start, end in self._finished[skip:] if start is not None]


def interquartile_range(values) -> Optional[float]:
    """Q3 - Q1 of ``values`` (None for fewer than two)."""
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q3 - q1


@dataclass(frozen=True)
class RoundPolicy:
    """How a benchmark is timed.

    - ``burst_s``: a round is as many back-to-back calls as last this long, ``max_burst`` at most.
    - ``warm_s``: untimed rounds, right before the timed ones, keep the device busy this long.
    - ``target_s``: timed rounds for this long, ``min_rounds`` to ``max_rounds`` of them.
    """

    target_s: float
    min_rounds: int
    max_rounds: int
    burst_s: float
    max_burst: int
    warm_s: float

    def __post_init__(self):
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"RoundPolicy: need 1 <= min_rounds <= max_rounds, got {self.min_rounds}, "
                             f"{self.max_rounds}")
        if self.max_burst < 1:
            raise ValueError(f"RoundPolicy: need max_burst >= 1, got {self.max_burst}")
        for name in ("target_s", "burst_s", "warm_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"RoundPolicy: {name}={getattr(self, name)} is negative")

    def calls_per_round(self, call_s: float) -> int:
        """k: calls of ``call_s`` each that fill ``burst_s`` (one for a call that long already)."""
        wanted = math.ceil(self.burst_s / call_s) if call_s > 0 else self.max_burst
        return max(1, min(self.max_burst, wanted))

    def rounds(self, round_s: float) -> int:
        wanted = math.ceil(self.target_s / round_s) if round_s > 0 else self.max_rounds
        return max(self.min_rounds, min(self.max_rounds, wanted))

    def warmup_rounds(self, round_s: float) -> int:
        """Rounds that fill ``warm_s``; none where one round is that long (the calibration just ran one)."""
        if round_s >= self.warm_s:
            return 0
        return math.ceil(self.warm_s / round_s) if round_s > 0 else 1


def calibrate(clock: Clock, call, rotation, policy: RoundPolicy) -> tuple:
    """(k, seconds per call): one synchronized call suggests k; a burst of k calls on rotated inputs gives
    the time per call in a stream of calls (launches overlap the device's work there), and k is chosen
    again from it. The burst also starts the warm-up."""
    single = clock.seconds(call, rotation.next())
    k = policy.calls_per_round(single)
    if k == 1:
        return 1, single
    per_call = clock.burst_seconds(call, [rotation.next() for _ in range(k)]) / k
    return policy.calls_per_round(per_call), per_call


# -- inputs that do not sit in the cache -------------------------------------------------------------
def rotation_budget(device: torch.device) -> int:
    """Bytes of distinct inputs to cycle through: well over the last-level cache (50-60 MB on H100/H200)."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return max(4 * getattr(props, "L2_cache_size", 64 * MiB), 64 * MiB)
    return 256 * MiB  # Apple's system-level cache and CPU L3 are below 100 MB


def rotation_count(nbytes: int, budget: int) -> int:
    """How many inputs of ``nbytes`` fill ``budget``: one when a single input already exceeds it."""
    return max(1, min(MAX_ROTATION, math.ceil(budget / max(nbytes, 1))))


class Rotation:
    """Distinct inputs handed out round-robin; a call finds its input evicted by the others."""

    def __init__(self, tensors):
        self.tensors = list(tensors)
        self.cursor = 0

    @property
    def first(self):
        return self.tensors[0]

    def next(self):
        x = self.tensors[self.cursor % len(self.tensors)]
        self.cursor += 1
        return x

    def __len__(self):
        return len(self.tensors)


def make_rotation(shape, dtype, device, count: int, seed: int = 0) -> Rotation:
    """``count`` standard-normal inputs, drawn on the device in one buffer (fast even at 1 GiB)."""
    torch.manual_seed(seed)
    buffer = torch.randn((count, *shape), dtype=dtype, device=device)
    return Rotation(buffer.unbind(0))


# -- memory ------------------------------------------------------------------------------------------
class DoesNotFit(RuntimeError):
    """A benchmark needs more memory than the device has free; the message says how much."""


def free_bytes(device: torch.device) -> Optional[int]:
    """Memory a new allocation can use on ``device``, or None where torch cannot say."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        mps = torch.mps
        if hasattr(mps, "recommended_max_memory") and hasattr(mps, "driver_allocated_memory"):
            return mps.recommended_max_memory() - mps.driver_allocated_memory()
        return None
    return _available_host_memory()


def _available_host_memory() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(device: torch.device, needed: int, what: str) -> None:
    free = free_bytes(device)
    if free is not None and needed > free:
        raise DoesNotFit(f"{what}: needs about {size(needed)} on {device}, {size(free)} free; skipped")


def size(nbytes: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes} B"


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def release(device: torch.device) -> None:
    """Hand cached blocks back so that the next, larger inputs find room."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch.mps, "empty_cache"):
        torch.mps.empty_cache()


# -- the CPU fallback --------------------------------------------------------------------------------
def watch_fallback(call):
    """Run ``call()`` once; return ``(result, messages)`` with torch's warnings that an op fell back.

    The fallback warning is TORCH_WARN_ONCE: once per process, for whichever op falls back first.
    ``torch.set_warn_always(True)`` turns it into a warning per call, so a fallback that already
    warned earlier in the process (in the verdicts, say) is still seen here.
    """
    previous = torch.is_warn_always_enabled()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.set_warn_always(True)
        try:
            result = call()
        finally:
            torch.set_warn_always(previous)
    return result, [str(w.message) for w in seen if FALLBACK_MARK in str(w.message)]


def fallback_enabled(environ=os.environ) -> bool:
    """What libtorch makes of PYTORCH_ENABLE_MPS_FALLBACK when it loads: a non-zero integer enables it."""
    try:
        return int(environ.get("PYTORCH_ENABLE_MPS_FALLBACK", "").strip()) != 0
    except ValueError:
        return False
