r"""
Jacobian spectra at depth: ReLU vs tanh, Gaussian vs orthogonal
===============================================================

The input-output Jacobian :math:`J = D_L W_L \cdots D_1 W_1` of a deep random network decides how
gradients flow. Every network here is at criticality, :math:`\chi_1 = 1`, so the *mean* squared singular
value :math:`\mathbb E[\lambda] = \mathbb E[s^2]` is 1 at every depth; what differs is the *spread*. Free
probability (Pennington et al. 2017) predicts
:math:`\operatorname{Var}[\lambda] = L\,(v_W + v_D)` with :math:`v_W = 1` for Gaussian and 0 for orthogonal
weights and :math:`v_D = 1` for ReLU: only orthogonal tanh networks near :math:`q^* = 0` stay close to an
isometry. Spectra come from :func:`initbook.stats.jacobian_singular_values` (one batched matrix product per
layer for all networks), theory from :func:`initbook.theory.jacobian_spectrum_moments` and, for Gaussian
linear networks at finite width, :func:`initbook.theory.linear_jacobian_moments`. The derivation is in
:ref:`dynamical-isometry`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup: five critical networks
# -----------------------------
# tanh sits on the critical line at a small bias variance, :math:`\sigma_b^2 = 10^{-3}`, where
# :func:`initbook.theory.critical_sigma_w2` gives :math:`\sigma_w^2` and the fixed point
# :math:`q^*` (:func:`initbook.theory.fixed_point_q`) is small. The inputs start at :math:`q^*`.
import matplotlib.pyplot as plt
import torch

from initbook import stats, theory

# Thousands of small batched products: one thread avoids OpenMP's per-call synchronization, which costs more
# than it saves at these sizes (and far more on a busy machine).
torch.set_num_threads(1)

WIDTH, NETS = 128, 32
DEPTHS = [1, 2, 4, 8, 16]
SIGMA_B2 = 1e-3
tanh_w2 = theory.critical_sigma_w2(SIGMA_B2, "tanh")
print(f"tanh: sigma_w^2 = {tanh_w2:.4f}, q* = {theory.fixed_point_q(tanh_w2, SIGMA_B2):.4f}")

configs = {  # label: (phi, weights, sigma_w2, sigma_b2)
    "linear, Gaussian": ("linear", "gaussian", 1.0, 0.0),
    "ReLU, Gaussian": ("relu", "gaussian", 2.0, 0.0),
    "ReLU, orthogonal": ("relu", "orthogonal", 2.0, 0.0),
    "tanh, Gaussian": ("tanh", "gaussian", tanh_w2, SIGMA_B2),
    "tanh, orthogonal": ("tanh", "orthogonal", tanh_w2, SIGMA_B2),
}
spectra = {}
for seed, (label, (phi, weights, w2, b2)) in enumerate(configs.items()):
    spectra[label] = stats.jacobian_singular_values(
        DEPTHS,
        WIDTH,
        phi=phi,
        weights=weights,
        sigma_w2=w2,
        sigma_b2=b2,
        nets=NETS,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float32,
    )

# %%
# Singular values at depth 16
# ---------------------------
# A histogram of :math:`\log_{10} s` over all networks. Values below :math:`10^{-4}` are not drawn; their
# fraction is in the legend: ReLU's exact zeros (the units the last layer switched off) and the tail of tiny
# singular values of Gaussian products.
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
bins = torch.linspace(-4, 2, 61)
for label, s in spectra.items():
    s_l = s[-1].flatten()
    small = s_l < 1e-4
    ax.hist(
        s_l[~small].log10(),
        bins=bins,
        histtype="step",
        lw=1.5,
        label=f"{label} ({float(small.double().mean()):.0%} below $10^{{-4}}$)",
    )
ax.set(
    xlabel=r"$\log_{10} s$",
    ylabel="count",
    title=f"singular values of J, depth {DEPTHS[-1]}, width {WIDTH}, {NETS} networks each",
)
ax.legend(fontsize=8)
plt.show()

# %%
# The spread grows linearly with depth, unless weights are orthogonal and :math:`\phi' \approx 1`
# ------------------------------------------------------------------------------------------------
# For each network, the mean and variance of :math:`\lambda = s^2` over its spectrum; points are averages
# over networks with one standard error (:func:`initbook.stats.monte_carlo`), lines the wide-limit theory.
# The dotted line is the exact finite-width result for the Gaussian linear network.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for (label, (phi, weights, w2, b2)), color in zip(
    configs.items(), ["k", "C3", "C1", "C0", "C2"], strict=True
):
    lam = spectra[label].double().square()
    mean = stats.monte_carlo(lambda b, g, lam=lam: lam.mean(-1).T, trials=NETS)
    spread = stats.monte_carlo(lambda b, g, lam=lam: lam.var(-1, unbiased=False).T, trials=NETS)
    wide = [theory.jacobian_spectrum_moments(d, w2, b2, phi, weights) for d in DEPTHS]
    ax0.errorbar(DEPTHS, mean.value, 2 * mean.stderr, fmt="o", ms=4, color=color, label=label)
    ax0.plot(DEPTHS, [m.mean for m in wide], "-", color=color, lw=1)
    ax1.errorbar(DEPTHS, spread.value, 2 * spread.stderr, fmt="o", ms=4, color=color, label=label)
    ax1.plot(DEPTHS, [m.variance for m in wide], "-", color=color, lw=1)
    print(
        f"{label:17s} depth {DEPTHS[-1]}: Var[lambda] = {spread.value[-1]:7.2f} "
        f"± {spread.stderr[-1]:.2f}, wide-limit theory {wide[-1].variance:6.2f}"
    )
exact = [theory.linear_jacobian_moments(d, WIDTH).variance for d in DEPTHS]
ax1.plot(DEPTHS, exact, ":", color="k", lw=1.5, label=f"linear, Gaussian, exact at n = {WIDTH}")
ax0.set(
    xscale="log",
    xlabel="depth L",
    ylabel=r"mean of $\lambda = s^2$",
    ylim=(0.5, 1.5),
    title=r"$\mathbb{E}[\lambda] = \chi_1^L = 1$",
)
ax1.set(
    xscale="log",
    yscale="log",
    xlabel="depth L",
    ylabel=r"variance of $\lambda$ over the spectrum",
    title=r"$\mathrm{Var}[\lambda] = L\,(v_W + v_D)$ (lines)",
)
ax1.legend(fontsize=7)
plt.show()

# %%
# Takeaway
# --------
# All five networks are critical, yet only orthogonal tanh keeps the spectrum concentrated near 1. A ReLU
# zeroes about half of the directions at every layer, so even orthogonal weights leave a spread that grows
# like :math:`L`; Gaussian weights add another :math:`L`. The wide-limit lines have finite-width
# corrections of relative size about :math:`L/n` (for the Gaussian linear network the dotted exact line
# shows them), and at large :math:`L/n` the per-network spread becomes heavy-tailed, so a few dozen
# networks no longer pin its mean down: this is why the sweep stops at :math:`L = 16` for
# :math:`n = 128`.
