r"""
Products of normals: exact density, and the sum that becomes Gaussian
=====================================================================

A weight times an input, :math:`a x` with :math:`a, x \sim \mathcal N(0, 1)` independent, has mean
:math:`0` and second moment :math:`1`, but it is not Gaussian: its density is :math:`K_0(|z|)/\pi`, peaked
at zero with heavy tails, and its kurtosis is :math:`\mathbb E[a^4]\,\mathbb E[x^4] = 9` instead of
:math:`3`. A pre-activation is a *sum* of :math:`n` such products. Rescaled to unit variance,
:math:`y/\sqrt n`, it approaches :math:`\mathcal N(0, 1)`, and its kurtosis falls as :math:`3 + 6/n`.

The variance of the sum is derived in :ref:`variance-of-a-sum`; the sample moments come from
:func:`initbook.stats.moments`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# One product against its exact density
# -------------------------------------
# A million products drawn as one tensor. The density of :math:`z = a x` is
# :math:`p(z) = K_0(|z|)/\pi`, with :math:`K_0` the modified Bessel function of the second kind
# (:func:`torch.special.modified_bessel_k0`). It is infinite at :math:`z = 0`, so the grid leaves zero out.
import math

import matplotlib.pyplot as plt
import torch

import initbook

initbook.plotting.use_book_style()
gen = torch.Generator().manual_seed(0)
SAMPLES = 1_000_000

prod = torch.randn(SAMPLES, generator=gen) * torch.randn(SAMPLES, generator=gen)
m = initbook.stats.moments(prod)
print(f"E[ax] = {m.mean:+.4f} (theory 0), E[(ax)^2] = {m.mean_sq:.4f} (theory 1)")

edges = torch.linspace(-5, 5, 201, dtype=torch.float64)
width = float(edges[1] - edges[0])
centers = 0.5 * (edges[1:] + edges[:-1])
density = torch.histc(prod.double(), bins=200, min=-5, max=5) / (SAMPLES * width)
grid = torch.linspace(-5, 5, 1000, dtype=torch.float64)  # an even count: 0 is not on the grid
k0_density = torch.special.modified_bessel_k0(grid.abs()) / math.pi
gauss_density = torch.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
for ax, log in zip(axes, [False, True], strict=True):
    ax.stairs(density, edges, fill=True, color="C0", alpha=0.5, label="a·x, measured")
    ax.plot(grid, k0_density, "k-", lw=1, label=r"$K_0(|z|)/\pi$")
    ax.plot(grid, gauss_density, "C3--", lw=1, label=r"$\mathcal{N}(0, 1)$, same variance")
    ax.set(xlabel="z", ylabel="density")
    if log:
        ax.set(yscale="log", ylim=(1e-5, 10), title="log scale: the tails")
    else:
        ax.set(ylim=(0, 1.6), title="linear scale: the peak")
axes[0].legend(fontsize=8)
fig.suptitle(r"Product of two independent $\mathcal{N}(0, 1)$ numbers")
plt.show()

# %%
# Sums of :math:`n` products
# --------------------------
# Entry :math:`i` of :math:`a x` is :math:`y = \sum_{k=1}^n a_k x_k`. The terms are independent with
# variance :math:`1` and kurtosis :math:`\kappa_1 = 9`, so :math:`y/\sqrt n` has variance :math:`1` and,
# by the additivity of cumulants, kurtosis
#
# .. math:: \kappa_n = 3 + \frac{\kappa_1 - 3}{n} = 3 + \frac 6n .
#
# Each sample below is a genuine sum of :math:`n` products; fewer samples are drawn for large :math:`n`
# to stay within the time budget.
ns = [1, 4, 32, 512]


def normalized_sums(n, count, generator):
    """``count`` draws of (a @ x) / sqrt(n) for one row a and one x, both standard normal."""
    a = torch.randn(count, n, generator=generator)
    x = torch.randn(count, n, generator=generator)
    return (a * x).sum(dim=1) / math.sqrt(n)


sums = {1: prod}  # n = 1 is the product itself
for n in ns[1:]:
    sums[n] = normalized_sums(n, max(20_000, SAMPLES // n), gen)

fig, axes = plt.subplots(1, len(ns), figsize=(11, 3.2), layout="constrained", sharey=True)
for ax, n in zip(axes, ns, strict=True):
    s = sums[n].double()
    ax.stairs(
        torch.histc(s, bins=60, min=-6, max=6) / (s.numel() * 0.2),
        torch.linspace(-6, 6, 61),
        fill=True,
        color="C0",
        alpha=0.5,
        label="measured",
    )
    ax.plot(grid, gauss_density, "C3--", lw=1, label=r"$\mathcal{N}(0, 1)$")
    ax.set(yscale="log", ylim=(1e-5, 2), xlabel=r"$y/\sqrt{n}$", title=f"n = {n}")
axes[0].set_ylabel("density")
axes[0].legend(fontsize=8, loc="lower center")
fig.suptitle("Normalized sums of n products: the tails shrink to Gaussian ones")
plt.show()

# %%
# Kurtosis against :math:`3 + 6/n`
# --------------------------------
# Since :math:`\operatorname{Var}[y/\sqrt n] = 1` exactly, the kurtosis is the fourth moment
# :math:`\mathbb E[(y/\sqrt n)^4]`. Its estimate is the mean of the :math:`N` values :math:`(y/\sqrt n)^4`,
# with standard error :math:`\operatorname{sd}/\sqrt N`; the bars are :math:`\pm 2` standard errors.
kappa_1 = 3.0 * 3.0  # E[a^4] E[x^4] for independent standard normals
values, errors, predicted = [], [], []
for n in ns:
    fourth = initbook.stats.moments(sums[n].pow(4))
    values.append(fourth.mean)
    errors.append(fourth.std / math.sqrt(fourth.count))
    predicted.append(3.0 + (kappa_1 - 3.0) / n)
    z = (values[-1] - predicted[-1]) / errors[-1]
    print(
        f"n = {n:3d}: kurtosis {values[-1]:.3f} ± {errors[-1]:.3f} "
        f"(N = {fourth.count}), theory {predicted[-1]:.3f}, deviation {z:+.1f} SE"
    )

n_grid = torch.logspace(0, math.log10(1024), 100)
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
ax.errorbar(
    ns, values, yerr=[2 * e for e in errors], fmt="o", color="C0", capsize=3, label="measured"
)
ax.plot(n_grid, 3 + (kappa_1 - 3) / n_grid, "k-", lw=1, label=r"theory $3 + 6/n$")
ax.axhline(3.0, color="C3", ls="--", lw=1, label="Gaussian")
ax.set(
    xscale="log",
    xlabel="number of products n",
    ylabel=r"kurtosis $\mathbb{E}[(y/\sqrt{n})^4]$",
    title="Kurtosis of a normalized sum of n products",
)
ax.set_xticks(ns, [str(n) for n in ns])
ax.legend()
plt.show()

# %%
# Takeaway
# --------
# A single weight-times-input is far from Gaussian, but the variance rule of :ref:`variance-of-a-sum` never
# needed a Gaussian: it only adds second moments. The Gaussian shape arrives with the width, and the excess
# kurtosis :math:`6/n` says how fast: at :math:`n = 512` it is about :math:`0.01`, which is why the
# Gaussian formulas of later chapters (such as :func:`initbook.theory.relu_mean_gaussian`) apply to
# pre-activations but not to single products.
