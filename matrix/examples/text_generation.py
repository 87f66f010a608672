"""One step of text generation: a tiny causal LM, repetition penalty and top-p (nucleus) filtering.

The sampling tail is Hugging Face ``generate``'s: the repetition penalty finds the tokens already
generated with ``torch.isin`` (int64), top-p sorts the probabilities and takes their ``cumsum``;
greedy pick at the end so the step is deterministic. Random weights, seeded: nothing to download.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, WIDTH, HEADS, LENGTH = 64, 32, 4, 12


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.pos = nn.Embedding(LENGTH * 2, WIDTH)
        self.norm1, self.norm2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.mlp = nn.Sequential(nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH))
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, ids):
        b, n = ids.shape
        x = self.embed(ids) + self.pos(torch.arange(n, device=ids.device))
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, HEADS, WIDTH // HEADS).transpose(1, 2) for t in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, WIDTH))
        x = x + self.mlp(self.norm2(x))
        return self.head(x)


def repetition_penalty(logits, ids, penalty: float = 1.3):
    """Penalise every token already in ``ids``: found with isin over the vocabulary."""
    seen = torch.isin(torch.arange(logits.shape[-1], device=logits.device), ids)
    return torch.where(seen & (logits > 0), logits / penalty,
                       torch.where(seen, logits * penalty, logits))


def top_p_filter(logits, top_p: float = 0.9):
    """Keep the smallest set of tokens whose probabilities add up to top_p (HF TopPLogitsWarper)."""
    sorted_logits, order = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - top_p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


@torch.no_grad()
def generate_step(model, ids):
    """The next token for every sequence in ``ids`` (B, N), appended."""
    logits = model(ids)[:, -1, :]
    logits = top_p_filter(repetition_penalty(logits, ids))
    nxt = logits.softmax(dim=-1).argmax(dim=-1, keepdim=True)
    return torch.cat([ids, nxt], dim=-1)


def example_inputs(device="cpu"):
    torch.manual_seed(0)
    model = TinyLM().to(device).eval()
    ids = torch.randint(0, VOCAB, (1, LENGTH), device=device)
    return model, ids
