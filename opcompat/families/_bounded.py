"""The engine's generic path for families whose error budget is elementwise and input-dependent
(attention, upsample, grid_sample, weight_norm): each family computes, from the float64 inputs, the
allowed error of every output element (its ``bound``), and ``compare.close`` judges with it.

``close`` takes a per-element bound through its ``scale`` argument: its generic row is
``c_round u |truth| + c_sum u_acc L(n) scale``; the rows registered here have c_sum = 1 and n = 1, so
``scale = (bound - c_round u |truth|) / u_acc`` reproduces the family's bound exactly, and the engine
keeps its order (shape, dtype, NaN/inf positions, values) and its k_ref rule against the reference.
"""

from __future__ import annotations

import torch

from .. import compare
from .. import family as families
from .. import tolerances as tol


def upcast(value):
    return value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def inputs64(args, kwargs):
    return tuple(upcast(a) for a in args), {k: upcast(v) for k, v in kwargs.items()}


def outputs(result):
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def compare_outputs(fam, names, got, expected, truth, dtype, ins64):
    """Mismatches of ``got`` (one tensor per name) against the reference ``expected`` and ``truth``."""
    bound = fam.extra["bound"]
    row = tol.budget_for(fam.budget)
    u, u_acc = tol.UNIT_ROUNDOFF[dtype], tol.accumulation_roundoff(dtype)
    mismatches = []
    for name, actual in zip(names, got):
        i = fam.outputs.index(name)
        t64 = truth[i].detach().double()
        allowed = bound(name, dtype, ins64, t64)
        scale = (allowed - row.c_round * u * t64.abs().nan_to_num(0.0, 0.0, 0.0)).clamp_min(0.0) / u_acc
        mismatches += compare.close(actual, expected[i], truth=truth[i], dtype=dtype, budget=fam.budget,
                                    name=name, n=1, scale=scale).mismatches
    return mismatches


def evaluate(case, call, device="cpu", against="claim"):
    """Run ``case`` on one ``Call`` on ``device`` and judge every output (the family's claims narrow the
    domain, never the op, so ``against`` changes nothing here)."""
    fam = families.get(case.family)
    call = call.pinned(case.fixed)
    out = compare.Outcome(case, call, str(device), None)
    args, kwargs = call.build(device)
    if not compare._call_case(out, lambda: case.fn(*args, **kwargs), device):
        return out
    cpu_args, cpu_kwargs = call.build("cpu")
    expected = outputs(fam.reference(*cpu_args, **cpu_kwargs))
    ins64 = inputs64(cpu_args, cpu_kwargs)
    truth = outputs(fam.truth(*ins64[0], **ins64[1]) if fam.truth else fam.reference(*ins64[0], **ins64[1]))
    names = case.outputs or fam.outputs
    out.mismatches += compare_outputs(fam, names, out.actual, expected, truth, call.torch_dtype, ins64)
    return out
