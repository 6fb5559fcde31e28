r"""Floating-point formats: growth of repeated products, overflow, underflow and rounding.

The repeated product :math:`x_t = a_t x_{t-1}` with :math:`a_{ik} \sim \mathcal N(0, s^2)` and
:math:`x \in \mathbb R^n` multiplies the root mean square of :math:`x` by the *growth factor*

.. math:: g = s\sqrt{n}

per step on average, because :math:`\mathbb E[(a x)_i^2] = n\, s^2\, \overline{x^2}`. After :math:`t` steps the
typical entry has size :math:`g^t`, so a floating-point format with largest value :math:`M` overflows after
about :math:`\ln M / \ln g` steps, and one with smallest positive value :math:`\mu` underflows to exactly
zero after about :math:`\ln \mu / \ln g` steps.
"""

from __future__ import annotations

import math

import torch

from .._validation import check_float_dtype, check_int, check_real


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
