r"""
Deep linear networks: learning time vs depth, orthogonal vs Gaussian
====================================================================

Saxe et al. (2014) showed that deep *linear* networks already have the difficulties of deep nonlinear
ones, and that with orthogonal initial weights their learning time can be independent of depth, while
scaled Gaussian weights (:math:`\mathcal N(0, 1/n)`, the same mean squared singular value 1) get slower and
slower. Here :func:`initbook.stats.deep_linear_learning_steps` trains many networks at once with
full-batch gradient descent on a random linear teacher (whitened inputs, loss
:math:`\tfrac12\lVert W_L\cdots W_1 - T\rVert_F^2`, per-layer step :math:`\eta/L`) and counts the steps
until the loss falls below 5% of that of the zero map. The Jacobian of such a network *is* the product
:math:`W_L\cdots W_1`: :ref:`dynamical-isometry` explains why its spectrum decides the outcome.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup
# -----
# Width 16, eight (network, teacher) pairs per depth and initialization; both initializations see the
# same teachers (equally seeded generators). Runs that do not reach the threshold within ``MAX_STEPS``
# are drawn at ``MAX_STEPS`` with open markers.
import matplotlib.pyplot as plt
import torch

from initbook import stats

# Thousands of small batched products: one thread avoids OpenMP's per-call synchronization, which costs more
# than it saves at these sizes (and far more on a busy machine).
torch.set_num_threads(1)

WIDTH, NETS, LR, MAX_STEPS = 16, 8, 0.5, 250
DEPTHS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]

steps = {"orthogonal": [], "gaussian": []}
for depth in DEPTHS:
    for weights, runs in steps.items():
        runs.append(
            stats.deep_linear_learning_steps(
                depth,
                WIDTH,
                weights=weights,
                lr=LR,
                max_steps=MAX_STEPS,
                nets=NETS,
                generator=torch.Generator().manual_seed(depth),
            )
        )
steps = {k: torch.stack(v).double() for k, v in steps.items()}  # (depths, nets)

# %%
# Learning time against depth
# ---------------------------
# Points are the median over the eight pairs, bars the interquartile range.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
depths = torch.tensor(DEPTHS, dtype=torch.float64)
for (weights, s), color in zip(steps.items(), ["C2", "C0"], strict=True):
    med = s.median(dim=1).values
    lo, hi = s.quantile(0.25, dim=1), s.quantile(0.75, dim=1)
    capped = med >= MAX_STEPS
    yerr = torch.stack([med - lo, hi - med])[:, ~capped]
    ax.errorbar(
        depths[~capped],
        med[~capped],
        yerr=yerr,
        fmt="o-",
        color=color,
        ms=5,
        capsize=2,
        label=f"{weights} init",
    )
    ax.plot(depths[capped], med[capped], "o", mfc="none", color=color, ms=6)
    print(
        f"{weights:10s} median steps: "
        + ", ".join(
            f"L={d}: {'>' if c else ''}{m:.0f}"
            for d, m, c in zip(DEPTHS, med.tolist(), capped.tolist(), strict=True)
        )
    )
ax.axhline(MAX_STEPS, color="grey", lw=0.8, ls="--")
ax.text(DEPTHS[0], MAX_STEPS * 1.05, "step limit (open markers: not reached)", fontsize=8)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="depth L",
    ylabel="steps to 5% of the initial loss",
    title=f"deep linear networks, width {WIDTH}, step size {LR}/L",
)
ax.legend()
plt.show()

# %%
# Takeaway
# --------
# With orthogonal weights the learning time levels off as depth grows; with Gaussian weights it grows
# steeply, and past a dozen layers the networks do not reach the threshold within the step limit. Both
# start with the same mean squared singular value; what differs is the spread of the singular values of
# the product: many of the Gaussian product's directions start with almost no gain, and gradient descent
# is slow to grow them.
