"""The attention family: ``F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p=0, is_causal, scale)``.

Why it is here: diffusers' MPS page recommends ``enable_attention_slicing()`` (attention computed in
slices of the batch*heads axis), and forum fixes replace sdpa by ``softmax(QKᵀ/√d)V`` written out. Both
are replacements of this op; the question is whether they compute the same thing, per dtype.

Inputs (``Call``): q (B, H, Lq, D), k (B, H, Lk, D), v (B, H, Lk, Dv); keyword arguments ``attn_mask``
(None, a bool mask — True attends — or an additive float mask, shaped (Lq, Lk) or (B, 1, Lq, Lk)),
``is_causal`` (top-left aligned, sdpa's convention) and ``scale`` (None: 1/√D). Dropout is 0: with
dropout the op is random and there is nothing to compare.

Regimes: ``normal``; ``peaked`` (logits of tens: softmax nearly one-hot); ``large_logits`` (|q·k| beyond
float16's 65504 while q·k/√D stays inside it: unscaled logits overflow in float16); ``masked_row`` (a
query row whose mask excludes every key: sdpa returns 0 there since its ``_safe_softmax``, pytorch
issue #103963; a plain softmax gives NaN).

Truth is sdpa on float64 CPU inputs; the budget (opcompat.tolerances.attention_bound) follows the
softmax/matmul error analysis there.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from opcompat.vocab import DTYPE_NAMES

from .. import tolerances as tol
from ..calls import Call, TensorSpec, tensor
from ..family import Family, register
from ._bounded import evaluate
from ._hints import causes_with_hints

NAME = "attention"
CALL = "F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None)"
# The overloads sdpa reaches on MPS and CPU (the matrix joins fallbacks on them): the math path
# decomposes into bmm/softmax; MPS has its own fused kernel from 2.5 on.
OPS = ("aten::scaled_dot_product_attention.default", "aten::_scaled_dot_product_attention_math.default",
       "aten::_scaled_dot_product_attention_math_for_mps.default", "aten::_softmax.default", "aten::bmm.default")
OUTPUTS = ("out",)
DTYPES = DTYPE_NAMES
REGIMES = ("normal", "peaked", "large_logits", "masked_row")
MASKS = ("none", "bool", "additive", "causal")
LARGE_LOGITS_MIN_D = 16  # so that q·k/√D (<= 65504) is 4x below q·k (> 65504): only the unscaled form overflows


def has_sdpa() -> bool:
    """F.scaled_dot_product_attention exists from torch 2.0: attention cases are left out before."""
    return hasattr(F, "scaled_dot_product_attention")


def sdpa(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    """The op itself (dropout 0). ``scale=`` exists from torch 2.1; leave it out where None."""
    kw = {} if scale is None else {"scale": scale}
    return (F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=0.0, is_causal=is_causal, **kw),)


# -- the error budget's statistics, from float64 inputs ---------------------------------------------------
def _bias64(q, k, attn_mask, is_causal):
    lq, lk = q.shape[-2], k.shape[-2]
    bias = torch.zeros(lq, lk, dtype=torch.float64)
    if is_causal:
        bias = bias.masked_fill(~torch.ones(lq, lk, dtype=torch.bool).tril(), -math.inf)
    if attn_mask is not None:
        extra = (torch.zeros(attn_mask.shape, dtype=torch.float64).masked_fill(~attn_mask, -math.inf)
                 if attn_mask.dtype == torch.bool else attn_mask.double())
        bias = bias + extra
    return bias


def stats(q, k, v, *, attn_mask=None, is_causal=False, scale=None):
    """Per output element: M = sum_j P_ij |V_jd|, R_i = max_j |S_ij| (unmasked logits incl. bias),
    A_i = max_j scale * sum_d |q_id| |k_jd| (what rounding q, k and their products can move a logit by)
    and W = max_j |V_jd| over the unmasked keys (the output is a convex combination of those rows)."""
    q, k, v = q.double(), k.double(), v.double()
    s_ = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = _bias64(q, k, attn_mask, is_causal)
    logits = s_ * q @ k.transpose(-2, -1) + bias
    masked = torch.isneginf(logits)
    p = torch.softmax(logits, dim=-1).masked_fill(masked.all(dim=-1, keepdim=True), 0.0)
    m = p @ v.abs()
    r = logits.abs().masked_fill(masked, 0.0).amax(dim=-1, keepdim=True) if logits.shape[-1] else logits.sum(-1, True)
    a = (abs(s_) * q.abs() @ k.abs().transpose(-2, -1)).masked_fill(masked, 0.0)
    a = a.amax(dim=-1, keepdim=True) if a.shape[-1] else a.sum(-1, True)
    keys = (~masked).to(torch.float64)  # (..., Lq, Lk): 1 where key j counts for query i
    w = (keys.unsqueeze(-1) * v.abs().unsqueeze(-3)).amax(dim=-2) if keys.shape[-1] else m
    return m, r, a, w


def bound(name, dtype, inputs64, truth):
    """Elementwise allowed |error| of output ``name`` (see tolerances.attention_bound)."""
    (q, k, v), kw = inputs64
    m, r, a, w = stats(q, k, v, **kw)
    return tol.attention_bound(dtype, truth.abs(), m, r, a, w, lk=k.shape[-2], d=q.shape[-1])


# -- inputs ------------------------------------------------------------------------------------------------
def _mask_values(rng, lq, lk, lead, kind, dtype, masked_row):
    """Explicit mask values (so a repro rebuilds them exactly): bool keeps ~3/4 of the keys and at least
    one per row; additive is a small bias (multiples of 1/4, exact in every dtype) with -inf where masked."""
    rows = lead * lq
    keep = [[rng.random() < 0.75 for _ in range(lk)] for _ in range(rows)]
    for row in keep:
        row[rng.randrange(lk)] = True
    if masked_row:
        dead = rng.randrange(rows)
        keep[dead] = [False] * lk
    flat = [x for row in keep for x in row]
    if kind == "bool":
        return tensor(flat, "bool", _mask_shape(lead, lq, lk))
    bias = [rng.randint(-8, 8) / 4 if on else -math.inf for on in flat]
    return tensor(bias, dtype, _mask_shape(lead, lq, lk))


def _mask_shape(lead, lq, lk):
    return (lq, lk) if lead == 1 else (lead, 1, lq, lk)


def _qk_scale(regime, d):
    if regime == "peaked":
        return 6.0 / d**0.25  # logits q·k/√D of std ~36
    if regime == "large_logits":
        return math.sqrt(5e4 / math.sqrt(d))  # q·k of std 5e4: its max passes 65504; /√D stays below it
    return 1.0


def make_call(*, dtype, regime="normal", mask="none", b=1, h=1, lq=4, lk=4, d=8, dv=8, scale=None,
              mask_per_batch=False, seed=0):
    """One attention call; every tensor is a recipe (seeded), so the call shrinks and repros cheaply."""
    if regime == "masked_row" and mask not in ("bool", "additive"):
        mask = "bool"
    if regime == "large_logits":
        d = max(d, LARGE_LOGITS_MIN_D)
    rng = random.Random(seed)
    s = _qk_scale(regime, d)
    q = TensorSpec((b, h, lq, d), dtype, seed=seed, scale=s)
    k = TensorSpec((b, h, lk, d), dtype, seed=seed + 1, scale=s)
    v = TensorSpec((b, h, lk, dv), dtype, seed=seed + 2)
    kw = {"is_causal": mask == "causal", "scale": scale}
    kw["attn_mask"] = (_mask_values(rng, lq, lk, b if mask_per_batch else 1, mask, dtype, regime == "masked_row")
                       if mask in ("bool", "additive") else None)
    return Call(NAME, dtype, regime, (q, k, v), tuple(sorted(kw.items())))


def calls(dtypes, regimes=REGIMES, masks=MASKS, *, max_len=16, max_d=16):
    """Hypothesis strategy of attention calls; shrinks towards one head, short sequences, no mask."""
    return st.builds(
        lambda dtype, regime, mask, b, h, lq, lk, d, dv, scale, per_batch, seed: make_call(
            dtype=dtype, regime=regime, mask=mask, b=b, h=h, lq=lq, lk=lk, d=d, dv=dv, scale=scale,
            mask_per_batch=per_batch, seed=seed),
        st.sampled_from(list(dtypes)), st.sampled_from(list(regimes)), st.sampled_from(list(masks)),
        st.integers(1, 2), st.integers(1, 3), st.integers(1, max_len), st.integers(1, max_len),
        st.integers(1, max_d), st.integers(1, max_d), st.one_of(st.none(), st.sampled_from([0.5, 0.125])),
        st.booleans(), st.integers(0, 2**31 - 1))


def battery(dtype, *, long_len=512):
    """Fixed witnesses: every regime x mask kind at a small shape, unequal Lq/Lk for causal, one long
    sequence (the reduction over Lk is where slicing changes order), a per-batch mask."""
    out = []
    for regime in REGIMES:
        for i, mask in enumerate(MASKS):
            out.append((regime, make_call(dtype=dtype, regime=regime, mask=mask, b=2, h=4, lq=12, lk=12, d=32,
                                          dv=16, seed=10 * i + 1)))
    out.append(("normal", make_call(dtype=dtype, mask="causal", b=1, h=2, lq=5, lk=9, d=16, dv=8, seed=3)))
    out.append(("normal", make_call(dtype=dtype, mask="bool", b=2, h=2, lq=6, lk=7, d=8, dv=8, seed=4,
                                    mask_per_batch=True)))
    out.append(("normal", make_call(dtype=dtype, b=1, h=2, lq=64, lk=long_len, d=64, dv=64, seed=5)))
    return out


def split(args, kwargs, i):
    """Sample ``i`` of a batched call: q, k, v and a per-batch mask sliced along the batch axis."""
    q, k, v = args
    kw = dict(kwargs)
    mask = kw.get("attn_mask")
    if mask is not None and mask.dim() == 4 and mask.shape[0] > 1:
        kw["attn_mask"] = mask[i:i + 1]
    return (q[i:i + 1], k[i:i + 1], v[i:i + 1]), kw


# Each example runs the op at two dtypes and the case, and computes a bound: a tenth of the profile's
# examples (20 in ci) keeps these families' claims within a few seconds; thorough still draws 200.
EXAMPLES_SHARE = 0.1


# -- registration --------------------------------------------------------------------------------------------
HINTS = {
    ("large_logits", "nonfinite"): "unscaled logits q·k overflow float16's 65504 before the 1/√d scale",
    ("large_logits", "value"): "a finite mask bias (-10000) is swamped by logits of ~1e4: masked keys count",
    ("masked_row", "nonfinite"): "every key of a query row masked: NaN where sdpa returns 0 (_safe_softmax, "
                                 "pytorch #103963)",
    ("masked_row", "value"): "every key of a query row masked: sdpa returns 0 there, this averages V",
    "peaked": "logits of tens, softmax nearly one-hot",
}


def _causal_alignment(case, failures, device):
    """Causal failures only where Lq != Lk: the mask is aligned differently from sdpa's top-left."""
    causal = [c for _, c, _ in failures if c.kw().get("is_causal")]
    if causal and all(c.args[0].shape[-2] != c.args[1].shape[-2] for c in causal) and len(causal) == len(failures):
        return ["causal mask alignment (Lq != Lk: sdpa aligns the causal mask top-left)"]
    return []


def _samples(case, dtypes):
    return calls(dtypes, [r for r in REGIMES if r not in case.claim.excludes])


FAMILY = register(Family(
    name=NAME, call=CALL, ops=OPS, reference=sdpa, outputs=OUTPUTS, dtypes=DTYPES, regimes=REGIMES,
    samples=_samples, battery=lambda case, dtype, correction=None: battery(dtype), budget=NAME,
    causes=causes_with_hints(HINTS, _causal_alignment), evaluate=evaluate, params=("attn_mask", "is_causal", "scale"),
    notes="dropout_p = 0 only: with dropout the op is random",
    extra={"bound": bound, "batch": split, "examples_share": EXAMPLES_SHARE}))
