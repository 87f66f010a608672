"""Replacements of ``F.scaled_dot_product_attention`` (dropout 0): written-out softmax attention, and
attention slicing as diffusers' MPS page recommends (``pipe.enable_attention_slicing()``).

Each takes ``(q, k, v, *, attn_mask, is_causal, scale)`` as sdpa does and returns ``(out,)``.
"""

from __future__ import annotations

import math

import torch

from opcompat.families.attention import NAME, has_sdpa, sdpa

from . import Case, Claim

FAMILY = NAME
REPLACES = "F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=..., scale=...)"


def _scale(q, scale):
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale


def _bias(q, k, attn_mask, is_causal):
    """sdpa's additive bias: -inf where a bool mask is False, a float mask as is, and the causal mask
    aligned top-left (query i sees keys 0..i whatever Lk - Lq: sdpa's convention)."""
    lq, lk = q.shape[-2], k.shape[-2]
    bias = None
    if is_causal:
        keep = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
        bias = torch.zeros(lq, lk, dtype=q.dtype, device=q.device).masked_fill(~keep, -math.inf)
    if attn_mask is not None:
        extra = attn_mask
        if attn_mask.dtype == torch.bool:
            extra = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device).masked_fill(~attn_mask, -math.inf)
        bias = extra if bias is None else bias + extra
    return bias


def _safe_softmax(s):
    """softmax over keys, 0 on rows where every key is masked (sdpa's _safe_softmax; pytorch #103963)."""
    p = torch.softmax(s, dim=-1)
    return p.masked_fill(torch.isneginf(s).all(dim=-1, keepdim=True), 0.0)


# -- 1. the textbook formula: softmax(Q Kᵀ / √d + mask) V ------------------------------------------------
def textbook(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    s = (q @ k.transpose(-2, -1)) * _scale(q, scale)  # unscaled logits first: they overflow float16 first
    bias = _bias(q, k, attn_mask, is_causal)
    return (torch.softmax(s if bias is None else s + bias, dim=-1) @ v,)


# -- 2. the same with q scaled first and fully masked rows zeroed, as sdpa's math path does -------------
def prescaled_safe(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    s = (q * _scale(q, scale)) @ k.transpose(-2, -1)
    bias = _bias(q, k, attn_mask, is_causal)
    return (_safe_softmax(s if bias is None else s + bias) @ v,)


# -- 3. attention slicing: the batch*heads axis in slices (diffusers' SlicedAttnProcessor) ----------------
def _sliced(q, k, v, bias, scale, slice_size, softmax):
    b, h, lq, d = q.shape
    lk, dv = k.shape[-2], v.shape[-1]
    q3, k3, v3 = q.reshape(b * h, lq, d), k.reshape(b * h, lk, d), v.reshape(b * h, lk, dv)
    if bias is not None:  # (Lq, Lk) or (B, 1, Lq, Lk) -> (B*H, Lq, Lk), as diffusers' prepare_attention_mask
        bias = bias.expand(b, h, lq, lk).reshape(b * h, lq, lk)
    out = torch.empty(b * h, lq, dv, dtype=q.dtype, device=q.device)
    for start in range(0, b * h, slice_size):
        end = start + slice_size
        if bias is None:
            base, beta = torch.empty(q3[start:end].shape[0], lq, lk, dtype=q.dtype, device=q.device), 0
        else:
            base, beta = bias[start:end], 1
        scores = torch.baddbmm(base, q3[start:end], k3[start:end].transpose(-1, -2), beta=beta, alpha=scale)
        out[start:end] = torch.bmm(softmax(scores), v3[start:end])
    return out.reshape(b, h, lq, dv)


def sliced(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    """enable_attention_slicing("auto"): slices of heads // 2 of the batch*heads axis, sdpa's mask rules."""
    slice_size = max(1, q.shape[1] // 2)
    return (_sliced(q, k, v, _bias(q, k, attn_mask, is_causal), _scale(q, scale), slice_size, _safe_softmax),)


def sliced_diffusers_mask(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    """As diffusers writes it: a bool (keep) mask becomes the additive bias (1 - mask) * -10000.0
    (UNet2DConditionModel's encoder_attention_mask), slice size 1, a plain softmax."""
    bias = _bias(q, k, None, is_causal)
    if attn_mask is not None:
        extra = (1 - attn_mask.to(q.dtype)) * -10000.0 if attn_mask.dtype == torch.bool else attn_mask
        bias = extra if bias is None else bias + extra
    return (_sliced(q, k, v, bias, _scale(q, scale), 1, lambda s: s.softmax(dim=-1)),)


# -- 4. keys in chunks with a running max (memory-efficient / flash-style): the reduction order changes ---
def key_chunked(q, k, v, *, attn_mask=None, is_causal=False, scale=None, chunk=3):
    s_all = (q * _scale(q, scale)) @ k.transpose(-2, -1)
    bias = _bias(q, k, attn_mask, is_causal)
    if bias is not None:
        s_all = s_all + bias
    acc_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    shape = (*s_all.shape[:-1], 1)
    row_max = torch.full(shape, -math.inf, dtype=acc_dtype, device=q.device)
    row_sum = torch.zeros(shape, dtype=acc_dtype, device=q.device)
    acc = torch.zeros((*s_all.shape[:-1], v.shape[-1]), dtype=acc_dtype, device=q.device)
    for start in range(0, k.shape[-2], chunk):
        s = s_all[..., start:start + chunk].to(acc_dtype)
        new_max = torch.maximum(row_max, s.amax(dim=-1, keepdim=True))
        safe_max = torch.where(torch.isneginf(new_max), torch.zeros_like(new_max), new_max)  # all masked so far
        p = torch.exp(s - safe_max)
        correction = torch.exp(row_max - safe_max)
        row_sum = row_sum * correction + p.sum(dim=-1, keepdim=True)
        acc = acc * correction + p @ v[..., start:start + chunk, :].to(acc_dtype)
        row_max = new_max
    out = torch.where(row_sum > 0, acc / row_sum, torch.zeros_like(acc))  # a fully masked row: 0, as sdpa
    return (out.to(q.dtype),)


SOURCE = "diffusers docs, optimization/mps (zh): attention slicing on Apple silicon; "
CASES = [
    Case("sdpa", sdpa, REPLACES, Claim(), family=FAMILY, available=has_sdpa,
         source="F.scaled_dot_product_attention itself: the reference, run on the device"),
    # Overflows float16 where |q·k| > 65504 though q·k/√d fits; NaN on a fully masked row (sdpa: 0).
    Case("attention_textbook", textbook, REPLACES, Claim(excludes=frozenset({"large_logits", "masked_row"})),
         family=FAMILY, available=has_sdpa,
         source="softmax(Q Kᵀ / √d) V, as in 'Attention is all you need' and forum fixes"),
    Case("attention_prescaled_safe", prescaled_safe, REPLACES, Claim(), family=FAMILY, available=has_sdpa,
         source="softmax((Q / √d) Kᵀ) V with fully masked rows set to 0, as sdpa's math path"),
    Case("attention_sliced", sliced, REPLACES, Claim(), family=FAMILY, available=has_sdpa,
         source=SOURCE + "pipe.enable_attention_slicing() (slices of heads // 2 of batch*heads)"),
    # A -10000 bias masks nothing once logits reach ~1e4, and a fully masked row averages V uniformly.
    Case("attention_sliced_diffusers_mask", sliced_diffusers_mask, REPLACES,
         Claim(excludes=frozenset({"large_logits", "masked_row"})), family=FAMILY, available=has_sdpa,
         source=SOURCE + "SlicedAttnProcessor with the (1 - mask) * -10000.0 additive mask"),
    Case("attention_key_chunked", key_chunked, REPLACES, Claim(), family=FAMILY, available=has_sdpa,
         source="online softmax over key chunks (memory-efficient / flash attention, sub-quadratic attention)"),
]
