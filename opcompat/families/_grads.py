"""Gradients as outputs: a family meant for training compares values and gradients alike.

``with_grads(forward, wrt)`` turns a forward ``forward(*tensors, **kw) -> (out,)`` into a function that
also takes ``grad_out`` (the upstream gradient, a seeded tensor of the output's shape) and returns
``(out, *grads)``, one gradient per input named in ``wrt`` (positional indices), via ``torch.autograd``:
the replacement's own backward is what is judged, on the device it ran on.
"""

from __future__ import annotations

import functools

import torch


def with_grads(forward, wrt=(0, 1)):
    @functools.wraps(forward)
    def run(*args, grad_out, **kw):
        args = list(args)
        leaves = []
        for i in wrt:
            args[i] = args[i].detach().requires_grad_(True)
            leaves.append(args[i])
        with torch.enable_grad():
            (out,) = forward(*args, **kw)
            grads = torch.autograd.grad(out, leaves, grad_out, allow_unused=True)
        grads = tuple(torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads))
        return (out.detach(), *grads)

    run.forward = forward
    return run
