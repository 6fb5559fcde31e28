r"""
Singular values of deep products: Gaussian, orthogonal and spectrally normalized
================================================================================

A deep linear network multiplies its input by the product :math:`W_L \cdots W_2 W_1`. Its singular values
say how much each input direction is stretched. This example computes them for products of
:math:`L = 1, 4, 16` independent :math:`128 \times 128` matrices drawn three ways: Gaussian with variance
:math:`1/n`, orthogonal (:func:`initbook.orthogonal_`), and Gaussian rescaled to spectral norm 1
(:func:`initbook.spectral_normalize_`). For one Gaussian matrix the singular values follow the
quarter-circle law

.. math:: p(s) = \frac1\pi \sqrt{4 - s^2}, \qquad 0 \le s \le 2 .

The background is in :ref:`beyond-gaussian`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Draw chains of matrices
# -----------------------
# Two chains of 16 matrices per initialization. Every matrix is a sample of :math:`L = 1`, every block of
# 4 consecutive matrices a sample of :math:`L = 4`, every whole chain a sample of :math:`L = 16`. Products
# are accumulated in float64, all blocks of one depth at once.
import math

import torch

import initbook

gen = torch.Generator().manual_seed(0)
N, CHAIN, CHAINS = 128, 16, 2
depths = [1, 4, 16]


def gaussian(w):
    return initbook.normal_(w, 0.0, 1 / math.sqrt(N), generator=gen)


def orthogonal(w):
    return initbook.orthogonal_(w, generator=gen)


def spectral(w):
    return initbook.spectral_normalize_(gaussian(w), 1.0, n_iter=30, generator=gen)


inits = {"Gaussian, var 1/n": gaussian, "orthogonal_": orthogonal, "spectral_normalize_": spectral}
singular_values = {}
for name, init in inits.items():
    mats = torch.stack([init(torch.empty(N, N)) for _ in range(CHAIN * CHAINS)]).double()
    for depth in depths:
        blocks = mats.reshape(-1, depth, N, N)  # consecutive blocks of `depth` matrices
        product = blocks[:, 0]
        for j in range(1, depth):
            product = blocks[:, j] @ product  # one batched product per step
        singular_values[(name, depth)] = torch.linalg.svdvals(product).flatten()
        s = singular_values[(name, depth)]
        print(f"{name:20s} L = {depth:2d}: singular values from {s.min():.2e} to {s.max():.2e}")

# %%
# Histograms of :math:`\log_{10} s`
# ---------------------------------
# On a logarithmic axis the quarter circle becomes :math:`p(s)\, s \ln 10`. For a spectrally normalized
# matrix the singular values are :math:`s/\sigma_\text{max}` with :math:`\sigma_\text{max} \to 2` as
# :math:`n` grows, so the same law compressed to :math:`[0, 1]` (dashed) is the large-:math:`n` prediction.
# Orthogonal products have every singular value equal to :math:`1` (a vertical line; the legend gives the
# largest deviation, which is rounding). Below about :math:`10^{-16}` times the largest singular value,
# float64 cannot resolve a product's singular values; the axes stop before that.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
u = torch.linspace(-4, math.log10(2) - 1e-9, 2000, dtype=torch.float64)
s_grid = 10**u
quarter = torch.sqrt((4 - s_grid**2).clamp_min(0)) / math.pi * s_grid * math.log(10)
s_half = s_grid / 2
quarter_sn = 4 / math.pi * torch.sqrt((1 - s_half**2).clamp_min(0)) * s_half * math.log(10)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
colors = {"Gaussian, var 1/n": "C1", "orthogonal_": "C0", "spectral_normalize_": "C2"}
x_ranges = {1: (-3.0, 0.5), 4: (-7.0, 1.0), 16: (-14.0, 1.5)}
for ax, depth in zip(axes, depths, strict=True):
    lo, hi = x_ranges[depth]
    edges = torch.linspace(lo, hi, 61, dtype=torch.float64)
    width = float(edges[1] - edges[0])
    for name in ["Gaussian, var 1/n", "spectral_normalize_"]:
        logs = singular_values[(name, depth)].log10()
        density = torch.histc(logs, bins=60, min=lo, max=hi) / (logs.numel() * width)
        ax.stairs(
            density.numpy(), edges.numpy(), fill=True, alpha=0.5, color=colors[name], label=name
        )
    deviation = (singular_values[("orthogonal_", depth)] - 1).abs().max()
    ax.axvline(
        0, color=colors["orthogonal_"], lw=2, label=f"orthogonal_ (|s − 1| ≤ {deviation:.0e})"
    )
    if depth == 1:
        ax.plot(u, quarter, "k-", lw=1, label="quarter circle")
        ax.plot(u - math.log10(2), quarter_sn, "k--", lw=1, label="quarter circle / 2")
    ax.set(
        xlabel=r"$\log_{10}$ singular value",
        title=f"product of L = {depth}, n = {N}",
        xlim=(lo, hi),
    )
axes[0].set_ylabel("density")
axes[0].legend(fontsize=7, loc="upper left")
plt.show()

# %%
# Takeaway
# --------
# One Gaussian matrix already stretches some directions twice as much as average and nearly annihilates
# others; in a product the logarithms of these factors add up, and after 16 layers the singular values span
# many orders of magnitude. Orthogonal matrices keep every singular value at :math:`1` at any depth, which
# is why they make deep *linear* networks as easy to train as shallow ones. Spectral normalization caps the
# largest singular value at :math:`1`, so nothing explodes, but the typical direction shrinks by about
# :math:`1/2` per layer, and the product vanishes instead.
