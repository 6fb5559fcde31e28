r"""
Fifty ReLU layers, layer by layer: N(0, 1) weights against He initialization
============================================================================

:ref:`Seed notebook 000 <seed-000>` pushes a batch through 50 ReLU layers of width 512. With :math:`\mathcal N(0, 1)` weights
each layer multiplies the second moment of the pre-activations by :math:`\tfrac12 n \operatorname{Var}[w] =
256`, and float32 overflows after a few dozen layers; with He initialization,
:math:`\operatorname{Var}[w] = 2/n` (:func:`initbook.kaiming_normal_`), the factor is exactly :math:`1`.
This example draws the whole distribution of the pre-activations at every layer, as an image in the
"colorful dimension" style (layer on the horizontal axis, value on the vertical one, colour for the
density), and compares the second moment with :func:`initbook.theory.propagate_variance`.

The derivation is in :ref:`relu-and-kaiming`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Run both networks
# -----------------
# A fresh weight matrix per layer, no bias, 256 standard-normal inputs. Every layer's pre-activations
# :math:`y^l = W^l x^l` go into a histogram: of :math:`\log_{10}|y|` for the :math:`\mathcal N(0, 1)`
# network, whose values span dozens of orders of magnitude, and of :math:`y` itself for He's. The loop stops
# at the first layer with an ``inf`` entry.

import torch

import initbook

gen = torch.Generator().manual_seed(0)
DEPTH, WIDTH, BATCH, BINS = 50, 512, 256, 80
LOG_RANGE = (-4.0, 40.0)  # log10 |y| for N(0, 1) weights
LIN_RANGE = 6.0  # y in [-6, 6] for He


def run(init, hist):
    """Push a batch through fresh ReLU layers; per-layer histograms and second moments."""
    x = torch.randn(BATCH, WIDTH, generator=gen)
    hists, second_moments = [], []
    for _ in range(DEPTH):
        w = init(torch.empty(WIDTH, WIDTH))
        y = x @ w.T
        q = torch.linalg.vector_norm(y, dtype=torch.float64).square() / y.numel()
        if not torch.isfinite(q):  # some entry of y is inf (or NaN)
            break
        hists.append(hist(y))
        second_moments.append(q)
        x = y.clamp_min(0)
    return torch.stack(hists, dim=1), torch.stack(second_moments)


def normal_init(w):
    return initbook.normal_(w, 0.0, 1.0, generator=gen)


def he_init(w):
    return initbook.kaiming_normal_(w, nonlinearity="relu", generator=gen)


def log_hist(y):
    return torch.histc(y.abs().log10(), bins=BINS, min=LOG_RANGE[0], max=LOG_RANGE[1])


def lin_hist(y):
    return torch.histc(y, bins=BINS, min=-LIN_RANGE, max=LIN_RANGE)


hist_n01, q_n01 = run(normal_init, log_hist)
hist_he, q_he = run(he_init, lin_hist)
print(f"N(0, 1) weights: {q_n01.numel()} finite layers; He: {q_he.numel()} finite layers")

# %%
# Theory
# ------
# :func:`initbook.theory.propagate_variance` iterates :math:`q_l = n\,\operatorname{Var}[w]\, m_{l-1}`
# with :math:`m_l = q_l/2` after a ReLU and :math:`m_0 = \mathbb E[x^2] = 1`. For ReLU this recursion is
# exact at any width; it predicts :math:`q_l = 2 \cdot 256^{\,l-1}` for :math:`\mathcal N(0, 1)` weights and
# :math:`q_l = 2` for He. :func:`initbook.theory.overflow_step` gives the layer where float32 runs out:
# the RMS grows like a linear chain with scale :math:`\sqrt{1/2}` per entry.
import math

widths = [WIDTH] * (DEPTH + 1)
theory_n01 = initbook.theory.propagate_variance(widths, 1.0, "relu").pre_var
theory_he = initbook.theory.propagate_variance(widths, 2.0 / WIDTH, "relu").pre_var
overflow = initbook.theory.overflow_step(WIDTH, scale=math.sqrt(0.5))
print(f"predicted overflow at layer {overflow}, measured at layer {q_n01.numel() + 1}")
growth = (q_n01[1:11] / q_n01[:10]).log().mean().exp()
print(f"second-moment factor per layer, first ten layers: {growth:.1f} (theory {WIDTH / 2:.0f})")
print(f"He, layer 50: second moment {q_he[-1]:.3f} (theory {theory_he[-1]:.3f})")

# %%
# The distributions, layer by layer
# ---------------------------------
# Colour is :math:`\log(1 + \text{count})` per bin. The red dashed line is the theory's RMS
# :math:`\sqrt{q_l}` on the log scale (left); the white lines are :math:`\pm\sqrt{q_l}` (right).
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
layers_n01 = q_n01.numel()
ax0.imshow(
    hist_n01.log1p().numpy(),
    origin="lower",
    aspect="auto",
    cmap="viridis",
    extent=(0.5, layers_n01 + 0.5, *LOG_RANGE),
)
l_n01 = torch.arange(1, layers_n01 + 1)
ax0.plot(l_n01, 0.5 * torch.tensor(theory_n01[:layers_n01]).log10(), "r--", lw=1)
ax0.axhline(math.log10(torch.finfo(torch.float32).max), color="C3", ls=":", lw=1)
ax0.text(DEPTH, 37.5, "float32 max", color="C3", fontsize=8, ha="right", va="top")
ax0.set(
    xlim=(0.5, DEPTH + 0.5),
    xlabel="layer l",
    ylabel=r"$\log_{10} |y^l|$",
    title=f"N(0, 1) weights: inf at layer {layers_n01 + 1}",
)
ax1.imshow(
    hist_he.log1p().numpy(),
    origin="lower",
    aspect="auto",
    cmap="viridis",
    extent=(0.5, DEPTH + 0.5, -LIN_RANGE, LIN_RANGE),
)
rms_he = torch.tensor(theory_he).sqrt()
l_he = torch.arange(1, DEPTH + 1)
ax1.plot(l_he, rms_he, "w-", lw=1)
ax1.plot(l_he, -rms_he, "w-", lw=1)
ax1.set(xlabel="layer l", ylabel=r"$y^l$", title=r"He: $\mathcal{N}(0, 2/n)$ weights")
plt.show()

# %%
# One network is one draw
# -----------------------
# The He network's :math:`q_{50}` printed above is well away from the predicted :math:`2`. The theory is not
# wrong: it predicts the *average over weight draws*, and one network is a single draw. Given the previous layer, a fresh layer
# leaves the expected second moment unchanged, so along one network :math:`q_l` is a random walk without
# drift in :math:`q` (a martingale) whose logarithm spreads by about :math:`\sqrt{5/n}` per layer.
#
# To measure the average we need many independent networks. For a fresh Gaussian :math:`W` with variance
# :math:`\sigma^2` and a given input :math:`x`, :math:`W x` is exactly
# :math:`\mathcal N(0, \sigma^2 \lVert x\rVert^2 I)`, so a chain of independent networks with one input
# each costs :math:`n` random numbers per layer instead of :math:`n^2`. :func:`initbook.stats.monte_carlo`
# runs 256 such chains for both initializations at once, in float64 (which does not overflow before
# :math:`10^{308}`), and returns the mean second moment per layer with its standard error.
CHAINS = 256
var_w = torch.tensor([1.0, 2.0 / WIDTH], dtype=torch.float64).reshape(2, 1)  # N(0, 1), He


def chains(b, generator):
    x = torch.randn(b, 2, WIDTH, generator=generator, dtype=torch.float64)
    q = []
    for _ in range(DEPTH):
        std = var_w.sqrt() * torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        y = std * torch.randn(b, 2, WIDTH, generator=generator, dtype=torch.float64)
        q.append(torch.linalg.vector_norm(y, dim=-1).square() / WIDTH)
        x = y.clamp_min(0)
    return torch.stack(q, dim=-1)  # (b, 2, DEPTH): one second moment per chain, scheme and layer


ens = initbook.stats.monte_carlo(chains, trials=CHAINS, generator=gen)
th_n01 = torch.tensor(theory_n01, dtype=torch.float64)
th_he = torch.tensor(theory_he, dtype=torch.float64)
z_n01 = (ens.value[0] - th_n01) / ens.stderr[0]
z_he = (ens.value[1] - th_he) / ens.stderr[1]
print(
    f"{CHAINS} networks, largest deviation from theory: N(0, 1) {z_n01.abs().max():.1f} SE, ",
    end="",
)
print(f"He {z_he.abs().max():.1f} SE")

# %%
# Second moment against theory
# ----------------------------
# Left: the second moment of seed 000's network (dots) and the theory (lines). Right: the same divided by
# the theory, for that one network (thin lines) and for the mean of 256 independent networks
# (:math:`\pm 2` standard errors).
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
ax0.semilogy(l_n01, q_n01, "o", ms=3, color="C3", label="N(0, 1): one network")
ax0.semilogy(l_he, th_n01, "-", lw=1, color="C3", label="N(0, 1): theory")
ax0.semilogy(l_he, q_he, "o", ms=3, color="C0", label="He: one network")
ax0.semilogy(l_he, th_he, "-", lw=1, color="C0", label="He: theory")
ax0.axhline(torch.finfo(torch.float32).max ** 2, color="k", ls="--", lw=0.8)
ax0.text(DEPTH, 3e77, "(float32 max)²", fontsize=8, ha="right", va="bottom")
ax0.set(
    xlabel="layer l",
    ylabel=r"$\mathbb{E}[(y^l)^2]$",
    title=f"{DEPTH} fresh ReLU layers, width {WIDTH}, batch {BATCH}",
    ylim=(1e-2, 1e125),
)
ax0.legend(fontsize=8)
ax1.plot(l_n01, q_n01 / th_n01[:layers_n01], "-", lw=1, color="C3", label="N(0, 1): one network")
ax1.plot(l_he, q_he / th_he, "-", lw=1, color="C0", label="He: one network")
for k, th, color, shift, label in [
    (0, th_n01, "C3", -0.15, "N(0, 1)"),
    (1, th_he, "C0", 0.15, "He"),
]:
    ax1.errorbar(
        (l_he + shift).numpy(),
        (ens.value[k] / th).numpy(),
        yerr=(2 * ens.stderr[k] / th).numpy(),
        fmt="o",
        ms=2.5,
        color=color,
        capsize=0,
        lw=0.8,
        label=f"{label}: mean of {CHAINS} networks",
    )
ax1.axhline(1.0, color="k", lw=1)
ax1.set(xlabel="layer l", ylabel="measured / theory", title="relative to theory", ylim=(0, 2.2))
ax1.legend(fontsize=8, ncols=2, loc="upper left")
plt.show()

# %%
# Takeaway
# --------
# With :math:`\mathcal N(0, 1)` weights the whole distribution slides up by :math:`\log_{10} 16 \approx 1.2`
# decades per layer until its upper tail reaches float32's largest value; its shape on the log scale stays
# the same. With He initialization the band stays put for all 50 layers: the per-layer factor
# :math:`\tfrac12 n \operatorname{Var}[w]` is :math:`1`, and the measured second moment follows
# :func:`initbook.theory.propagate_variance` on average over networks. A single network wanders around that
# average by a few tens of percent after 50 layers, and the wander grows like :math:`\sqrt{\text{depth}/n}`:
# narrow layers make deep networks less predictable even at the right scale.
