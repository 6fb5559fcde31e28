r"""
Five initializations of a 20-layer ReLU MLP, forward and backward
=================================================================

The forward pass multiplies the second moment of the pre-activations by
:math:`\tfrac12 n_\text{in} \operatorname{Var}[w]` per ReLU layer, the backward pass multiplies the second
moment of the gradient by :math:`\tfrac12 n_\text{out} \operatorname{Var}[w]`. This example traces both
through a 20-layer ReLU network (784 inputs, 19 hidden layers of width 256, 10 outputs) under five
initializations: LeCun (:func:`initbook.lecun_normal_`), Xavier (:func:`initbook.xavier_normal_`), He with
``mode="fan_in"`` and ``mode="fan_out"`` (:func:`initbook.kaiming_normal_`), and PyTorch's default, and
compares every layer with the prediction. Measurements come from :func:`initbook.stats.trace`.

The derivation is in :ref:`xavier-glorot`; PyTorch's default is explained in :ref:`pytorch-defaults`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# The network and the five schemes
# --------------------------------
# Hidden layers are square, so there the fans agree and the schemes differ only in their scale. The first
# (:math:`784 \to 256`) and last (:math:`256 \to 10`) layers are not square, which is where ``fan_in``,
# ``fan_out`` and ``fan_avg`` part ways. :func:`initbook.init_model` applies a scheme to every layer and
# zeroes the biases; PyTorch's default is what ``nn.Linear`` does on construction, biases included
# (:math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})` for both).
import itertools

import torch
from torch import nn

import initbook

gen = torch.Generator().manual_seed(0)
widths = [784] + [256] * 19 + [10]
BATCH = 256
LAYERS = len(widths) - 1


def build():
    return initbook.nets.mlp(widths)  # Linear, ReLU, ..., Linear


fan_avg = [(a + b) / 2 for a, b in itertools.pairwise(widths)]
schemes = {
    # name: (how to initialize, weight variance per layer, bias variance per layer)
    "LeCun": (
        lambda m: initbook.init_model(m, "lecun_normal", generator=gen),
        [1 / n for n in widths[:-1]],
        0.0,
    ),
    "Xavier": (
        lambda m: initbook.init_model(m, "xavier_normal", generator=gen),
        [1 / n for n in fan_avg],
        0.0,
    ),
    "He, fan_in": (
        lambda m: initbook.init_model(m, "kaiming_normal", nonlinearity="relu", generator=gen),
        [2 / n for n in widths[:-1]],
        0.0,
    ),
    "He, fan_out": (
        lambda m: initbook.init_model(
            m, "kaiming_normal", mode="fan_out", nonlinearity="relu", generator=gen
        ),
        [2 / n for n in widths[1:]],
        0.0,
    ),
    "PyTorch default": (
        lambda m: m,  # nn.Linear initialized itself
        [1 / (3 * n) for n in widths[:-1]],
        [1 / (3 * n) for n in widths[:-1]],
    ),
}

# %%
# Trace and predict
# -----------------
# :func:`initbook.stats.trace` records the output of every ``Linear`` (the pre-activations) and the gradient
# reaching it. Its default loss is a fixed random projection of the output, so the gradient at the last
# layer has second moment 1 and is independent of the weights. The forward prediction is
# :func:`initbook.theory.propagate_variance`; the backward one multiplies, from the top down, by
# :math:`\tfrac12 n_\text{out} \operatorname{Var}[w]` per layer: :math:`n_\text{out}\operatorname{Var}[w]`
# through :math:`W^\top`, :math:`\tfrac12` through the ReLU below it.
x = torch.randn(BATCH, widths[0], generator=gen)
results = {}
for name, (initialize, weight_vars, bias_vars) in schemes.items():
    torch.manual_seed(0)  # the default initialization draws from the global generator
    model = initialize(build())
    t = initbook.stats.trace(model, x, layers=[nn.Linear], bins=0, generator=gen)
    forward = initbook.theory.propagate_variance(
        widths, weight_vars, ["relu"] * (LAYERS - 1) + ["linear"], bias_vars=bias_vars
    ).pre_var
    backward = [1.0]
    for l in range(LAYERS - 1, 0, -1):  # from the gradient at layer l + 1 down to layer l
        backward.append(backward[-1] * 0.5 * widths[l + 1] * weight_vars[l])
    results[name] = (
        [r.act_mean_sq for r in t],
        [r.grad_mean_sq for r in t],
        list(forward),
        backward[::-1],
    )
    fm, bm, fp, bp = results[name]
    print(
        f"{name:16s} forward: layer 20 {fm[-1]:.2e} (theory {fp[-1]:.2e});"
        f"  backward: layer 1 {bm[0]:.2e} (theory {bp[0]:.2e})"
    )

# %%
# Measured against theory
# -----------------------
# Dots: measured on 256 standard-normal inputs. Lines: predicted. One network per scheme is one draw of the
# weights, so the dots scatter around the lines; the scatter is largest at the last layer, which has only 10
# units, and whose 256 inputs are strongly correlated after 19 ReLU layers: its second moment is an average of
# few independent numbers.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
layer_index = range(1, LAYERS + 1)
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained", sharex=True)
for i, (name, (fm, bm, fp, bp)) in enumerate(results.items()):
    color = f"C{i}"
    ax0.semilogy(layer_index, fm, "o", color=color, ms=3.5, label=name)
    ax0.semilogy(layer_index, fp, "-", color=color, lw=1)
    ax1.semilogy(layer_index, bm, "o", color=color, ms=3.5, label=name)
    ax1.semilogy(layer_index, bp, "-", color=color, lw=1)
ax0.set(
    xlabel="layer",
    ylabel=r"$\mathbb{E}[y_l^2]$",
    title="forward: pre-activations (lines: theory)",
)
ax1.set(
    xlabel="layer",
    ylabel=r"$\mathbb{E}[(\partial\mathcal{L}/\partial y_l)^2]$",
    title="backward: gradients (lines: theory)",
)
ax0.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# LeCun and Xavier (the same on the square hidden layers) lose a factor 2 per ReLU layer in both directions:
# they are the right rules for linear layers. PyTorch's default loses a factor 6 per layer until the bias
# variance :math:`1/(3n)` takes over, forward; backward there is no bias to lean on, and the gradient
# shrinks by a factor 6 per hidden layer, 16 orders of magnitude from the top to the bottom. The two He modes keep one direction
# exactly flat and leave the other off only by the ratio of the widths at the ends (:math:`784/256` at the
# bottom, :math:`256/10` at the top), whatever the depth: the product of the per-layer factors telescopes.
