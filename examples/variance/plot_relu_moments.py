r"""
What a ReLU keeps: the second moment is universal, the mean is not
==================================================================

For any input :math:`y` with a symmetric distribution,

.. math:: \mathbb E[\operatorname{relu}(y)^2] = \tfrac12\, \mathbb E[y^2],
    \qquad
    \mathbb E[\operatorname{relu}(y)] = \tfrac12\, \mathbb E|y| .

The first identity needs nothing but the symmetry (:func:`initbook.theory.relu_second_moment`); the second
depends on the shape of the distribution through :math:`\mathbb E|y|`. This example checks both for four
symmetric distributions with the same second moment :math:`\mathbb E[y^2] = 1`: Gaussian, uniform, Laplace,
and the product of two independent standard normals.

The derivation is in :ref:`relu-and-kaiming`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Four symmetric distributions with :math:`\mathbb E[y^2] = 1`
# ------------------------------------------------------------
# Each sampler draws from the distribution scaled to unit second moment, and :math:`\mathbb E|y|`
# is computed in closed form:
#
# ===================  ==========================================  ==========================================
# distribution         with :math:`\mathbb E[y^2] = 1`                 :math:`\mathbb E|y|`
# ===================  ==========================================  ==========================================
# Gaussian             :math:`\mathcal N(0, 1)`                    :math:`\sqrt{2/\pi}`
# uniform              :math:`\mathcal U(-\sqrt 3, \sqrt 3)`       :math:`\sqrt 3 / 2`
# Laplace              scale :math:`b = 1/\sqrt 2` (variance 2b²)  :math:`b = 1/\sqrt 2`
# product :math:`a x`  :math:`a, x \sim \mathcal N(0, 1)`          :math:`\mathbb E|a|\,\mathbb E|x| = 2/\pi`
# ===================  ==========================================  ==========================================
import math

import torch

gen = torch.Generator().manual_seed(0)
SAMPLES = 1_000_000
LAPLACE_B = 1 / math.sqrt(2)


def gaussian(count, generator):
    return torch.randn(count, generator=generator)


def uniform(count, generator):
    return torch.empty(count).uniform_(-math.sqrt(3), math.sqrt(3), generator=generator)


def laplace(count, generator):
    # the difference of two independent Exp(1) variables is Laplace with scale 1
    e = torch.empty(2, count).exponential_(1.0, generator=generator)
    return LAPLACE_B * (e[0] - e[1])


def product(count, generator):
    return gaussian(count, generator) * gaussian(count, generator)


distributions = {
    "Gaussian": (gaussian, math.sqrt(2 / math.pi)),
    "uniform": (uniform, math.sqrt(3) / 2),
    "Laplace": (laplace, LAPLACE_B),
    "product a·x": (product, 2 / math.pi),
}

# %%
# Measure both moments
# --------------------
# One call of :func:`initbook.stats.monte_carlo` per distribution: each draw contributes the pair
# :math:`(\operatorname{relu}(y), \operatorname{relu}(y)^2)`, and the estimate is a vector of two means,
# each with its standard error.
import initbook

mean_sq_in = 1.0
rows = []
for name, (sample, mean_abs) in distributions.items():
    est = initbook.stats.monte_carlo(
        lambda b, g, sample=sample: sample(b, g).clamp_min(0),
        statistic=lambda r: torch.stack([r, r.square()], dim=1),
        trials=SAMPLES,
        generator=gen,
        batch=250_000,
    )
    theory_mean = mean_abs / 2
    theory_sq = initbook.theory.relu_second_moment(mean_sq_in)
    rows.append((name, est, theory_mean, theory_sq))
    print(
        f"{name:12s} E[relu] = {est.value[0]:.4f} ± {est.stderr[0]:.4f} (theory {theory_mean:.4f})"
        f"   E[relu^2] = {est.value[1]:.4f} ± {est.stderr[1]:.4f} (theory {theory_sq:.4f})"
    )
gaussian_check = initbook.theory.relu_mean_gaussian(mean_sq_in)
print(f"relu_mean_gaussian(1) = {gaussian_check:.4f}, the Gaussian row's theory")

# %%
# Measured against theory
# -----------------------
# Bars: measured, with :math:`\pm 2` standard errors (they are about :math:`10^{-3}`, so barely visible);
# black ticks: theory. The right panel also shows the deviations in standard errors, which is the scale on
# which "agrees" is decided.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
names = [r[0] for r in rows]
pos = torch.arange(len(rows))
colors = [f"C{i}" for i in range(len(rows))]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
for ax, k, theory_key, title in [
    (axes[0], 0, 2, r"$\mathbb{E}[\mathrm{relu}(y)] = \frac{1}{2}\mathbb{E}|y|$"),
    (axes[1], 1, 3, r"$\mathbb{E}[\mathrm{relu}(y)^2] = \frac{1}{2}\mathbb{E}[y^2]$"),
]:
    values = [float(r[1].value[k]) for r in rows]
    errors = [2 * float(r[1].stderr[k]) for r in rows]
    ax.bar(pos, values, yerr=errors, color=colors, alpha=0.7, capsize=4)
    ax.plot(pos, [r[theory_key] for r in rows], "k_", ms=28, mew=2, label="theory")
    ax.set_xticks(pos, names, rotation=20)
    ax.set(title=title)
    ax.legend(loc="upper right", fontsize=8)
axes[0].set_ylim(0, 0.55)
axes[1].set_ylim(0, 0.65)
for i, (_, est, theory_mean, theory_sq) in enumerate(rows):
    z_mean = (float(est.value[0]) - theory_mean) / float(est.stderr[0])
    z_sq = (float(est.value[1]) - theory_sq) / float(est.stderr[1])
    axes[2].plot([i - 0.1], [z_mean], "o", color=colors[i])
    axes[2].plot([i + 0.1], [z_sq], "s", color=colors[i], mfc="none")
axes[2].axhspan(-3, 3, color="0.9", zorder=0, label=r"$\pm 3$ SE")
axes[2].plot([], [], "ko", label="mean")
axes[2].plot([], [], "ks", mfc="none", label="second moment")
axes[2].set_xticks(pos, names, rotation=20)
axes[2].set(ylim=(-5, 5), ylabel="(measured − theory) / SE", title="deviations")
axes[2].legend(fontsize=8, ncols=3, loc="upper center")
plt.show()

# %%
# Takeaway
# --------
# Every symmetric input loses exactly half of its second moment in a ReLU: this is the factor
# :math:`\tfrac12` behind the gain :math:`\sqrt 2` of :func:`initbook.kaiming_normal_`, and it holds for
# products and sums of products alike. The mean of the output ranges from :math:`1/\pi \approx 0.318` to
# :math:`\sqrt 3/4 \approx 0.433` with the shape, which is why seed 001's scalar experiment (one product of
# two normals) measured about :math:`0.31` rather than the Gaussian :math:`0.399`.
