r"""
Overflow and underflow steps in float16, bfloat16 and float32 across weight scales
==================================================================================

The iterated product :math:`x_t = a_t x_{t-1}` with :math:`\mathcal N(0, s^2)` matrices changes the size
of :math:`x` by :math:`g = s\sqrt n` per step. For :math:`g > 1` it overflows after about
:math:`\ln M / \ln g` steps (:func:`initbook.theory.overflow_step`), for :math:`g < 1` it becomes exactly zero
after about :math:`\ln \mu / \ln g` (:func:`initbook.theory.underflow_step`), where :math:`M` and :math:`\mu`
are the format's largest value and smallest subnormal (:func:`initbook.theory.float_range`). This example
measures both with :func:`initbook.stats.first_step` over a range of growth factors and compares the three
formats used for training.

The derivation is in :ref:`low-precision` and :ref:`why-initialization-matters`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Measure
# -------
# Width 128, a fresh matrix per step (a deep linear network), 8 chains per point computed as one batched
# product. The condition is "some entry is inf or NaN" above :math:`g = 1` and "every entry is 0" below.
import math

import matplotlib.pyplot as plt
import torch

import initbook

gen = torch.Generator().manual_seed(0)
N, CHAINS = 128, 8
formats = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
growth = [0.06, 0.1, 0.18, 0.3, 0.5, 2.0, 3.5, 6.0, 10.0]

measured = {name: [] for name in formats}
for name, dtype in formats.items():
    for g in growth:
        s = g / math.sqrt(N)
        step = initbook.stats.matmul_map(
            N, scale=s, trials=CHAINS, reuse=False, dtype=dtype, generator=gen
        )
        x0 = torch.randn(CHAINS, N, generator=gen).to(dtype)
        condition = "nonfinite" if g > 1 else "zero"
        measured[name].append(initbook.stats.first_step(step, x0, 400, condition).double())
    print(name, "median first step:", [int(m.median()) for m in measured[name]])


def predicted(g, dtype):
    s = g / math.sqrt(N)
    if g > 1:
        return initbook.theory.overflow_step(N, s, dtype=dtype)
    return initbook.theory.underflow_step(N, s, dtype=dtype)


# %%
# Compare with theory
# -------------------
# Points: median over chains, bars: the full range; lines: the predictions on a fine grid of :math:`g`.
fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
fine_low = torch.logspace(math.log10(0.05), math.log10(0.6), 60).tolist()
fine_high = torch.logspace(math.log10(1.8), math.log10(11), 60).tolist()
for (name, dtype), color in zip(formats.items(), ["C3", "C2", "C0"], strict=True):
    med = torch.stack([m.median() for m in measured[name]])
    lo = med - torch.stack([m.min() for m in measured[name]])
    hi = torch.stack([m.max() for m in measured[name]]) - med
    ax.errorbar(
        growth, med, yerr=torch.stack([lo, hi]), fmt="o", color=color, capsize=3, label=name
    )
    for fine in (fine_low, fine_high):
        ax.plot(fine, [predicted(g, dtype) for g in fine], "-", color=color, lw=1)
ax.axvline(1.0, color="k", lw=0.8, ls=":")
ax.annotate("underflow to 0", (0.25, 2), ha="center", fontsize=9)
ax.annotate("overflow to inf", (4.5, 2), ha="center", fontsize=9)
ax.set(
    xscale="log",
    yscale="log",
    xlabel=r"growth factor per step $g = s\sqrt{n}$",
    ylabel="first step at which x breaks",
    title=r"$x_t = a_t x_{t-1}$, $n = 128$: measured (points) and predicted (lines)",
)
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# float16 breaks an order of magnitude sooner than float32 on both sides: its range is
# :math:`[2^{-24}, 65504]` instead of :math:`[2^{-149}, 3.4\times10^{38}]`. bfloat16 overflows exactly
# when float32 does (same exponent range) and underflows a little earlier (its subnormals stop at
# :math:`2^{-133}`). Only a growth factor near one, that is a variance-preserving initialization, is safe
# in every format.
