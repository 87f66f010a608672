"""What a benchmark session keeps: the inputs of the current (shape, dtype), verdicts judged once per
(case, dtype) on the device, whether the fused op falls back, and the time budget.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
import torch

from opcompat.timing import WORKSPACE_FACTOR, Clock, check_fits, make_rotation, release, rotation_budget, rotation_count
from opcompat.trace import trace
from opcompat.verdicts import corrections_for, judge
from opcompat.vocab import DTYPES, FALLBACK_WARNING

from . import sweep as sw

BUDGET_ENV = "OPCOMPAT_BENCH_BUDGET_S"
STARTED = time.monotonic()  # when pytest imported the bench: the budget counts from collection
TRACE_SHAPE = (2, 4, 8, 8)


def fallback_ops(messages) -> list:
    """The operators named in torch's fallback warnings, e.g. ['aten::std_mean.correction']."""
    return sorted({m.group(1) for text in messages for m in [FALLBACK_WARNING.search(text)] if m})


class BenchSession:
    def __init__(self, device: torch.device, sweep: sw.Sweep, environ=os.environ):
        self.device, self.sweep = device, sweep
        self.clock = Clock(device)
        self.rotate_bytes = sweep.rotate_bytes or rotation_budget(device)
        budget = environ.get(BUDGET_ENV, "").strip()
        self.budget_s = float(budget) if budget else None
        self._key = self._rotation = self._copy_dst = None
        self._verdicts, self._uses_fused, self._fused_fallback, self._truth = {}, {}, {}, {}

    # -- time ------------------------------------------------------------------------------------------
    def check_time(self):
        """Skip, with the reason, once the budget is spent: the JSON of what ran is still written."""
        if self.budget_s is not None and time.monotonic() - STARTED > self.budget_s:
            pytest.skip(f"time budget spent: {BUDGET_ENV}={self.budget_s:g} s")

    # -- inputs ----------------------------------------------------------------------------------------
    def inputs(self, point: sw.Point):
        """The rotation of inputs for the point's (shape, dtype), made on first use; raises DoesNotFit."""
        key = (point.shape, point.dtype)
        if key != self._key:
            self._key = self._rotation = self._copy_dst = None
            self._truth.clear()
            release(self.device)
            count = rotation_count(point.nbytes, self.rotate_bytes)
            needed = (count + WORKSPACE_FACTOR) * point.nbytes
            check_fits(self.device, needed, f"{point.dtype} {point.shape_label} ({count} input(s))")
            self._rotation = make_rotation(point.shape, DTYPES[point.dtype], self.device, count)
            self._key = key
        return self._rotation

    def truth(self, point: sw.Point, dims, correction) -> tuple:
        """float64 (std, mean) of the point's first input over ``dims``, flattened, on the CPU; computed once
        per (inputs, dims, correction), on the device where it has float64 (MPS has not: there on the CPU)."""
        key = (point.shape, point.dtype, dims, correction)
        if key not in self._truth:
            x = self.inputs(point).first
            x64 = x.double() if self.device.type != "mps" else x.cpu().double()
            std, mean = torch.std_mean(x64, dim=dims, correction=correction, keepdim=True)
            self._truth[key] = (std.reshape(-1).cpu(), mean.reshape(-1).cpu())
            del x64
        return self._truth[key]

    def copy_destination(self, point: sw.Point):
        if self._copy_dst is None:
            self._copy_dst = torch.empty(point.shape, dtype=DTYPES[point.dtype], device=self.device)
        return self._copy_dst

    # -- facts about variants --------------------------------------------------------------------------
    def verdict(self, case, dtype: str):
        """The case's verdict on this device at the benchmark's correction (its own, for a call site)."""
        key = (case.name, dtype)
        if key not in self._verdicts:
            correction = corrections_for(case, (sw.CORRECTION,))[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # degenerate-N warnings of the battery; the verdict says it
                self._verdicts[key] = judge(case, correction, dtype, self.device)
        return self._verdicts[key]

    def uses_fused_op(self, case, dims, dtype: str) -> bool:
        """Whether the case reaches aten::std_mean itself (then it cannot avoid the op's fallback)."""
        key = (case.name, dims, dtype)
        if key not in self._uses_fused:
            x = torch.randn(TRACE_SHAPE, dtype=DTYPES[dtype])
            ops = [c.op for c in trace(sw.case_call(case, dims), x)]
            self._uses_fused[key] = any(op.startswith("aten::std_mean") for op in ops)
        return self._uses_fused[key]

    def fused_fallback(self, point: sw.Point, watch) -> list:
        """Fallback warnings of the fused op on this point's inputs (empty where it runs natively)."""
        key = (point.shape, point.dtype, point.dims)
        if key not in self._fused_fallback:
            x = self.inputs(point).first
            _, messages = watch(lambda: sw.fused_call(point.dims)(x))
            self.clock.synchronize()
            self._fused_fallback[key] = messages
        return self._fused_fallback[key]

    def describe_case(self, case, point: sw.Point) -> dict:
        info = {"kind": "case", "computes": sw.computes(case), "replaces": case.replaces,
                "uses_fused_op": self.uses_fused_op(case, point.dims, point.dtype)}
        try:
            verdict = self.verdict(case, point.dtype)
        except Exception as exc:  # a harness bug must not cost the timing of an expensive run; the test fails later
            return {**info, "equivalent": False, "label": f"no verdict ({type(exc).__name__}: {exc})",
                    "causes": [], "verdict_error": f"{type(exc).__name__}: {exc}"}
        label = "equivalent" if verdict.equivalent else "not equivalent: " + "; ".join(verdict.causes)
        return {**info, "equivalent": verdict.equivalent, "label": label, "causes": list(verdict.causes),
                "device_notes": list(verdict.device_notes), "verdict_correction": verdict.correction}

