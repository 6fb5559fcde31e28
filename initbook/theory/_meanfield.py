r"""Mean-field theory of deep random networks: the length and correlation maps, their fixed points,
:math:`\chi_1`, depth scales and the critical line."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from .._activations import _MEAN_FIELD_NAMES, _Activation, _activation
from .._validation import check_each, check_int, check_real


def _check_sigmas(sigma_w2: object, sigma_b2: object) -> tuple[float, float]:
    return (
        check_real("sigma_w2", sigma_w2, nonnegative=True),
        check_real("sigma_b2", sigma_b2, nonnegative=True),
    )


_BISECT_ITERS = 200


def _bisect(f: Callable[[float], float], lo: float, hi: float, *, rtol: float = 1e-13) -> float:
    """A root of ``f`` in ``[lo, hi]``, given that ``f(lo)`` and ``f(hi)`` lie on different sides of 0."""
    lo_sign = f(lo) >= 0
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        if hi - lo <= rtol * max(1.0, abs(mid)) or mid in (lo, hi):
            break
        if (f(mid) >= 0) == lo_sign:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def length_map(
    q: float,
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> float:
    r"""The length map of a wide random network: the pre-activation variance one layer deeper.

    From "Exponential expressivity in deep neural networks through transient chaos", Poole, B. et al.
    (2016). With weights :math:`\mathcal N(0, \sigma_w^2/n)`, biases :math:`\mathcal N(0, \sigma_b^2)` and
    pre-activations of variance :math:`q` that are Gaussian in the wide limit,

    .. math:: \mathcal V(q) = \sigma_w^2\, \mathbb E_{z\sim\mathcal N(0,1)}\!\left[\phi(\sqrt q\, z)^2\right]
        + \sigma_b^2 .

    The expectation is exact for ``"linear"``, ``"relu"`` (:math:`q/2`) and ``"erf"``
    (:math:`\tfrac2\pi\arcsin\frac{2q}{1+2q}`), and a quadrature for ``"tanh"`` and callables: the
    trapezoidal rule on a uniform grid in :math:`z` whose step shrinks like :math:`1/\sqrt q`, accurate to
    about :math:`10^{-13}` for smooth activations at any :math:`q` (a fixed :func:`gauss_hermite` rule
    is as accurate for :math:`q \lesssim 1` but not for large :math:`q`).

    Args:
        q: the pre-activation variance :math:`q^{\ell-1}`.
        sigma_w2: :math:`\sigma_w^2`, the weight variance times the fan-in.
        sigma_b2: :math:`\sigma_b^2`, the bias variance.
        phi: ``"tanh"``, ``"relu"``, ``"linear"``, ``"erf"`` or a callable on float64 tensors.

    Examples:
        >>> initbook.theory.length_map(1.0, 2.0, 0.0, "relu")
        1.0
        >>> round(initbook.theory.length_map(1.0, 1.0, 0.0, "tanh"), 6)
        0.394294
    """
    q = check_real("q", q, nonnegative=True)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    return sigma_w2 * _activation(phi).mean_sq(q) + sigma_b2


def _fixed_point_q(act: _Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> float:
    if act.name in ("linear", "relu"):  # V(q) = a q + sigma_b2
        a = sigma_w2 * act.dmean_sq(0.0)
        if a < 1.0:
            return sigma_b2 / (1.0 - a)
        if sigma_b2 == 0.0 and (a == 1.0 or q0 == 0.0):
            return q0
        return math.inf

    def g(q: float) -> float:
        return sigma_w2 * act.mean_sq(q) + sigma_b2 - q

    g0 = g(q0)
    if g0 == 0.0:
        return q0
    if g0 < 0.0:  # the iteration decreases towards a fixed point in [0, q0); g(0) >= 0
        q = _bisect(g, 0.0, q0)
        return 0.0 if q <= 1e-12 and g(0.0) == 0.0 else q
    lo, hi = q0, 2.0 * max(q0, 1.0)
    while g(hi) >= 0.0:  # the iteration increases: bracket the fixed point from above
        lo, hi = hi, 2.0 * hi
        if hi > 1e12:
            return math.inf
    return _bisect(g, lo, hi)


def fixed_point_q(
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    *,
    q0: float = 1.0,
) -> float:
    r"""The fixed point :math:`q^*` of the length map that the iteration from ``q0`` converges to.

    Poole et al. (2016): iterating :math:`q^\ell = \mathcal V(q^{\ell-1})` (:func:`length_map`) drives the
    pre-activation variance of a deep random network to :math:`q^* = \mathcal V(q^*)` within a few layers.
    Because :math:`\mathcal V` is increasing (for activations whose square grows with :math:`|x|`), the
    iteration moves monotonically to the nearest fixed point in its direction; this function brackets that
    point and bisects to machine precision, which also works at criticality, where the iteration itself
    converges only algebraically (tanh with :math:`\sigma_b^2 = 0`, :math:`\sigma_w^2 = 1`:
    :math:`q^\ell \sim 1/\ell`).

    For ``"linear"`` and ``"relu"`` the map is affine, :math:`\mathcal V(q) = a q + \sigma_b^2` with
    :math:`a = \sigma_w^2` resp. :math:`\sigma_w^2/2`, and :math:`q^* = \sigma_b^2/(1 - a)` when
    :math:`a < 1`; otherwise the variance grows without bound and the result is ``inf``.

    Args:
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        phi: the activation (see :func:`length_map`).
        q0: the starting variance.

    Examples:
        >>> initbook.theory.fixed_point_q(1.0, 0.0, "tanh")  # ordered: the signal dies out
        0.0
        >>> round(initbook.theory.fixed_point_q(1.5, 0.05, "tanh"), 6)
        0.418037
        >>> initbook.theory.fixed_point_q(1.0, 0.5, "relu")
        1.0
    """
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    q0 = check_real("q0", q0, nonnegative=True)
    return _fixed_point_q(_activation(phi), sigma_w2, sigma_b2, q0)


def _chi1(act: _Activation, sigma_w2: float, sigma_b2: float, q: float | None = None) -> float:
    if act.name in ("linear", "relu"):  # E[phi'^2] does not depend on q
        return sigma_w2 * act.dmean_sq(1.0)
    if q is None:
        q = _fixed_point_q(act, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        raise ValueError(
            f"the length map has no finite fixed point for sigma_w2={sigma_w2!r}, "
            f"sigma_b2={sigma_b2!r}, so chi1 is undefined"
        )
    return sigma_w2 * act.dmean_sq(q)


def chi1(
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    dphi: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    q: float | None = None,
) -> float:
    r"""The mean squared singular value of one layer's Jacobian at the fixed point, :math:`\chi_1`.

    Poole et al. (2016) and Schoenholz et al., "Deep Information Propagation" (2017):

    .. math:: \chi_1 = \sigma_w^2\, \mathbb E_{z}\!\left[\phi'(\sqrt{q^*}\, z)^2\right] .

    It is the factor by which a small perturbation's squared length, and the squared norm of a gradient,
    grows per layer. The slope of the :func:`correlation_map` at :math:`c = 1` is that growth *relative to
    the growth of the signal itself*,

    .. math:: \mathcal C'(1) = \chi_1(q)\, \frac{q}{\mathcal V(q)},

    so it equals :math:`\chi_1` only at a fixed point :math:`q^* = \mathcal V(q^*) > 0`. There,
    :math:`\chi_1 < 1` is the ordered phase (inputs converge), :math:`\chi_1 > 1` the chaotic phase,
    :math:`\chi_1 = 1` the edge of chaos (:func:`critical_sigma_w2`). At the trivial fixed point
    :math:`q^* = 0` (tanh with :math:`\sigma_b^2 = 0` and :math:`\sigma_w^2 \le 1`) the signal shrinks by the
    same factor :math:`\chi_1 = \sigma_w^2` as a perturbation, so gradients vanish but correlations do not
    converge (see :func:`correlation_depth_scale`).

    Args:
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        phi: the activation (see :func:`length_map`).
        dphi: its derivative; ``None`` uses the known one for named activations and autograd otherwise.
        q: evaluate at this variance instead of the fixed point :math:`q^*` (:func:`fixed_point_q`).

    Examples:
        At :math:`\sigma_b^2 = 0` tanh's fixed point is :math:`q^* = 0`, where :math:`\phi'(0) = 1`:

        >>> round(initbook.theory.chi1(1.0, 0.0, "tanh"), 12)
        1.0
        >>> initbook.theory.chi1(2.0, 0.3, "relu")
        1.0
    """
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    if q is not None:
        q = check_real("q", q, nonnegative=True)
    return _chi1(_activation(phi, dphi), sigma_w2, sigma_b2, q)


def _correlation_map(
    act: _Activation, c: float, q: float, sigma_w2: float, sigma_b2: float
) -> float:
    new_q = sigma_w2 * act.mean_sq(q) + sigma_b2
    if new_q <= 0.0:
        raise ValueError(
            f"the next layer's variance is 0 for q={q!r}, sigma_w2={sigma_w2!r}, "
            f"sigma_b2={sigma_b2!r}: the correlation is undefined"
        )
    return (sigma_w2 * act.cross(q, c) + sigma_b2) / new_q


def correlation_map(
    c: float,
    q: float,
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> float:
    r"""The correlation of two inputs' pre-activations one layer deeper (Poole et al. 2016).

    For two inputs whose pre-activations both have variance :math:`q` and correlation :math:`c`, the pair
    :math:`(u_1, u_2)` is bivariate Gaussian in the wide limit, and

    .. math::
        \mathcal C(c) = \frac{\sigma_w^2\, \mathbb E\left[\phi(u_1)\phi(u_2)\right] + \sigma_b^2}{\mathcal V(q)},
        \qquad u_1 = \sqrt q\, z_1,\quad u_2 = \sqrt q\,\bigl(c z_1 + \sqrt{1-c^2}\, z_2\bigr),

    with :math:`\mathcal V` the :func:`length_map` (equal to :math:`q` at the fixed point :math:`q^*`).
    The expectation is a tensor-product quadrature (as in :func:`length_map`), or closed form for ``"linear"``,
    ``"relu"`` (the arc-cosine kernel, Cho and Saul 2009) and ``"erf"`` (Williams 1997). The quadrature is
    accurate to about :math:`10^{-12}` for smooth activations; a callable with a kink (a ReLU passed as a
    function) is integrated to only about :math:`10^{-3}`, so use the name where there is one.

    Args:
        c: the correlation :math:`c^{\ell-1} \in [-1, 1]`.
        q: the common pre-activation variance (usually :math:`q^*`).
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        phi: the activation (see :func:`length_map`).

    Examples:
        >>> initbook.theory.correlation_map(1.0, 0.5, 1.5, 0.1, "relu")  # c = 1 is always a fixed point
        1.0
        >>> initbook.theory.correlation_map(0.0, 2.0, 2.0, 0.0, "relu")  # the arc-cosine kernel at c = 0
        0.3183098861837907
    """
    c = check_real("c", c)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"c must be a correlation in [-1, 1], got {c!r}")
    q = check_real("q", q, nonnegative=True)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    return _correlation_map(_activation(phi), c, q, sigma_w2, sigma_b2)


def _degenerate_limit(act: _Activation, sigma_w2: float, sigma_b2: float, q: float) -> str | None:
    """How correlations behave when the usual analysis at a fixed point ``0 < q* < inf`` does not apply.

    ``None``: it applies (``q*`` is finite and positive and the map is not scale-free). ``"power"``: the
    map tends to one whose slope at ``c = 1`` is exactly 1, and ``c = 1`` attracts like a power law (ReLU
    without bias or with ``q -> inf``: the arc-cosine map; a critical linear network with bias).
    ``"frozen"``: the map tends to the identity, and correlations settle at values that depend on the
    inputs (tanh and erf at ``q* = 0``; a linear network without bias, or with bias and ``q`` growing
    geometrically). Raises for a callable at ``q* = 0`` or ``inf``, whose limit this cannot know.
    """
    if act.name == "relu":
        return "power" if sigma_b2 == 0.0 or math.isinf(q) else None
    if act.name == "linear":
        if sigma_b2 == 0.0:
            return "frozen"  # C(c) = c exactly
        if math.isinf(q):  # q grows like l (sigma_w2 = 1, 1 - c ~ 1/l) or geometrically (summable)
            return "power" if sigma_w2 == 1.0 else "frozen"
        return None
    if q == 0.0 or math.isinf(q):
        if act.name in ("tanh", "erf"):  # phi(x) ~ phi'(0) x near 0: the map tends to the identity
            return "frozen"
        raise ValueError(
            f"the length map goes to q* = {q!r} for sigma_w2={sigma_w2!r}, sigma_b2={sigma_b2!r}: how "
            "correlations behave there depends on the activation near 0 or infinity, which is known "
            f"only for {list(_MEAN_FIELD_NAMES)}; follow them with iterate_maps instead"
        )
    return None


def _fixed_point_c(act: _Activation, sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    """``(q*, c*)``: the stable fixed point of the correlation map (``c* = 1`` unless chaotic)."""
    q = _fixed_point_q(act, sigma_w2, sigma_b2)
    if (
        _degenerate_limit(act, sigma_w2, sigma_b2, q) is not None
        or _chi1(act, sigma_w2, sigma_b2, q) <= 1.0
    ):
        return q, 1.0

    def f(c: float) -> float:
        value = _correlation_map(act, c, q, sigma_w2, sigma_b2) - c
        # f(-1) >= 0 always (Cauchy-Schwarz). For an odd phi without bias c = -1 is itself an (unstable)
        # fixed point, f(-1) = 0, and rounding can make it a tiny negative number, which would let the
        # bisection converge to -1 instead of the stable c* in (-1, 1).
        return max(value, 0.0) if c <= -1.0 else value

    # f(1 - d) < 0 for small d since the slope at 1 is chi1 > 1
    for k in range(1, 41):
        hi = 1.0 - 2.0**-k
        if f(hi) < 0.0:
            return q, _bisect(f, -1.0, hi)
    return q, 1.0


def fixed_point_c(
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> float:
    r"""The stable fixed point :math:`c^*` of the :func:`correlation_map` at :math:`q = q^*`.

    :math:`c = 1` is always a fixed point, with slope :math:`\chi_1` (:func:`chi1`) when :math:`q^* > 0`.
    In the ordered phase (:math:`\chi_1 \le 1`) it is stable and :math:`c^* = 1`: all inputs end up
    perfectly correlated. In the chaotic phase (:math:`\chi_1 > 1`) it is unstable and correlations
    converge to a :math:`c^* < 1` instead, found here by bisection on :math:`[-1, 1)` (Schoenholz et al.
    2017).

    Two degenerate cases have no such fixed point (see :func:`correlation_depth_scale`). For ReLU
    without bias the correlation map is the arc-cosine map whatever :math:`\sigma_w^2`; :math:`c = 1`
    attracts, but only like a power law, and the result is 1. For tanh and erf with :math:`\sigma_b^2 = 0`
    in the ordered phase the length goes to :math:`q^* = 0`, where the map tends to the identity:
    correlations *freeze* at a value that depends on the inputs, there is no :math:`c^*`, and this function
    raises a ValueError (as for a linear network without bias); :func:`iterate_maps` follows them.

    Raises:
        ValueError: when correlations freeze instead of converging, or when the length map's fixed point
            is 0 or infinite for an activation given as an unnamed callable.

    Examples:
        >>> initbook.theory.fixed_point_c(0.5, 0.1, "tanh")
        1.0
        >>> [abs(initbook.theory.fixed_point_c(s, 0.0, "tanh")) < 1e-12 for s in (2.0, 3.0)]  # odd phi: 0
        [True, True]
        >>> initbook.theory.fixed_point_c(1.0, 0.0, "relu")  # the arc-cosine map: 1 - c ~ 1/l^2
        1.0
    """
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    act = _activation(phi)
    q = _fixed_point_q(act, sigma_w2, sigma_b2)
    if _degenerate_limit(act, sigma_w2, sigma_b2, q) == "frozen":
        raise ValueError(
            f"with sigma_w2={sigma_w2!r} and sigma_b2={sigma_b2!r} the correlation map tends to the identity "
            f"(the length goes to q* = {q!r}): correlations freeze at values that depend on the inputs, "
            "so there is no fixed point c*; follow them with iterate_maps"
        )
    return _fixed_point_c(act, sigma_w2, sigma_b2)[1]


def critical_sigma_w2(
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    dphi: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    r"""The weight variance :math:`\sigma_w^2` on the order-to-chaos line, where :math:`\chi_1 = 1`.

    The edge of chaos of Poole et al. (2016) and Schoenholz et al. (2017): for a given :math:`\sigma_b^2`,
    the root of

    .. math:: \chi_1(\sigma_w^2) = \sigma_w^2\,\mathbb E\!\left[\phi'\!\left(\sqrt{q^*(\sigma_w^2)}\,z\right)^2\right] = 1,

    found by bisection (:math:`\chi_1` increases with :math:`\sigma_w^2`). There, both the correlation
    depth scale (:func:`correlation_depth_scale`) and the gradient depth scale diverge, so arbitrarily deep
    networks can propagate signals and train. ReLU's line is :math:`\sigma_w^2 = 2` for every bias
    variance (He initialization), the identity's :math:`\sigma_w^2 = 1`.

    Examples:
        >>> round(initbook.theory.critical_sigma_w2(0.0, "tanh"), 9)
        1.0
        >>> initbook.theory.critical_sigma_w2(0.1, "relu")
        2.0
        >>> round(initbook.theory.critical_sigma_w2(0.05, "tanh"), 3)  # Schoenholz et al.'s 1.76
        1.761
    """
    sigma_b2 = check_real("sigma_b2", sigma_b2, nonnegative=True)
    act = _activation(phi, dphi)
    if act.name in ("linear", "relu"):
        return 1.0 / act.dmean_sq(1.0)

    def f(s: float) -> float:
        return _chi1(act, s, sigma_b2) - 1.0

    hi = 1.0
    while f(hi) < 0.0:
        hi *= 2.0
        if hi > 1e6:
            raise ValueError(f"chi1 stays below 1 for sigma_w2 up to 1e6 at sigma_b2={sigma_b2!r}")
    return _bisect(f, 0.0, hi)


def correlation_depth_scale(
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    dphi: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    r"""The depth scale :math:`\xi_c` over which correlations approach their fixed point.

    From "Deep Information Propagation", Schoenholz, S. S. et al. (2017): near the fixed point
    :math:`(q^*, c^*)` (:func:`fixed_point_q`, :func:`fixed_point_c`),
    :math:`|c^\ell - c^*| \propto e^{-\ell/\xi_c}` with

    .. math::
        \xi_c = -\frac{1}{\ln \chi_c}, \qquad
        \chi_c = \mathcal C'(c^*) = \sigma_w^2\, \mathbb E\left[\phi'(u_1)\phi'(u_2)\right],

    the slope of the correlation map at :math:`c^*`, where :math:`(u_1, u_2)` have variance :math:`q^*`
    and correlation :math:`c^*`. In the ordered phase :math:`c^* = 1` and :math:`\chi_c = \chi_1`; in the
    chaotic phase :math:`c^* < 1` and :math:`\chi_c < 1 < \chi_1`. At the critical line :math:`\chi_c = 1`
    and :math:`\xi_c = \infty`: signals propagate through any depth. Schoenholz et al. find that networks
    train only when their depth is at most a few times :math:`\xi_c`.

    All of this needs a fixed point :math:`0 < q^* < \infty`. Away from one, the slope of the map at
    :math:`c = 1` is :math:`\chi_1(q)\, q/\mathcal V(q)` (:func:`chi1`), and it tends to 1, so there is no
    exponential approach and the result is ``inf``, for two different reasons:

    * **Frozen correlations.** tanh and erf with :math:`\sigma_b^2 = 0` in the ordered phase (tanh:
      :math:`\sigma_w^2 \le 1`) have :math:`q^* = 0`. The signal shrinks like :math:`\sigma_w^{2\ell}`, the
      activation becomes linear, and the correlation map tends to the identity: correlations settle at
      values that depend on the inputs instead of merging (:func:`fixed_point_c` raises). What kills such
      a network is the vanishing signal and gradient, :func:`gradient_depth_scale`, not :math:`\xi_c`.
      The same holds for a linear network without bias.
    * **A power law.** For ReLU without bias the correlation map is the arc-cosine map
      :math:`\mathcal C(c) = \bigl(\sqrt{1-c^2} + (\pi - \arccos c)\,c\bigr)/\pi` for every
      :math:`\sigma_w^2`. Its slope at :math:`c = 1` is exactly 1 and
      :math:`\mathcal C(c) \approx c + \tfrac{2\sqrt2}{3\pi}(1-c)^{3/2}`, so
      :math:`1 - c^\ell \approx \tfrac{9\pi^2}{2\ell^2}`: inputs do merge, but only algebraically. The same
      limit holds whenever :math:`q` grows without bound (ReLU with :math:`\sigma_w^2 \ge 2`).

    For an activation given as an unnamed callable, whose behaviour near 0 or at infinity this function
    cannot know, a length map that goes to 0 or infinity raises a ValueError.

    Examples:
        >>> round(initbook.theory.correlation_depth_scale(1.0, 0.1, "relu"), 6)  # q* = 0.2, chi1 = 1/2
        1.442695
        >>> initbook.theory.correlation_depth_scale(1.0, 0.0, "relu")  # arc-cosine map: 1 - c ~ 1/l^2
        inf
        >>> initbook.theory.correlation_depth_scale(0.5, 0.0, "tanh")  # q* = 0: correlations freeze
        inf
        >>> round(initbook.theory.correlation_depth_scale(0.5, 0.01, "tanh"), 3)  # q* > 0: they merge
        1.37
    """
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    act = _activation(phi, dphi)
    q = _fixed_point_q(act, sigma_w2, sigma_b2)
    if _degenerate_limit(act, sigma_w2, sigma_b2, q) is not None:
        return math.inf
    q, c = _fixed_point_c(act, sigma_w2, sigma_b2)
    chi_c = _chi1(act, sigma_w2, sigma_b2, q) if c == 1.0 else sigma_w2 * act.dcross(q, c)
    if chi_c >= 1.0:
        return math.inf
    if chi_c <= 0.0:
        return 0.0
    return -1.0 / math.log(chi_c)


def critical_line(
    sigma_b2: Sequence[float] | torch.Tensor,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    dphi: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""The order-to-chaos line :math:`\sigma_w^2(\sigma_b^2)` for many bias variances at once.

    On the critical line both :math:`q^* = \mathcal V(q^*)` (:func:`fixed_point_q`) and :math:`\chi_1 = 1`
    (:func:`chi1`) hold. Solving the second for :math:`\sigma_w^2` and substituting it into the first
    gives the line in parametric form, with the fixed point :math:`q^*` as the parameter:

    .. math::
        \sigma_w^2 = \frac{1}{\mathbb E[\phi'(\sqrt{q^*} z)^2]}, \qquad
        \sigma_b^2 = q^* - \frac{\mathbb E[\phi(\sqrt{q^*} z)^2]}{\mathbb E[\phi'(\sqrt{q^*} z)^2]} .

    For each requested :math:`\sigma_b^2` this function bisects on :math:`q^*` (one-dimensional
    quadratures only, about a hundred times cheaper than :func:`critical_sigma_w2`, which nests a fixed-point
    search inside a bisection on :math:`\sigma_w^2`; the two agree to about :math:`10^{-10}` for tanh, whose
    :math:`\sigma_b^2(q^*)` is increasing). Below the line a random network is in the ordered phase
    (:math:`\chi_1 < 1`), above it in the chaotic phase (Poole et al. 2016). For tanh the line starts at
    :math:`(\sigma_b^2, \sigma_w^2) = (0, 1)` and rises steeply, since :math:`\sigma_b^2 \approx \tfrac43
    q^{*3}` while :math:`\sigma_w^2 - 1 \approx 2 q^*` for small :math:`q^*`: a tiny bias variance moves
    the critical weight variance a lot.

    Args:
        sigma_b2: bias variances, a sequence of non-negative numbers or a 1-D tensor.
        phi: the activation (see :func:`length_map`).
        dphi: its derivative (see :func:`chi1`).

    Returns:
        A float64 tensor of the same length: the critical :math:`\sigma_w^2` for each bias variance.

    Examples:
        >>> line = initbook.theory.critical_line([0.0, 0.05, 0.2])
        >>> [round(v, 3) for v in line.tolist()]
        [1.0, 1.761, 2.285]
        >>> initbook.theory.critical_line(torch.tensor([0.0, 1.0]), "relu").tolist()
        [2.0, 2.0]
    """
    if isinstance(sigma_b2, torch.Tensor):
        if sigma_b2.dim() != 1:
            raise ValueError(f"sigma_b2 must be a 1-D tensor, got shape {tuple(sigma_b2.shape)}")
        values = sigma_b2.tolist()
    elif isinstance(sigma_b2, Sequence) and not isinstance(sigma_b2, str):
        values = list(sigma_b2)
    else:
        raise TypeError(f"sigma_b2 must be a sequence of numbers or a 1-D tensor, got {sigma_b2!r}")
    values = check_each("sigma_b2", values, check_real, nonempty=False, nonnegative=True)
    act = _activation(phi, dphi)
    if act.name in ("linear", "relu"):
        return torch.full((len(values),), 1.0 / act.dmean_sq(1.0), dtype=torch.float64)

    def bias_on_line(q: float) -> float:
        return q - act.mean_sq(q) / act.dmean_sq(q)

    out = []
    for target in values:
        if target == 0.0:
            q = 0.0
        else:
            hi = 1.0
            while bias_on_line(hi) < target:
                hi *= 2.0
                if hi > 1e4:  # the quadrature's node limit (see length_map)
                    raise ValueError(f"sigma_b2={target!r} is too large for the critical line")
            q = _bisect(lambda x: bias_on_line(x) - target, 0.0, hi)  # noqa: B023 (called here)
        out.append(1.0 / act.dmean_sq(q))
    return torch.tensor(out, dtype=torch.float64)


def gradient_depth_scale(
    sigma_w2: float,
    sigma_b2: float,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
    dphi: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    r"""The depth scale :math:`\xi_\nabla = -1/\ln\chi_1` of gradient norms (Schoenholz et al. 2017).

    In a wide random network at its fixed point :math:`q^*`, the squared norm of the gradient with respect
    to layer :math:`\ell`'s pre-activations, backpropagated from layer :math:`L`, is on average
    :math:`\chi_1^{L - \ell}` times the one at layer :math:`L` (:func:`chi1`), i.e.

    .. math:: \frac{\mathbb E\lVert \nabla_{h^\ell}\mathcal L\rVert^2}{\mathbb E\lVert \nabla_{h^L}\mathcal L\rVert^2}
        = \chi_1^{L-\ell} = e^{-(L - \ell)/\xi_\nabla},
        \qquad \xi_\nabla = -\frac{1}{\ln \chi_1} .

    Positive in the ordered phase (gradients vanish over :math:`\xi_\nabla` layers), negative in the chaotic
    phase (they explode: by a factor :math:`e` over :math:`|\xi_\nabla|` layers), infinite at the edge of
    chaos.

    Unlike :func:`correlation_depth_scale`, this needs no non-trivial fixed point: at :math:`q^* = 0`
    (tanh with :math:`\sigma_b^2 = 0`, :math:`\sigma_w^2 < 1`) the per-layer factor :math:`\chi_1(q^\ell)`
    tends to :math:`\sigma_w^2\,\phi'(0)^2`, and for ReLU it is :math:`\sigma_w^2/2` at every :math:`q`, so
    :math:`\xi_\nabla` is the depth scale over which gradients vanish there, while correlations freeze
    (tanh) or merge only like a power law (ReLU).

    Examples:
        >>> round(initbook.theory.gradient_depth_scale(1.0, 0.0, "relu"), 6)  # chi1 = 1/2 at any q
        1.442695
        >>> round(initbook.theory.gradient_depth_scale(0.5, 0.0), 6)  # tanh at q* = 0: chi1 = 1/2 too
        1.442695
        >>> round(initbook.theory.gradient_depth_scale(25 / 9, 0.0), 3)  # tanh with gain 5/3: explodes
        -5.25
        >>> initbook.theory.gradient_depth_scale(2.0, 0.3, "relu")
        inf
    """
    chi = chi1(sigma_w2, sigma_b2, phi, dphi)
    if chi == 1.0:
        return math.inf
    if chi == 0.0:
        return 0.0
    return -1.0 / math.log(chi)


class MeanFieldMaps(NamedTuple):
    r"""The iterates of :func:`iterate_maps`, layer :math:`\ell = 0, \dots, L` (index 0 is the start)."""

    q: torch.Tensor
    """:math:`q^\\ell`, the pre-activation variance, float64 of shape ``(depth + 1,)``."""
    c: torch.Tensor
    """:math:`c^\\ell`, the correlation of two inputs' pre-activations, float64 of shape ``(depth + 1,)``."""


def iterate_maps(
    q0: float,
    c0: float,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
) -> MeanFieldMaps:
    r"""Iterate the length and correlation maps jointly for ``depth`` layers: the theory's prediction.

    Two inputs whose pre-activations both have variance :math:`q^0` and correlation :math:`c^0` are mapped
    to

    .. math:: q^{\ell} = \mathcal V(q^{\ell-1}), \qquad c^{\ell} = \mathcal C(c^{\ell-1}; q^{\ell-1}),

    with :math:`\mathcal V` the :func:`length_map` and :math:`\mathcal C` the :func:`correlation_map`
    evaluated at the current variance (not at :math:`q^*`), so the transient before :math:`q` settles is
    included. This is what a wide random network (:func:`initbook.stats.mean_field_network`) does on average.

    Args:
        q0: starting variance :math:`q^0 > 0`.
        c0: starting correlation in :math:`[-1, 1]`.
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        depth: number of layers :math:`L`.
        phi: the activation (see :func:`length_map`).

    Returns:
        A :class:`MeanFieldMaps` ``(q, c)`` of two float64 tensors of length ``depth + 1``.

    Examples:
        >>> q, c = initbook.theory.iterate_maps(1.0, 0.9, 2.5, 0.05, 100)
        >>> round(float(q[-1]), 4) == round(initbook.theory.fixed_point_q(2.5, 0.05), 4)
        True
        >>> round(float(c[-1]), 3), round(initbook.theory.fixed_point_c(2.5, 0.05), 3)  # chaotic: c* < 1
        (0.447, 0.447)
    """
    q = check_real("q0", q0, positive=True)
    c = check_real("c0", c0)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0!r}")
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    check_int("depth", depth, minimum=0)
    act = _activation(phi)
    qs, cs = [q], [c]
    for _ in range(depth):
        c = min(1.0, max(-1.0, _correlation_map(act, c, q, sigma_w2, sigma_b2)))
        q = sigma_w2 * act.mean_sq(q) + sigma_b2
        qs.append(q)
        cs.append(c)
    return MeanFieldMaps(
        torch.tensor(qs, dtype=torch.float64), torch.tensor(cs, dtype=torch.float64)
    )
