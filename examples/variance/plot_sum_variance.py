r"""
The variance of a sum across widths: only the weight variance matters
=====================================================================

Entry :math:`i` of :math:`y = a x` is a sum of :math:`n` products, and

.. math:: \operatorname{Var}[y_i] = n \operatorname{Var}[a]\, \mathbb E[x^2]

(:func:`initbook.theory.sum_variance`) for *any* zero-mean weights drawn independently of each other and of
the inputs. This example measures :math:`\operatorname{Var}[y_i]` for widths from 16 to 2048 with normal,
uniform and Rademacher (:math:`\pm 1`) weights of the same variance, and with inputs whose entries are
strongly correlated, each with a standard error from :func:`initbook.stats.monte_carlo`.

The derivation, and the three assumptions it needs, are in :ref:`variance-of-a-sum`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Weights and inputs
# ------------------
# All weights have variance :math:`1`: :math:`\mathcal N(0, 1)`, :math:`\mathcal U(-\sqrt 3, \sqrt 3)`
# and :math:`\pm 1` with equal probability. The correlated inputs are :math:`x = L z` with
# :math:`z \sim \mathcal N(0, I)` and :math:`L = [\sqrt{1-\rho}\, I \mid \sqrt\rho\, \mathbf 1]`, i.e.
#
# .. math:: x_k = \sqrt{1 - \rho}\, z_k + \sqrt{\rho}\, u, \qquad \operatorname{Var}[x_k] = 1,
#    \qquad \operatorname{Corr}[x_k, x_l] = \rho \ (k \ne l),
#
# with one shared :math:`u \sim \mathcal N(0, 1)`; we take :math:`\rho = 0.5`. The plain sum
# :math:`\sum_k x_k` of such inputs has variance :math:`n + \rho\, n(n-1)`, quadratic in :math:`n`; weighted
# by independent zero-mean weights the cross terms vanish and :math:`n` remains.
import math

import torch

gen = torch.Generator().manual_seed(0)
RHO = 0.5


def normal_weights(shape, generator):
    return torch.randn(shape, generator=generator)


def uniform_weights(shape, generator):
    return torch.empty(shape).uniform_(-math.sqrt(3), math.sqrt(3), generator=generator)


def rademacher_weights(shape, generator):
    return torch.randint(0, 2, shape, generator=generator, dtype=torch.float32).mul_(2).sub_(1)


def independent_inputs(trials, n, generator):
    return torch.randn(trials, n, generator=generator)


def correlated_inputs(trials, n, generator):
    z = torch.randn(trials, n, generator=generator)
    u = torch.randn(trials, 1, generator=generator)
    return math.sqrt(1 - RHO) * z + math.sqrt(RHO) * u


cases = {
    "normal weights": (normal_weights, independent_inputs),
    "uniform weights": (uniform_weights, independent_inputs),
    "Rademacher weights": (rademacher_weights, independent_inputs),
    f"normal weights, correlated inputs (ρ = {RHO})": (normal_weights, correlated_inputs),
}

# %%
# Monte Carlo over widths
# -----------------------
# One trial draws one input :math:`x` and :math:`R = 4` rows of :math:`a` (the other rows are never
# looked at, so they are not drawn), and returns the mean of :math:`y_i^2` over those rows. The rows share
# :math:`x`, so the trial, not the row, is the independent unit that the standard error counts.
# :math:`\mathbb E[y_i] = 0`, so :math:`\operatorname{Var}[y_i] = \mathbb E[y_i^2]`.
import initbook

widths = [16, 32, 64, 128, 256, 512, 1024, 2048]
TRIALS, ROWS = 500, 4


def make_sampler(n, draw_weights, draw_inputs):
    def sample(trials, generator):
        x = draw_inputs(trials, n, generator)
        a = draw_weights((trials, ROWS, n), generator)
        return torch.einsum("trk,tk->tr", a, x)  # (trials, ROWS): y_i for R rows per trial

    return sample


estimates = {}
for name, (draw_weights, draw_inputs) in cases.items():
    estimates[name] = [
        initbook.stats.monte_carlo(
            make_sampler(n, draw_weights, draw_inputs),
            statistic="mean_sq",
            trials=TRIALS,
            generator=gen,
            batch=250,
        )
        for n in widths
    ]
theory = [initbook.theory.sum_variance(n, 1.0, 1.0) for n in widths]
for name, row in estimates.items():
    z = [(e.value - t) / e.stderr for e, t in zip(row, theory, strict=True)]
    print(f"{name:45s} largest deviation {max(z, key=abs):+.1f} SE")

# %%
# Measured against :math:`n \operatorname{Var}[a]\, \mathbb E[x^2]`
# -----------------------------------------------------------------
# Top: the variance on log–log axes, with the theory line. Bottom: the ratio measured/theory with
# :math:`\pm 2` standard errors; the four cases are shifted sideways a little so that their bars do not
# overlap.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
fig, (ax0, ax1) = plt.subplots(
    2, 1, figsize=(7, 6), layout="constrained", sharex=True, height_ratios=[3, 2]
)
ax0.plot(widths, theory, "k-", lw=1, label=r"theory $n \operatorname{Var}[a]\, \mathbb{E}[x^2]$")
ax1.axhline(1.0, color="k", lw=1)
markers = ["o", "s", "^", "D"]
for i, (name, row) in enumerate(estimates.items()):
    shift = 1.06 ** (i - 1.5)
    xs = [n * shift for n in widths]
    values = torch.tensor([e.value for e in row])
    errors = torch.tensor([e.stderr for e in row])
    scale = torch.tensor(theory)
    ax0.plot(xs, values, markers[i], color=f"C{i}", ms=4, label=name)
    ax1.errorbar(
        xs,
        values / scale,
        yerr=2 * errors / scale,
        fmt=markers[i],
        color=f"C{i}",
        ms=4,
        capsize=2,
    )
ax0.set(
    xscale="log",
    yscale="log",
    ylabel=r"$\mathrm{Var}[(a x)_i]$",
    title=f"Variance of one entry of a @ x ({TRIALS} trials per point)",
)
ax0.legend(fontsize=8)
ax1.set(xlabel="width n", ylabel="measured / theory")
ax1.set_xticks(widths, [str(n) for n in widths])
plt.show()

# %%
# Takeaway
# --------
# The three weight distributions give the same variance at every width: the rule sees only
# :math:`\operatorname{Var}[a]`. Correlated inputs do not bias it either, because the cross terms
# :math:`\mathbb E[a_{ik} a_{il}]\,\mathbb E[x_k x_l]` vanish through the weights; what they cost is
# precision. All entries of one input share the random :math:`\lVert x\rVert^2/n`, whose relative
# fluctuation is about :math:`\sqrt{2/n}` for independent inputs but :math:`\sqrt 2\,\rho` for these at
# every width, hence the wider error bars. The rule is what :func:`initbook.lecun_normal_` and
# :func:`initbook.kaiming_normal_` build on.
