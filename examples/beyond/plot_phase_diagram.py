r"""
The order-to-chaos phase diagram of tanh networks, simulated
============================================================

Poole et al. (2016) and Schoenholz et al. (2017) split random tanh networks into an ordered and a chaotic
phase by :math:`\chi_1`, the per-layer growth of a small perturbation (at a fixed point :math:`q^* > 0` also
the slope of the correlation map at :math:`c = 1`). Here 176 random networks, one per
:math:`(\sigma_w^2, \sigma_b^2)` cell, are simulated in one batched computation with
:func:`initbook.simulate.chi1_grid` on :func:`initbook.stats.mean_field_network` (the weights of a layer are one ``(configs, n, n)`` tensor and the
layer is one :func:`torch.bmm`). Each network measures :math:`\chi_1` as the growth of a small perturbation
per layer, and the theory's critical line :func:`initbook.theory.critical_line` is drawn on top. A second
panel shows, at :math:`\sigma_b^2 = 0.05`, how two inputs' correlation approaches its fixed point, against
the iterated maps and the depth scale :math:`\xi_c` (:func:`initbook.theory.correlation_depth_scale`). See
:ref:`order-and-chaos` for the theory and :ref:`chaos-experiments`, which computes the same phase diagram.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import torch

from initbook import simulate, theory

SB = 0.05

# %%
# :math:`\chi_1` from 176 networks in one batch
# ---------------------------------------------
# The grid, sizes and seed of the chapter :ref:`chaos-experiments`, through the same function,
# :func:`initbook.simulate.chi1_grid`: one network of width 128 and 24 layers per cell, each starting at its
# own fixed point :math:`q^*` (:func:`initbook.theory.fixed_point_q`). The per-layer squared-norm ratio of the
# perturbation is averaged over layers 5-24, then its logarithm taken (the mean of the logs would be biased
# low by half their variance). With one network per cell the estimate is noisy near the line, where
# :math:`\ln\chi_1` is small.
sw2_axis = torch.linspace(0.6, 4.0, 16, dtype=torch.float64)
sb2_axis = torch.linspace(0.0, 0.3, 11, dtype=torch.float64)
log_chi1 = simulate.chi1_grid(
    sw2_axis, sb2_axis, width=128, depth=24, generator=torch.Generator().manual_seed(1)
)
W2, B2 = torch.meshgrid(sw2_axis, sb2_axis, indexing="ij")

sb2_fine = torch.linspace(0.0, 0.3, 61, dtype=torch.float64)
line = theory.critical_line(sb2_fine)

# %%
# How fast two inputs reach their fixed-point correlation
# -------------------------------------------------------
# Four weight variances at :math:`\sigma_b^2 = 0.05`, 32 networks each of width 1000
# (:func:`initbook.simulate.correlation_runs`, which the chapter uses for 30 weight variances), two inputs
# starting at :math:`c^0 = 0.5`. The theory (:func:`initbook.theory.iterate_maps`) predicts the whole curve;
# its tail falls like :math:`e^{-\ell/\xi_c}`.
NETS, DEPTH = 32, 40
sw2_line = torch.tensor([1.0, 1.4, 2.5, 4.0], dtype=torch.float64)
c_all = simulate.correlation_runs(
    sw2_line,
    SB,
    nets=NETS,
    width=1000,
    depth=DEPTH,
    c0=0.5,
    generator=torch.Generator().manual_seed(1),
)
c_mean = c_all.mean(dim=1)
c_se = c_all.std(dim=1) / NETS**0.5
c_star = torch.tensor([theory.fixed_point_c(float(s), SB) for s in sw2_line])
xi_c = torch.tensor([theory.correlation_depth_scale(float(s), SB) for s in sw2_line])

# %%
# The figure
# ----------
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ax0.grid(False)
lim = float(log_chi1.abs().max())
grid = (W2.numpy(), B2.numpy(), log_chi1.numpy())  # matplotlib wants arrays, not tensors
im = ax0.pcolormesh(*grid, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
ax0.plot(line, sb2_fine, "k-", lw=2, label=r"theory: $\chi_1 = 1$")
ax0.contour(*grid, levels=[0.0], colors="w", linestyles="--")
ax0.plot([], [], "w--", label=r"simulation: $\ln \hat\chi_1 = 0$")
fig.colorbar(im, ax=ax0, label=r"simulated $\ln\chi_1$ per layer")
ax0.set(xlabel=r"$\sigma_w^2$", ylabel=r"$\sigma_b^2$", title="ordered (blue) and chaotic (red)")
ax0.legend(fontsize=8, loc="upper left", facecolor="0.85")

layers = torch.arange(DEPTH + 1)
for k, s in enumerate(sw2_line.tolist()):
    pred = theory.iterate_maps(1.0, 0.5, s, SB, DEPTH).c
    label = rf"$\sigma_w^2 = {s}$, $\xi_c = {float(xi_c[k]):.1f}$"
    ax1.semilogy(layers, (c_mean[k] - c_star[k]).abs(), "o", ms=3, color=f"C{k}", label=label)
    ax1.semilogy(layers, (pred - c_star[k]).abs(), "-", color=f"C{k}", lw=1)
    if 6 * xi_c[k] < DEPTH:
        ax1.axvline(6 * float(xi_c[k]), color=f"C{k}", ls=":", lw=1)
noise = float(2 * c_se[2:, -10:].mean())
ax1.axhline(noise, color="0.5", ls="--", lw=1, label="2 standard errors (chaotic)")
ax1.set(
    xlabel=r"layer $\ell$",
    ylabel=r"$|\bar c^\ell - c^*|$",
    ylim=(1e-5, 1),
    title=rf"$\sigma_b^2 = {SB}$; dots: simulated, lines: theory",
)
ax1.plot([], [], "k:", lw=1, label=r"$6\,\xi_c$ (where below 40)")
ax1.legend(fontsize=7)
plt.show()

# %%
# Reading the figure
# ------------------
# The simulated boundary between shrinking and growing perturbations (white) lies on the critical line
# computed by quadrature (black). In the bottom row, :math:`\sigma_b^2 = 0`, the blue cells have
# :math:`q^* = 0`: a perturbation shrinks there, but the signal shrinks as fast, so correlations freeze
# instead of merging (:ref:`see the chapter <trivial-fixed-point>`). On the right, the distance of the
# mean correlation from its fixed point follows the iterated maps and falls by a factor :math:`e` every
# :math:`\xi_c` layers, most slowly near the critical :math:`\sigma_w^2` (here 1.76), where :math:`\xi_c`
# diverges. By :math:`6\xi_c` layers (dotted) it has fallen by :math:`e^{-6} \approx 0.0025`: a network
# much deeper than that maps every pair of inputs to the same correlation :math:`c^*`, whatever they
# looked like at the input. In the chaotic phase the simulation reaches the finite-width noise (dashed)
# first.
for k, s in enumerate(sw2_line.tolist()):
    print(
        f"sigma_w2 = {s:.2f}: c* = {float(c_star[k]):.3f}, xi_c = {float(xi_c[k]):5.2f}, "
        f"simulated c^{DEPTH} = {float(c_mean[k, -1]):.4f} +- {float(c_se[k, -1]):.4f}"
    )
