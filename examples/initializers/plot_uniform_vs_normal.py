r"""
He-uniform or He-normal? Same variance, different spread across units
=====================================================================

:func:`initbook.kaiming_uniform_` and :func:`initbook.kaiming_normal_` give weights of the same variance
:math:`2/n`, so they propagate the same second moment on average. They differ in shape: the uniform is
bounded by :math:`\sqrt{6/n}` and has kurtosis :math:`\kappa = 9/5`, the normal has tails and
:math:`\kappa = 3`. One place the shape shows up is the gain of each output unit,
:math:`\lVert w_i\rVert^2/(n\sigma^2)`, which fluctuates across units with standard deviation

.. math:: \operatorname{sd}\left[\frac{\lVert w_i\rVert^2}{n\sigma^2}\right] = \sqrt{\frac{\kappa - 1}{n}} .

This example measures that spread for widths from 8 to 4096. The derivation is in
:ref:`uniform-initialization`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# The two histograms
# ------------------
# A :math:`256 \times 512` layer drawn both ways, against the two densities: :math:`1/(2b)` on
# :math:`[-b, b]` with :math:`b = \sqrt 3\,\sigma` (:func:`initbook.theory.uniform_bound`), and
# :math:`\mathcal N(0, \sigma^2)` with :math:`\sigma = \sqrt{2/n}` (:func:`initbook.theory.kaiming_std`).
import math

import matplotlib.pyplot as plt
import torch

import initbook

initbook.plotting.use_book_style()
gen = torch.Generator().manual_seed(0)
N_OUT, N_IN = 256, 512
sigma = initbook.theory.kaiming_std(N_IN, nonlinearity="relu")
bound = initbook.theory.uniform_bound(sigma)
w_uniform = initbook.kaiming_uniform_(
    torch.empty(N_OUT, N_IN), nonlinearity="relu", generator=gen
).double()
w_normal = initbook.kaiming_normal_(
    torch.empty(N_OUT, N_IN), nonlinearity="relu", generator=gen
).double()
for name, w in [("uniform", w_uniform), ("normal", w_normal)]:
    kurtosis = w.pow(4).mean() / w.pow(2).mean() ** 2
    print(
        f"He-{name}: std {w.std():.5f} (theory {sigma:.5f}), max |w| / std "
        f"{w.abs().max() / sigma:.2f}, kurtosis {kurtosis:.3f}"
    )

edges = torch.linspace(-4.5 * sigma, 4.5 * sigma, 91, dtype=torch.float64)
grid = torch.linspace(-4.5 * sigma, 4.5 * sigma, 500, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
for w, name, color in [(w_uniform, "kaiming_uniform_", "C0"), (w_normal, "kaiming_normal_", "C1")]:
    counts = torch.histc(w, bins=90, min=float(edges[0]), max=float(edges[-1]))
    density = counts / (w.numel() * float(edges[1] - edges[0]))
    ax.stairs(density.numpy(), edges.numpy(), color=color, lw=1.5, label=f"{name}, measured")
uniform_density = torch.where(grid.abs() <= bound, 1 / (2 * bound), 0.0)
normal_density = torch.exp(-0.5 * (grid / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
ax.plot(grid, uniform_density, "k--", lw=1, label=r"$1/(2b)$ on $\pm\sqrt{6/n}$")
ax.plot(grid, normal_density, "k:", lw=1, label=r"$\mathcal{N}(0, 2/n)$")
ax.set(xlabel="weight", ylabel="density", title=f"He initialization, {N_OUT}×{N_IN}, same variance")
ax.legend(fontsize=8)
plt.show()

# %%
# Spread of the per-unit gains across widths
# ------------------------------------------
# :math:`\lVert w_i\rVert^2/(n\sigma^2)` is a mean of :math:`n` i.i.d. values :math:`w^2/\sigma^2`, which
# have mean :math:`1` and variance :math:`\kappa - 1`; hence the formula above. One trial is one layer of
# 256 units; its statistic is the sample variance of the 256 gains, and
# :func:`initbook.stats.monte_carlo` averages it over 8 layers per width with a standard error. The plot
# shows its square root, with the standard error carried through
# (:math:`\operatorname{se}[\sqrt v] = \operatorname{se}[v] / (2\sqrt v)`).
UNITS, LAYERS = 256, 8
widths = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
schemes = {
    "kaiming_uniform_": (initbook.kaiming_uniform_, 9 / 5),
    "kaiming_normal_": (initbook.kaiming_normal_, 3.0),
}


def gain_spread(init, n):
    var_w = initbook.theory.kaiming_std(n, nonlinearity="relu") ** 2

    def sample(b, generator):
        w = init(torch.empty(b * UNITS, n), nonlinearity="relu", generator=generator)
        gains = w.double().square().sum(dim=1).reshape(b, UNITS) / (n * var_w)
        return gains.var(dim=1)  # one sample variance across units per layer

    return sample


spread = {}
for name, (init, kappa) in schemes.items():
    est = [
        initbook.stats.monte_carlo(gain_spread(init, n), trials=LAYERS, generator=gen)
        for n in widths
    ]
    sd = torch.tensor([math.sqrt(e.value) for e in est])
    sd_err = torch.tensor([e.stderr / (2 * math.sqrt(e.value)) for e in est])
    theory = torch.tensor([math.sqrt((kappa - 1) / n) for n in widths])
    spread[name] = (sd, sd_err, theory, kappa)
    z = (sd - theory) / sd_err
    print(f"{name}: largest deviation from sqrt((kappa - 1)/n) {z[z.abs().argmax()]:+.1f} SE")

fig, (ax0, ax1) = plt.subplots(
    2, 1, figsize=(7, 6), layout="constrained", sharex=True, height_ratios=[3, 2]
)
for (name, (sd, sd_err, theory, kappa)), color in zip(spread.items(), ["C0", "C1"], strict=True):
    ax0.errorbar(widths, sd, yerr=2 * sd_err, fmt="o", color=color, ms=4, capsize=2, label=name)
    ax0.plot(
        widths,
        theory,
        "-",
        color=color,
        lw=1,
        label=rf"$\sqrt{{(\kappa-1)/n}}$, $\kappa = {kappa:g}$",
    )
    ax1.errorbar(
        widths, sd / theory, yerr=2 * sd_err / theory, fmt="o", color=color, ms=4, capsize=2
    )
ax1.axhline(1.0, color="k", lw=1)
ax0.set(
    xscale="log",
    yscale="log",
    ylabel=r"sd of $\|w_i\|^2 / (n\sigma^2)$ across units",
    title=f"Per-unit gain spread, {UNITS} units × {LAYERS} layers per width",
)
ax0.legend(fontsize=8)
ax1.set(xlabel="fan-in n", ylabel="measured / theory", ylim=(0.8, 1.2))
ax1.set_xticks(widths, [str(n) for n in widths])
plt.show()

# %%
# Takeaway
# --------
# The spread of the per-unit gains is :math:`\sqrt{(\kappa - 1)/n}`: 0.35 for the normal and 0.22 for the
# uniform at :math:`n = 16`, 0.022 and 0.014 at :math:`n = 4096`, with the ratio
# :math:`\sqrt{(3-1)/(9/5-1)} = \sqrt{5/2} \approx 1.58` at every width. In wide layers the choice between
# :func:`initbook.kaiming_uniform_` and :func:`initbook.kaiming_normal_` hardly matters; in narrow ones the
# uniform gives the units more equal gains.
