"""Error budgets, kept as data.

Where each term comes from (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 4 and
Chan, Golub & LeVeque 1983), with u the unit roundoff of the dtype values are stored in, u_acc that of
the type reductions accumulate in (float32 for float16/bfloat16: torch's opmath type on CPU and CUDA),
N the number of elements reduced and L(N) a summation growth factor: ceil(log2 N) + 1 for a pairwise
or tree sum, but torch sums some layouts in serial chunks (a stride-0 expanded axis on the CPU; each
CUDA thread's segment), so L(N) = max(ceil(log2 N) + 1, sqrt(N)), the probabilistic bound for any
order on data whose rounding errors are not systematic (Higham & Mary, SIAM J. Sci. Comput. 2019).
The worst case, N, would hide a wrong correction (1 / 2N) at every size, so the std budget uses it
only where the spread itself is below it (see std). Witnesses reduce over at most 8192 elements for
correction checks, where sqrt(N) u stays ~6x below 1 / 2N.

- mean: a sum in any order errs by at most (N - 1) u_acc sum|x| (Higham's gamma_{N-1}; repeated data,
  e.g. a stride-0 axis summed serially, does reach it), and the result is rounded to the dtype:
      |m^ - m| <= C_ROUND u |m| + C_SUM u_acc N mean|x|
- std: the result and each elementwise op round to the dtype (C_ROUND u s); a mean off by delta moves
  the std by up to delta at first order (torch's Welford update M2 += d * (x - m_new) feels it so; a
  two-pass form that stores the mean in the dtype feels that rounding, C_ROUND u |m|, at second order):
      |s^ - s| <= C_ROUND u s + delta + (sqrt(s^2 + (C_ROUND u |m|)^2) - s)
  with delta = C_SUM u_acc L(N) mean|x|, L(N) the probabilistic growth, where the spread is resolvable
  (s > C_SUM u_acc N mean|x|); where it is not (kappa >~ 1 / (N u_acc): constant or near-constant
  slices), only the worst-case delta = C_SUM u_acc N mean|x| is a guarantee.
  The one-pass E[x^2] - E[x]^2 errs by about L(N) u kappa^2 s / 2: second order in kappa, which
  this budget does not grant, so cancellation fails it once kappa exceeds a few times C_SUM.
- values in the subnormal range have an absolute spacing, not a relative one: ATOL_SUBNORMALS spacings.

A case also passes an element whose error is no more than K_REF times the error of the fused CPU op
at the same dtype: where torch.std_mean itself cannot do better (underflow, huge N), a decomposition
is not blamed for matching it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# From torch.finfo: u = eps / 2 (round to nearest); the smallest normal is finfo.tiny, and the smallest
# subnormal is tiny * eps (the spacing of the subnormal range).
_FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
UNIT_ROUNDOFF = {d: torch.finfo(d).eps / 2 for d in _FLOATS}
SMALLEST_NORMAL = {d: torch.finfo(d).tiny for d in _FLOATS}
SMALLEST_SUBNORMAL = {d: torch.finfo(d).tiny * torch.finfo(d).eps for d in _FLOATS}


@dataclass(frozen=True)
class Budget:
    c_round: float  # multiples of u for rounding of inputs to each op and of the result
    c_sum: float  # multiples of the summation bound L(N) u sum|x|
    k_ref: float  # allowed multiple of the fused CPU op's own error against float64 truth
    atol_subnormals: float  # absolute slack, in subnormal spacings


# One table for every judgement, keyed by a family's budget name, or "<budget>.<output>" where a family
# budgets its outputs apart (std_mean). compare.close reads the generic rows:
#   allowed = c_round u |truth| + c_sum u_acc L(N) scale + atol_subnormals * smallest subnormal,
#             or k_ref times the reference's own error against truth, whichever is larger.
# - "exact": integer and bool outputs (isin, int cumsum): equal to the exact truth, nothing else.
# - "elementwise": a few roundings per element (upsample, grid_sample, weight_norm's scale).
# - "reduction": sums of N terms of magnitude ``scale`` (attention's softmax-weighted sums, norms).
BUDGETS = {
    "std_mean.mean": Budget(c_round=2.0, c_sum=2.0, k_ref=4.0, atol_subnormals=4.0),
    "std_mean.std": Budget(c_round=4.0, c_sum=2.0, k_ref=4.0, atol_subnormals=4.0),
    "exact": Budget(c_round=0.0, c_sum=0.0, k_ref=0.0, atol_subnormals=0.0),
    "elementwise": Budget(c_round=4.0, c_sum=0.0, k_ref=4.0, atol_subnormals=4.0),
    "reduction": Budget(c_round=4.0, c_sum=2.0, k_ref=4.0, atol_subnormals=4.0),
}
# The loose mode of the same engine (device vs CPU at one dtype, no truth: the probe, the benchmark's
# sanity check): the two results must agree to the leading 60 % of the dtype's digits,
#   |a - e| <= u^LOOSE_EXPONENT (|e| + mean|e|),
# which catches a wrong kernel (errors of order 1) and forgives any reordering of a sum. 0.6 keeps the
# probe as strict as its former per-dtype table (rtol 1e-4 / 1e-2 / 5e-2 for float32 / float16 / bfloat16:
# u^0.6 = 4.8e-5 / 1.0e-2 / 3.6e-2); float64 gets 2.6e-10 (was 1e-7), still far above reordering error.
LOOSE_EXPONENT = 0.6


def budget_for(key: str, output: str = "") -> Budget:
    """The budget row of ``key`` for ``output``: "<key>.<output>" where the family splits it, else "<key>"."""
    row = BUDGETS.get(f"{key}.{output}") or BUDGETS.get(key)
    if row is None:
        raise KeyError(f"no error budget {key!r} in opcompat.tolerances.BUDGETS; known: {', '.join(BUDGETS)}")
    return row


def loose_rtol(dtype) -> float:
    return UNIT_ROUNDOFF[dtype] ** LOOSE_EXPONENT


def generic_bound(dtype, budget: Budget, truth_abs, n: int = 1, scale=None):
    """Elementwise bound of a generic family's output (float64 tensors in, float64 tensor out)."""
    u, u_acc = UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    scale = truth_abs if scale is None else scale
    return (budget.c_round * u * truth_abs + budget.c_sum * u_acc * depth(n) * scale
            + budget.atol_subnormals * SMALLEST_SUBNORMAL[dtype])


def depth(n: int) -> float:
    """L(N): error growth of a sum of N terms (see the module docstring)."""
    n = max(n, 1)
    return max(math.ceil(math.log2(n)) + 1, math.sqrt(n))


# Reductions of these dtypes accumulate in float32 (at::opmath_type) on CPU and CUDA.
ACCUMULATE_IN = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def accumulation_roundoff(dtype):
    return UNIT_ROUNDOFF[ACCUMULATE_IN.get(dtype, dtype)]


def mean_bound(dtype, n, mean_abs_x, abs_mean):
    """Elementwise bound on |mean^ - mean| (float64 tensors in, float64 tensor out)."""
    b, u, u_acc = BUDGETS["std_mean.mean"], UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    return b.c_round * u * abs_mean + b.c_sum * u_acc * n * mean_abs_x + _atol(dtype, b)


def std_bound(dtype, n, mean_abs_x, std, abs_mean, constant=None, serial=False):
    """Elementwise bound on |std^ - std| for a backward-stable (two-pass or Welford) algorithm.

    ``constant`` marks slices whose elements are all equal: their std is exactly 0, and so is the CPU
    reference's (Welford's x - m is exactly 0 there). A two-pass form gives |x - m^|, the error of its
    mean: a sum of N equal terms has nothing to cancel, and a pairwise sum of them errs by at most
    ceil(log2 N) + 1 roundings, so that growth (not N) is all it is granted, with the stored-mean term
    below. ``serial`` (a stride-0 axis on the CPU, any non-CPU device: sums in serial chunks) keeps the
    worst case N: the roundings of a serial sum of equal terms all lean one way (40 u |m| seen at
    N = 320 on an expanded float64 axis), so no probabilistic growth applies. std + 1e-6 on a contiguous
    constant 0.3 (N = 2048, float32) now fails: 4e-7 allowed, where the worst-case N term allowed 7e-5.
    """
    b, u, u_acc = BUDGETS["std_mean.std"], UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    worst = b.c_sum * u_acc * n * mean_abs_x
    delta = torch.where(std > worst, b.c_sum * u_acc * depth(n) * mean_abs_x, worst)
    if constant is not None:
        growth = n if serial else math.ceil(math.log2(max(n, 1))) + 1
        delta = torch.where(constant, b.c_sum * u_acc * growth * abs_mean, delta)
    stored_mean = b.c_round * u * abs_mean
    second_order = torch.sqrt(std * std + stored_mean * stored_mean) - std
    return b.c_round * u * std + delta + second_order + _atol(dtype, b)


def _atol(dtype, budget):
    return budget.atol_subnormals * SMALLEST_SUBNORMAL[dtype]


# =====================================================================================================
# Families: attention, upsample_bicubic2d, grid_sample, weight_norm (the familiesplus section).
#
# Each budget bounds |computed - truth| elementwise for an algorithm that rounds its inputs and results
# to the dtype (u) and accumulates its sums in the accumulation type (u_acc; float32 for half types, the
# opmath type torch's CPU/CUDA kernels use). gamma(n, u) = n u / (1 - n u) is Higham's bound for a sum or
# dot product of n terms in any order (Higham, ch. 3), so it holds whatever order a replacement or
# a slicing picks. The constants are multiples of those terms, kept as data.
# =====================================================================================================


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u); inf where n u >= 1 (no guarantee left)."""
    nu = max(n, 1) * u
    return nu / (1.0 - nu) if nu < 1.0 else math.inf


@dataclass(frozen=True)
class FamilyBudget:
    c_round: float  # multiples of u |y|: the result (and each elementwise op) rounded to the dtype
    c_sum: float  # multiples of gamma(k, u_acc) times the sum of |terms| of a length-k reduction
    c_cond: float  # multiples of u times the family's sensitivity term (logit size, coordinate size)
    k_ref: float  # allowed multiple of the reference op's own error at the same dtype
    atol_subnormals: float = 4.0


# softmax(S) V with S = scale Q Kᵀ + bias. Per output element (b, h, i, d), with M = sum_j P_ij |V_jd|:
# - P V: a length-Lk dot product with nonnegative weights: gamma(Lk, u_acc) M; the output rounds: u |O|.
# - logits off by at most delta = max_j |dS_ij| move each weight by a factor in [e^-2delta, e^2delta]
#   (P_ij = e^S_ij / sum_l e^S_il), so |dP| V <= (e^(c_cond delta) - 1) M with c_cond = 2: 2 delta M to
#   first order, and no first-order shortcut where delta is not small (half-precision logits of ~1e4).
#   delta: logits stored in the dtype err by u |S| <= u R_i (R_i = max_j |S_ij|), the softmax's exp, max
#   subtraction and normalisation by a few u, and rounding q (or q scale) plus the length-D dot product
#   by (u + gamma(D, u_acc)) A_i, A_i = max_j scale sum_d |q_id| |k_jd|:
#       delta = u (1 + R_i) + (u + gamma(D, u_acc)) A_i.
# - the output is a convex combination of the unmasked rows of V whatever the logit errors: it never errs
#   by more than 2 W, W = max_j |V_jd| (a cap that matters only where delta >~ 1: near-ties of huge logits).
# So: |dO| <= c_round u |O| + min(M (c_sum gamma(Lk, u_acc) + e^(c_cond delta) - 1), 2 W).
# A wrong scale, mask, causal alignment or softmax axis moves O by O(M) at small delta: far outside this.
ATTENTION = FamilyBudget(c_round=4.0, c_sum=2.0, c_cond=2.0, k_ref=4.0)


def attention_bound(dtype, abs_out, m, r, a, w, *, lk, d):
    b, u, u_acc = ATTENTION, UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    delta = u * (1.0 + r) + (u + gamma(d, u_acc)) * a
    softmax = torch.expm1(b.c_cond * delta)
    spread = torch.minimum(m * (b.c_sum * gamma(lk, u_acc) + softmax), 2 * w)
    return b.c_round * u * abs_out + spread + b.atol_subnormals * SMALLEST_SUBNORMAL[dtype]


# upsample_bicubic2d: y = sum_{i,j < 4} w_y,i w_x,j x_ij, weights from t = frac(source coordinate).
# With S = sum |w_y w_x| |x| (the taps' magnitude; sum |w| <= 1.375 per axis for A = -0.75):
# - the 16-term weighted sum in u_acc: gamma(16, u_acc) S;
# - the intermediate row sums and the result stored in the dtype (the CPU kernel does for half types):
#   c_store u S, and the result's rounding, c_round u |y|;
# - the coordinate (dst + 0.5) in / out - 0.5 takes three roundings of a value <= in, so t errs by
#   <= 3 u_acc in; it moves y by <= dt sum_i |w'_y,i(t)| sum_j |w_x,j| max|x| <= dt 3 * 1.375 max|x|
#   (sum |w'| <= 3 for A = -0.75), per axis: c_cond = 2 * 3 * 3 * 1.375 ~ 25 (u_acc in max|x|), max|x|
#   over the 16 taps. (A weight near 0 can still have a slope of ~1: S alone would not bound this.)
# A different kernel (bilinear, Keys' A = -0.5, align_corners swapped) moves y by O(|x|): far outside.
UPSAMPLE = FamilyBudget(c_round=2.0, c_sum=2.0, c_cond=25.0, k_ref=4.0)
UPSAMPLE_C_STORE = 2.0


def upsample_bound(dtype, abs_out, s, tap_max, *, in_size):
    b, u, u_acc = UPSAMPLE, UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    return (b.c_round * u * abs_out + (UPSAMPLE_C_STORE * u + b.c_sum * gamma(16, u_acc)) * s
            + b.c_cond * u_acc * in_size * tap_max + b.atol_subnormals * SMALLEST_SUBNORMAL[dtype])


# grid_sample (bilinear), values and gradients. ix = ((g + 1) W - 1) / 2 (or (g + 1)(W - 1) / 2) takes
# a few roundings of a value <= |ix| + 1: it errs by <= c_cond u (|ix| + 1) (u of the dtype: the CPU
# kernel computes coordinates in the input's type). With L = sum |x| over the 4 corners:
# - out = sum_4 w x: gamma(4, u_acc) S (S = sum w |x|), a coordinate error moves it by <= dix L:
#   c_cond u (|ix| + |iy| + 2) L; the result rounds: c_round u |out|.
# - grad_input[p] = sum over the outputs o touching p of w_op go_o: gamma(K, u_acc) sum w |go| with K the
#   number of outputs, plus c_cond u sum_o (|ix_o| + |iy_o| + 2) |go_o| for the weights' coordinate error.
# - grad_grid = s sum_c go_c sum_corners (+-w_y) x: gamma(4C, u_acc) s G (G = sum_c |go_c| L_c) plus
#   the other coordinate's error through w_y: c_cond u (|iy| + 1) s G. Where ix lies within c_cond u (|ix| + 1)
#   of an integer, the derivative jumps between cells: either side is right, no bound is given there.
GRID_SAMPLE = FamilyBudget(c_round=4.0, c_sum=2.0, c_cond=4.0, k_ref=4.0)


def grid_sample_bound(dtype, abs_out, sums, coord_terms, *, terms):
    b, u, u_acc = GRID_SAMPLE, UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    return (b.c_round * u * abs_out + b.c_sum * gamma(terms, u_acc) * sums + b.c_cond * u * coord_terms
            + b.atol_subnormals * SMALLEST_SUBNORMAL[dtype])


# weight_norm: w = v g / n, n = ||v|| over the k entries of a row (every axis but dim).
# - n: a sum of k squares (all >= 0: relative error gamma(k, u_acc)), its sqrt halves that, stored in the
#   dtype: u. So w errs by (c_round u + c_sum gamma(k, u_acc)) |g| |v| / n: magnitude |g| |v| / n.
# - grad_g = sum(go v) / n: gamma(k, u_acc) sum |go| |v| / n plus n's relative error on the same size.
# - grad_v = (g / n) (go - (sum go v) v / n^2): the projection cancels, so each term counts at its own
#   size: magnitude (|g| / n) (|go| + sum |go| |v| |v| / n^2).
# Each: |err| <= c_round u |y| + (c_round u + c_sum gamma(k, u_acc)) magnitude.
WEIGHT_NORM = FamilyBudget(c_round=4.0, c_sum=2.0, c_cond=0.0, k_ref=4.0)


def weight_norm_bound(dtype, abs_out, magnitude, k):
    b, u, u_acc = WEIGHT_NORM, UNIT_ROUNDOFF[dtype], accumulation_roundoff(dtype)
    return (b.c_round * u * abs_out + (b.c_round * u + b.c_sum * gamma(k, u_acc)) * magnitude
            + b.atol_subnormals * SMALLEST_SUBNORMAL[dtype])


# The rows compare.close reads for these families: their elementwise bounds above reach close through
# its scale argument (opcompat/families/_bounded.py), so c_sum is 1 and c_round / k_ref are the families'.
BUDGETS.update({
    "attention": Budget(c_round=ATTENTION.c_round, c_sum=1.0, k_ref=ATTENTION.k_ref, atol_subnormals=4.0),
    "upsample": Budget(c_round=UPSAMPLE.c_round, c_sum=1.0, k_ref=UPSAMPLE.k_ref, atol_subnormals=4.0),
    "grid_sample": Budget(c_round=GRID_SAMPLE.c_round, c_sum=1.0, k_ref=GRID_SAMPLE.k_ref, atol_subnormals=4.0),
    "weight_norm": Budget(c_round=WEIGHT_NORM.c_round, c_sum=1.0, k_ref=WEIGHT_NORM.k_ref, atol_subnormals=4.0),
})
