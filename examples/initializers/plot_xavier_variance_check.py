r"""
Checking Xavier initialization with error bars, on layers that are not square
=============================================================================

:ref:`Seed notebook 004 <seed-004>` checks ``xavier_normal_`` by comparing the empirical variance of one
:math:`100 \times 100` weight with :math:`2/(n_\text{in} + n_\text{out})`, computing both fans as
``len(weight)``, the number of rows. On a square layer that happens to be right. This example does the check
properly: :func:`initbook.xavier_normal_` and :func:`initbook.xavier_uniform_` on linear and convolutional
weights of many shapes, with fans from :func:`initbook.compute_fans`, and every deviation expressed in
standard errors of the sample variance.

The derivation of :math:`2/(n_\text{in} + n_\text{out})` is in :ref:`xavier-glorot`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Shapes, fans and the standard error of a sample variance
# --------------------------------------------------------
# Weights are stored as :math:`(n_\text{out}, n_\text{in}, k_1, k_2)`; for a convolution the receptive field
# :math:`k_1 k_2` multiplies both fans. The sample variance :math:`s^2` of :math:`N` i.i.d. weights of
# variance :math:`\sigma^2` and kurtosis :math:`\kappa` has standard error
# :math:`\sigma^2 \sqrt{2/(N-1)}` for a normal (:math:`\kappa = 3`) and about
# :math:`\sigma^2\sqrt{(\kappa - 1)/N} = \sigma^2 \sqrt{4/(5N)}` for a uniform (:math:`\kappa = 9/5`).
import math

import torch

import initbook

gen = torch.Generator().manual_seed(0)
shapes = [
    (100, 100),  # seed 004's layer
    (2, 100),  # seed 004's output layer
    (100, 2),
    (10, 64),
    (256, 16),
    (512, 784),
    (10, 784),
    (1000, 50),
    (64, 3, 7, 7),  # ResNet's first convolution
    (128, 64, 3, 3),
    (32, 16, 5, 5),
    (16, 1, 3, 3),
    (256, 128, 1, 1),
]
schemes = {
    "xavier_normal_": (initbook.xavier_normal_, lambda v, count: v * math.sqrt(2 / (count - 1))),
    "xavier_uniform_": (initbook.xavier_uniform_, lambda v, count: v * math.sqrt(4 / (5 * count))),
}

# %%
# Measure
# -------
rows = []
for shape in shapes:
    fan_in, fan_out = initbook.compute_fans(shape)
    target = 2 / (fan_in + fan_out)
    seed004 = 2 / (len(torch.empty(shape)) + len(torch.empty(shape)))  # 2 / (rows + rows)
    result = {}
    for name, (init, stderr) in schemes.items():
        w = init(torch.empty(shape), generator=gen).double()
        result[name] = (w.var().item(), stderr(target, w.numel()))
    rows.append((shape, fan_in, fan_out, target, seed004, result))

print(f"{'shape':>18s} {'fans':>11s} {'2/(in+out)':>10s}  normal (SE)   uniform (SE)  seed 004")
for shape, fan_in, fan_out, target, seed004, result in rows:
    z = {name: (v - target) / se for name, (v, se) in result.items()}
    print(
        f"{shape!s:>18s} {fan_in:5d},{fan_out:5d} {target:10.6f}"
        f"  {z['xavier_normal_']:+8.2f}     {z['xavier_uniform_']:+8.2f}     {seed004:.6f}"
    )

# %%
# Measured against theory
# -----------------------
# Left: the measured variance against :math:`2/(n_\text{in} + n_\text{out})` (on the diagonal when they
# agree), and seed 004's ``len(w)``-based value (crosses), which is off the diagonal for every non-square
# layer. Right: each deviation in standard errors; about 99.7% of correct measurements fall in the grey
# :math:`\pm 3` band.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
labels = ["×".join(map(str, shape)) for shape, *_ in rows]
targets = [r[3] for r in rows]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained", width_ratios=[1, 1.4])
line = [min(targets) / 2, max(targets) * 2]
ax0.plot(line, line, "k-", lw=0.8)
for name, color, marker in [("xavier_normal_", "C0", "o"), ("xavier_uniform_", "C1", "s")]:
    ax0.plot(targets, [r[5][name][0] for r in rows], marker, color=color, mfc="none", label=name)
ax0.plot(targets, [r[4] for r in rows], "x", color="C3", label="seed 004: 2 / (2 len(w))")
ax0.set(
    xscale="log",
    yscale="log",
    xlabel=r"theory $2/(n_\mathrm{in} + n_\mathrm{out})$",
    ylabel="variance",
    title="measured variance (and seed 004's prediction)",
)
ax0.legend(fontsize=8)

pos = torch.arange(len(rows), dtype=torch.float64)
ax1.axhspan(-3, 3, color="0.9", zorder=0, label=r"$\pm 3$ SE")
ax1.axhline(0, color="k", lw=0.8)
for name, color, marker, shift in [
    ("xavier_normal_", "C0", "o", -0.12),
    ("xavier_uniform_", "C1", "s", 0.12),
]:
    z = [(r[5][name][0] - r[3]) / r[5][name][1] for r in rows]
    ax1.plot(pos + shift, z, marker, color=color, label=name)
ax1.set_xticks(pos, labels, rotation=60, ha="right", fontsize=8)
ax1.set(ylim=(-5, 5), ylabel="(measured − theory) / SE", title="deviation in standard errors")
ax1.legend(fontsize=8, ncols=3, loc="upper center")
plt.show()

# %%
# Takeaway
# --------
# Every measured variance lies within a few standard errors of :math:`2/(n_\text{in} + n_\text{out})`
# computed from the true fans, for linear and convolutional shapes alike. Seed 004's ``len(w)`` is the
# number of output units: it gives the right answer for the square :math:`100 \times 100` layer and is off
# by more than a factor of 20 on some of the others (for a convolution it also misses the receptive
# field). A check without a standard error cannot tell a bug from noise; :func:`initbook.compute_fans` is
# the one place the fans are read from a shape.
