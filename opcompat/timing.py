"""The timing instrument: variants interleaved within each round, two timers per call, ratios per round.

Imports only torch and opcompat's device helpers; suite/bench drives it through pytest-benchmark.

Why interleaved: a device's state (clocks, memory, what else runs) drifts over seconds. Timed one
variant after another (A A A … B B B …), two variants see different states, and at launch-bound sizes
the ratio B/A moved 9-61 % between two repeats of the same sweep on an H100. Here every round times each
variant once (A B C, then B C A, …: the order rotates so no variant always follows the same one), and the
ratio of a variant to the reference (the fused op) is taken *within* a round; the median of those
per-round ratios is what a repeat reports, with their spread.

Three timers, each per call in a burst of calls on inputs rotated out of the cache:

- ``graph``: CUDA only. The variant's calls captured once in a CUDA graph and replayed between two CUDA
  events: device time without the host's launch overhead (the kernels and the gaps between them).
- ``eager_events``: CUDA only. The same calls launched eagerly, between two CUDA events.
- ``eager_wall``: the eager burst on the host clock, synchronized at its end: what a program sees.

Each timed unit starts from an idle queue (a synchronize before it), so no unit's work spills into the
next one's reading.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

from . import devices
from .vocab import FALLBACK_MARK

MiB = 1024**2
GiB = 1024**3
MAX_ROTATION = 2048  # distinct inputs at most; more only costs set-up time
GRAPH_MAX_CALLS = 256  # calls captured in one graph at most: enough to cycle inputs past the L2 at 131k elements
WORKSPACE_FACTOR = 4  # temporaries a variant may need, in input sizes: (x - m), its square, a float32 upcast
TIMERS = ("graph", "eager_events", "eager_wall")
GRAPH, EAGER_EVENTS, EAGER_WALL = TIMERS
ORDER_NOTE = "interleaved: every variant once per round, the order rotated by one variant each round"


# -- synchronizing and clocks ------------------------------------------------------------------------
class Clock:
    """Makes a call return only once the device has finished it; CUDA events and graphs where there are."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)

    @property
    def has_events(self) -> bool:
        return self.device.type == "cuda"

    @property
    def timers(self) -> tuple:
        """The timers this device has, best first."""
        return TIMERS if self.has_events else (EAGER_WALL,)

    def synchronize(self):
        devices.synchronize(self.device)

    def event(self):
        """A CUDA timing event, or None where the wall clock is the only timer."""
        return torch.cuda.Event(enable_timing=True) if self.has_events else None

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
        """The SM clock NVML reports now, or None (not CUDA, or no nvidia-ml-py): a diagnostic only."""
        if self.device.type != "cuda":
            return None
        try:
            return int(torch.cuda.clock_rate(self.device))
        except Exception:  # no pynvml, no NVML in the container, an older torch: a diagnostic, not a need
            return None


# -- how many calls, how many rounds -----------------------------------------------------------------
@dataclass(frozen=True)
class RoundPolicy:
    """How a group of variants is timed.

    - ``burst_s``: a variant's eager burst is as many back-to-back calls as last this long, ``max_burst`` at most;
    - ``warm_s``: untimed rounds right before the timed ones keep the device busy this long;
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
    again from it."""
    single = clock.seconds(call, rotation.next())
    k = policy.calls_per_round(single)
    if k == 1:
        return 1, single
    per_call = clock.burst_seconds(call, [rotation.next() for _ in range(k)]) / k
    return policy.calls_per_round(per_call), per_call


def graph_calls(k: int, rotation_len: int) -> int:
    """Calls in a variant's graph: at least its eager burst, and enough to cycle the rotation (capped)."""
    return max(k, min(rotation_len, GRAPH_MAX_CALLS))


# -- inputs that do not sit in the cache -------------------------------------------------------------
def rotation_budget(device: torch.device) -> int:
    """Bytes of distinct inputs to cycle through: well over the last-level cache (50-60 MB on H100/H200)."""
    device = torch.device(device)
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


# -- CUDA graphs -------------------------------------------------------------------------------------
def capture_graph(call, inputs):
    """(graph, outputs): ``call`` on each of ``inputs``, captured once in a CUDA graph.

    Warmed up on a side stream first, as torch.cuda.graphs' documentation asks (kernels pick their
    workspaces there, outside the capture). The outputs are kept: the graph writes them on each replay.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for x in inputs[:3]:
            call(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = [call(x) for x in inputs]
    return graph, outputs


# -- one variant, one group --------------------------------------------------------------------------
class Unit:
    """One variant's timed work in a round: an eager burst of ``k`` calls on rotated inputs and, where the
    device has graphs, one replay of its captured graph. Times are per call."""

    def __init__(self, name: str, clock: Clock, call, rotation: Rotation, k: int, graph=None, graph_calls: int = 0):
        if k < 1:
            raise ValueError(f"Unit {name}: need k >= 1 calls per burst, got {k}")
        self.name, self.clock, self.call, self.rotation, self.k = name, clock, call, rotation, k
        self.graph, self.graph_calls = graph, graph_calls
        self.times = {timer: [] for timer in clock.timers if timer != GRAPH or graph is not None}
        self._events = (clock.event(), clock.event()) if clock.has_events else None  # made once: host time

    def run(self) -> None:
        clock = self.clock
        clock.synchronize()
        if self._events:
            self._events[0].record()
        start = time.perf_counter()
        for _ in range(self.k):
            self.call(self.rotation.next())
        if self._events:
            self._events[1].record()
        clock.synchronize()
        self.times[EAGER_WALL].append((time.perf_counter() - start) / self.k)
        if self._events:
            self.times[EAGER_EVENTS].append(self._events[0].elapsed_time(self._events[1]) / 1e3 / self.k)
        if self.graph is not None:
            self._events[0].record()
            self.graph.replay()
            self._events[1].record()
            clock.synchronize()
            self.times[GRAPH].append(self._events[0].elapsed_time(self._events[1]) / 1e3 / self.graph_calls)

    def round_seconds(self, per_call_s: float) -> float:
        """About how long one round of this unit takes (eager burst and graph), for choosing rounds."""
        return per_call_s * (self.k + self.graph_calls)


class Interleaved:
    """The rounds of a group: each round runs every unit once, in an order rotated by one each round."""

    def __init__(self, units, reference: Optional[str]):
        names = [u.name for u in units]
        if len(set(names)) != len(names):
            raise ValueError(f"Interleaved: variant names repeat: {names}")
        if reference is not None and reference not in names:
            raise ValueError(f"Interleaved: reference {reference!r} is not among {names}")
        self.units, self.reference = list(units), reference
        self.orders = []  # the order of each round, for the record

    def __call__(self) -> None:
        """One round (pytest-benchmark calls this once per round)."""
        shift = len(self.orders) % len(self.units)
        order = self.units[shift:] + self.units[:shift]
        for unit in order:
            unit.run()
        self.orders.append([u.name for u in order])

    @property
    def rounds_done(self) -> int:
        return len(self.orders)

    def times(self, name: str, timer: str, skip: int = 0) -> list:
        unit = next(u for u in self.units if u.name == name)
        return list(unit.times.get(timer, ()))[skip:]

    def ratios(self, name: str, timer: str, skip: int = 0) -> list:
        """Per round: this variant's time over the reference's in the same round and timer."""
        if self.reference is None:
            return []
        mine, ref = self.times(name, timer, skip), self.times(self.reference, timer, skip)
        return [a / b for a, b in zip(mine, ref) if b > 0]


def summary(values) -> Optional[dict]:
    """median, quartiles and spread ((Q3 - Q1) / median) of ``values``; None for none."""
    values = list(values)
    if not values:
        return None
    median = statistics.median(values)
    if len(values) < 2:
        return {"median": median, "q1": median, "q3": median, "spread": 0.0, "n": 1}
    q1, _, q3 = statistics.quantiles(values, n=4)
    return {"median": median, "q1": q1, "q3": q3, "spread": (q3 - q1) / median if median else None,
            "n": len(values)}


# -- memory ------------------------------------------------------------------------------------------
class DoesNotFit(RuntimeError):
    """A benchmark needs more memory than the device has free; the message says how much."""


def free_bytes(device: torch.device) -> Optional[int]:
    """Memory a new allocation can use on ``device``, or None where torch cannot say."""
    device = torch.device(device)
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
    device = torch.device(device)
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
