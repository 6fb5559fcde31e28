r"""
Explode, vanish or stay: repeated products at nine scales
==========================================================

Multiply a vector :math:`x_0 \sim \mathcal N(0, I_n)` by a fresh random matrix with
:math:`\mathcal N(0, s^2)` entries at every step, for nine scales :math:`s` around the critical
:math:`1/\sqrt n`. The root mean square of :math:`x_t` follows :math:`g^t` with :math:`g = s\sqrt n`
(:func:`initbook.theory.growth_factor`) until float32 runs out of range: the curves above
:math:`g = 1` end in ``inf`` at the step :func:`initbook.theory.overflow_step` predicts, those below
reach exactly zero near :func:`initbook.theory.underflow_step`.

The derivation is in :ref:`why-initialization-matters`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup
# -----
# A small width keeps fresh matrices cheap; one generator makes every run identical.
import math

import matplotlib.pyplot as plt
import torch

import initbook

N, STEPS, TRIALS = 128, 120, 16
gen = torch.Generator().manual_seed(0)
critical = 1 / math.sqrt(N)
factors = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0]

# %%
# Run the chains and compare with :math:`g^t`
# -------------------------------------------
# :func:`initbook.stats.matmul_map` draws a fresh matrix per step for all chains at once
# (``reuse=False``); :func:`initbook.stats.trajectory` records the RMS in float64 so that measuring a
# huge float32 state does not itself overflow.
fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
cmap = plt.get_cmap("coolwarm")
for i, f in enumerate(factors):
    s = f * critical
    step = initbook.stats.matmul_map(N, scale=s, trials=TRIALS, reuse=False, generator=gen)
    x0 = torch.randn(TRIALS, N, generator=gen)
    rms = initbook.stats.trajectory(step, x0, STEPS)
    ok = torch.isfinite(rms) & (rms > 0)
    median = torch.where(ok, rms.log10(), torch.nan).nanmedian(dim=1).values
    color = cmap(i / (len(factors) - 1))
    t = torch.arange(STEPS + 1)
    ax.plot(t, median, color=color, lw=2, label=rf"$s = {f:g}/\sqrt{{n}}$")
    ax.plot(t, t * math.log10(initbook.theory.growth_factor(N, s)), color=color, ls=":", lw=1)
    over = initbook.theory.overflow_step(N, s)
    under = initbook.theory.underflow_step(N, s)
    print(
        f"s = {f:4.2f}/sqrt(n): g = {f:4.2f}, predicted overflow step {over}, underflow step {under}"
    )

big, normal, tiny = initbook.theory.float_range(torch.float32)
ax.axhline(math.log10(big), color="k", lw=0.8)
ax.axhline(math.log10(tiny), color="k", lw=0.8)
ax.set(
    xlabel="step t",
    ylabel=r"$\log_{10}$ RMS of $x_t$ (median of chains)",
    title=f"Fresh N(0, s²) matrices, n = {N}, float32; dotted: $g^t$",
    ylim=(-48, 42),
)
ax.legend(ncols=3, fontsize=8, loc="lower left")
plt.show()

# %%
# Takeaway
# --------
# Only :math:`g = s\sqrt n = 1` keeps the size of :math:`x` stable over depth. Ten percent too large
# (:math:`g = 1.1`) is harmless for a few layers and fatal after about 900: the number of layers a scale
# error :math:`g` allows is about :math:`\ln M/\ln g`, :math:`88.7 / \ln g` in float32, which is about 930
# for :math:`g = 1.1` (the printed overflow step is the sharper prediction, which also counts the largest
# entries).
