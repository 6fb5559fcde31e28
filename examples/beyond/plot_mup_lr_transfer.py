r"""
Learning-rate transfer across widths: SP against μP
===================================================

A small version of the learning-rate sweep of :ref:`width-and-mup`: three-layer ReLU MLPs of widths 64, 128
and 256 on the book's MNIST split (pooled to 14x14), trained with Adam for 150 steps at seven learning rates,
in the standard parameterization and in μP with base width 64. :func:`initbook.mup.lr_sweep` trains all
models of one width at once as stacked tensors. Under SP the best learning rate falls as the width grows;
under μP it stays near the one found at width 64. One seed and a short run: the optimum of a single curve is
uncertain to about an octave, so read the trend, not the last digit.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup and sweep
# ---------------
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import initbook
from initbook import mup

torch.manual_seed(0)
images, labels = initbook.data.load_mnist("test", download=True)
pooled = F.avg_pool2d(images[:, None].float(), 2)[:, 0]
split = initbook.data.book_split(pooled, labels)
WIDTHS = [64, 128, 256]
LRS = [2.0**e for e in range(-11, -4)]

rows = mup.lr_sweep(
    split.x_train,
    split.y_train,
    WIDTHS,
    LRS,
    optimizer="adam",
    steps=150,
    batch_size=64,
    base_width=64,
    seed=0,
    eval_x=split.x_train[:2000],
    eval_y=split.y_train[:2000],
)

# %%
# Best learning rate per width
# ----------------------------
# :func:`initbook.mup.optimal_lr` refines the grid's best point with a parabola in log learning rate.
best = {}
for p in ["sp", "mup"]:
    for w in WIDTHS:
        losses = [r.loss for r in rows if r.parameterization == p and r.width == w]
        best[p, w] = mup.optimal_lr(LRS, losses)
        print(f"{p:>3} width {w:4d}: best lr 2^{math.log2(best[p, w]):+.2f}")

# %%
# Loss against learning rate
# --------------------------
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
for ax, p in zip(axes, ["sp", "mup"], strict=True):
    for w, color in zip(WIDTHS, ["C0", "C1", "C2"], strict=True):
        losses = [r.loss for r in rows if r.parameterization == p and r.width == w]
        ax.plot(LRS, losses, "o-", ms=3, color=color, label=f"width {w}")
        ax.axvline(best[p, w], color=color, ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="global learning rate (Adam)", title=p.upper())
    ax.set_xticks(LRS, [f"$2^{{{int(math.log2(v))}}}$" for v in LRS])
axes[1].set_title("μP (base width 64)")
axes[0].set_ylabel("training loss after 150 steps")
axes[0].legend(fontsize=8)
plt.show()
