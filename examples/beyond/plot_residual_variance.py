r"""
Residual streams grow as :math:`(1+\beta^2)^L`: He branches, scaled branches, Fixup
====================================================================================

A residual block :math:`x_{l+1} = x_l + \alpha F_l(x_l)` adds the branch's variance to the stream's, so the
second moment grows by :math:`1 + \beta^2` per block (:func:`initbook.theory.residual_variance`), where
:math:`\beta^2 = \alpha^2\alpha_F^2` is the branch scale squared times the branch's own gain
:math:`\alpha_F^2` (:func:`initbook.theory.relu_branch_gain2`). The branches here are He-initialized,
:math:`\alpha_F^2 = 1`, so :math:`\beta^2 = \alpha^2`. This example simulates
independent residual streams with :func:`initbook.nets.stream_second_moments`, averages them with
:func:`initbook.stats.monte_carlo`, and compares the final second moment with the theory for several depths
and three branch settings: He (:math:`\beta^2 = 1`), a constant :math:`\alpha = 1/2`, and the depth-aware
:math:`\beta^2 = 1/L` of Fixup's scaling (:func:`initbook.theory.fixup_scale`).

The derivation is in :ref:`residual-networks`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Simulate
# --------
# 64 independent networks of width 64 per point; each trial draws its own weights and input, and the
# trials run as one batched product per layer.
import math

import matplotlib.pyplot as plt
import torch

import initbook

gen = torch.Generator().manual_seed(0)
WIDTH, TRIALS = 64, 64
depths = [1, 2, 4, 8, 16, 32, 64]
settings = {
    r"He branch, $\beta^2 = 1$": lambda L: 1.0,
    r"$\alpha = 1/2$, $\beta^2 = 1/4$": lambda L: 0.25,
    r"Fixup scaling, $\beta^2 = 1/L$": lambda L: 1.0 / L,
}

results = {}
for label, alpha2_of in settings.items():
    values, errors, predicted = [], [], []
    for L in depths:
        alpha2 = alpha2_of(L)

        def sample(b, g, L=L, alpha2=alpha2):
            q = initbook.nets.stream_second_moments(
                WIDTH, L, branch_scale=math.sqrt(alpha2), trials=b, generator=g
            )
            return q[:, -1] / q[:, 0]

        est = initbook.stats.monte_carlo(sample, trials=TRIALS, generator=gen)
        values.append(est.value)
        errors.append(est.stderr)
        predicted.append(initbook.theory.residual_variance(L, alpha2))
    results[label] = (values, errors, predicted)
    z = [(v - p) / e for v, e, p in zip(values, errors, predicted, strict=True)]
    print(f"{label}: largest |z| over depths = {max(abs(x) for x in z):.2f}")

# %%
# Compare with theory
# -------------------
# Points: simulated :math:`q_L/q_0` ± one standard error; lines: :math:`(1+\beta^2)^L`.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (label, (values, errors, predicted)), color in zip(
    results.items(), ["C1", "C3", "C0"], strict=True
):
    ax.errorbar(depths, values, yerr=errors, fmt="o", color=color, capsize=3, label=label)
    ax.plot(depths, predicted, "-", color=color, lw=1)
ax.axhline(math.e, color="k", ls=":", lw=1, label=r"$e$, the limit of $(1 + 1/L)^L$")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="number of residual blocks L",
    ylabel=r"$q_L / q_0$",
    title="Second moment of the residual stream at initialization",
)
ax.set_xticks(depths, [str(d) for d in depths])
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# A constant branch scale only changes the base of an exponential; only a scale that shrinks with depth,
# :math:`\alpha^2 \propto 1/L`, keeps the stream bounded (below :math:`e`) however deep the network is.
# :func:`initbook.nets.fixup_` builds this scaling into the initialization.
