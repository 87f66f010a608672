"""The op tracer keeps going past an op whose kernel lacks the dtype (torch 2.0 has no CPU float16 sqrt)."""

from __future__ import annotations

import pytest
import torch

from opcompat.trace import trace

pytestmark = pytest.mark.meta


@pytest.mark.meta
def test_trace_goes_past_an_op_the_cpu_lacks_for_the_dtype():
    # No torch release has a CPU float16 Cholesky: the op is recorded and the trace reaches the sum after it.
    x = torch.eye(3, dtype=torch.float16)
    with pytest.raises(RuntimeError):
        torch.linalg.cholesky(x)
    ops = [c.op for c in trace(lambda t: torch.linalg.cholesky(t).sum(), x)]
    assert any("cholesky" in op for op in ops), ops
    assert ops[-1] == "aten::sum.default", ops


@pytest.mark.meta
def test_trace_reraises_a_failure_that_is_not_about_the_dtype():
    with pytest.raises(RuntimeError):
        trace(lambda t: t.view(5), torch.ones(3))
