"""Honest device timing: synchronize inside the timed call, rotate inputs out of the cache, choose the
rounds, and notice when an op silently runs on the CPU.

pytest-benchmark's timer measures wall time around the call it is given. A GPU call returns once the
kernel is queued, so every timed call here ends with a device synchronize; on CUDA each call is also
bracketed by events, which give the device's own view of the same call.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

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
    """Makes a call return only once the device has finished it."""

    def __init__(self, device: torch.device):
        self.device = device

    @property
    def name(self) -> str:
        return "cuda events" if self.device.type == "cuda" else "wall clock"

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    def timed(self, call, calls: int) -> TimedCall:
        """``call`` wrapped for pytest-benchmark, for at most ``calls`` event-timed calls."""
        return TimedCall(self, call, calls)

    def seconds(self, call, x) -> float:
        """Wall time of one synchronized call (to choose the rounds; not a measurement)."""
        self.synchronize()
        start = time.perf_counter()
        call(x)
        self.synchronize()
        return time.perf_counter() - start


class TimedCall:
    """One benchmark's callable: runs the variant, records CUDA events around it, synchronizes."""

    def __init__(self, clock: Clock, call, calls: int):
        self.clock, self.call, self.count = clock, call, 0
        make = (lambda: torch.cuda.Event(enable_timing=True)) if clock.device.type == "cuda" else None
        # Events are made here, outside the timed calls: creating one costs host time.
        self.pairs = [(make(), make()) for _ in range(calls)] if make else []

    def __call__(self, x):
        pair = self.pairs[self.count] if self.count < len(self.pairs) else None
        self.count += 1
        if pair:
            pair[0].record()
        out = self.call(x)
        if pair:
            pair[1].record()
        self.clock.synchronize()
        return out

    def device_seconds(self, skip: int) -> list:
        """Event times of the calls after the first ``skip`` (the warm-up rounds), in seconds."""
        used = self.pairs[skip:min(self.count, len(self.pairs))]
        return [start.elapsed_time(end) / 1e3 for start, end in used]


@dataclass(frozen=True)
class RoundPolicy:
    """How many rounds a benchmark gets: enough for ``target_s`` of timed calls, within bounds.

    The two untimed calls before the rounds (the fallback probe and the estimate) already warm up
    kernels and allocator; ``warmup`` more are added where they cost little.
    """

    target_s: float
    min_rounds: int
    max_rounds: int
    warmup: int

    def __post_init__(self):
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"RoundPolicy: need 1 <= min_rounds <= max_rounds, got {self.min_rounds}, "
                             f"{self.max_rounds}")

    def rounds(self, estimate_s: float) -> int:
        wanted = math.ceil(self.target_s / estimate_s) if estimate_s > 0 else self.max_rounds
        return max(self.min_rounds, min(self.max_rounds, wanted))

    def warmup_rounds(self, estimate_s: float) -> int:
        return self.warmup if estimate_s * self.warmup <= max(self.target_s, 0.05) else 0


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
