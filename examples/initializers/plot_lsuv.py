r"""
LSUV on a deep SiLU network: measuring the gain instead of deriving it
======================================================================

The gains of :func:`initbook.calculate_gain` exist for a handful of nonlinearities. For any other, SiLU
(:math:`y\,\sigma(y)`) for instance, layer-sequential unit-variance initialization (Mishkin and Matas, 2016)
measures instead: start from orthogonal weights, push a batch through the network, and rescale each layer in
turn until its output variance is 1. This example runs :func:`initbook.lsuv_` on a 20-layer MLP of width
128 with SiLU activations and compares the variances before and after, and the gain it finds, with
:func:`initbook.theory.propagate_variance`.

The chapter :ref:`lsuv-training` runs LSUV on MNIST, compares it with the quadrature prediction and trains
the result; :ref:`gains` derives the length map it measures.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Orthogonal weights only
# -----------------------
# :func:`initbook.init_model` with ``"orthogonal"`` gives every ``Linear`` an orthogonal weight (gain 1)
# and a zero bias. An orthogonal matrix preserves the norm of every vector exactly, so each layer's output
# second moment equals its input's, and SiLU then shrinks it: :math:`\mathbb E[\operatorname{silu}(y)^2]`
# is about :math:`0.36\,\mathbb E[y^2]` for unit-variance Gaussian :math:`y`. The theory line is
# :func:`initbook.theory.propagate_variance` with weight variance :math:`1/n` and SiLU (by Gauss–Hermite
# quadrature); it predicts the second moment, which differs from the variance by the squared mean of the
# outputs, close to zero here.

import torch
from torch import nn

import initbook

gen = torch.Generator().manual_seed(0)
DEPTH, WIDTH, BATCH = 20, 128, 512


def build():
    torch.manual_seed(0)
    return initbook.nets.mlp([WIDTH] * (DEPTH + 1), "silu")


def output_variances(model, x):
    t = initbook.stats.trace(model, x, backward=False, layers=[nn.Linear], bins=0)
    return [r.act_std**2 for r in t]


x = torch.randn(BATCH, WIDTH, generator=gen)
x_fresh = torch.randn(BATCH, WIDTH, generator=gen)  # a second batch, never seen by LSUV
model = initbook.init_model(build(), "orthogonal", generator=gen)
var_before = output_variances(model, x)
theory_before = initbook.theory.propagate_variance(
    [WIDTH] * (DEPTH + 1), 1 / WIDTH, [nn.functional.silu] * (DEPTH - 1) + ["linear"]
).pre_var
print(f"orthogonal only: layer 1 variance {var_before[0]:.3f}, layer {DEPTH} {var_before[-1]:.2e}")

# %%
# LSUV
# ----
# ``orthogonal=False`` keeps the orthogonal weights just drawn; LSUV then rescales layer by layer, in forward
# order, until :math:`|\operatorname{Var} - 1| < 0.1`. It returns one :class:`initbook.LSUVRecord` per layer.
report = initbook.lsuv_(model, x, target_var=1.0, tol=0.1, orthogonal=False)
var_after = output_variances(model, x)
var_fresh = output_variances(model, x_fresh)
iterations = [r.iterations for r in report]
print(f"iterations per layer: {iterations}, all converged: {all(r.converged for r in report)}")
print(
    f"after LSUV: variances in [{min(var_after):.3f}, {max(var_after):.3f}] on the batch, ", end=""
)
print(f"[{min(var_fresh):.3f}, {max(var_fresh):.3f}] on a fresh batch")

# %%
# The gain LSUV found, and what it cannot fix
# -------------------------------------------
# An orthogonal weight has :math:`\lVert W\rVert_F^2 = n`, so after LSUV each weight is
# :math:`g_l Q_l` with :math:`g_l = \lVert W_l\rVert_F / \sqrt n`. In a layer whose input is
# :math:`\operatorname{silu}(y)` with :math:`y \sim \mathcal N(0, 1)`, the gain that restores unit variance
# is :math:`g = 1/\sqrt{\mathbb E[\operatorname{silu}(y)^2]}`, a SiLU "gain" nobody tabulated; the
# length map :math:`\mathcal V(q) = g^2\, \mathbb E[\operatorname{silu}(\sqrt q\, z)^2]`
# (:func:`initbook.theory.length_map`) computes it by quadrature.
#
# LSUV fixes the variance *pooled over the batch*. SiLU is not homogeneous: it is close to
# :math:`y/2` for small inputs and to a ReLU for large ones, so with this gain an input whose pre-activations
# are a little larger than average gets amplified a little more. The slope :math:`\mathcal V'(1)` says by
# how much: above 1, the fixed point :math:`q^* = 1` is unstable, and the second moments of individual
# inputs drift apart with depth, which a single rescaling per layer cannot prevent.
import math

gains = [
    float(m.weight.detach().norm() / math.sqrt(WIDTH)) for m in model if isinstance(m, nn.Linear)
]
silu_mean_sq = initbook.theory.length_map(1.0, 1.0, 0.0, nn.functional.silu)
gain_theory = 1 / math.sqrt(silu_mean_sq)
h = 1e-3
slope = (
    initbook.theory.length_map(1 + h, gain_theory**2, 0.0, nn.functional.silu)
    - initbook.theory.length_map(1 - h, gain_theory**2, 0.0, nn.functional.silu)
) / (2 * h)
print(f"E[silu(y)^2] for Var[y] = 1: {silu_mean_sq:.4f}; gain 1/sqrt of it: {gain_theory:.4f}")
print(f"LSUV gains: layer 2 {gains[1]:.4f}, mean of layers 2-6 {sum(gains[1:6]) / 5:.4f}, ", end="")
print(f"layer {DEPTH} {gains[-1]:.4f}")
print(f"slope of the length map at q* = 1: {slope:.3f}")

# per-input second moments of every Linear output, after LSUV
per_input = []
with torch.no_grad():
    h_batch = x
    for module in model:
        h_batch = module(h_batch)
        if isinstance(module, nn.Linear):
            per_input.append(h_batch.double().square().mean(dim=1))
per_input = torch.stack(per_input)  # (DEPTH, BATCH)
q10, q90 = torch.quantile(per_input, torch.tensor([0.1, 0.9], dtype=torch.float64), dim=1)
print(f"per-input second moment, 10%-90% range: layer 1 [{q10[0]:.2f}, {q90[0]:.2f}], ", end="")
print(f"layer {DEPTH} [{q10[-1]:.2f}, {q90[-1]:.2f}]")

# %%
# Before and after
# ----------------
# Left: the variance of every ``Linear`` output, pooled over the batch, and (shaded) the 10%–90% range of
# the per-input second moments after LSUV. Middle: the rescalings :func:`initbook.lsuv_` reports per layer;
# the first layer's output already has variance 1 (orthogonal weights on standard-normal inputs). Right:
# the gains.
import matplotlib.pyplot as plt

initbook.plotting.use_book_style()
fig, (ax0, ax1, ax2) = plt.subplots(
    1, 3, figsize=(12, 3.8), layout="constrained", width_ratios=[1.4, 1, 1]
)
layers = torch.arange(1, DEPTH + 1)
ax0.axhspan(0.9, 1.1, color="C2", alpha=0.3, label="target 1 ± 0.1")
ax0.fill_between(layers, q10, q90, color="C0", alpha=0.15, label="per input, 10%–90%")
ax0.semilogy(layers, var_before, "o", color="C3", ms=4, label="orthogonal only")
ax0.semilogy(layers, theory_before, "-", color="C3", lw=1, label="theory")
ax0.semilogy(layers, var_after, "o", color="C0", ms=4, label="after LSUV")
ax0.semilogy(layers, var_fresh, "x", color="C0", ms=5, label="after LSUV, fresh batch")
ax0.set(
    xlabel="layer",
    ylabel="variance of the Linear output",
    title=f"{DEPTH} layers, SiLU, width {WIDTH}",
)
ax0.legend(fontsize=7, loc="lower left")
ax1.bar(layers, iterations, color="C0")
ax1.set(
    xlabel="layer",
    ylabel="rescalings",
    title="LSUV iterations per layer",
    yticks=range(max(iterations) + 2),
)
ax2.plot(layers, gains, "o", color="C0", ms=4, label="found by LSUV")
ax2.axhline(gain_theory, color="k", lw=1, label=r"$1/\sqrt{\mathbb{E}[\mathrm{silu}(y)^2]}$")
ax2.axhline(1.0, color="0.6", ls=":", lw=1)
ax2.set(xlabel="layer", ylabel=r"gain $\|W_l\|_F/\sqrt{n}$", title="gains")
ax2.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Without a gain, a SiLU network loses about two thirds of its variance per layer, and after 20 layers the
# signal is gone. One rescaling per layer (with zero biases, scaling :math:`W` scales the layer's output
# exactly) brings every layer to variance 1 on the calibration batch, and the first gains agree with the
# Gaussian prediction :math:`1/\sqrt{\mathbb E[\operatorname{silu}^2]}`. Deeper in, the per-input second
# moments fan out, because the length map's slope at the fixed point exceeds 1; the pooled pre-activations
# become a heavy-tailed mixture, the gains LSUV measures drift below the Gaussian value, and a fresh batch
# sees variances off by tens of percent. LSUV measures what :func:`initbook.calculate_gain` would have to
# tabulate, but it only controls the average: whether the fixed point is stable is a property of the
# activation and the gain (part III).
