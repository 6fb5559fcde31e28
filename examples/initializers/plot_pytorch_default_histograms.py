r"""
Seed 004's histograms: PyTorch's default, Xavier and Kaiming side by side
=========================================================================

:ref:`Seed notebook 004 <seed-004>` builds a 100-100-100-100-100-2 network of ``nn.Linear`` layers, plots the histograms of
its weights and biases layer by layer, and asks about the "weird output bias distribution". This example
draws those histograms for three initializations of the weights, PyTorch's default
(:math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})`, see :func:`initbook.theory.torch_default_bound`),
:func:`initbook.xavier_normal_` and :func:`initbook.kaiming_normal_`, and overlays the density each one
promises. As in the seed, the biases keep PyTorch's default.

The default is unpacked in :ref:`pytorch-defaults`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Build the network three times
# -----------------------------
# ``torch.manual_seed`` before construction fixes the default draws; the Xavier and Kaiming versions then
# overwrite the weights from a seeded generator and leave the biases as they are, as seed 004 does.
import math

import torch

import initbook

gen = torch.Generator().manual_seed(0)
sizes = [100, 100, 100, 100, 100, 2]
names = ["input", "fc1", "fc2", "fc3", "output"]


def build():
    """The linear layers of :func:`initbook.nets.mlp` (sizes), PyTorch's default from seed 0: as in the book."""
    torch.manual_seed(0)
    return list(initbook.nets.mlp(sizes)[::2])


def uniform_density(bound):
    return lambda v: torch.where(v.abs() <= bound, 1 / (2 * bound), 0.0)


def normal_density(std):
    return lambda v: torch.exp(-0.5 * (v / std) ** 2) / (std * math.sqrt(2 * math.pi))


schemes = {}
layers = build()
schemes["PyTorch default"] = (
    layers,
    [uniform_density(initbook.theory.torch_default_bound(m.in_features)) for m in layers],
)
layers = build()
for m in layers:
    initbook.xavier_normal_(m.weight, generator=gen)
schemes["xavier_normal_"] = (
    layers,
    [normal_density(initbook.theory.xavier_std(m.in_features, m.out_features)) for m in layers],
)
layers = build()
for m in layers:
    initbook.kaiming_normal_(m.weight, generator=gen)  # torch's defaults: a=0, leaky_relu, fan_in
schemes["kaiming_normal_"] = (
    layers,
    [normal_density(initbook.theory.kaiming_std(m.in_features)) for m in layers],
)

for name, (layers, _) in schemes.items():
    w = torch.cat([m.weight.detach().flatten() for m in layers[:-1]]).double()
    print(f"{name:16s} hidden-layer weights: std {w.std():.4f}, max |w| {w.abs().max():.4f}")
print(f"output bias (2 values): {[round(v, 4) for v in layers[-1].bias.detach().tolist()]}")

# %%
# Per-layer histograms against the promised densities
# ---------------------------------------------------
# Top row: weights, one step histogram per layer (colours), with the theoretical density (black; the output
# layer's in grey where it differs). Bottom row: biases, which are :math:`\mathcal U(\pm 1/\sqrt{100})` in
# every column; the two output biases are drawn as ticks, since two numbers do not make a histogram.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), layout="constrained", sharey="row")
w_edges = torch.linspace(-0.5, 0.5, 51)
b_edges = torch.linspace(-0.12, 0.12, 13)  # bins of 0.02, edges on +-0.1
grid = torch.linspace(-0.5, 0.5, 801, dtype=torch.float64)
for col, (name, (layers, densities)) in enumerate(schemes.items()):
    ax_w, ax_b = axes[0, col], axes[1, col]
    for i, (m, label) in enumerate(zip(layers, names, strict=True)):
        w = m.weight.detach().double().flatten()
        counts = torch.histc(w, bins=50, min=-0.5, max=0.5)
        ax_w.stairs(
            (counts / (w.numel() * 0.02)).numpy(),
            w_edges.numpy(),
            color=f"C{i}",
            label=f"{label} ({w.numel()})",
        )
        b = m.bias.detach().double()
        if b.numel() > 2:
            counts = torch.histc(b, bins=12, min=-0.12, max=0.12)
            ax_b.stairs((counts / (b.numel() * 0.02)).numpy(), b_edges.numpy(), color=f"C{i}")
        else:
            for j, v in enumerate(b.tolist()):
                tick_label = f"{label} (2 values)" if j == 0 else None
                ax_b.axvline(v, ymax=0.3, color=f"C{i}", lw=2.5, label=tick_label)
    ax_w.plot(grid, densities[0](grid), "k-", lw=1.2, label="theory")
    if densities[-1](grid).sub(densities[0](grid)).abs().max() > 0:
        ax_w.plot(grid, densities[-1](grid), "-", color="0.5", lw=1.2, label="theory, output")
    bound = initbook.theory.torch_default_bound(100)
    ax_b.plot(grid, uniform_density(bound)(grid), "k-", lw=1.2, label=r"$\mathcal{U}(\pm 0.1)$")
    ax_w.set(title=name, xlabel="weight", xlim=(-0.5, 0.5))
    ax_b.set(xlabel="bias", xlim=(-0.15, 0.15))
axes[0, 0].set_ylabel("density")
axes[1, 0].set_ylabel("density")
axes[0, 0].legend(fontsize=7)
axes[0, 1].legend(fontsize=7)
axes[1, 0].legend(fontsize=7, loc="upper left")
plt.show()

# %%
# Takeaway
# --------
# The default weights are uniform with bound :math:`1/\sqrt{100} = 0.1` (variance :math:`1/300`, a sixth
# of He's), Xavier's are normal with variance :math:`2/200` for the square layers and :math:`2/102` for
# the output layer, Kaiming's normal with variance :math:`2/100` (:func:`initbook.kaiming_normal_`'s
# defaults are ``a=0``, ``"leaky_relu"``, which is the ReLU gain :math:`\sqrt 2`). The biases come from
# :math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})` in every layer, the output layer included: its fan-in is 100
# like the others'. The output bias only looks weird because it has two entries, and two draws from a
# uniform distribution are two spikes anywhere in :math:`[-0.1, 0.1]`.
