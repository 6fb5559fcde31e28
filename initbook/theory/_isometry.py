r"""Dynamical isometry: the spectrum of the input-output Jacobian of a deep random network.

Its first two moments, in the wide limit (free probability) and exactly at finite width for Gaussian
linear networks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._activations import _Activation, _activation
from .._validation import check_choice, check_int, check_real
from ._meanfield import _check_sigmas, _fixed_point_q

_JACOBIAN_WEIGHTS = ("gaussian", "orthogonal")


class JacobianMoments(NamedTuple):
    r"""The first two moments of the squared singular values :math:`\lambda = s^2` of a Jacobian.

    Both are averages over the spectrum *and* over random networks:
    :math:`\mathbb E[\lambda] = \mathbb E\,\tfrac1n \operatorname{tr}(J J^\top)` and
    :math:`\mathbb E[\lambda^2] = \mathbb E\,\tfrac1n \operatorname{tr}\bigl((J J^\top)^2\bigr)`.
    """

    mean: float
    """:math:`\\mathbb E[\\lambda]`, the mean squared singular value."""
    second_moment: float
    """:math:`\\mathbb E[\\lambda^2]`."""

    @property
    def variance(self) -> float:
        r"""The spread of the spectrum, :math:`\mathbb E[\lambda^2] - \mathbb E[\lambda]^2`."""
        return self.second_moment - self.mean**2


def _dphi_fourth_over_square(act: _Activation, q: float) -> tuple[float, float]:
    r"""``(E[phi'^2], E[phi'^4])`` at pre-activation variance ``q``."""
    if act.name == "linear":
        return 1.0, 1.0
    if act.name == "relu":
        return 0.5, 0.5
    d2 = act.dmean_sq(q)
    d4 = act._e1(lambda x: act.dfn(x).square(), q)
    return d2, d4


def jacobian_spectrum_moments(
    depth: int,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    phi: str = "tanh",
    weights: str = "gaussian",
    *,
    q: float | None = None,
) -> JacobianMoments:
    r"""Mean and second moment of the squared singular values of a deep network's Jacobian, wide limit.

    For :math:`J = D_L W_L \cdots D_1 W_1` with :math:`D_\ell = \operatorname{diag}\phi'(h_\ell)` and
    square weights that are either Gaussian, :math:`\mathcal N(0, \sigma_w^2/n)`, or scaled Haar-orthogonal,
    :math:`\sigma_w O`, "Resurrecting the sigmoid in deep learning through dynamical isometry",
    Pennington, J. et al. (2017), show that in the wide limit the S-transform of :math:`J J^\top` is the
    product of those of its factors :math:`D_\ell^2` and :math:`W_\ell^\top W_\ell`. Expanding
    :math:`S(z) = \tfrac{1}{m_1}\bigl(1 - v z + O(z^2)\bigr)` with :math:`v = m_2/m_1^2 - 1` shows that the
    means multiply and the relative variances :math:`v` *add*:

    .. math::
        \mathbb E[\lambda] = \chi_1^L, \qquad
        \frac{\mathbb E[\lambda^2]}{\mathbb E[\lambda]^2} = 1 + L\,(v_W + v_D), \qquad
        v_D = \frac{\mathbb E[\phi'(\sqrt{q}z)^4]}{\mathbb E[\phi'(\sqrt{q}z)^2]^2} - 1,

    with :math:`\chi_1` from :func:`chi1`, :math:`v_W = 1` for Gaussian weights (the Marchenko–Pastur law
    at aspect ratio 1 has :math:`m_2 = 2 m_1^2`) and :math:`v_W = 0` for orthogonal ones. ReLU has
    :math:`\phi' \in \{0, 1\}` with probability :math:`\tfrac12` each, so :math:`v_D = 1` whatever
    :math:`q`; a linear network has :math:`v_D = 0`. The mean is exact at any width for ``"linear"`` and
    ``"relu"``; the second moment has finite-width corrections that grow with depth (for Gaussian linear
    networks :func:`linear_jacobian_moments` gives them exactly).

    Args:
        depth: the number of layers :math:`L`.
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        phi: ``"linear"``, ``"relu"`` or ``"tanh"``.
        weights: ``"gaussian"`` or ``"orthogonal"``.
        q: the pre-activation variance at which :math:`\phi'` is evaluated; ``None`` uses the fixed point
            :math:`q^*` (:func:`fixed_point_q`), as for a network whose input is already at it.

    Returns:
        A :class:`JacobianMoments` ``(mean, second_moment)``.

    Examples:
        Critical ReLU (He) networks have :math:`\mathbb E[\lambda] = 1`, but the spread grows with depth even
        for orthogonal weights:

        >>> initbook.theory.jacobian_spectrum_moments(10, 2.0, 0.0, "relu", "orthogonal")
        JacobianMoments(mean=1.0, second_moment=11.0)
        >>> initbook.theory.jacobian_spectrum_moments(10, 2.0, 0.0, "relu", "gaussian").variance
        20.0
        >>> initbook.theory.jacobian_spectrum_moments(10, 1.0, 0.0, "linear", "orthogonal")
        JacobianMoments(mean=1.0, second_moment=1.0)
    """
    check_int("depth", depth, minimum=0)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    act = _activation(phi, names=("linear", "relu", "tanh"))
    check_choice("weights", weights, _JACOBIAN_WEIGHTS)
    if q is None:
        q = 1.0 if act.name in ("linear", "relu") else _fixed_point_q(act, sigma_w2, sigma_b2)
    else:
        q = check_real("q", q, nonnegative=True)
    if not math.isfinite(q):
        raise ValueError(
            f"the length map has no finite fixed point for sigma_w2={sigma_w2!r}, "
            f"sigma_b2={sigma_b2!r}; pass q explicitly"
        )
    d2, d4 = _dphi_fourth_over_square(act, q)
    chi = sigma_w2 * d2
    mean = chi**depth
    if d2 == 0.0:
        return JacobianMoments(mean, 0.0 if depth > 0 else 1.0)
    v_d = d4 / (d2 * d2) - 1.0
    v_w = 1.0 if weights == "gaussian" else 0.0
    return JacobianMoments(mean, mean * mean * (1.0 + depth * (v_w + v_d)))


def linear_jacobian_moments(depth: int, width: int, sigma_w2: float = 1.0) -> JacobianMoments:
    r"""Exact moments of the squared singular values of a product of :math:`L` square Gaussian matrices.

    For :math:`J = W_L \cdots W_1` with i.i.d. :math:`\mathcal N(0, \sigma_w^2/n)` entries (a deep linear
    network at finite width :math:`n`), write :math:`A_\ell = J_\ell J_\ell^\top`,
    :math:`a_1 = \tfrac1n\operatorname{tr}A`, :math:`a_2 = \tfrac1n\operatorname{tr}A^2`. Wick's theorem for one
    more Gaussian layer, :math:`A_{\ell+1} = W A_\ell W^\top`, gives a closed linear recursion for
    :math:`u_\ell = \mathbb E[a_1^2]` and :math:`w_\ell = \mathbb E[a_2]`:

    .. math::
        \begin{pmatrix} u_{\ell+1} \\ w_{\ell+1} \end{pmatrix} = \sigma_w^4
        \begin{pmatrix} 1 & 2/n^2 \\ 1 & 1 + 1/n \end{pmatrix}
        \begin{pmatrix} u_\ell \\ w_\ell \end{pmatrix},
        \qquad u_0 = w_0 = 1,

    and :math:`\mathbb E[\lambda] = \mathbb E[a_1] = \sigma_w^{2L}` exactly. The matrix has eigenvalues
    :math:`1 + 2/n` and :math:`1 - 1/n`, which gives the closed form

    .. math::
        \mathbb E[\lambda^2] = w_L = \sigma_w^{4L}\left[\frac{n+2}{3}\Bigl(1 + \frac2n\Bigr)^{L}
        - \frac{n-1}{3}\Bigl(1 - \frac1n\Bigr)^{L}\right]
        = \sigma_w^{4L}\left[1 + L + \frac{L(L+1)}{2n} + O\!\left(\frac{L^3}{n^2}\right)\right].

    As :math:`n\to\infty` this is :math:`\sigma_w^{4L}(1 + L)`, the free-probability result of
    :func:`jacobian_spectrum_moments`; at finite width the relative correction is about :math:`L/n`, so the
    wide-limit formula holds while :math:`L \ll n`. For :math:`n = 1` it is
    :math:`\mathbb E[w^4]^L = 3^L\sigma_w^{4L}`.

    Args:
        depth: the number of layers :math:`L`.
        width: the width :math:`n`.
        sigma_w2: :math:`\sigma_w^2`.

    Examples:
        >>> initbook.theory.linear_jacobian_moments(3, 1)  # one scalar Gaussian per layer: 3**3
        JacobianMoments(mean=1.0, second_moment=27.0)
        >>> round(initbook.theory.linear_jacobian_moments(10, 10**8).second_moment, 4)  # wide: 1 + L
        11.0
        >>> round(initbook.theory.linear_jacobian_moments(10, 128).second_moment, 3)
        11.461
    """
    check_int("depth", depth, minimum=0)
    check_int("width", width, minimum=1)
    sigma_w2 = check_real("sigma_w2", sigma_w2, nonnegative=True)
    n = width
    second = ((n + 2) * (1.0 + 2.0 / n) ** depth - (n - 1) * (1.0 - 1.0 / n) ** depth) / 3.0
    return JacobianMoments(sigma_w2**depth, sigma_w2 ** (2 * depth) * second)
