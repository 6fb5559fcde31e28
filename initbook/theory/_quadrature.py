r"""Gaussian expectations by quadrature."""

from __future__ import annotations

import functools

import numpy as np
import torch

from .._validation import check_int

_QUAD_POINTS = 101


@functools.lru_cache(maxsize=8)
def _hermegauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def gauss_hermite(n: int = _QUAD_POINTS) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes and weights of the ``n``-point Gauss–Hermite rule for expectations over :math:`\mathcal N(0,1)`.

    The probabilists' rule (weight function :math:`e^{-z^2/2}`) from
    :func:`numpy.polynomial.hermite_e.hermegauss`, with the weights divided by their sum
    :math:`\sqrt{2\pi}`, so that

    .. math:: \mathbb E_{z \sim \mathcal N(0,1)}[f(z)] \approx \sum_{i=1}^n w_i\, f(z_i),

    exactly for polynomials of degree up to :math:`2n - 1`. It is very accurate for functions that vary on
    the scale of :math:`z` itself, e.g. :math:`\tanh(\sqrt q z)^2` for :math:`q \lesssim 1` (error
    :math:`10^{-14}` with 101 nodes), but not when they vary much faster: the same rule is off by
    :math:`2\times10^{-3}` for :math:`\operatorname{sech}^4(\sqrt 8 z)`, and numpy's nodes overflow beyond
    about 400 points. The mean-field functions (:func:`length_map` and the others) therefore use a
    trapezoidal rule whose step shrinks with :math:`\sqrt q` (see :func:`length_map`).

    Args:
        n: number of nodes.

    Returns:
        ``(nodes, weights)``, two float64 tensors of length ``n``.

    Examples:
        >>> z, w = initbook.theory.gauss_hermite(5)
        >>> round(float(w.sum()), 12), round(float((w * z**2).sum()), 12), round(float((w * z**4).sum()), 12)
        (1.0, 1.0, 3.0)
    """
    check_int("n", n, minimum=1)
    x, w = _hermegauss(n)
    return torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64)
