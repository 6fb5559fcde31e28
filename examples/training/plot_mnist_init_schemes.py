r"""
Five initializations of one MLP on MNIST: the first epoch
==========================================================

:ref:`Seed notebook 003 <seed-003>`'s MLP (784-512-256-128-64-10, ReLU) trained for one epoch on the book's MNIST split
(:func:`initbook.data.book_split`) from five initializations: :math:`\mathcal U(\pm 0.01)`, He normal and
uniform, Xavier normal (all through :func:`initbook.init_model`) and PyTorch's default. Before training, the
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
import itertools

import matplotlib.pyplot as plt
import torch
from torch import nn

import initbook

images, labels = initbook.data.load_mnist("test", download=True)
split = initbook.data.book_split(images, labels)
SIZES = [784, 512, 256, 128, 64, 10]


def mlp():
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        layers.append(nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def uniform_001(weight, fans, generator):
    return torch.nn.init.uniform_(weight, -0.01, 0.01, generator=generator)


schemes = {
    "U(±0.01)": ((uniform_001,), {}, [0.01**2 / 3] * 5, [0.0] * 5),
    "He normal": (
        ("kaiming_normal",),
        {"nonlinearity": "relu"},
        [2 / a for a in SIZES[:-1]],
        [0.0] * 5,
    ),
    "He uniform": (
        ("kaiming_uniform",),
        {"nonlinearity": "relu"},
        [2 / a for a in SIZES[:-1]],
        [0.0] * 5,
    ),
    "Xavier normal": (
        ("xavier_normal",),
        {},
        [2 / (a + b) for a, b in itertools.pairwise(SIZES)],
        [0.0] * 5,
    ),
    "PyTorch default": (
        None,
        {},
        [1 / (3 * a) for a in SIZES[:-1]],
        [1 / (3 * a) for a in SIZES[:-1]],
    ),
}

# %%
# Output variance at initialization
# ---------------------------------
# Measured on 2,000 training images, against the layer-by-layer prediction.
models = {}
for name, (args, kwargs, weight_vars, bias_vars) in schemes.items():
    torch.manual_seed(0)
    model = mlp()
    if args is not None:
        initbook.init_model(model, *args, generator=torch.Generator().manual_seed(0), **kwargs)
    models[name] = model
    with torch.no_grad():
        measured = model(split.x_train[:2000]).pow(2).mean().item()
    predicted = initbook.theory.propagate_variance(
        SIZES, weight_vars, ["relu"] * 4 + ["linear"], bias_vars=bias_vars
    ).pre_var[-1]
    print(f"{name:>16}: E[logit^2] measured {measured:.3g}, theory {predicted:.3g}")

# %%
# One epoch of SGD
# ----------------
# Same data order for every scheme (the shuffling seed is fixed), momentum 0.9, learning rate 0.01.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (name, model), color in zip(models.items(), ["C7", "C0", "C2", "C1", "C3"], strict=True):
    hist = initbook.train.fit(
        model,
        split.x_train,
        split.y_train,
        epochs=1,
        lr=0.01,
        momentum=0.9,
        heldout=(split.x_heldout, split.y_heldout),
        track_train_accuracy=False,
    )
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
