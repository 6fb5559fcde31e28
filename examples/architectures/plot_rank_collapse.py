r"""
Rank collapse of deep attention: skips and scaled branches
==========================================================

Self-attention mixes tokens: every output is a convex combination of value vectors. Stacked without skip
connections, attention layers make all tokens identical at a doubly exponential rate (Dong, Cordonnier and
Loukas, 2021). This example measures the relative spread of the tokens around their mean,
:math:`r = \lVert X - \mathbf 1\bar x^\top\rVert_F / \lVert X\rVert_F`, after :math:`L` layers of
single-head attention with :math:`\mathcal N(0, 1/d)` weights, for four settings: no skip, a skip with the
branch at full scale, a fixed scale :math:`\alpha = 1/2`, and the depth-aware :math:`\alpha = 1/\sqrt L`
(:func:`initbook.nets.attention_token_spread`).

The derivation and the transformer context are in :ref:`transformers`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Simulate
# --------
# 16 independent networks of width 64 on 16 random tokens per depth; each network draws its own weights.
import math

import matplotlib.pyplot as plt
import torch

import initbook

gen = torch.Generator().manual_seed(0)
WIDTH, TOKENS, TRIALS = 64, 16, 16
depths = [1, 2, 4, 8, 16, 32, 64]
settings = {
    r"no skip: $X \leftarrow SA(X)$": (False, lambda L: 1.0),
    r"skip, $\alpha = 1$": (True, lambda L: 1.0),
    r"skip, $\alpha = 1/2$": (True, lambda L: 0.5),
    r"skip, $\alpha = 1/\sqrt{L}$": (True, lambda L: 1 / math.sqrt(L)),
}
final = {}
for label, (skip, alpha_of) in settings.items():
    values = []
    for L in depths:
        r = initbook.nets.attention_token_spread(
            L, WIDTH, TOKENS, skip=skip, branch_scale=alpha_of(L), trials=TRIALS, generator=gen
        )
        values.append(r[:, -1])
    final[label] = torch.stack(values, dim=1)  # (trials, depths)
    print(f"{label}: mean r after {depths[-1]} layers = {float(final[label][:, -1].mean()):.2e}")

# %%
# Final spread against depth
# --------------------------
# Points: the mean over the networks; bands: the smallest to the largest network.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (label, r), color in zip(final.items(), ["C3", "C1", "C4", "C0"], strict=True):
    r = r.clamp_min(1e-17)
    ax.fill_between(depths, r.min(0).values, r.max(0).values, color=color, alpha=0.2, lw=0)
    ax.plot(depths, r.mean(0), "o-", color=color, label=label)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="number of attention layers L",
    ylabel=r"$r_L$, relative spread of the tokens",
    title="Token representations after L attention layers",
    ylim=(1e-17, 2),
)
ax.set_xticks(depths, [str(d) for d in depths])
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Without skips the tokens become indistinguishable (to rounding error) within a handful of layers. A skip at
# full scale turns the collapse into a slow exponential decay, and any fixed :math:`\alpha` only changes its
# rate; the branch scale :math:`1/\sqrt L`, the same that bounds the growth of the residual stream, keeps the
# tokens apart at every depth (Noci et al., 2022).
