r"""The variance of a layer's output: sums, rectified inputs, propagation through an MLP and the
initializers' standard deviations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .._activations import _MEAN_FIELD_NAMES, _activation
from .._validation import check_int, check_real
from ..init import Nonlinearity, calculate_gain


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
