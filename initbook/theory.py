r"""Closed-form predictions derived in the book.

Every function here is checked against a Monte-Carlo measurement from :mod:`initbook.stats` in the test
suite, with a tolerance derived from the number of samples.

The repeated product :math:`x_t = a_t x_{t-1}` with :math:`a_{ik} \sim \mathcal N(0, s^2)` and
:math:`x \in \mathbb R^n` multiplies the root mean square of :math:`x` by the *growth factor*

.. math:: g = s\sqrt{n}

per step on average, because :math:`\mathbb E[(a x)_i^2] = n\, s^2\, \overline{x^2}`. After :math:`t` steps the
typical entry has size :math:`g^t`, so a floating-point format with largest value :math:`M` overflows after
about :math:`\ln M / \ln g` steps, and one with smallest positive value :math:`\mu` underflows to exactly
zero after about :math:`\ln \mu / \ln g` steps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch

from ._theory_convolution import (
    padded_conv_second_moments,
    padding_variance_decay,
    pooled_second_moment,
)
from ._validation import check_choice, check_float_dtype, check_int, check_real
from .init import Nonlinearity, calculate_gain

__all__ = [
    "VariancePropagation",
    "chi1",
    "correlation_depth_scale",
    "correlation_map",
    "critical_sigma_w2",
    "expected_max_abs_normal",
    "fixed_point_c",
    "fixed_point_q",
    "float_range",
    "gauss_hermite",
    "growth_factor",
    "kaiming_std",
    "leaky_relu_second_moment",
    "lecun_std",
    "length_map",
    "log_rms_moments",
    "overflow_step",
    "padded_conv_second_moments",
    "padding_variance_decay",
    "pooled_second_moment",
    "propagate_variance",
    "relu_mean_gaussian",
    "relu_second_moment",
    "relu_variance_gaussian",
    "sum_variance",
    "torch_default_bound",
    "underflow_step",
    "uniform_bound",
    "xavier_std",
]


def growth_factor(n: int, scale: float = 1.0) -> float:
    r"""Per-step growth of the RMS of :math:`x` under :math:`x \mapsto a x`, :math:`a_{ik} \sim \mathcal N(0, s^2)`.

    .. math:: g = s\,\sqrt{n}

    Args:
        n: width (number of terms in each sum).
        scale: standard deviation :math:`s` of the matrix entries.

    Examples:
        >>> initbook.theory.growth_factor(512)  # sqrt(512)
        22.627416997969522
        >>> initbook.theory.growth_factor(512, scale=1 / math.sqrt(512))
        1.0
    """
    check_int("n", n, minimum=1)
    scale = check_real("scale", scale, nonnegative=True)
    return scale * math.sqrt(n)


def float_range(dtype: torch.dtype) -> tuple[float, float, float]:
    r"""The largest finite value, the smallest normal and the smallest subnormal value of ``dtype``.

    The smallest subnormal is :math:`\mu = \text{smallest normal} \times \varepsilon` (one unit in the last
    place at the bottom of the range); anything below :math:`\mu/2` rounds to zero.

    Examples:
        >>> initbook.theory.float_range(torch.float16)
        (65504.0, 6.103515625e-05, 5.960464477539063e-08)
        >>> initbook.theory.float_range(torch.float32)[2] == 2.0**-149
        True
    """
    check_float_dtype("dtype", dtype)
    info = torch.finfo(dtype)
    return float(info.max), float(info.smallest_normal), float(info.smallest_normal * info.eps)


def expected_max_abs_normal(count: int) -> float:
    r"""Leading-order size of the largest of ``count`` i.i.d. :math:`|\mathcal N(0, 1)|` draws: :math:`\sqrt{2\ln N}`.

    The extreme-value correction used by :func:`overflow_step` and :func:`underflow_step`: the first entry
    to overflow is the largest one, not a typical one. Returns ``1.0`` for ``count == 1``.

    Examples:
        >>> round(initbook.theory.expected_max_abs_normal(512), 3)
        3.532
    """
    check_int("count", count, minimum=1)
    return max(1.0, math.sqrt(2.0 * math.log(count)))


def overflow_step(
    n: int,
    scale: float = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
    x_rms: float = 1.0,
    extreme: bool = True,
) -> int | None:
    r"""Predict the first step at which :math:`x_t = a_t x_{t-1}` has an infinite entry.

    After :math:`t` steps the RMS of :math:`x_t` is :math:`r_0 g^t` with :math:`g = s\sqrt n`
    (:func:`growth_factor`). The first entry to overflow is the largest of the :math:`n`, about
    :math:`\sqrt{2\ln n}` times the RMS (``extreme=True``; ``False`` uses the RMS itself). With :math:`M` the
    largest finite value of ``dtype``, the prediction is the smallest integer :math:`t` with

    .. math:: r_0\, g^t \sqrt{2 \ln n} > M
        \quad\Longleftrightarrow\quad
        t > \frac{\ln M - \ln r_0 - \ln\sqrt{2\ln n}}{\ln g}.

    Args:
        n: width.
        scale: standard deviation :math:`s` of the matrix entries.
        dtype: floating format (float16, bfloat16, float32 or float64).
        x_rms: RMS :math:`r_0` of the initial vector.
        extreme: include the extreme-value factor :math:`\sqrt{2\ln n}`.

    Returns:
        The predicted step, or ``None`` if :math:`g \le 1` (the product never grows).

    Examples:
        >>> initbook.theory.overflow_step(512)  # the seed notebooks' experiment
        29
        >>> initbook.theory.overflow_step(512, dtype=torch.float16)
        4
        >>> initbook.theory.overflow_step(512, scale=1 / math.sqrt(512)) is None
        True
    """
    g = growth_factor(n, scale)
    x_rms = check_real("x_rms", x_rms, positive=True)
    biggest, _, _ = float_range(dtype)
    if g <= 1.0:
        return None
    factor = expected_max_abs_normal(n) if extreme else 1.0
    t_star = (math.log(biggest) - math.log(x_rms) - math.log(factor)) / math.log(g)
    return max(0, math.floor(t_star) + 1)


def underflow_step(
    n: int,
    scale: float,
    *,
    dtype: torch.dtype = torch.float32,
    x_rms: float = 1.0,
    extreme: bool = True,
) -> int | None:
    r"""Predict the first step at which :math:`x_t = a_t x_{t-1}` is exactly zero in every entry.

    Entry :math:`i` of :math:`a x` is a sum of products :math:`a_{ik} x_k`; the sum is exactly zero once
    every product rounds to zero, i.e. falls below half the smallest subnormal :math:`\mu` of ``dtype``. The
    largest product is about :math:`s\sqrt{2\ln n^2}\cdot r\sqrt{2\ln n}` for a state of RMS :math:`r`
    (``extreme=True``; ``False`` drops both extreme-value factors). With :math:`r_{t-1} = r_0 g^{t-1}` the
    prediction is the smallest integer :math:`t` with

    .. math:: s\,\sqrt{2\ln n^2}\,\sqrt{2\ln n}\; r_0\, g^{t-1} < \mu / 2.

    Args:
        n: width.
        scale: standard deviation :math:`s` of the matrix entries (``0.01`` in the seed notebooks).
        dtype: floating format.
        x_rms: RMS :math:`r_0` of the initial vector.
        extreme: include the extreme-value factors.

    Returns:
        The predicted step, or ``None`` if :math:`g \ge 1` (the product never shrinks).

    Examples:
        >>> initbook.theory.underflow_step(512, 0.01)
        70
        >>> initbook.theory.underflow_step(512, 1.0) is None
        True
    """
    g = growth_factor(n, scale)
    x_rms = check_real("x_rms", x_rms, positive=True)
    _, _, tiniest = float_range(dtype)
    if g >= 1.0 or scale == 0.0:
        return None if scale > 0.0 else 1
    factor = expected_max_abs_normal(n * n) * expected_max_abs_normal(n) if extreme else 1.0
    # s * factor * r0 * g**(t-1) < tiniest / 2  <=>  t - 1 > log(tiniest / (2 s factor r0)) / log(g);
    # in logs, since the quotient itself can round to 0 in float64 (float64's tiniest / 2 already does)
    t_minus_1 = (math.log(tiniest) - math.log(2.0 * scale * factor * x_rms)) / math.log(g)
    return max(1, math.floor(t_minus_1) + 2)


def log_rms_moments(n: int, steps: int, scale: float | None = None) -> tuple[float, float]:
    r"""Mean and standard deviation of :math:`\ln(r_t / r_0)` for fresh Gaussian layers.

    With a fresh matrix at every step, :math:`a_t x` is exactly :math:`\mathcal N(0, s^2\lVert x\rVert^2 I)`,
    so :math:`r_t^2 = r_{t-1}^2\, s^2 \chi^2_n` with independent chi-squared factors. Hence :math:`\ln r_t` is a
    random walk with

    .. math::
        \mathbb E\!\left[\ln\frac{r_t}{r_0}\right] = \frac t2\left(\psi(\tfrac n2) + \ln 2 + \ln s^2\right),
        \qquad
        \operatorname{sd}\!\left[\ln\frac{r_t}{r_0}\right] = \frac12\sqrt{t\,\psi_1(\tfrac n2)}
        \approx \sqrt{\frac{t}{2n}},

    where :math:`\psi` is the digamma and :math:`\psi_1` the trigamma function. Even at the "right" scale
    :math:`s = 1/\sqrt n` the RMS drifts: by a factor of about :math:`e^{\pm\sqrt{t/2n}}` after :math:`t` layers.

    Args:
        n: width.
        steps: number of layers :math:`t`.
        scale: standard deviation :math:`s` of the entries; defaults to :math:`1/\sqrt n`.

    Examples:
        >>> mean, sd = initbook.theory.log_rms_moments(512, 100)
        >>> round(mean, 4), round(sd, 4)
        (-0.0977, 0.3128)
    """
    check_int("n", n, minimum=1)
    check_int("steps", steps, minimum=0)
    s2 = 1.0 / n if scale is None else check_real("scale", scale, positive=True) ** 2
    half = torch.tensor(n / 2.0, dtype=torch.float64)
    digamma = float(torch.special.digamma(half))
    trigamma = float(torch.special.polygamma(1, half))
    mean = 0.5 * steps * (digamma + math.log(2.0) + math.log(s2))
    sd = 0.5 * math.sqrt(steps * trigamma)
    return mean, sd


# ---------------------------------------------------------------------------------------------------------
# The variance of a sum, and rectified inputs
# ---------------------------------------------------------------------------------------------------------


def sum_variance(n: int, var_w: float, mean_sq_x: float) -> float:
    r"""Variance of one pre-activation :math:`y = \sum_{i=1}^n w_i x_i` of a layer with random weights.

    With i.i.d. zero-mean weights independent of the inputs,

    .. math:: \operatorname{Var}[y] = n\,\operatorname{Var}[w]\,\mathbb E[x^2],

    the identity behind every variance-preserving initializer (LeCun et al., "Efficient BackProp", 1998;
    Glorot and Bengio, "Understanding the difficulty of training deep feedforward neural networks", 2010;
    He et al., "Delving Deep into Rectifiers", 2015). It needs the *second moment* :math:`\mathbb E[x^2]`
    of the inputs, not their variance: the two differ after a ReLU, whose outputs have a non-zero mean.
    The inputs need not be independent of each other, nor Gaussian.

    Args:
        n: number of terms (the fan-in).
        var_w: variance of each weight.
        mean_sq_x: second moment :math:`\mathbb E[x_i^2]` of the inputs (their average over :math:`i`).

    Examples:
        >>> initbook.theory.sum_variance(512, 1 / 512, 1.0)
        1.0
        >>> initbook.theory.sum_variance(256, 2 / 256, 0.5)  # He initialization after a ReLU
        1.0
    """
    check_int("n", n, minimum=1)
    var_w = check_real("var_w", var_w, nonnegative=True)
    mean_sq_x = check_real("mean_sq_x", mean_sq_x, nonnegative=True)
    return n * var_w * mean_sq_x


def relu_second_moment(v: float) -> float:
    r"""Second moment of :math:`\max(0, y)` for a zero-mean *symmetric* input :math:`y` of variance :math:`v`.

    .. math:: \mathbb E[\operatorname{relu}(y)^2] = \tfrac12\,\mathbb E[y^2] = \tfrac v2,

    because :math:`y^2` is the same on both halves of a symmetric distribution and the ReLU keeps one of
    them. This factor :math:`\tfrac12` is why He et al. ("Delving Deep into Rectifiers", 2015) double the
    weight variance to :math:`2/n`. No Gaussian assumption is needed.

    Examples:
        >>> initbook.theory.relu_second_moment(1.0)
        0.5
    """
    return check_real("v", v, nonnegative=True) / 2.0


def leaky_relu_second_moment(v: float, slope: float = 0.01) -> float:
    r"""Second moment of a leaky ReLU of a zero-mean symmetric input of variance :math:`v`.

    With :math:`\phi(y) = y` for :math:`y > 0` and :math:`\text{slope}\cdot y` otherwise,

    .. math:: \mathbb E[\phi(y)^2] = \frac{1 + \text{slope}^2}{2}\, v .

    He et al. (2015) use the same factor for PReLU: the gain is :math:`\sqrt{2/(1 + \text{slope}^2)}`.

    Examples:
        >>> round(initbook.theory.leaky_relu_second_moment(1.0, 0.1), 12)
        0.505
        >>> initbook.theory.leaky_relu_second_moment(2.0, 1.0)  # slope 1 is the identity
        2.0
    """
    v = check_real("v", v, nonnegative=True)
    slope = check_real("slope", slope)
    return (1.0 + slope * slope) / 2.0 * v


def relu_mean_gaussian(v: float) -> float:
    r"""Mean of :math:`\max(0, y)` for :math:`y \sim \mathcal N(0, v)`: :math:`\sqrt{v / (2\pi)}`.

    .. math:: \mathbb E[\operatorname{relu}(y)] = \int_0^\infty y\,\frac{e^{-y^2/2v}}{\sqrt{2\pi v}}\,dy
        = \sqrt{\frac{v}{2\pi}} .

    Unlike :func:`relu_second_moment` this one needs the Gaussian shape.

    Examples:
        >>> initbook.theory.relu_mean_gaussian(2 * math.pi)
        1.0
    """
    return math.sqrt(check_real("v", v, nonnegative=True) / (2.0 * math.pi))


def relu_variance_gaussian(v: float) -> float:
    r"""Variance of :math:`\max(0, y)` for :math:`y \sim \mathcal N(0, v)`.

    .. math:: \operatorname{Var}[\operatorname{relu}(y)] = \frac v2 - \frac{v}{2\pi}
        = \frac{\pi - 1}{2\pi}\, v \approx 0.3408\, v .

    Examples:
        >>> round(initbook.theory.relu_variance_gaussian(1.0), 6)
        0.340845
    """
    v = check_real("v", v, nonnegative=True)
    return v / 2.0 - v / (2.0 * math.pi)


# ---------------------------------------------------------------------------------------------------------
# Activations: closed forms where they exist, Gauss-Hermite quadrature otherwise
# ---------------------------------------------------------------------------------------------------------

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
    about 400 points. The mean-field functions below therefore use a trapezoidal rule whose step shrinks
    with :math:`\sqrt q` (see :func:`length_map`).

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


_Z_MAX = 12.0  # the standard normal density is below 1e-31 beyond |z| = 12
_MAX_NODES_1D = 20_000  # the step reaches its floor at q ~ 1e4
_MAX_NODES_2D = 1_200  # per dimension (1.4 million points): the step reaches its floor at q ~ 150


def _gaussian_grid(q: float, max_nodes: int = _MAX_NODES_1D) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes and weights of a midpoint rule for :math:`\mathbb E[f(\sqrt q\, z)]`, :math:`z \sim \mathcal N(0,1)`.

    Equally spaced nodes :math:`\pm h/2, \pm 3h/2, \dots` on :math:`[-12, 12]` with step
    :math:`h = 0.25/\sqrt{\max(q, 1)}` (at most ``max_nodes`` of them) and weights :math:`\propto
    e^{-z^2/2}`. For integrands analytic in a strip (tanh: poles at :math:`\pm i\pi/(2\sqrt q)` in
    :math:`z`) such rules converge geometrically in :math:`1/h` (Trefethen and Weideman, SIAM Review 2014),
    so scaling :math:`h` with :math:`1/\sqrt q` keeps the error near :math:`10^{-13}` for every :math:`q`
    up to the node limit. A fixed Gauss–Hermite rule does not: with 101 nodes,
    :math:`\mathbb E[\operatorname{sech}^4(\sqrt q z)]` is off by :math:`2\times10^{-3}` at :math:`q = 8`,
    and numpy's nodes overflow beyond about 400 points. The nodes avoid :math:`z = 0` and are symmetric,
    so a kink at 0 (ReLU) gets no node of its own and :math:`\mathbb E[\operatorname{relu}(\sqrt q z)^2] =
    q/2` and :math:`\mathbb E[\mathbf 1(z > 0)] = 1/2` come out exactly.
    """
    m = min(math.ceil(_Z_MAX * math.sqrt(max(q, 1.0)) / 0.25), max_nodes // 2)
    h = _Z_MAX / m
    z = (torch.arange(-m, m, dtype=torch.float64) + 0.5) * h
    w = torch.exp(-0.5 * z.square())
    return z, w / w.sum()


def _relu_kernel(q: float, c: float) -> float:
    r""":math:`\mathbb E[\operatorname{relu}(u_1)\operatorname{relu}(u_2)]`, :math:`u` with variances q and correlation c."""
    theta = math.acos(c)
    return q / (2.0 * math.pi) * (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - theta) * c)


def _autograd_derivative(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    def dfn(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            xx = x.detach().clone().requires_grad_(True)
            y = fn(xx)
            if not y.requires_grad:  # e.g. a constant function
                return torch.zeros_like(x)
            (grad,) = torch.autograd.grad(y.sum(), xx, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad

    return dfn


@dataclass(frozen=True)
class _Activation:
    """An activation with the four Gaussian expectations the mean-field recursions need."""

    name: str | None
    fn: Callable[[torch.Tensor], torch.Tensor]
    dfn: Callable[[torch.Tensor], torch.Tensor]
    slope: float = 0.0

    def _e1(self, f: Callable, q: float) -> float:
        z, w = _gaussian_grid(q)
        return float((w * f(math.sqrt(q) * z).to(torch.float64).square()).sum())

    def _e2(self, f: Callable, q: float, c: float) -> float:
        z, w = _gaussian_grid(q, _MAX_NODES_2D)
        z1, z2 = z[:, None], z[None, :]
        u1 = (math.sqrt(q) * z1).expand(len(z), len(z))
        u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(0.0, 1.0 - c * c)) * z2)
        vals = f(u1).to(torch.float64) * f(u2).to(torch.float64)
        return float((w[:, None] * w[None, :] * vals).sum())

    def mean_sq(self, q: float) -> float:
        r""":math:`\mathbb E[\phi(\sqrt q z)^2]`."""
        if self.name == "linear":
            return q
        if self.name in ("relu", "leaky_relu"):
            return (1.0 + self.slope**2) / 2.0 * q
        if self.name == "erf":
            return 2.0 / math.pi * math.asin(2.0 * q / (1.0 + 2.0 * q))
        return self._e1(self.fn, q)

    def dmean_sq(self, q: float) -> float:
        r""":math:`\mathbb E[\phi'(\sqrt q z)^2]`."""
        if self.name == "linear":
            return 1.0
        if self.name in ("relu", "leaky_relu"):
            return (1.0 + self.slope**2) / 2.0
        if self.name == "erf":
            return 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q)
        return self._e1(self.dfn, q)

    def cross(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi(u_1)\phi(u_2)]` for :math:`u` with variances :math:`q` and correlation :math:`c`."""
        if self.name == "linear":
            return c * q
        if self.name in ("relu", "leaky_relu"):
            a = self.slope
            return (1.0 + a * a) * _relu_kernel(q, c) - 2.0 * a * _relu_kernel(q, -c)
        if self.name == "erf":
            return 2.0 / math.pi * math.asin(2.0 * c * q / (1.0 + 2.0 * q))
        return self._e2(self.fn, q, c)

    def dcross(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi'(u_1)\phi'(u_2)]`."""
        if self.name == "linear":
            return 1.0
        if self.name in ("relu", "leaky_relu"):
            a, theta = self.slope, math.acos(c)
            return ((1.0 + a * a) * (math.pi - theta) + 2.0 * a * theta) / (2.0 * math.pi)
        if self.name == "erf":
            return 4.0 / math.pi / math.sqrt((1.0 + 2.0 * q) ** 2 - (2.0 * c * q) ** 2)
        return self._e2(self.dfn, q, c)


_NAMED: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda x: x, torch.ones_like),
    "relu": (torch.relu, lambda x: (x > 0).to(x.dtype)),
    "tanh": (torch.tanh, lambda x: 1.0 - torch.tanh(x).square()),
    "erf": (torch.erf, lambda x: 2.0 / math.sqrt(math.pi) * torch.exp(-x.square())),
}
_MEAN_FIELD_NAMES = ("erf", "linear", "relu", "tanh")
_KNOWN_CALLABLES = {
    torch.tanh: "tanh",
    torch.relu: "relu",
    torch.erf: "erf",
    torch.special.erf: "erf",
    torch.nn.functional.relu: "relu",
}


def _activation(
    phi: object,
    dphi: object = None,
    *,
    arg: str = "phi",
    names: Sequence[str] = _MEAN_FIELD_NAMES,
    slope: float = 0.0,
) -> _Activation:
    """Resolve an activation given by name or as a callable (with an optional derivative)."""
    if isinstance(phi, _Activation):
        return phi
    if dphi is not None and not callable(dphi):
        raise TypeError(f"dphi must be a callable or None, got {dphi!r}")
    if isinstance(phi, str):
        name: str | None = check_choice(arg, phi, names)
    elif callable(phi):
        try:
            name = _KNOWN_CALLABLES.get(phi)
        except TypeError:  # unhashable callable
            name = None
    else:
        raise TypeError(f"{arg} must be one of {sorted(names)} or a callable, got {phi!r}")
    if name == "leaky_relu":
        return _Activation(
            name,
            lambda x: torch.nn.functional.leaky_relu(x, slope),
            lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope)),
            slope,
        )
    if name is not None and dphi is None:
        fn, dfn = _NAMED[name]
        return _Activation(name, fn, dfn)
    fn = (
        _NAMED[name][0] if name is not None else cast("Callable[[torch.Tensor], torch.Tensor]", phi)
    )
    return _Activation(None, fn, dphi if dphi is not None else _autograd_derivative(fn))


def _check_sigmas(sigma_w2: object, sigma_b2: object) -> tuple[float, float]:
    return (
        check_real("sigma_w2", sigma_w2, nonnegative=True),
        check_real("sigma_b2", sigma_b2, nonnegative=True),
    )


# ---------------------------------------------------------------------------------------------------------
# Forward variance through an MLP
# ---------------------------------------------------------------------------------------------------------


class VariancePropagation(NamedTuple):
    """Per-layer predictions of :func:`propagate_variance` (layer :math:`\\ell = 1, \\dots, L`)."""

    pre_var: tuple[float, ...]
    """:math:`q_\\ell = \\operatorname{Var}[y_\\ell]`, the variance of each pre-activation."""
    post_mean_sq: tuple[float, ...]
    """:math:`m_\\ell = \\mathbb E[\\phi_\\ell(y_\\ell)^2]`, the second moment of each post-activation."""


def _per_layer(name: str, value: object, layers: int, check: Callable) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != layers:
            raise ValueError(f"{name} must have {layers} entries (one per layer), got {len(value)}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * layers


def propagate_variance(
    widths: Sequence[int],
    weight_vars: float | Sequence[float],
    activations: str | Callable | Sequence[str | Callable],
    bias_vars: float | Sequence[float] | None = None,
    input_second_moment: float = 1.0,
    *,
    negative_slope: float = 0.01,
) -> VariancePropagation:
    r"""Propagate the variance of the pre-activations layer by layer through a random MLP.

    Layer :math:`\ell` computes :math:`y_\ell = W_\ell x_{\ell-1} + b_\ell` and :math:`x_\ell =
    \phi_\ell(y_\ell)`, with i.i.d. zero-mean weights of variance :math:`\sigma_\ell^2` and biases of
    variance :math:`\beta_\ell`. By :func:`sum_variance`,

    .. math::
        q_\ell = \operatorname{Var}[y_\ell] = n_{\ell-1}\,\sigma_\ell^2\, m_{\ell-1} + \beta_\ell,
        \qquad m_\ell = \mathbb E[\phi_\ell(y_\ell)^2], \qquad m_0 = \mathbb E[x_0^2] .

    For ``"linear"``, ``"relu"`` and ``"leaky_relu"`` the second step only needs :math:`y_\ell` to be
    symmetric, which it is given the layer's input, so the recursion is exact at *any* width:
    :math:`m = q`, :math:`q/2` and :math:`(1 + \text{slope}^2)\,q/2`. For ``"tanh"``, ``"erf"`` and
    callables, :math:`m_\ell = \mathbb E[\phi(\sqrt{q_\ell}\,z)^2]` assumes Gaussian pre-activations
    (computed in closed form for erf, by quadrature otherwise), which holds as the width
    grows; at finite width it is off by :math:`O(1/n)`.

    Args:
        widths: :math:`n_0, n_1, \dots, n_L`: the input width followed by the width of every layer.
        weight_vars: :math:`\sigma_\ell^2` for each of the :math:`L` layers, or one value for all.
        activations: per layer (or one for all): ``"linear"``, ``"relu"``, ``"leaky_relu"`` (slope
            ``negative_slope``), ``"tanh"``, ``"erf"`` or a callable on float64 tensors.
        bias_vars: :math:`\beta_\ell` per layer or one value; ``None`` means no bias.
        input_second_moment: :math:`m_0 = \mathbb E[x_0^2]`, averaged over the input's entries.
        negative_slope: slope of ``"leaky_relu"`` for negative inputs (PyTorch's default 0.01).

    Returns:
        A :class:`VariancePropagation` ``(pre_var, post_mean_sq)``, each a tuple of :math:`L` floats.

    Examples:
        He initialization (:math:`\sigma^2 = 2/n`) keeps a ReLU network's variance constant:

        >>> initbook.theory.propagate_variance([100, 100, 100, 10], 2 / 100, "relu")
        VariancePropagation(pre_var=(2.0, 2.0, 2.0), post_mean_sq=(1.0, 1.0, 1.0))

        PyTorch's default ``nn.Linear`` initialization, uniform with bound :math:`1/\sqrt n` (variance
        :math:`1/(3n)`), shrinks it six-fold per ReLU layer:

        >>> q, m = initbook.theory.propagate_variance([64] * 4, 1 / (3 * 64), "relu")
        >>> [round(v, 6) for v in q]
        [0.333333, 0.055556, 0.009259]
    """
    if not isinstance(widths, Sequence) or isinstance(widths, str):
        raise TypeError(f"widths must be a sequence of ints, got {widths!r}")
    if len(widths) < 2:
        raise ValueError(f"widths must list the input width and at least one layer, got {widths!r}")
    widths = [check_int(f"widths[{i}]", n, minimum=1) for i, n in enumerate(widths)]
    layers = len(widths) - 1
    sig = _per_layer(
        "weight_vars", weight_vars, layers, lambda k, v: check_real(k, v, nonnegative=True)
    )
    beta = _per_layer(
        "bias_vars",
        0.0 if bias_vars is None else bias_vars,
        layers,
        lambda k, v: check_real(k, v, nonnegative=True),
    )
    slope = check_real("negative_slope", negative_slope)
    names = (*_MEAN_FIELD_NAMES, "leaky_relu")
    acts = _per_layer(
        "activations",
        activations,
        layers,
        lambda k, v: _activation(v, arg=k, names=names, slope=slope),
    )
    m = check_real("input_second_moment", input_second_moment, nonnegative=True)
    pre, post = [], []
    for n_in, s2, b2, act in zip(widths[:-1], sig, beta, acts, strict=True):
        q = n_in * s2 * m + b2
        m = act.mean_sq(q)
        pre.append(q)
        post.append(m)
    return VariancePropagation(tuple(pre), tuple(post))


# ---------------------------------------------------------------------------------------------------------
# Initializer scales
# ---------------------------------------------------------------------------------------------------------


def kaiming_std(fan: int, a: float = 0.0, nonlinearity: Nonlinearity = "leaky_relu") -> float:
    r"""Standard deviation of He (Kaiming) initialization: :math:`\text{gain}/\sqrt{\text{fan}}`.

    From "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification",
    He, K. et al. (2015). With ``fan`` the fan-in (forward pass) or fan-out (backward pass),

    .. math:: \text{std} = \frac{\text{gain}}{\sqrt{\text{fan}}}, \qquad
        \text{gain}_\text{leaky ReLU} = \sqrt{\frac{2}{1 + a^2}},

    and the other gains as in :func:`torch.nn.init.calculate_gain` (relu :math:`\sqrt2`, tanh 5/3, selu
    3/4, linear/conv/sigmoid 1). The defaults are PyTorch's (``a=0``, ``"leaky_relu"``), i.e. the ReLU
    gain :math:`\sqrt 2`. Also known as He initialization.

    Args:
        fan: the fan-in or fan-out.
        a: negative slope of the leaky ReLU (used only for ``"leaky_relu"``).
        nonlinearity: the name of the nonlinearity after the layer.

    Examples:
        >>> initbook.theory.kaiming_std(512)  # sqrt(2 / 512)
        0.0625
        >>> round(initbook.theory.kaiming_std(100, nonlinearity="tanh"), 6)
        0.166667
    """
    check_int("fan", fan, minimum=1)
    a = check_real("a", a)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    r"""Standard deviation of Xavier (Glorot) initialization.

    From "Understanding the difficulty of training deep feedforward neural networks", Glorot, X. and
    Bengio, Y. (2010): a compromise between preserving the forward variance (:math:`1/n_\text{in}`) and
    the backward variance (:math:`1/n_\text{out}`),

    .. math:: \text{std} = \text{gain}\,\sqrt{\frac{2}{n_\text{in} + n_\text{out}}} .

    Also known as Glorot initialization.

    Examples:
        >>> initbook.theory.xavier_std(256, 256)
        0.0625
    """
    check_int("fan_in", fan_in, minimum=1)
    check_int("fan_out", fan_out, minimum=1)
    gain = check_real("gain", gain, nonnegative=True)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def lecun_std(fan_in: int) -> float:
    r"""Standard deviation of LeCun initialization: :math:`1/\sqrt{n_\text{in}}`.

    From "Efficient BackProp", LeCun, Y. et al. (1998): with :math:`\operatorname{Var}[w] =
    1/n_\text{in}`, :func:`sum_variance` gives :math:`\operatorname{Var}[y] = \mathbb E[x^2]`.

    .. math:: \text{std} = \frac{1}{\sqrt{n_\text{in}}}

    Examples:
        >>> initbook.theory.lecun_std(256)
        0.0625
    """
    check_int("fan_in", fan_in, minimum=1)
    return 1.0 / math.sqrt(fan_in)


def uniform_bound(std: float) -> float:
    r"""The bound :math:`b` of :math:`\mathcal U(-b, b)` with standard deviation ``std``: :math:`\sqrt3\,\text{std}`.

    .. math:: \operatorname{Var}[\mathcal U(-b, b)] = \frac{1}{2b}\int_{-b}^{b} w^2\,dw = \frac{b^2}{3}
        \quad\Longrightarrow\quad b = \sqrt 3\,\text{std} .

    Examples:
        >>> initbook.theory.uniform_bound(1.0)
        1.7320508075688772
    """
    return math.sqrt(3.0) * check_real("std", std, nonnegative=True)


def torch_default_bound(fan_in: int) -> float:
    r"""Bound of PyTorch's default ``nn.Linear``/``nn.ConvNd`` weight initialization: :math:`1/\sqrt{n_\text{in}}`.

    ``reset_parameters`` calls ``kaiming_uniform_(weight, a=math.sqrt(5))``. The leaky-ReLU gain for
    :math:`a = \sqrt5` and the uniform bound (:func:`uniform_bound`) give

    .. math::
        \text{gain} = \sqrt{\frac{2}{1 + a^2}} = \sqrt{\frac{2}{1 + 5}} = \sqrt{\frac13}, \qquad
        \text{std} = \frac{\text{gain}}{\sqrt{n_\text{in}}}, \qquad
        \text{bound} = \sqrt3\;\text{std} = \sqrt3\,\sqrt{\frac13}\,\frac{1}{\sqrt{n_\text{in}}}
        = \frac{1}{\sqrt{n_\text{in}}} .

    The weight variance is therefore :math:`\text{bound}^2/3 = 1/(3\,n_\text{in})`, a third of LeCun's,
    and the biases are drawn from the same :math:`\mathcal U(-1/\sqrt{n_\text{in}}, 1/\sqrt{n_\text{in}})`.

    Examples:
        >>> initbook.theory.torch_default_bound(256)
        0.0625
    """
    check_int("fan_in", fan_in, minimum=1)
    return 1.0 / math.sqrt(fan_in)


# ---------------------------------------------------------------------------------------------------------
# Mean-field theory of deep random networks
# ---------------------------------------------------------------------------------------------------------

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


# -- Residual networks --
# (appended by the residual-networks / low-precision chapters; names are added to __all__ here)

__all__ += [
    "fixup_scale",
    "relu_branch_gain2",
    "relu_mlp_float_limits",
    "residual_variance",
    "rounding_error",
    "unit_roundoff",
]


def relu_branch_gain2(layers: int = 2, inner_gain2: float = 2.0, last_gain2: float = 1.0) -> float:
    r"""The factor :math:`\alpha^2 = \mathbb E\lVert F(x)\rVert^2 / \lVert x\rVert^2` of a ReLU branch at initialization.

    The branch :math:`F(x) = W_m \operatorname{relu}(W_{m-1}\cdots\operatorname{relu}(W_1 x))` has i.i.d.
    zero-mean weights, :math:`\operatorname{Var}[W_j] = g_j^2/n`, with :math:`g_j^2 = ` ``inner_gain2`` for
    the :math:`m-1` inner layers and ``last_gain2`` for the last. Given its input, a Gaussian layer's output
    is exactly :math:`\mathcal N(0, g^2\lVert h\rVert^2/n)` per entry, and a ReLU keeps exactly half of its
    second moment, so for any fixed :math:`x`

    .. math:: \mathbb E\,\lVert F(x)\rVert^2 = \Bigl(\frac{g_\text{inner}^2}{2}\Bigr)^{m-1} g_\text{last}^2\,\lVert x\rVert^2 .

    He's gain :math:`g^2 = 2` on the inner layers and :math:`1` on the last gives :math:`\alpha^2 = 1`.

    Examples:
        >>> initbook.theory.relu_branch_gain2()  # He inner layers, gain-1 last layer
        1.0
        >>> initbook.theory.relu_branch_gain2(last_gain2=2.0)  # kaiming_normal_(relu) everywhere
        2.0
        >>> initbook.theory.relu_branch_gain2(3, inner_gain2=2.0 / 8)  # Fixup's scaling with L = 64
        0.015625
    """
    check_int("layers", layers, minimum=1)
    inner_gain2 = check_real("inner_gain2", inner_gain2, nonnegative=True)
    last_gain2 = check_real("last_gain2", last_gain2, nonnegative=True)
    return (inner_gain2 / 2.0) ** (layers - 1) * last_gain2


def residual_variance(depth: int, branch_gain2: float, q0: float = 1.0) -> float:
    r"""Second moment of the residual stream after ``depth`` blocks :math:`x_{l+1} = x_l + F_l(x_l)`.

    If the last layer of each branch has zero-mean weights drawn independently of everything before it,
    the stream and the branch are uncorrelated, :math:`\mathbb E[x_l^\top F_l(x_l)] = 0`, and with the
    branch gain :math:`\alpha^2` (:func:`relu_branch_gain2`)

    .. math:: q_{l+1} = q_l + \alpha^2 q_l = (1 + \alpha^2)\, q_l
        \quad\Longrightarrow\quad q_L = (1 + \alpha^2)^L\, q_0 ,

    where :math:`q_l = \mathbb E\lVert x_l\rVert^2 / n`. He-initialised branches (:math:`\alpha^2 = 1`)
    double it per block; :math:`\alpha^2 = 1/L` keeps it below :math:`e\,q_0` at any depth.

    Args:
        depth: number of blocks :math:`L`.
        branch_gain2: :math:`\alpha^2`, the branch's second-moment gain.
        q0: second moment of the stream entering the first block.

    Examples:
        >>> initbook.theory.residual_variance(10, 1.0)
        1024.0
        >>> round(initbook.theory.residual_variance(100, 1 / 100), 4)  # (1 + 1/L)^L -> e
        2.7048
    """
    check_int("depth", depth, minimum=0)
    branch_gain2 = check_real("branch_gain2", branch_gain2, nonnegative=True)
    q0 = check_real("q0", q0, nonnegative=True)
    if q0 == 0.0:
        return 0.0
    try:
        growth = (1.0 + branch_gain2) ** depth
    except OverflowError:  # beyond float64's range: the exact answer is too
        growth = math.inf
    return q0 * growth


def fixup_scale(blocks: int, layers_per_branch: int) -> float:
    r"""Fixup's factor :math:`L^{-1/(2m-2)}` on the inner layers of each residual branch.

    From "Fixup Initialization: Residual Learning Without Normalization", Zhang, Dauphin and Ma (2019). A
    branch of :math:`m` scalar weights all equal to :math:`c` computes :math:`F = c^m x`; one gradient step
    of size :math:`\eta` changes :math:`F` by about :math:`\eta\sum_i \prod_{j\ne i} c^2 = \eta\, m\,
    c^{2m-2}`. For the :math:`L` branches together to change the output by :math:`O(\eta)`, independent of
    depth, each must contribute :math:`O(\eta/L)`: :math:`c^{2m-2} = 1/L`.

    Args:
        blocks: number of residual blocks :math:`L`.
        layers_per_branch: layers per branch :math:`m \ge 2`.

    Examples:
        >>> initbook.theory.fixup_scale(100, 2)  # 100 ** (-1/2)
        0.1
        >>> round(initbook.theory.fixup_scale(64, 3), 6)  # 64 ** (-1/4)
        0.353553
    """
    check_int("blocks", blocks, minimum=1)
    check_int("layers_per_branch", layers_per_branch, minimum=1)
    if layers_per_branch < 2:
        raise ValueError(
            f"layers_per_branch={layers_per_branch!r}: Fixup's scale L**(-1/(2m-2)) needs m >= 2 "
            "layers per branch"
        )
    return blocks ** (-1.0 / (2 * layers_per_branch - 2))


def unit_roundoff(dtype: torch.dtype) -> float:
    r"""The unit roundoff :math:`u = \varepsilon/2` of ``dtype``: the largest relative error of rounding to nearest.

    A real number :math:`y` in the normal range is stored as :math:`y(1 + \delta)` with
    :math:`|\delta| \le u = 2^{-p}`, :math:`p` the number of significand bits (11 for float16, 8 for
    bfloat16, 24 for float32).

    Examples:
        >>> [initbook.theory.unit_roundoff(d) for d in (torch.float16, torch.bfloat16, torch.float32)]
        [0.00048828125, 0.00390625, 5.960464477539063e-08]
    """
    check_float_dtype("dtype", dtype)
    return float(torch.finfo(dtype).eps) / 2.0


def rounding_error(depth: int, dtype: torch.dtype, roundings_per_layer: int = 2) -> float:
    r"""Predicted relative error :math:`\lVert \tilde y_l - y_l\rVert / \lVert y_l\rVert` of a low-precision forward pass.

    Model: a ReLU MLP whose initialization preserves the size of the signal (He), computed with exact
    (float32) accumulation, so that the only errors are the roundings to ``dtype``: the input once, then
    ``roundings_per_layer`` per layer (the weights when the model is cast, the layer's output). A rounding
    multiplies a value by :math:`1 + \delta`; if significands are log-uniformly distributed (Benford's
    law), :math:`\mathbb E[\delta^2] = u^2/(8\ln 2)` with :math:`u` the unit roundoff
    (:func:`unit_roundoff`). Independent roundings add in quadrature, and a norm-preserving layer carries the
    relative error of its input through unchanged on average, so after :math:`l` layers

    .. math:: \frac{\lVert \tilde y_l - y_l\rVert}{\lVert y_l\rVert} \approx
        u\,\sqrt{\frac{1 + k\,l}{8 \ln 2}}, \qquad k = \text{roundings per layer}.

    Not for float32 computed in float32: its accumulation error (growing with the width) dominates.

    Examples:
        >>> round(initbook.theory.rounding_error(1, torch.float16) / 2**-11, 3)  # sqrt(3 / (8 ln 2))
        0.736
        >>> round(initbook.theory.rounding_error(50, torch.bfloat16), 4)
        0.0167
    """
    check_int("depth", depth, minimum=0)
    check_int("roundings_per_layer", roundings_per_layer, minimum=0)
    u = unit_roundoff(dtype)
    return u * math.sqrt((1 + roundings_per_layer * depth) / (8.0 * math.log(2.0)))


def relu_mlp_float_limits(
    n: int,
    scale: float,
    *,
    dtype: torch.dtype = torch.float16,
    x_rms: float = 1.0,
    max_layers: int = 10_000,
) -> tuple[int | None, int | None]:
    r"""The first layer of a deep ReLU MLP whose output overflows, and the first whose output is all zero.

    Layers :math:`y_l = W_l \operatorname{relu}(y_{l-1})` (the first sees the input :math:`x` itself) with
    :math:`n` inputs and i.i.d. :math:`\mathcal N(0, s^2)` weights. The pre-activations have RMS

    .. math:: r_1 = s\sqrt n\, r_x, \qquad r_l = s\sqrt{n/2}\; r_{l-1} .

    As in :func:`overflow_step`, layer :math:`l` overflows when its largest entry,
    :math:`\sqrt{2\ln n}\, r_l`, exceeds the largest finite value; as in :func:`underflow_step`, it is all
    zero when the largest product :math:`w_{ik} h_k`, about :math:`s\sqrt{2\ln n^2}\cdot\sqrt{2\ln n}\,
    r_{l-1}`, is below half the smallest subnormal. (He's :math:`s = \sqrt{2/n}` gives :math:`r_l = r_1`:
    neither happens.)

    Args:
        n: width (the number of inputs of every layer).
        scale: standard deviation :math:`s` of the weights.
        dtype: floating format.
        x_rms: RMS of the input.
        max_layers: give up (return ``None``) beyond this depth.

    Returns:
        ``(overflow_layer, zero_layer)``, 1-based; ``None`` where it does not happen within ``max_layers``.

    Examples:
        >>> initbook.theory.relu_mlp_float_limits(256, 1.0)  # N(0, 1) weights in float16
        (4, None)
        >>> initbook.theory.relu_mlp_float_limits(256, 0.01)
        (None, 9)
        >>> initbook.theory.relu_mlp_float_limits(256, math.sqrt(2 / 256))
        (None, None)
    """
    check_int("n", n, minimum=1)
    scale = check_real("scale", scale, positive=True)
    x_rms = check_real("x_rms", x_rms, positive=True)
    check_int("max_layers", max_layers, minimum=1)
    biggest, _, tiniest = float_range(dtype)
    top = expected_max_abs_normal(n)
    w_top = scale * expected_max_abs_normal(n * n)
    log_r_prev = math.log(x_rms)  # RMS of the previous layer's output (the input for l = 1)
    over = zero = None
    for layer in range(1, max_layers + 1):
        gain = scale * math.sqrt(n if layer == 1 else n / 2.0)
        # log(tiniest) - log(2), not log(tiniest / 2): float64's tiniest / 2 rounds to 0
        if zero is None and math.log(w_top * top) + log_r_prev < math.log(tiniest) - math.log(2.0):
            zero = layer
        log_r = log_r_prev + math.log(gain)
        if over is None and zero is None and math.log(top) + log_r > math.log(biggest):
            over = layer
        if over is not None or zero is not None:
            break
        log_r_prev = log_r
    return over, zero


# -- Dynamical isometry --
# The spectrum of the input-output Jacobian J = D_L W_L ... D_1 W_1 of a deep random network:
# its first two moments, in the wide limit (free probability) and exactly at finite width for Gaussian
# linear networks.

__all__ += ["JacobianMoments", "jacobian_spectrum_moments", "linear_jacobian_moments"]

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


# ---------------------------------------------------------------------------------------------------------
# -- Mean-field simulation (order and chaos) --
# ---------------------------------------------------------------------------------------------------------

__all__ += ["critical_line", "gradient_depth_scale", "iterate_maps"]


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
    values = [check_real(f"sigma_b2[{i}]", v, nonnegative=True) for i, v in enumerate(values)]
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


__all__ += ["MeanFieldMaps"]


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
