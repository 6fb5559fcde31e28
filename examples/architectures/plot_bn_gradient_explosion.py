r"""
BatchNorm without skips explodes gradients: the rate against the batch size
===========================================================================

In a deep network :math:`x_{l+1} = \phi(\mathrm{BN}(W_l x_l))` without skip connections the squared gradient
norm grows by a factor :math:`\lambda` per layer towards the input at initialization, whatever the weights'
variance (Yang et al., 2019). For linear layers and large width the rate is exact in the batch size,
:math:`\lambda = (B-2)/(B-3)` (:func:`initbook.theory.bn_gradient_growth`); for ReLU only the large-batch
limit :math:`\pi/(\pi-1)` is known in closed form. This example measures :math:`\lambda` with
:func:`initbook.stats.bn_mlp_gradients` over a range of batch sizes and compares.

The derivation is in :ref:`normalization`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Measure the growth rate
# -----------------------
# Six independent networks of width 192 and depth 10 per batch size. Per network, the rate is the mean over
# interior layers of :math:`\lVert\partial L/\partial W_l\rVert^2 / \lVert\partial L/\partial
# W_{l+1}\rVert^2`; points are the mean over networks ± one standard error.
import math

import matplotlib.pyplot as plt
import torch

import initbook

gen = torch.Generator().manual_seed(0)
WIDTH, DEPTH, TRIALS = 192, 10, 6
batch_sizes = [5, 6, 8, 12, 16, 32, 64]


def rate(nonlinearity, b):
    g2 = initbook.stats.bn_mlp_gradients(
        WIDTH, DEPTH, b, nonlinearity=nonlinearity, trials=TRIALS, generator=gen
    )
    per_net = (g2[:, :-1] / g2[:, 1:])[:, 2:-2].mean(dim=1)
    return float(per_net.mean()), float(per_net.std() / math.sqrt(TRIALS))


measured = {nl: [rate(nl, b) for b in batch_sizes] for nl in ("linear", "relu")}
for b, (m, se) in zip(batch_sizes, measured["linear"], strict=True):
    print(
        f"linear, B = {b:2d}: {m:.3f} ± {se:.3f}  (theory {initbook.theory.bn_gradient_growth(b):.3f})"
    )

# %%
# Compare with theory
# -------------------
# The linear rate tends to 1 only as :math:`B \to \infty`; with ReLU the rate approaches
# :math:`\pi/(\pi-1)` from above.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (nl, values), color in zip(measured.items(), ["C0", "C3"], strict=True):
    ax.errorbar(
        batch_sizes,
        [m for m, _ in values],
        yerr=[se for _, se in values],
        fmt="o",
        color=color,
        capsize=3,
        label=f"{nl}, measured",
    )
grid = torch.linspace(4.6, 64, 200).tolist()
ax.plot(grid, [(b - 2) / (b - 3) for b in grid], "C0-", lw=1, label=r"linear: $(B-2)/(B-3)$")
limit = initbook.theory.bn_gradient_growth(None, "relu")
ax.axhline(limit, color="C3", lw=1, ls="--", label=r"ReLU, $B \to \infty$: $\pi/(\pi-1)$")
ax.axhline(1.0, color="k", lw=0.8, ls=":")
ax.set(
    xscale="log",
    xlabel="batch size B",
    ylabel=r"growth of $\|\partial L/\partial W\|^2$ per layer",
    title="Deep BN MLP without skips, at initialization",
)
ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Small batches make the explosion fast: two layers at :math:`B = 4` double the squared gradient twice. No
# initialization helps, since BN removes the weights' scale; skip connections do (see :ref:`normalization`).
