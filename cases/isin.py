"""Replacements of ``torch.isin(elements, test_elements)``, which falls back to the CPU on MPS in
torch 1.13 .. 2.3 (``python -m matrix predict --torch 2.3 --op aten::isin.Tensor_Tensor``).
"""

from __future__ import annotations

import torch

from . import Case, Claim

REPLACES = "torch.isin(elements, test_elements)"


def torch_isin(elements, test_elements):
    return (torch.isin(elements, test_elements),)


def isin_mps_friendly(elements, test_elements):
    # transformers.pytorch_utils.isin_mps_friendly, its MPS branch (torch < 2.4), verbatim but for
    # torch.tensor(t) on a tensor, which is t.clone().detach() (torch's own warning says so).
    test_elements = test_elements.clone().detach() if isinstance(test_elements, torch.Tensor) else torch.tensor(
        test_elements)
    if test_elements.ndim == 0:
        test_elements = test_elements.unsqueeze(0)
    return (elements.tile(test_elements.shape[0], 1).eq(test_elements.unsqueeze(1)).sum(dim=0).bool().squeeze(),)


def isin_broadcast_any(elements, test_elements):
    # every element against every test element, any over the last axis: eq and any run natively on MPS
    return ((elements.unsqueeze(-1) == test_elements.reshape(-1)).any(-1),)


CASES = [
    Case("torch_isin", torch_isin, REPLACES, Claim(), family="isin",
         source="torch.isin itself: the reference, run on the device"),
    # tile(T, 1) lays T copies of a 1-D input as rows; any other rank breaks the layout, and squeeze()
    # turns a one-element result into a 0-d tensor.
    Case("isin_mps_friendly", isin_mps_friendly, REPLACES,
         Claim(excludes=frozenset({"single", "batched", "nd_test"})), family="isin",
         source="transformers pytorch_utils.isin_mps_friendly (MPS branch, torch < 2.4): tile/eq/sum",
         notes="transformers calls it with 1-D input_ids rows and a 1-D or scalar set of token ids"),
    Case("isin_broadcast_any", isin_broadcast_any, REPLACES, Claim(), family="isin",
         source="exact variant: (elements[..., None] == test_elements.flatten()).any(-1)",
         notes="memory grows as numel(elements) * numel(test_elements)"),
]
