r"""
GRU memory at initialization: the update-gate bias and its sign
===============================================================

torch's GRU keeps a fraction :math:`z_t` of its old state, :math:`h_t = (1 - z_t) \odot n_t + z_t \odot
h_{t-1}`, so along that direct path a gradient is multiplied by the update gate at every step, and a
lag of :math:`k` steps multiplies its square by :math:`(\mathbb E[z^2])^k` with
:math:`z = \sigma(b_z + \sqrt q\,\zeta)`, :math:`\zeta \sim \mathcal N(0, 1)`
(:func:`initbook.theory.gate_memory_time`). This example sets the update-gate bias :math:`b_z` of an
``nn.GRUCell`` with :func:`initbook.init.gru_update_bias_`, measures the squared gradient norm of
:math:`\partial h_k/\partial h_0` with :func:`initbook.stats.gated_cell_jacobian`, and compares it with the
theory. A positive :math:`b_z` lengthens the memory, a negative one shortens it: the same sign as the
LSTM's forget-gate bias. The derivation is in :ref:`recurrent-networks`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Measure
# -------
# One ``nn.GRUCell`` of width 32 per bias (torch's default initialization, then the bias), 64 Gaussian input
# sequences of 20 steps each.
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

import initbook

torch.set_num_threads(1)
gen = torch.Generator().manual_seed(0)
WIDTH, STEPS, BATCH = 32, 20, 64
biases = [-2.0, 0.0, 1.0, 2.0, 3.0]
runs = {}
for bz in biases:
    torch.manual_seed(0)  # the default initialization uses torch's global generator
    cell = initbook.init.gru_update_bias_(nn.GRUCell(WIDTH, WIDTH), bz)
    runs[bz] = initbook.stats.gated_cell_jacobian(cell, STEPS, batch=BATCH, generator=gen)
    q = float(runs[bz].gate_pre_var.mean())
    tau = initbook.theory.gate_memory_time(bz, q)
    direct = float(runs[bz].direct.mean(0)[STEPS])
    print(
        f"b_z = {bz:+.0f}: q = {q:.3f}, memory time {tau:6.2f} steps (theory), "
        f"direct path r_20 = {direct:.2e} vs theory {math.exp(-STEPS / tau):.2e}"
    )

# %%
# Compare with theory
# -------------------
# Points: the whole cell (autograd), mean ± one standard error over the sequences; crosses: the direct path
# through :math:`z` alone; lines: :math:`(\mathbb E[z^2])^k`.
ks = torch.arange(STEPS + 1)
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (bz, run), color in zip(runs.items(), ["C3", "C1", "C2", "C0", "C4"], strict=True):
    m2 = initbook.theory.sigmoid_gate_moments(bz, float(run.gate_pre_var.mean()))[1]
    full = run.full.mean(0)
    se = run.full.std(0) / math.sqrt(BATCH)
    ax.errorbar(
        ks[::2],
        full[::2],
        yerr=se[::2],
        fmt="o",
        ms=3,
        capsize=2,
        color=color,
        label=rf"$b_z = {bz:+g}$",
    )
    ax.plot(ks, run.direct.mean(0), "x", ms=4, color=color)
    ax.plot(ks, m2 ** ks.double(), "-", color=color, lw=1)
ax.set(
    yscale="log",
    xlabel="lag k (steps)",
    ylabel=r"$\|\partial h_k / \partial h_0\, v\|^2$",
    title="nn.GRUCell at initialization",
    ylim=(1e-25, 2),
)
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %%
# Takeaway
# --------
# In torch's convention the update gate *keeps* the old state, so :func:`initbook.init.gru_update_bias_`
# with a positive value does for a GRU what :func:`initbook.init.lstm_forget_bias_` does for an LSTM. The
# direct path is the whole story only when the gate is nearly open: with :math:`b_z \le 0` the path
# through the candidate :math:`n_t`, weighted by :math:`1 - z_t` and by the recurrent weights, carries most of
# the gradient, and the whole cell decays more slowly than :math:`(\mathbb E[z^2])^k`, though still within a
# few steps.
