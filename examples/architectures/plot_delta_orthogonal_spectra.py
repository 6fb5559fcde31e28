r"""
Delta-orthogonal vs Gaussian kernels: Jacobian spectra of critical tanh CNNs
============================================================================

A delta-orthogonal kernel (:func:`initbook.delta_orthogonal_`) is zero except at its centre, which is an
orthogonal matrix; at initialization the CNN is then one orthogonal tanh MLP per pixel. On the critical line
:math:`\chi_1 = 1` (:func:`initbook.theory.critical_sigma_w2`) the mean squared singular value of the
input-output Jacobian stays 1 for any kernel, but its spread does not: it grows linearly with depth for a
Gaussian kernel, and slowly for a delta-orthogonal one, the more slowly the smaller the bias variance
:math:`\sigma_b^2` (tanh is then used near its linear part). This example computes the Jacobians of 64-layer
CNNs (16 channels, 4x4 images, circular padding) with :func:`initbook.stats.conv_jacobian_singular_values`
for a small and a large bias variance (the chapter, :ref:`convolutional-networks`, shows one in between).
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Singular values of the Jacobian
# -------------------------------
# Quantiles of :math:`\log_{10} s` over one network (256 singular values) per setting, against depth, in
# float64: the Gaussian networks' small singular values lie far below float32's resolution.
import matplotlib.pyplot as plt
import torch

import initbook

DEPTHS = [1, 4, 16, 64]
BIAS_VARIANCES = [1e-5, 0.05]  # the chapter shows 1e-3
fig, axes = plt.subplots(
    1, len(BIAS_VARIANCES), figsize=(10, 3.4), layout="constrained", sharey=True
)
for ax, sigma_b2 in zip(axes, BIAS_VARIANCES, strict=True):
    sigma_w2 = initbook.theory.critical_sigma_w2(sigma_b2, "tanh")
    for weights, color in (("delta_orthogonal", "C0"), ("gaussian", "C3")):
        s = initbook.stats.conv_jacobian_singular_values(
            DEPTHS, 16, 4, weights=weights, sigma_w2=sigma_w2, sigma_b2=sigma_b2, nets=1,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        logs = s.flatten(1).log10()
        q10, q50, q90 = (logs.quantile(q, dim=1) for q in (0.1, 0.5, 0.9))
        ax.fill_between(DEPTHS, q10, q90, color=color, alpha=0.25)
        ax.plot(DEPTHS, q50, "o-", color=color, ms=3, label=weights.replace("_", "-"))
        print(f"sigma_b2={sigma_b2:g}, {weights}: median log10 s at depth 64 = {q50[-1]:.2f}")
    ax.set(
        xscale="log",
        xlabel="depth",
        title=rf"$\sigma_b^2 = {sigma_b2:g}$, $\sigma_w^2 = {sigma_w2:.3f}$",
    )
axes[0].set(ylabel=r"$\log_{10} s$ (median, 10-90 % band)")
axes[0].legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Criticality fixes the mean, orthogonality the spread: only the delta-orthogonal kernel keeps most singular
# values of a deep critical tanh CNN near 1, and a smaller :math:`\sigma_b^2` keeps them closer.
