r"""
The tanh gain 5/3 is chaotic: gradients over 50 layers
=======================================================

PyTorch's :func:`torch.nn.init.calculate_gain` recommends 5/3 for tanh, i.e. a weight variance
:math:`\sigma_w^2 = 25/9` times :math:`1/n_\text{in}`. In the mean-field picture of
:ref:`order-and-chaos` that point is in the chaotic phase: the mean squared singular value of a layer's
Jacobian, :math:`\chi_1` (:func:`initbook.theory.chi1`), is above 1, so squared gradient norms grow by
:math:`\chi_1` per layer towards the input. This example measures the gradient reaching every layer of a
50-layer tanh network with :func:`initbook.stats.trace` and compares it with the product of
:math:`\chi_1(q^\ell)` along the iterated length map (:func:`initbook.theory.iterate_maps`), for gain 5/3,
the critical gain 1 and an ordered gain.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Where the gains sit
# -------------------
# With zero biases, the critical weight variance of tanh is exactly :math:`\sigma_w^2 = 1`
# (:func:`initbook.theory.critical_line`); with PyTorch's default bias variance :math:`1/(3n)` it is a
# little larger.

import matplotlib.pyplot as plt
import torch

from initbook import simulate, theory

DEPTH, WIDTH, SEEDS = 50, 128, 3
torch_bias = 1 / (3 * WIDTH)
crit_default_bias = float(theory.critical_line([torch_bias])[0])
for name, s2, b2 in [
    ("gain 5/3, zero bias", 25 / 9, 0.0),
    ("gain 5/3, default bias", 25 / 9, torch_bias),
    ("gain 1, zero bias", 1.0, 0.0),
    ("critical, default bias", crit_default_bias, torch_bias),
]:
    print(
        f"{name:24s} sigma_w2 = {s2:.3f}: chi1 = {theory.chi1(s2, b2):.3f}, "
        f"xi_grad = {theory.gradient_depth_scale(s2, b2):.2f}"
    )

# %%
# Gradients per layer, measured and predicted
# -------------------------------------------
# Square tanh layers with :math:`W_{ij} \sim \mathcal N(0, \sigma_w^2/n)` and :math:`b_i \sim \mathcal N(0,
# \sigma_b^2)`; a batch of 64 standard normal inputs; :func:`initbook.stats.trace`'s default loss, a random
# projection of the output, so that the gradient arriving at the top is i.i.d. standard normal. The
# measurement and the prediction are :func:`initbook.simulate.tanh_gradient_profile` and
# :func:`initbook.simulate.tanh_gradient_theory`, which the chapter :ref:`chaos-experiments` uses for 30
# layers of width 256.


def measured(sigma_w2, sigma_b2, seed):
    return simulate.tanh_gradient_profile(
        sigma_w2, sigma_b2, depth=DEPTH, width=WIDTH, batch=64, seed=seed
    )


def predicted(sigma_w2, sigma_b2):
    # q^1 = sigma_w2 * E[x^2] + sigma_b2; the gradient at layer l is prod_{k=l}^{L-1} chi1(q^k) times the top's
    return simulate.tanh_gradient_theory(sigma_w2, sigma_b2, depth=DEPTH)


configs = {
    "gain 5/3, zero bias": (25 / 9, 0.0),
    "gain 1, zero bias (critical)": (1.0, 0.0),
    "critical at the default bias variance": (crit_default_bias, torch_bias),
    "gain 0.8, zero bias (ordered)": (0.64, 0.0),
}
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ell = torch.arange(1, DEPTH + 1)
for k, (name, (s2, b2)) in enumerate(configs.items()):
    logs = torch.stack([measured(s2, b2, seed) for seed in range(SEEDS)]).log10()
    ax.plot(ell, logs.T, "o", ms=2, color=f"C{k}", alpha=0.5)
    ax.plot(ell, predicted(s2, b2).log10(), "-", color=f"C{k}", label=f"{name}")
    print(
        f"{name}: first layer / last layer = {10 ** logs[:, 0].mean():.3g} (measured, "
        f"mean of log over {SEEDS} networks), {float(predicted(s2, b2)[0]):.3g} (theory)"
    )
ax.set(
    xlabel=r"layer $\ell$",
    ylabel=r"$\log_{10}\ \overline{g_\ell^2} / \overline{g_L^2}$",
    title=r"squared gradients in a 50-layer tanh MLP (dots: 3 networks, lines: $\prod\chi_1$)",
)
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Gain 5/3 keeps the *activations* from shrinking through tanh, but it sits in the chaotic phase: the
# squared gradient at the first layer is thousands of times larger than at the last over 50 layers, as
# :math:`\chi_1^{L-\ell}` predicts. A smaller gain in the ordered phase makes it vanish geometrically. On
# the critical line the decay is at most algebraic: with zero biases (gain 1) the fixed point is
# :math:`q^* = 0`, which the length approaches only like :math:`1/\ell`, so :math:`\chi_1(q^\ell)`
# creeps up to 1 from below and the gradient shrinks by a power of the depth; with a small bias variance and
# the matching critical :math:`\sigma_w^2` (:func:`initbook.theory.critical_line`), :math:`q^* > 0`, and the
# gradient shrinks only while the length settles from :math:`q^1` to :math:`q^*`; the theory's product of
# :math:`\chi_1(q^\ell)` predicts all four curves.
