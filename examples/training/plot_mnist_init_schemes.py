r"""
Five initializations of one MLP on MNIST: the first epoch
==========================================================

:ref:`Seed notebook 003 <seed-003>`'s MLP (784-512-256-128-64-10, ReLU) trained for one epoch on the book's MNIST split
(:func:`initbook.data.load_book_split`) from five initializations: :math:`\mathcal U(\pm 0.01)`, He normal and
uniform, Xavier normal (all through :func:`initbook.init_model`) and PyTorch's default, built by
:func:`initbook.train.scheme_model`. Before training, the
output variance each scheme produces is compared with :func:`initbook.theory.propagate_variance`; then the
training losses show what those variances mean. The longer, multi-seed version is in
:ref:`does-initialization-matter`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Data and model
# --------------
# The official MNIST test split, verified by checksum; ``INITBOOK_DATA`` says where it is (see the README).
# :func:`initbook.train.scheme_model` builds the MLP and applies a scheme; the five schemes and their
# per-layer variances are defined once in :mod:`initbook.train`, for this script and the book's page.
import matplotlib.pyplot as plt
import torch

import initbook

initbook.plotting.use_book_style()
split = initbook.data.load_book_split()
SIZES = initbook.train.BOOK_SIZES

# %%
# Output variance at initialization
# ---------------------------------
# Measured on 2,000 training images, against the layer-by-layer prediction.
for name in initbook.train.SCHEMES:
    model = initbook.train.scheme_model(name, seed=0)
    with torch.no_grad():
        measured = model(split.x_train[:2000]).pow(2).mean().item()
    weight_vars, bias_vars = initbook.train.scheme_variances(name)
    predicted = initbook.theory.propagate_variance(
        SIZES, weight_vars, ["relu"] * 4 + ["linear"], bias_vars=bias_vars
    ).pre_var[-1]
    print(f"{name:>16}: E[logit^2] measured {measured:.3g}, theory {predicted:.3g}")

# %%
# One epoch of SGD
# ----------------
# :func:`initbook.train.train_schemes`: the same data order for every scheme, momentum 0.9, learning rate
# 0.01. The page trains three seeds for two epochs with the same call; its seed-0 runs start with exactly
# these steps.
histories = initbook.train.train_schemes(split, seeds=(0,), epochs=1)
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (name, (hist,)), color in zip(histories.items(), ["C7", "C0", "C2", "C1", "C3"], strict=True):
    smooth = hist.loss.unfold(0, 5, 5).mean(dim=1)
    ax.plot(torch.arange(smooth.numel()) * 5 + 2.5, smooth, color=color, label=name)
    print(f"{name:>16}: held-out accuracy after one epoch {100 * hist.heldout_accuracy[-1]:.1f} %")
ax.set(
    xlabel="step (batches of 100)",
    ylabel="training loss (mean of 5 steps)",
    yscale="log",
    title="784-512-256-128-64-10 ReLU MLP, first epoch",
)
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# The scheme whose initial output variance is a trillion times too small does not move in the first epoch;
# PyTorch's default, which shrinks the signal sixfold per layer, starts with a shorter plateau; He, Xavier
# and the uniform variant train at once. Initial variance predicts the start of training.
