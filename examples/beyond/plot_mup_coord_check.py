r"""
Coordinate check: SP against μP
===============================

The standard diagnostic of the maximal-update parameterization (Yang et al., 2022): train MLPs of several
widths for a few steps and plot the RMS of each layer's *change* since initialization against the width.
Under the standard parameterization (He initialization, one learning rate,
:func:`initbook.mup.mup_init_` with ``parameterization="sp"``) the hidden layer and the output move more the
wider the network; under μP (:func:`initbook.mup.mup_param_groups`) every curve is flat.
:func:`initbook.mup.coord_check` returns the tidy table plotted here; :ref:`width-and-mup` derives the slopes.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Setup
# -----
# 64 MNIST training images of the book's split, pooled to 14x14; Adam with the global learning rate
# :math:`2^{-7}`, three steps, three initializations per width, base width 64.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import initbook
from initbook import mup

torch.manual_seed(0)
images, labels = initbook.data.load_mnist("test", download=True)
pooled = F.avg_pool2d(images[:, None].float(), 2)[:, 0]
split = initbook.data.book_split(pooled, labels)
x, y = split.x_train[:64], split.y_train[:64]
WIDTHS = [64, 128, 256, 512, 1024]

rows = {
    p: mup.coord_check(
        x, y, WIDTHS, parameterization=p, optimizer="adam", lr=2.0**-7, steps=3, seeds=3
    )
    for p in ["sp", "mup"]
}

# %%
# The table and the slopes
# ------------------------
# One row per (width, step, layer). The log-log slope of the change against the width is the exponent
# of the derivation: about 1 for SP's hidden layer, 0 for every μP layer.
for p, table in rows.items():
    for layer in (1, 2, 3):
        vals = [r.delta_rms for r in table if r.step == 3 and r.layer == layer]
        print(f"{p:>3} layer {layer}: slope {mup.scaling_exponent(WIDTHS, vals):+.2f}")

# %%
# The coordinate check
# --------------------
fig, axes = plt.subplots(2, 3, figsize=(10, 6), layout="constrained", sharex=True)
for i, p in enumerate(["sp", "mup"]):
    for layer in (1, 2, 3):
        ax = axes[i, layer - 1]
        for step in (1, 2, 3):
            sel = [r for r in rows[p] if r.step == step and r.layer == layer]
            ax.errorbar(
                [r.width for r in sel],
                [r.delta_rms for r in sel],
                yerr=[r.delta_stderr for r in sel],
                fmt="o-",
                ms=3,
                label=f"step {step}",
            )
        ax.set(
            xscale="log", yscale="log", title=f"{p.upper() if p == 'sp' else 'μP'}: layer {layer}"
        )
        ax.set_xticks(WIDTHS, [str(w) for w in WIDTHS])
        if i == 1:
            ax.set_xlabel("width")
    axes[i, 0].set_ylabel(r"RMS of $\Delta h$")
axes[0, 0].legend(fontsize=8)
plt.show()
