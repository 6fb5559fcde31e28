r"""Closed forms for convolutional networks: the per-pixel variance map under zero padding, pooling.

Re-exported by :mod:`initbook.theory`. A convolution with kernel :math:`k \times k` (odd :math:`k`, "same"
zero padding :math:`r = (k - 1)/2`, stride 1) computes at pixel :math:`p`

.. math:: h[c', p] = \sum_{c=1}^{C} \sum_{t \in T} w[c', c, t]\, x[c, p + t], \qquad
    T = \{-r, \dots, r\}^2,

where :math:`x[c, p + t] = 0` outside the image. With i.i.d. zero-mean weights of variance
:math:`g^2/n_\text{in}`, :math:`n_\text{in} = C k^2`, and given :math:`x`, the cross terms vanish and

.. math:: \mathbb E\bigl[h[c', p]^2\bigr] = \frac{g^2}{k^2} \sum_{t \in T,\ p + t \in \text{image}}
    \overline{\mathbb E\, x[\cdot, p + t]^2},

the channel-averaged second moment summed over the *in-image* taps only: a border pixel sums fewer terms.
This holds at every width and for any input distribution, so it can be iterated through a stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from .._validation import check_choice, check_int, check_real
from ..init import calculate_gain

__all__ = ["padded_conv_second_moments", "padding_variance_decay", "pooled_second_moment"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = check_int("image_size", image_size, minimum=1)
        return size, size
    if (
        isinstance(image_size, Sequence)
        and not isinstance(image_size, str)
        and len(image_size) == 2
    ):
        return (
            check_int("image_size[0]", image_size[0], minimum=1),
            check_int("image_size[1]", image_size[1], minimum=1),
        )
    raise TypeError(
        f"image_size must be an int or a pair (height, width) of ints, got {image_size!r}"
    )


def _odd_kernel(kernel_size: object) -> int:
    k = check_int("kernel_size", kernel_size, minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding (k - 1)/2), got {k!r}")
    return k


def _tap_sum(m: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of ``m`` over the ``k x k`` window around every pixel, zero outside the image."""
    box = torch.ones(1, 1, k, k, dtype=m.dtype)
    return torch.nn.functional.conv2d(m[None, None], box, padding=k // 2)[0, 0]


def padded_conv_second_moments(
    image_size: int | Sequence[int],
    kernel_size: int,
    depth: int,
    *,
    nonlinearity: Literal["linear", "relu"] = "relu",
    gain2: float | None = None,
    q0: float = 1.0,
) -> torch.Tensor:
    r"""The predicted per-pixel second moment of the pre-activations of ``depth`` zero-padded convolutions.

    Layer :math:`\ell` computes :math:`h_\ell = W_\ell * x_{\ell - 1}` (stride 1, "same" zero padding,
    no bias) with :math:`x_0` the input and :math:`x_\ell = \phi(h_\ell)`, and i.i.d. zero-mean weights of
    variance :math:`g^2/(C k^2)` that are symmetric about zero. Given the previous layer, each
    :math:`h_\ell[c, p]` is then symmetric, so :math:`\mathbb E[\operatorname{relu}(h)^2] = \tfrac12
    \mathbb E[h^2]` exactly, and the map :math:`m_\ell[p] = \mathbb E\, h_\ell[c, p]^2` obeys

    .. math:: m_1[p] = \frac{g^2}{k^2}\, q_0\, N(p), \qquad
        m_\ell[p] = \frac{g^2 \rho}{k^2} \sum_{t:\ p + t \in \text{image}} m_{\ell-1}[p + t],

    with :math:`N(p)` the number of in-image taps of pixel :math:`p` and :math:`\rho = \tfrac12` for ReLU,
    :math:`1` for the identity. The input is not rectified, so an interior pixel of layer 1 has
    :math:`g^2 q_0`; under He initialization (:math:`g^2\rho = 1`) every later layer keeps that value at
    pixels farther than :math:`\ell r` from the border, while the border loses variance that then diffuses
    inwards, one kernel radius per layer. The recursion is exact at every channel count :math:`C`; the input need only have i.i.d.
    entries of second moment :math:`q_0` (or any entries whose second moment is :math:`q_0` per pixel).

    Args:
        image_size: the side of a square image, or ``(height, width)``.
        kernel_size: the odd side :math:`k` of the square kernel.
        depth: the number of layers :math:`L`.
        nonlinearity: ``"relu"`` or ``"linear"``, the function between layers.
        gain2: :math:`g^2`; ``None`` is He's ``calculate_gain(nonlinearity) ** 2``, i.e. 2 for ReLU and 1
            for the identity.
        q0: the second moment of the input's entries.

    Returns:
        A float64 tensor ``(depth, height, width)``: :math:`m_1, \dots, m_L`.

    Raises:
        ValueError: an even ``kernel_size``, a size below 1, an unknown ``nonlinearity``, a negative or
            non-finite ``gain2`` or ``q0``.
        TypeError: arguments of the wrong type.

    Examples:
        One layer of a 3x3 convolution on a 4x4 image: corners sum 4 of the 9 taps, edges 6.

        >>> m = initbook.theory.padded_conv_second_moments(4, 3, 1, nonlinearity="linear")
        >>> (m[0] * 9).round().int().tolist()
        [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    """
    height, width = _image_size(image_size)
    k = _odd_kernel(kernel_size)
    depth = check_int("depth", depth, minimum=1)
    check_choice("nonlinearity", nonlinearity, ("linear", "relu"))
    if gain2 is None:
        gain2 = calculate_gain(nonlinearity) ** 2
    gain2 = check_real("gain2", gain2, nonnegative=True)
    q0 = check_real("q0", q0, nonnegative=True)
    rho = 0.5 if nonlinearity == "relu" else 1.0
    maps = torch.empty(depth, height, width, dtype=torch.float64)
    m = torch.full((height, width), q0, dtype=torch.float64)
    for layer in range(depth):
        m = (gain2 / k**2) * _tap_sum(m if layer == 0 else rho * m, k)
        maps[layer] = m
    return maps


def _top_eigenvalue_1d(n: int, k: int) -> float:
    r = k // 2
    i = torch.arange(n)
    band = ((i[:, None] - i[None, :]).abs() <= r).to(torch.float64) / k
    return float(torch.linalg.eigvalsh(band)[-1])


def padding_variance_decay(image_size: int | Sequence[int], kernel_size: int) -> float:
    r"""The per-layer factor by which zero padding shrinks the variance map of a deep He-initialized stack.

    Under He initialization the recursion of :func:`padded_conv_second_moments` is
    :math:`m_\ell = A\, m_{\ell-1}`, with :math:`A` the :math:`k \times k` tap average with zero padding.
    :math:`A = A_H \otimes A_W` factorizes into two one-dimensional averages, symmetric banded matrices
    whose entries are :math:`1/k` within the band :math:`|i - j| \le (k-1)/2`. For large depth the map
    becomes :math:`m_L \propto \lambda^L\, v v^\top`, a single hump, with :math:`\lambda` the largest
    eigenvalue of :math:`A`, the product of those of :math:`A_H` and :math:`A_W`, returned here. For a
    3x3 kernel (tridiagonal :math:`A_n`) it is exact in closed form,
    :math:`\lambda = \bigl(\tfrac13 (1 + 2\cos\tfrac{\pi}{H+1})\bigr)\bigl(\tfrac13(1 + 2\cos\tfrac{\pi}{W+1})\bigr)`,
    and in general :math:`1 - \lambda \approx r(r+1)\pi^2/(3 n^2)` for an :math:`n \times n` image and
    kernel radius :math:`r`, so the variance survives about :math:`-1/\ln\lambda \propto n^2` layers.

    Args:
        image_size: the side of a square image, or ``(height, width)``.
        kernel_size: the odd side :math:`k` of the square kernel.

    Returns:
        :math:`\lambda \in (0, 1]`.

    Raises:
        ValueError: an even ``kernel_size`` or a size below 1.
        TypeError: arguments of the wrong type.

    Examples:
        >>> lam = initbook.theory.padding_variance_decay(28, 3)
        >>> round(lam, 6), math.isclose(lam, ((1 + 2 * math.cos(math.pi / 29)) / 3) ** 2, rel_tol=1e-12)
        (0.992199, True)
    """
    height, width = _image_size(image_size)
    k = _odd_kernel(kernel_size)
    return _top_eigenvalue_1d(height, k) * _top_eigenvalue_1d(width, k)


def pooled_second_moment(window: int, kind: Literal["avg", "max"], *, relu: bool = True) -> float:
    r"""The second moment after pooling ``window`` i.i.d. :math:`\mathcal N(0, 1)` pre-activations.

    The pooled value is :math:`P = \operatorname{pool}(\phi(z_1), \dots, \phi(z_n))` with
    :math:`z_i \sim \mathcal N(0, 1)` independent, :math:`n` = ``window`` (4 for a 2x2 pool) and
    :math:`\phi` the ReLU (or the identity, ``relu=False``). Returned is :math:`\mathbb E[P^2]`, which is
    also the factor for pre-activations of any variance :math:`v` (both pools are positively homogeneous):

    * average pooling, :math:`\mathbb E[P^2] = \mu^2 + \sigma^2/n` with :math:`\mu, \sigma^2` the mean and
      variance of :math:`\phi(z)`: :math:`\frac{1}{2\pi} + (\frac12 - \frac1{2\pi})/n` for ReLU, :math:`1/n`
      for the identity. The mean survives, the fluctuation shrinks :math:`n`-fold;
    * max pooling, :math:`\mathbb E[P^2] = \int m^2\, n\,\varphi(m)\,\Phi(m)^{n-1}\, dm` over
      :math:`m > 0` (ReLU: the max of ReLUs is the ReLU of the max) or over all :math:`m` (identity),
      computed by the trapezoidal rule on :math:`[-12, 12]` (error below :math:`10^{-12}`). It *grows* with
      :math:`n`.

    Neighbouring pixels of a real feature map are correlated, which moves average pooling towards no
    shrinkage at all (perfectly correlated inputs are left unchanged); the i.i.d. value is the other end.

    Args:
        window: the number :math:`n` of pooled values.
        kind: ``"avg"`` or ``"max"``.
        relu: apply a ReLU before pooling (the usual conv, ReLU, pool order).

    Returns:
        :math:`\mathbb E[P^2]` for unit-variance pre-activations.

    Raises:
        ValueError: ``window < 1`` or an unknown ``kind``.
        TypeError: arguments of the wrong type.

    Examples:
        >>> initbook.theory.pooled_second_moment(1, "max")  # one ReLU: half the second moment
        0.5
        >>> initbook.theory.pooled_second_moment(4, "avg", relu=False)
        0.25
        >>> round(initbook.theory.pooled_second_moment(4, "max"), 4)  # three times a single ReLU's
        1.5438
    """
    n = check_int("window", window, minimum=1)
    check_choice("kind", kind, ("avg", "max"))
    if not isinstance(relu, bool):
        raise TypeError(f"relu must be a bool, got {relu!r}")
    if kind == "avg":
        if not relu:
            return 1.0 / n
        mean2 = 1.0 / (2.0 * math.pi)
        return mean2 + (0.5 - mean2) / n
    if n == 1:
        return 0.5 if relu else 1.0
    m = torch.linspace(0.0 if relu else -12.0, 12.0, 24_001, dtype=torch.float64)
    cdf = 0.5 * torch.erfc(-m / math.sqrt(2.0))
    density = n * torch.exp(-0.5 * m**2) / _SQRT_2PI * cdf ** (n - 1)
    return float(torch.trapezoid(m**2 * density, m))
