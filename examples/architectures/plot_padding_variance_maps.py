r"""
Zero padding starves the border: the variance map of a deep convolution stack
==============================================================================

With "same" zero padding, a border pixel of a :math:`k \times k` convolution sums only the taps that land
inside the image, so it gets less variance than the interior. Under He initialization each further layer
averages the previous layer's map over its window, zeros outside, and the deficit diffuses inwards by one
kernel radius per layer. :func:`initbook.theory.padded_conv_second_moments` iterates this exact recursion;
after many layers the map is a single hump that shrinks by the factor
:func:`initbook.theory.padding_variance_decay` per layer, a depth scale that grows with the image's area.
This example draws the maps of a 28x28 image at several depths, and the image-average variance against depth
for several image and kernel sizes. The derivation and a Monte-Carlo check are in
:ref:`convolutional-networks`.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# The map at several depths
# -------------------------
# Second moment of the pre-activations of a He-initialized ReLU stack (3x3, zero padding), relative to the
# interior value: the exact prediction, no sampling.
import math

import matplotlib.pyplot as plt

import initbook

DEPTHS = [1, 8, 32, 128]
maps = initbook.theory.padded_conv_second_moments(28, 3, max(DEPTHS)) / 2.0
fig, axes = plt.subplots(1, len(DEPTHS), figsize=(10, 2.9), layout="constrained")
for ax, depth in zip(axes, DEPTHS, strict=True):
    image = ax.imshow(maps[depth - 1].numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set(title=f"layer {depth}: mean {float(maps[depth - 1].mean()):.2f}", xticks=[], yticks=[])
fig.colorbar(image, ax=axes, shrink=0.8, label="second moment / interior value")
plt.show()

# %%
# How fast the image-average decays
# ---------------------------------
# The image-average second moment against depth (solid) and the asymptotic rate :math:`\lambda^L` (dotted,
# matched at the last layer). Small feature maps, the ones deep CNNs work on, lose their variance within a
# few dozen layers; larger kernels lose it faster.
settings = [(8, 3), (14, 3), (28, 3), (28, 5), (56, 3)]
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for (size, kernel), color in zip(settings, ["C3", "C1", "C0", "C4", "C2"], strict=True):
    depth = 200
    mean = initbook.theory.padded_conv_second_moments(size, kernel, depth).mean(dim=(1, 2)) / 2.0
    lam = initbook.theory.padding_variance_decay(size, kernel)
    layers = range(1, depth + 1)
    label = f"{size}x{size}, {kernel}x{kernel}: depth scale {-1 / math.log(lam):.0f} layers"
    ax.semilogy(layers, mean.tolist(), color=color, label=label)
    ax.semilogy(
        layers, [float(mean[-1]) * lam ** (layer - depth) for layer in layers], ":", color=color
    )
    print(
        f"{size}x{size}, kernel {kernel}: lambda = {lam:.5f}, image mean after {depth} layers {mean[-1]:.2e}"
    )
ax.set(xlabel="layer", ylabel="image-average second moment / interior value", ylim=(1e-6, 1.5))
ax.legend(fontsize=8)
plt.show()

# %%
# Takeaway
# --------
# Zero padding is a per-pixel loss that compounds with depth; the fixes are circular padding (no border)
# or keeping the network shallow relative to its feature maps, not a different weight scale.
# :func:`initbook.stats.conv_stack_second_moments` simulates the same stacks.
