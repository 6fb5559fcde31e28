r"""
Thirty ReLU layers: He trains, Xavier stalls
============================================

A CPU-sized version of He et al. (2015)'s 30-layer experiment: a ReLU MLP with 29 hidden layers of 128 units
on the book's MNIST split, initialized with :func:`initbook.kaiming_normal_` (through
:func:`initbook.init_model`) or Xavier. Xavier's variance :math:`1/n` halves the signal at every square ReLU layer,
so at the output its second moment is :math:`2^{-28}` (28 square hidden layers) times the first and last
layers' factors :math:`n_\text{in}/(n_\text{in}+n_\text{out})` times He's, about :math:`3\times10^{-9}`,
and the gradients shrink with it. One epoch shows the
difference; :ref:`very-deep-nets` has the longer run and the per-layer statistics.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup
# -----
import itertools
import math

import matplotlib.pyplot as plt
import torch

import initbook

initbook.plotting.use_book_style()
split = initbook.data.load_book_split()
DEPTH, WIDTH = 30, 128
SIZES = [784] + [WIDTH] * (DEPTH - 1) + [10]


def deep_mlp(scheme):
    torch.manual_seed(0)
    model = initbook.nets.mlp(SIZES)  # Linear, ReLU, ..., Linear
    kwargs = {"nonlinearity": "relu"} if scheme == "kaiming_normal" else {}
    return initbook.init_model(model, scheme, generator=torch.Generator().manual_seed(0), **kwargs)


# %%
# Per-layer signal at initialization
# ----------------------------------
# :func:`initbook.stats.trace` measures every layer's output on 256 images.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
out_sq = {}
for scheme, color in [("kaiming_normal", "C0"), ("xavier_normal", "C1")]:
    model = deep_mlp(scheme)
    rows = [r for r in initbook.stats.trace(model, split.x_train[:256]) if r.type == "Linear"]
    ax0.semilogy(
        range(1, DEPTH + 1), [r.act_mean_sq for r in rows], "o-", ms=3, color=color, label=scheme
    )
    hist = initbook.train.fit(
        model,
        split.x_train,
        split.y_train,
        epochs=1,
        lr=0.01,
        momentum=0.9,
        track_train_accuracy=False,
    )
    smooth = hist.loss.unfold(0, 5, 5).mean(dim=1)
    ax1.plot(torch.arange(smooth.numel()) * 5 + 2.5, smooth, color=color, label=scheme)
    print(
        f"{scheme}: output second moment at init {rows[-1].act_mean_sq:.2e}, "
        f"final loss {hist.epoch_loss[-1]:.3f}"
    )
    out_sq[scheme] = rows[-1].act_mean_sq
# Xavier over He, layer by layer: (2 / (n_in + n_out)) / (2 / n_in) = n_in / (n_in + n_out)
ratio = math.prod(a / (a + b) for a, b in itertools.pairwise(SIZES))
print(
    f"Xavier/He output second moment: measured {out_sq['xavier_normal'] / out_sq['kaiming_normal']:.3e}, "
    f"predicted {ratio:.3e} (2^-28 = {2.0**-28:.3e})"
)
ax0.set(xlabel="layer", ylabel=r"$\mathbb{E}[y_l^2]$", title="signal at initialization")
ax1.set(xlabel="step", ylabel="training loss (mean of 5 steps)", title="first epoch")
ax0.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# At depth 30, twenty-eight factors of one half and two milder ones make about :math:`3\times10^{-9}`: Xavier's
# network starts with no signal and no gradient, and its loss stays at :math:`\ln 10`. He's keeps both.
