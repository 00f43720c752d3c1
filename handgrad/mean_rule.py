"""The verdict's second statistic in half precision: an error spread over every entry.

The ratio rule compares worst entries, and its floor, ``FLOOR_ULPS`` ulps at the gradient's
scale, is 3 % of that scale in bfloat16 and 0.4 % in float16: a gradient 2 % off in every
entry (a kernel that accumulates in the low dtype) hides under it. Its mean error does
not. A uniform relative error ``e`` puts a mean error of ``e mean|truth|`` on the tensor,
while rounding gives each entry an error of random size and sign, and the mean of n such
errors settles within about ``1/sqrt(n)`` of its expectation, where the largest of n does
not settle at all. So, per gradient tensor, beside the ratio rule::

    mean(manual)  = mean |manual - truth|     over the finite entries above noise (below)
    passes when     mean(manual) <= K_MEAN * mean(autograd) + floor_mean

``K_MEAN = 2``, as ``K``: a right derivation that rounds in another order, or a few more
times, lands within a small factor of autograd's mean, as of its max; a wrong one is off
by its mistake on average too. Autograd's mean is measured again with the ratio rule's
later looks (``handgrad.looks``: nearby inputs, random rounding; and manual's median
under random rounding, ``handgrad.measure``), and manual fails only against the largest.

``floor_mean`` is for where autograd is exact (``2 * v``): a derivation that rounds once
more is off by up to half an ulp of each entry and a quarter on average (round-to-nearest
lands uniformly within half an ulp), so ``MEAN_FLOOR_ULPS`` ulps of each entry, averaged,
cover two such roundings; and an entry that cancels (a small difference of terms at the
gradient's scale) may be off by an ulp at that scale, which adds one such ulp over the n
entries. A uniform relative error is then caught at about
``2 mean(autograd) / mean|truth| + eps / 2``, plus the share of one entry: 1e-2 to 2e-2 in
bfloat16 and 1e-3 to 2e-3 in float16 on the cases' draws (README), where the ratio rule
alone caught 1e-1 and 1e-2. A tensor of one to three entries (``linear_xw``'s ``d_w``)
has no mean that is not nearly its max: there 5e-2 and 5e-3.

Only bfloat16 and float16 (``DTYPES``). A half-precision kernel computes in float32 and
rounds each result once on the way out, so every right form's error there is that last
rounding, a quarter ulp an entry on average, and a factor of 2 holds. In float32 there is
nothing wider inside: an entry's error is what its own order of operations accumulates,
and a right form that cancels otherwise has its own mean. On the corpus' generated draws
two right float32 layer norms (Apex's ``C g - a - xhat b``, llm.c's) were 0.47 and 0.33
times autograd's worst error and 2.24 and 2.72 times its mean: the mean told the order,
not a mistake. Float32 keeps the ratio rule alone, which catches a uniform error of 5e-7
to 1e-6. In float64 there is no truth to measure a mean against.

The mean is taken over the entries whose truth stands above what the ratio rule allows
(``K`` times autograd's largest error, plus the floor; ``above``). Each of them is then at
least ``K`` times autograd's error, so a spread error shows on them; the rest are rounding
noise around a truth no larger, for every form, and a right form may put its noise where
autograd's happened to fall on 0: only the ratio rule judges them. Where no entry stands
that high the mean rule is not applied: Karpathy's batch norm of a constant bfloat16 column
(exactly 0; 5e-20 in float64, autograd's noise 3e-6); llm.c's attention of bfloat16 inputs
all 3008, whose ``d_q`` and ``d_k`` are exactly 0 and autograd's too, by the row max's
path, but 6.6 off under random rounding where ``d_v`` is 0.27 at most (llm.c's float32
``att (1 - att)`` put a mean of 0.06 of noise on them, 4.7 times autograd's mean).
"""

import torch

DTYPES = (torch.bfloat16, torch.float16)  # where the rule applies (module docstring)
K_MEAN = 2.0
MEAN_FLOOR_ULPS = 0.5


def above(truth: torch.Tensor, allowed: float, mask: torch.Tensor | None) -> torch.Tensor:
    """Where ``mask`` holds (everywhere, for no mask) and ``truth`` stands above ``allowed``,
    the ratio rule's allowance: the entries the mean rule judges (module docstring)."""
    over = truth.abs() > allowed
    return over if mask is None else over & mask


def broken(manual: float, autograd: float, floor: float) -> bool:
    """Whether manual's mean error breaks the rule against autograd's and the floor."""
    return manual > K_MEAN * autograd + floor


def mean_error(diff: torch.Tensor, mask: torch.Tensor | None) -> float:
    """The mean of ``diff`` where ``mask`` holds (everywhere, for no mask); 0 for none."""
    if mask is None:
        return float(diff.mean()) if diff.numel() else 0.0
    count = int(mask.sum())
    return float(torch.where(mask, diff, 0).sum()) / count if count else 0.0


def mean_floor(dtype: torch.dtype, truth: torch.Tensor, mask: torch.Tensor | None,
               one_ulp: float) -> float:
    """``MEAN_FLOOR_ULPS`` ulps of each judged entry of ``truth``, averaged (an ulp is
    bounded below by the subnormals' spacing), plus ``one_ulp``, an ulp at the gradient's
    scale, at one of them."""
    info = torch.finfo(dtype)
    n = int(mask.sum()) if mask is not None else truth.numel()
    own = MEAN_FLOOR_ULPS * max(info.eps * mean_error(truth.abs(), mask),
                                info.smallest_normal * info.eps)
    return own + one_ulp / max(n, 1)
