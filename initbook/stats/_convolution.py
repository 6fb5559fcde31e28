r"""Simulations of random convolutional stacks (re-exported by :mod:`initbook.stats`).

Many independent networks run as one grouped convolution per layer: network :math:`i` is group :math:`i`
of a convolution with ``groups = trials``, so a Monte-Carlo estimate over networks costs one call per layer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch.nn import functional as F

from .._init_delta import delta_orthogonal_
from .._validation import check_choice, check_float_dtype, check_int, check_real
from ..init import calculate_gain
from ..theory._convolution import _image_size, _odd_kernel

__all__ = ["conv_jacobian_singular_values", "conv_stack_second_moments"]


def _check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")


def _pad(x: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    r = k // 2
    if mode == "zeros":
        return F.pad(x, (r, r, r, r))
    return F.pad(x, (r, r, r, r), mode="circular")


def conv_stack_second_moments(
    image_size: int | Sequence[int],
    kernel_size: int,
    depth: int,
    *,
    channels: int = 4,
    nonlinearity: Literal["linear", "relu"] = "relu",
    gain2: float | None = None,
    padding_mode: Literal["zeros", "circular"] = "zeros",
    trials: int = 64,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""Per-pixel squared pre-activations of ``trials`` independent random convolution stacks.

    Each trial draws its own input, :math:`C` channels of i.i.d. :math:`\mathcal N(0, 1)` pixels, and its
    own network of ``depth`` stride-1 convolutions with :math:`C` channels, a :math:`k \times k` kernel,
    "same" padding (zeros or circular), no bias, and i.i.d. weights :math:`\mathcal N(0, g^2/(C k^2))`;
    layer :math:`\ell` computes :math:`h_\ell = W_\ell * x_{\ell-1}`, :math:`x_\ell = \phi(h_\ell)`. The
    value recorded per trial, layer and pixel is :math:`\frac1C \sum_c h_\ell[c, p]^2`; its mean over trials
    estimates the map that :func:`initbook.theory.padded_conv_second_moments` predicts (zero padding), and
    its standard deviation over trials gives the error bar.

    Args:
        image_size: the side of a square image, or ``(height, width)``.
        kernel_size: the odd side :math:`k` of the kernel.
        depth: the number of layers.
        channels: :math:`C`.
        nonlinearity: ``"relu"`` or ``"linear"``.
        gain2: :math:`g^2`; ``None`` is He's (2 for ReLU, 1 for the identity).
        padding_mode: ``"zeros"`` or ``"circular"``.
        trials: the number of independent networks and inputs.
        generator: the source of randomness.
        dtype: float32 or float64.

    Returns:
        A float64 tensor ``(trials, depth, height, width)``.

    Raises:
        ValueError: an even ``kernel_size``, sizes below 1, unknown ``nonlinearity`` or ``padding_mode``.
        TypeError: arguments of the wrong type.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> m = initbook.stats.conv_stack_second_moments(6, 3, 2, trials=8, generator=gen)
        >>> m.shape
        torch.Size([8, 2, 6, 6])
    """
    height, width = _image_size(image_size)
    k = _odd_kernel(kernel_size)
    depth = check_int("depth", depth, minimum=1)
    c = check_int("channels", channels, minimum=1)
    check_choice("nonlinearity", nonlinearity, ("linear", "relu"))
    if gain2 is None:
        gain2 = calculate_gain(nonlinearity) ** 2
    gain2 = check_real("gain2", gain2, nonnegative=True)
    check_choice("padding_mode", padding_mode, ("zeros", "circular"))
    trials = check_int("trials", trials, minimum=1)
    _check_generator(generator)
    check_float_dtype("dtype", dtype)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype} is not supported; use torch.float32 or torch.float64")
    std = math.sqrt(gain2 / (c * k * k))
    x = torch.randn(1, trials * c, height, width, generator=generator, dtype=dtype)
    out = torch.empty(trials, depth, height, width, dtype=torch.float64)
    for layer in range(depth):
        w = torch.randn(trials * c, c, k, k, generator=generator, dtype=dtype) * std
        h = F.conv2d(_pad(x, k, padding_mode), w, groups=trials)
        out[:, layer] = h.double().square().reshape(trials, c, height, width).mean(dim=1)
        x = torch.relu(h) if nonlinearity == "relu" else h
    return out


_PHIS = {"linear": (lambda h: h, lambda h: torch.ones_like(h)),
         "relu": (torch.relu, lambda h: (h > 0).to(h.dtype)),
         "tanh": (torch.tanh, lambda h: 1.0 - torch.tanh(h) ** 2)}  # fmt: skip


def conv_jacobian_singular_values(
    depth: int | Sequence[int],
    channels: int,
    image_size: int | Sequence[int],
    *,
    weights: Literal["gaussian", "delta_orthogonal"] = "gaussian",
    phi: Literal["linear", "relu", "tanh"] = "tanh",
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    kernel_size: int = 3,
    nets: int = 4,
    q0: float | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Singular values of the input–output Jacobian of ``nets`` random deep CNNs with circular padding.

    Each network has ``depth`` layers :math:`h_\ell = W_\ell * x_{\ell-1} + b_\ell`,
    :math:`x_\ell = \phi(h_\ell)`, with :math:`C` channels on an :math:`H \times W` image, stride 1 and
    circular padding (so no pixel is a border pixel), per-channel biases :math:`\mathcal N(0, \sigma_b^2)`
    and kernels either Gaussian, :math:`\mathcal N(0, \sigma_w^2/(C k^2))`, or delta-orthogonal
    (:func:`initbook.delta_orthogonal_` with gain :math:`\sigma_w`), the convolutional counterparts of
    :func:`jacobian_singular_values`'s Gaussian and orthogonal weights. The Jacobian
    :math:`J = \partial x_L / \partial x_0`, a :math:`CHW \times CHW` matrix, is built by pushing all
    :math:`CHW` unit input directions through the linearized network, one grouped convolution per layer
    for all networks, then factorized with :func:`torch.linalg.svdvals`. The input is
    :math:`x_0 = \phi(\sqrt{q_0}\, z)` with :math:`q_0` the fixed point of the length map by default.

    Args:
        depth: the number of layers, or an increasing sequence of depths (the spectra of the first
            :math:`L` layers of the *same* networks, for each :math:`L`).
        channels: :math:`C`.
        image_size: the side of a square image, or ``(height, width)``.
        weights: ``"gaussian"`` or ``"delta_orthogonal"``.
        phi: ``"linear"``, ``"relu"`` or ``"tanh"``.
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        kernel_size: the odd side :math:`k` of the kernel.
        nets: the number of independent networks.
        q0: the input's pre-activation variance; ``None`` uses
            :func:`initbook.theory.fixed_point_q` where it is finite and non-zero, else 1.
        generator: the source of randomness.
        dtype: float32 or float64 (default).

    Returns:
        A tensor ``(nets, C*H*W)`` (one depth) or ``(len(depth), nets, C*H*W)``, each row in decreasing
        order.

    Raises:
        ValueError: bad sizes, an even kernel, an unknown ``weights`` or ``phi``, depths not increasing,
            ``sigma_w2``/``sigma_b2`` negative or not finite.
        TypeError: arguments of the wrong type.

    Examples:
        A linear delta-orthogonal CNN with circular padding is an exact isometry:

        >>> gen = torch.Generator().manual_seed(0)
        >>> s = initbook.stats.conv_jacobian_singular_values(
        ...     20, 4, 3, weights="delta_orthogonal", phi="linear", nets=2, generator=gen)
        >>> s.shape, round(float((s - 1).abs().max()), 9)
        (torch.Size([2, 36]), 0.0)
    """
    single = isinstance(depth, int) and not isinstance(depth, bool)
    if not isinstance(depth, int) and (not isinstance(depth, Sequence) or isinstance(depth, str)):
        raise TypeError(f"depth must be an int or a sequence of ints, got {depth!r}")
    depths = [depth] if isinstance(depth, int) else list(depth)
    if not depths:
        raise ValueError("depth must be a positive int or a non-empty increasing sequence of them")
    depths = [check_int("depth", d, minimum=1) for d in depths]
    if any(b <= a for a, b in itertools.pairwise(depths)):
        raise ValueError(f"depths must be strictly increasing, got {depths!r}")
    c = check_int("channels", channels, minimum=1)
    height, width = _image_size(image_size)
    check_choice("weights", weights, ("gaussian", "delta_orthogonal"))
    check_choice("phi", phi, tuple(_PHIS))
    sigma_w2 = check_real("sigma_w2", sigma_w2, nonnegative=True)
    sigma_b2 = check_real("sigma_b2", sigma_b2, nonnegative=True)
    k = _odd_kernel(kernel_size)
    nets = check_int("nets", nets, minimum=1)
    _check_generator(generator)
    check_float_dtype("dtype", dtype)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype} is not supported; use torch.float32 or torch.float64")
    if q0 is None:
        from ..theory import fixed_point_q

        q_star = fixed_point_q(sigma_w2, sigma_b2, phi)
        q0 = q_star if math.isfinite(q_star) and q_star > 0 else 1.0
    q0 = check_real("q0", q0, nonnegative=True)
    fn, dfn = _PHIS[phi]
    dim = c * height * width
    x = fn(
        math.sqrt(q0) * torch.randn(1, nets * c, height, width, generator=generator, dtype=dtype)
    )
    # tangents: row j of J^T for every net; tangent[j, i*C:(i+1)*C] is net i's image of unit vector j
    eye = torch.eye(dim, dtype=dtype).reshape(dim, c, height, width)
    tangent = eye.repeat(1, nets, 1, 1)
    out = torch.empty(len(depths), nets, dim, dtype=dtype)
    for layer in range(1, depths[-1] + 1):
        w = torch.empty(nets * c, c, k, k, dtype=dtype)
        if weights == "gaussian":
            w.normal_(0.0, math.sqrt(sigma_w2 / (c * k * k)), generator=generator)
        else:
            for i in range(nets):
                delta_orthogonal_(w[i * c : (i + 1) * c], math.sqrt(sigma_w2), generator=generator)
        b = torch.randn(nets * c, generator=generator, dtype=dtype) * math.sqrt(sigma_b2)
        h = F.conv2d(_pad(x, k, "circular"), w, b, groups=nets)
        tangent = dfn(h) * F.conv2d(_pad(tangent, k, "circular"), w, groups=nets)
        x = fn(h)
        if layer in depths:
            jt = tangent.reshape(dim, nets, dim).transpose(0, 1)  # (nets, input dir, output)
            out[depths.index(layer)] = torch.linalg.svdvals(jt)
    return out[0] if single else out
