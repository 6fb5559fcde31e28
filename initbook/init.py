r"""Initializers: torch.nn.init's names and signatures on JAX's single variance-scaling core.

Every random initializer that depends on the layer's width is a preset of one function,
:func:`variance_scaling_`, which fills a tensor with i.i.d. values of variance

.. math:: \sigma^2 = \frac{\text{scale}}{n}, \qquad
    n \in \{n_\text{in},\ n_\text{out},\ (n_\text{in} + n_\text{out})/2\},

with :math:`n_\text{in}` and :math:`n_\text{out}` the fan-in and fan-out (:func:`compute_fans`),
drawn from a normal, a uniform or a truncated normal distribution. The presets are the familiar schemes:

=========================== ===================== =========== ====================
preset                      scale                 mode        distribution
=========================== ===================== =========== ====================
:func:`kaiming_normal_`     :math:`\text{gain}^2` fan_in/out  normal
:func:`kaiming_uniform_`    :math:`\text{gain}^2` fan_in/out  uniform
:func:`xavier_normal_`      :math:`\text{gain}^2` fan_avg     normal
:func:`xavier_uniform_`     :math:`\text{gain}^2` fan_avg     uniform
:func:`lecun_normal_`       1                     fan_in      truncated_normal
:func:`lecun_uniform_`      1                     fan_in      uniform
:func:`he_normal_`          2                     fan_in      truncated_normal
:func:`glorot_normal_`      1                     fan_avg     truncated_normal
:func:`torch_default_`      1/3                   fan_in      uniform
=========================== ===================== =========== ====================

Conventions, shared by every function here:

* **In place.** Initializers end in ``_``, fill the tensor they are given under :func:`torch.no_grad`
  (so a :class:`~torch.nn.Parameter` with ``requires_grad=True`` gets no autograd history) and return
  that same tensor.
* **Randomness** comes from the keyword-only ``generator`` (a seeded :class:`torch.Generator` makes a
  call reproducible), or from torch's global generator when it is ``None``. Unlike torch, ``generator``
  cannot be passed positionally.
* **Dtypes.** Only floating tensors are accepted (``TypeError`` otherwise). float32 and float64 tensors
  are sampled in place with torch's own samplers; float16 and bfloat16 tensors are sampled in float32
  and rounded once on copy.
* **Layout.** Weights are ``(out, in, *kernel)``, as in torch: see :func:`compute_fans`. The
  ``fans=(fan_in, fan_out)`` keyword of the fan-based initializers overrides the layout; :func:`fans_of`
  gives the correct fans of a layer (grouped and transposed convolutions included) and
  :func:`init_model` uses it.
* **Zero-element tensors.** Initializers that need the tensor's shape (fans, rows, a matrix view) warn
  ``"Initializing zero-element tensors is a no-op"`` and return the tensor unchanged, as torch's
  ``kaiming_*`` do; element-wise fills (``uniform_``, ``normal_``, ``trunc_normal_``, ``constant_``,
  ``zeros_``, ``ones_``) and ``eye_``/``dirac_`` silently do nothing, as in torch.
* **Errors.** ``ValueError`` names the bad value and lists the valid ones (sorted); for bad types,
  including ``bool`` where a number is expected, ``ArgumentTypeError``, which is both a ``TypeError`` and a
  ``ValueError`` (torch raises ``ValueError`` for many wrong types), so ``except`` clauses written for
  torch.nn.init catch it. A fill whose values would overflow the tensor's dtype to ``inf`` raises a
  ``ValueError`` before filling, decided from the scale: a normal is taken to reach 10 standard
  deviations from its mean, a truncated normal its cut-offs (or 40 standard deviations on an open side).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import torch
from torch import nn

from ._init_delta import delta_orthogonal_
from ._validation import (
    FLOAT_DTYPES,
    ArgumentTypeError,
    check_choice,
    check_each,
    check_float_tensor,
    check_generator,
    check_int,
    check_real,
)

__all__ = [
    "TRUNCATED_NORMAL_STD",
    "Distribution",
    "FanMode",
    "LSUVRecord",
    "Nonlinearity",
    "calculate_gain",
    "compute_fans",
    "constant_",
    "deepnet_init_",
    "default_linear_init_",
    "delta_orthogonal_",
    "dirac_",
    "eye_",
    "fans_of",
    "glorot_normal_",
    "glorot_uniform_",
    "gpt2_init_",
    "gru_update_bias_",
    "he_normal_",
    "he_uniform_",
    "init_model",
    "irnn_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "lstm_forget_bias_",
    "lsuv_",
    "normal_",
    "ones_",
    "orthogonal_",
    "recurrent_orthogonal_",
    "sparse_",
    "spectral_normalize_",
    "t_fixup_init_",
    "torch_default_",
    "transformer_roles",
    "trunc_normal_",
    "truncated_normal_std",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

FanMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]

_FAN_MODES = ("fan_in", "fan_out", "fan_avg")
_TORCH_FAN_MODES = ("fan_in", "fan_out")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_NONLINEARITIES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_CONV_LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_WEIGHTED_LAYERS = (nn.Linear, *_CONV_LAYERS)
_NATIVE_DTYPES = (torch.float32, torch.float64)
_Layer = TypeVar("_Layer", bound=nn.Module)
_FINFO_MAX = {dtype: torch.finfo(dtype).max for dtype in FLOAT_DTYPES}
# How far from the mean, in standard deviations, torch's normal samplers can reach: on the CPU and CUDA
# they are Box-Muller transforms of uniforms with at most 53 random bits, so |z| <= sqrt(2 * 53 * ln 2)
# = 8.57. Overflow is decided from this bound before filling, in O(1), not by a pass over the values
# afterwards.
_NORMAL_REACH = 10.0
# The same for the truncated normal's inverse-CDF sampler: ndtri of a float64 uniform >= 2**-1074 is
# > -38.5 (used only where the interval is half-open and far in a tail).
_TRUNC_NORMAL_REACH = 40.0


# ---------------------------------------------------------------------------------------------------
# The truncated normal's standard deviation, in closed form
# ---------------------------------------------------------------------------------------------------


def _ndtr(x: float) -> float:
    """Standard normal CDF, accurate in the lower tail (``erfc`` does not cancel there)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _npdf(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _x_npdf(x: float) -> float:
    return 0.0 if math.isinf(x) else x * _npdf(x)


def truncated_normal_std(a: float = -2.0, b: float = 2.0) -> float:
    r"""Return the standard deviation of :math:`\mathcal N(0, 1)` truncated to :math:`[a, b]`.

    With :math:`Z = \Phi(b) - \Phi(a)`,

    .. math:: \operatorname{Var} = 1 + \frac{a\,\varphi(a) - b\,\varphi(b)}{Z}
        - \left(\frac{\varphi(a) - \varphi(b)}{Z}\right)^2.

    Cutting at :math:`\pm 2` keeps 95.4% of the mass and shrinks the standard deviation to
    :data:`TRUNCATED_NORMAL_STD` :math:`\approx 0.8796`. JAX divides its truncated-normal initializers by
    this number so that the variance *after* truncation is the one asked for; torch's
    :func:`trunc_normal_` does not.

    Args:
        a: lower cut, in standard deviations (may be ``-inf``).
        b: upper cut, in standard deviations (may be ``inf``).

    Returns:
        The standard deviation, a float in :math:`(0, 1]`.

    Raises:
        ValueError: ``a >= b``, or :math:`[a, b]` has no probability mass in float64.

    Examples:
        >>> round(initbook.truncated_normal_std(), 8)
        0.87962566
        >>> initbook.truncated_normal_std(-math.inf, math.inf)
        1.0
        >>> round(initbook.truncated_normal_std(0.0, math.inf) ** 2, 6)  # half-normal: 1 - 2/pi
        0.36338
    """
    a = check_real("a", a, allow_inf=True)
    b = check_real("b", b, allow_inf=True)
    if not a < b:
        raise ValueError(f"need a < b, got a={a!r}, b={b!r}")
    mass = _ndtr(b) - _ndtr(a)
    if mass <= 0.0:
        raise ValueError(f"[{a!r}, {b!r}] has no probability mass under N(0, 1) in float64")
    mean = (_npdf(a) - _npdf(b)) / mass
    var = 1.0 + (_x_npdf(a) - _x_npdf(b)) / mass - mean * mean
    if not (var > 1e-2 and a < 0.0 < b):
        # the closed form cancels for a narrow interval, and Phi(b) - Phi(a) loses digits in a tail
        # (both ends on one side of 0): integrate the density instead
        var = _truncated_normal_var_quadrature(a, b)
    return math.sqrt(var)


def _truncated_normal_var_quadrature(a: float, b: float) -> float:
    """Variance of N(0, 1) cut to [a, b] by Gauss-Legendre quadrature, free of cancellation."""
    import numpy as np

    if b <= 0.0:  # reflect: the same variance, and the interval's point nearest 0 is then >= 0
        a, b = -b, -a
    m = max(a, 0.0)
    reach = math.sqrt(m * m + 184.0)  # beyond it the density is below e^-92 of its value at m
    lo, hi = max(a, -reach), min(b, reach)
    x, w = np.polynomial.legendre.leggauss(200)
    x = (hi - lo) / 2.0 * x + (hi + lo) / 2.0
    density = w * np.exp(-(x - m) * (x + m) / 2.0)
    mean = float((density * x).sum() / density.sum())
    return float((density * (x - mean) ** 2).sum() / density.sum())


#: Standard deviation of :math:`\mathcal N(0, 1)` truncated to :math:`[-2, 2]` (JAX's literal
#: ``.87962566103423978``), computed by :func:`truncated_normal_std`.
TRUNCATED_NORMAL_STD: float = truncated_normal_std(-2.0, 2.0)


# ---------------------------------------------------------------------------------------------------
# Private helpers: argument checks and the three samplers, all under no_grad
# ---------------------------------------------------------------------------------------------------


def _check_mode(mode: object, valid: Sequence[str]) -> str:
    if type(mode) is str and mode in valid:
        return mode
    # torch lower-cases the mode ("FAN_IN" works there), so this does too
    return check_choice("mode", mode.lower() if isinstance(mode, str) else mode, valid)


def _is_noop(tensor: torch.Tensor) -> bool:
    """Warn as torch does and return True for a zero-element tensor."""
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def _check_min_dims(tensor: torch.Tensor, minimum: int, what: str) -> None:
    if tensor.dim() < minimum:
        raise ValueError(
            f"{what} needs a tensor with at least {minimum} dimensions, got {tensor.dim()} "
            f"dimension(s) (shape {tuple(tensor.shape)})"
        )


def _work_dtype(tensor: torch.Tensor) -> torch.dtype:
    return tensor.dtype if tensor.dtype in _NATIVE_DTYPES else torch.float32


def _buffer(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.empty(tensor.shape, dtype=dtype or _work_dtype(tensor), device=tensor.device)


def _gain_squared(gain: float) -> float:
    """``gain**2`` as a variance scale; a ValueError naming ``gain`` if it overflows float64."""
    scale = gain * gain
    if math.isinf(scale):
        raise ValueError(f"gain={gain!r} is too large: gain**2 overflows float64")
    return scale


def _finfo_max(dtype: torch.dtype) -> float:
    big = _FINFO_MAX.get(dtype)
    return torch.finfo(dtype).max if big is None else big


def _overflow_error(tensor: torch.Tensor, what: str, reach: float | None = None) -> ValueError:
    beyond = "" if reach is None else f" (values reach {reach:.6g})"
    return ValueError(
        f"{what}: the values overflow {tensor.dtype}{beyond}, whose largest finite value is "
        f"{_finfo_max(tensor.dtype):.6g}, and would be inf; use a smaller scale or a wider dtype"
    )


def _no_grad_uniform_(
    tensor: torch.Tensor, low: float, high: float, generator: torch.Generator | None
) -> torch.Tensor:
    # the values lie in [low, high]: decided from the bounds, in O(1), before filling
    if max(abs(low), abs(high)) > _finfo_max(tensor.dtype):
        raise _overflow_error(tensor, f"uniform on [{low!r}, {high!r}]")
    with torch.no_grad():
        if high - low > _finfo_max(_work_dtype(tensor)):
            # torch computes low + (high - low) * u in the working dtype, so b - a must be finite there:
            # draw on [a/2, b/2] and double, which is exact (|2x| <= max(|a|, |b|) is finite)
            return tensor.copy_(
                2.0 * _buffer(tensor).uniform_(low / 2, high / 2, generator=generator)
            )
        if tensor.dtype in _NATIVE_DTYPES:
            return tensor.uniform_(low, high, generator=generator)
        return tensor.copy_(_buffer(tensor).uniform_(low, high, generator=generator))


def _no_grad_normal_(
    tensor: torch.Tensor, mean: float, std: float, generator: torch.Generator | None
) -> torch.Tensor:
    reach = abs(mean) + _NORMAL_REACH * std
    if reach > _finfo_max(tensor.dtype):
        what = f"normal with mean={mean!r}, std={std!r}"
        raise _overflow_error(tensor, what, reach)
    with torch.no_grad():
        if tensor.dtype in _NATIVE_DTYPES:
            return tensor.normal_(mean, std, generator=generator)
        return tensor.copy_(_buffer(tensor).normal_(mean, std, generator=generator))


def _standard_trunc_normal(
    like: torch.Tensor, alpha: float, beta: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Draw :math:`\\mathcal N(0, 1)` truncated to ``[alpha, beta]``, shaped like ``like``.

    When the interval holds at least 30% of the mass (torch's threshold; ``[-2, 2]`` holds 95.4%) the
    draws are exact rejection samples: normals outside the interval are redrawn until none are left.
    Otherwise the inverse CDF is used in float64 (float32 on MPS), on the lower tail for accuracy.
    """
    dtype = _work_dtype(like)
    if _ndtr(beta) - _ndtr(alpha) >= 0.3:
        z = _buffer(like, dtype).normal_(0.0, 1.0, generator=generator)
        flat = z.view(-1)
        # redraw only the positions still outside (one pass over the tensor, then small tensors)
        outside = ((flat < alpha) | (flat > beta)).nonzero().squeeze(1)
        while outside.numel() > 0:
            fresh = torch.empty(outside.numel(), dtype=dtype, device=like.device)
            fresh.normal_(0.0, 1.0, generator=generator)
            flat[outside] = fresh
            outside = outside[(fresh < alpha) | (fresh > beta)]
        return z
    flip = (
        alpha > 0.0
    )  # sample [-beta, -alpha] and negate: the lower tail's CDF does not round to 1
    lo, hi = (-beta, -alpha) if flip else (alpha, beta)
    p_lo, p_hi = max(_ndtr(lo), math.ulp(0.0)), _ndtr(hi)
    if not p_hi > p_lo:
        raise ValueError(
            f"the truncation interval [{alpha!r}, {beta!r}] (in standard deviations from the mean) "
            "has no probability mass in float64"
        )
    wide = torch.float32 if like.device.type == "mps" else torch.float64
    u = _buffer(like, wide).uniform_(p_lo, p_hi, generator=generator)
    z = torch.special.ndtri(u).clamp_(lo, hi)
    return (z.neg_() if flip else z).to(dtype)


def _no_grad_trunc_normal_(
    tensor: torch.Tensor,
    mean: float,
    std: float,
    alpha: float,
    beta: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Fill with mean + std * z, z ~ N(0, 1) truncated to [alpha, beta] (in standard deviations)."""
    with torch.no_grad():
        if tensor.is_meta:
            return tensor
        if std == 0.0:
            return tensor.fill_(mean)
        big = torch.finfo(_work_dtype(tensor)).max
        lo, hi = mean + std * alpha, mean + std * beta
        # the values lie in [lo, hi] and within the samplers' reach of the mean
        reach = max(
            abs(max(lo, mean - _TRUNC_NORMAL_REACH * std)),
            abs(min(hi, mean + _TRUNC_NORMAL_REACH * std)),
        )
        if std > big or abs(mean) > big or reach > _finfo_max(tensor.dtype):
            what = f"truncated normal with mean={mean!r}, std={std!r}"
            raise _overflow_error(tensor, what, reach)
        z = _standard_trunc_normal(tensor, alpha, beta, generator)
        # bounds beyond the working dtype's range are no bounds (clamp_ rejects them)
        x = (
            z.mul_(std)
            .add_(mean)
            .clamp_(-math.inf if lo < -big else lo, math.inf if hi > big else hi)
        )
        return tensor.copy_(x)


# ---------------------------------------------------------------------------------------------------
# Fans and gains
# ---------------------------------------------------------------------------------------------------


def compute_fans(shape_or_tensor: torch.Tensor | Sequence[int]) -> tuple[int, int]:
    r"""Return ``(fan_in, fan_out)`` of a weight stored in torch's layout ``(out, in, *kernel)``.

    The receptive field is the product of the trailing (kernel) dimensions, and

    .. math:: n_\text{in} = \text{in} \times \prod \text{kernel}, \qquad
        n_\text{out} = \text{out} \times \prod \text{kernel}.

    This is the one place the layout is assumed, and it gives the same numbers as torch's private
    ``_calculate_fan_in_and_fan_out``. A ``Linear`` layer computes ``x @ w.T`` with
    ``w.shape == (fan_out, fan_in)``; for a weight used as ``x @ w`` (shape ``(fan_in, fan_out)``, the
    JAX/Flax layout) pass ``w.T``, to this function and to every initializer here. The layout is wrong for
    grouped and transposed convolutions: use :func:`fans_of` on the layer instead.

    Args:
        shape_or_tensor: a tensor or its shape (a sequence of non-negative ints).

    Returns:
        ``(fan_in, fan_out)``.

    Raises:
        ValueError: fewer than 2 dimensions, or a negative size.
        TypeError: not a tensor or a sequence of ints.

    Examples:
        >>> initbook.compute_fans((16, 8, 3, 3))  # Conv2d(8, 16, 3): out=16, in=8, 3x3 kernel
        (72, 144)
        >>> initbook.compute_fans(torch.nn.Linear(5, 3).weight)
        (5, 3)
        >>> initbook.compute_fans(torch.empty(4))
        Traceback (most recent call last):
        ...
        ValueError: fans need at least 2 dimensions (out, in, *kernel), got 1 dimension(s): shape (4,)
    """
    shape: tuple[int, ...]
    if isinstance(shape_or_tensor, torch.Tensor):
        shape = shape_or_tensor.shape  # a torch.Size, a tuple
    elif isinstance(shape_or_tensor, Sequence) and not isinstance(shape_or_tensor, str):
        shape = tuple(check_each("shape", shape_or_tensor, check_int, nonempty=False, minimum=0))
    else:
        raise ArgumentTypeError(
            f"compute_fans needs a tensor or a shape, got {type(shape_or_tensor).__name__}"
        )
    if len(shape) < 2:
        raise ValueError(
            f"fans need at least 2 dimensions (out, in, *kernel), got {len(shape)} dimension(s): "
            f"shape {tuple(shape)}"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def fans_of(module: nn.Module) -> tuple[int, int]:
    r"""Return the correct ``(fan_in, fan_out)`` of a layer, grouped and transposed convolutions included.

    For a convolution with kernel size :math:`k` (the product of its kernel dimensions), ``groups``
    :math:`g`, ``in_channels`` :math:`c_\text{in}` and ``out_channels`` :math:`c_\text{out}`, with
    stride 1 each output value sums :math:`c_\text{in}/g \cdot k` products and each input value feeds
    :math:`c_\text{out}/g \cdot k` outputs, for ``Conv*d`` and ``ConvTranspose*d`` alike:

    .. math:: n_\text{in} = \frac{c_\text{in}}{g}\,k, \qquad
        n_\text{out} = \frac{c_\text{out}}{g}\,k.

    A stride :math:`s_i` along kernel dimension :math:`i` (of size :math:`k_i`) thins one side: a strided
    ``Conv*d`` still sums :math:`c_\text{in}/g \cdot k` terms per output, but each input feeds only
    :math:`k_i/s_i` outputs along dimension :math:`i`, so :math:`n_\text{out} = c_\text{out}/g \cdot
    \prod_i k_i/s_i`; a strided ``ConvTranspose*d`` (an upsampling layer) is the mirror image,
    :math:`n_\text{in} = c_\text{in}/g \cdot \prod_i k_i/s_i` and :math:`n_\text{out}` as at stride 1.
    Where :math:`s_i` does not divide :math:`k_i` the count alternates between :math:`\lceil k_i/s_i\rceil`
    and :math:`\lfloor k_i/s_i \rfloor` from pixel to pixel; the mean, rounded to the nearest integer (at
    least 1), is returned. Dilation changes which inputs are summed, not how many, and the border pixels
    that zero padding starves are not counted (the interior count is returned). Torch computes fans from
    the weight's shape alone, which ignores the stride and differs in two more cases:

    * **grouped convolutions**: the weight is ``(out, in/g, *k)``, so torch's ``fan_in`` is right but its
      ``fan_out`` is ``out * k``, :math:`g` times too large;
    * **transposed convolutions**: the weight is stored ``(in, out/g, *k)``, which torch reads as
      ``(out, in, *k)``: its ``fan_in`` is ``out/g * k`` and its ``fan_out`` is ``in * k``, the roles
      swapped (and the group factor misplaced). So ``kaiming_*`` with ``mode="fan_in"`` and the default
      ``reset_parameters`` of ``ConvTranspose*d`` scale by the *output* width.

    ``Linear`` layers and any other module with a ``weight`` use :func:`compute_fans` on the weight.

    Args:
        module: a layer (``nn.Linear``, ``nn.Conv{1,2,3}d``, ``nn.ConvTranspose{1,2,3}d`` or any module
            with a weight of at least 2 dimensions).

    Returns:
        ``(fan_in, fan_out)``.

    Raises:
        TypeError: ``module`` is not an ``nn.Module`` or has no tensor ``weight``.

    Examples:
        Torch's numbers (from the weight's shape) against the layer's true fans:

        >>> from torch.nn.init import _calculate_fan_in_and_fan_out as torch_fans
        >>> up = torch.nn.ConvTranspose2d(8, 4, 3)  # weight (8, 4, 3, 3)
        >>> torch_fans(up.weight), initbook.fans_of(up)
        ((36, 72), (72, 36))
        >>> grouped = torch.nn.Conv2d(8, 16, 3, groups=4)  # weight (16, 2, 3, 3)
        >>> torch_fans(grouped.weight), initbook.fans_of(grouped)
        ((18, 144), (18, 36))
        >>> upsample = torch.nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)  # each output: 64 * 2 * 2
        >>> torch_fans(upsample.weight), initbook.fans_of(upsample)
        ((512, 1024), (256, 512))
    """
    if not isinstance(module, nn.Module):
        raise ArgumentTypeError(f"fans_of needs an nn.Module, got {type(module).__name__}")
    if isinstance(module, _CONV_LAYERS):
        kernel = math.prod(module.kernel_size)
        thinned = math.prod(k / s for k, s in zip(module.kernel_size, module.stride, strict=True))
        fan_in = module.in_channels // module.groups
        fan_out = module.out_channels // module.groups
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return max(1, round(fan_in * thinned)), fan_out * kernel
        return fan_in * kernel, max(1, round(fan_out * thinned))
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise ArgumentTypeError(
            f"{type(module).__name__} has no tensor weight to compute fans from"
        )
    return compute_fans(weight)


def _resolve_fans(tensor: torch.Tensor, fans: Sequence[int] | None) -> tuple[int, int]:
    if fans is None:
        return compute_fans(tensor)
    if isinstance(fans, str) or not isinstance(fans, Sequence) or len(fans) != 2:
        raise ArgumentTypeError(f"fans must be a pair (fan_in, fan_out) of ints, got {fans!r}")
    return check_int("fan_in", fans[0], minimum=1), check_int("fan_out", fans[1], minimum=1)


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    r"""Return the recommended gain for a nonlinearity, the same values as :func:`torch.nn.init.calculate_gain`.

    ================= ======================================================
    nonlinearity      gain
    ================= ======================================================
    linear, conv*     :math:`1`
    sigmoid           :math:`1`
    tanh              :math:`\frac{5}{3}`
    relu              :math:`\sqrt{2}`
    leaky_relu        :math:`\sqrt{\frac{2}{1 + \text{slope}^2}}` (slope 0.01 by default)
    selu              :math:`\frac{3}{4}`
    ================= ======================================================

    The Kaiming initializers use :math:`\text{std} = \text{gain}/\sqrt{\text{fan}}`, i.e. a
    :func:`variance_scaling_` scale of :math:`\text{gain}^2`.

    .. warning::
        For self-normalizing SELU networks (Klambauer et al. 2017) use ``"linear"``, not ``"selu"``:
        the weights need variance :math:`1/n` for SELU's fixed point, and the 3/4 gain gives less.

    Args:
        nonlinearity: the function's ``torch.nn.functional`` name.
        param: the negative slope of ``"leaky_relu"`` (ignored for the others).

    Returns:
        The gain, a float.

    Raises:
        ValueError: unknown ``nonlinearity`` (the message lists the valid ones), or a non-finite ``param``.
        TypeError: ``nonlinearity`` is not a string, or ``param`` is not a real number (``bool`` included).

    Examples:
        >>> initbook.calculate_gain("relu") == math.sqrt(2)
        True
        >>> round(initbook.calculate_gain("leaky_relu", 0.2), 5)
        1.38675
        >>> initbook.calculate_gain("tanh"), initbook.calculate_gain("selu")
        (1.6666666666666667, 0.75)
    """
    check_choice("nonlinearity", nonlinearity, _NONLINEARITIES)
    if param is not None:
        param = check_real("param", param)
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope * slope))  # not slope**2: no OverflowError for 1e200
    return 3.0 / 4  # selu


# ---------------------------------------------------------------------------------------------------
# The core
# ---------------------------------------------------------------------------------------------------


def variance_scaling_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    mode: FanMode = "fan_in",
    distribution: Distribution = "truncated_normal",
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with zero-mean values of variance ``scale / n``: the one core every preset calls.

    With :math:`n` the fan chosen by ``mode`` (``fan_in``, ``fan_out`` or their mean ``fan_avg``),

    .. math:: \sigma^2 = \frac{\text{scale}}{n},

    and the values are drawn from

    * ``"normal"``: :math:`\mathcal N(0, \sigma^2)`;
    * ``"uniform"``: :math:`\mathcal U(-\sqrt{3}\,\sigma, \sqrt{3}\,\sigma)` (a uniform on :math:`\pm a`
      has variance :math:`a^2/3`);
    * ``"truncated_normal"``: :math:`\mathcal N(0, s^2)` cut at :math:`\pm 2s`, with
      :math:`s = \sigma / 0.8796\ldots` (:data:`TRUNCATED_NORMAL_STD`), so that the standard deviation
      *after* truncation is exactly :math:`\sigma`. This is JAX's definition
      (``jax.nn.initializers.variance_scaling``) and Keras's. Torch's :func:`trunc_normal_` makes no
      such correction: its values have standard deviation :math:`0.88\,\text{std}`.

    Also known as JAX's and Keras's ``VarianceScaling``.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``
            (see :func:`compute_fans`).
        scale: the variance times the fan; ``gain**2`` in torch's terms. Must be finite and >= 0.
        mode: ``"fan_in"`` (preserves the forward signal's variance), ``"fan_out"`` (preserves the
            gradient's) or ``"fan_avg"`` (Glorot's compromise).
        distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
        fans: ``(fan_in, fan_out)`` to use instead of the ones read from the shape, e.g. from
            :func:`fans_of` for grouped or transposed convolutions.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: unknown ``mode`` or ``distribution``, a negative or non-finite ``scale``, fewer
            than 2 dimensions without ``fans``, or a ``scale`` so large that the values overflow the
            tensor's dtype to inf (every initializer built on this one raises the same).
        TypeError: ``tensor`` is not a floating tensor, or an argument has the wrong type.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.variance_scaling_(torch.empty(512, 256), 2.0, "fan_in", generator=g)
        >>> round(w.std().item() / math.sqrt(2.0 / 256), 2)  # std after truncation = sqrt(scale / n)
        1.0
        >>> bool(w.abs().max() <= 2 * math.sqrt(2.0 / 256) / initbook.TRUNCATED_NORMAL_STD)
        True
    """
    check_float_tensor("tensor", tensor)
    scale = check_real("scale", scale, nonnegative=True)
    fan_mode = _check_mode(mode, _FAN_MODES)
    check_choice("distribution", distribution, _DISTRIBUTIONS)
    check_generator(generator)
    return _variance_scaling(tensor, scale, fan_mode, distribution, fans, generator)


def _variance_scaling(
    tensor: torch.Tensor,
    scale: float,
    mode: str,
    distribution: str,
    fans: Sequence[int] | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """:func:`variance_scaling_` on arguments already checked (all but ``fans``): the presets' core."""
    fan_in, fan_out = _resolve_fans(tensor, fans)
    if _is_noop(tensor):
        return tensor
    if mode == "fan_in":
        n: float = fan_in
    elif mode == "fan_out":
        n = fan_out
    else:
        n = (fan_in + fan_out) / 2.0
    variance = scale / n
    if distribution == "normal":
        return _no_grad_normal_(tensor, 0.0, math.sqrt(variance), generator)
    if distribution == "uniform":
        bound = math.sqrt(3.0 * variance)
        return _no_grad_uniform_(tensor, -bound, bound, generator)
    std = math.sqrt(variance) / TRUNCATED_NORMAL_STD
    return _no_grad_trunc_normal_(tensor, 0.0, std, -2.0, 2.0, generator)


# ---------------------------------------------------------------------------------------------------
# torch.nn.init's element-wise and deterministic fills
# ---------------------------------------------------------------------------------------------------


def uniform_(
    tensor: torch.Tensor,
    a: float = 0.0,
    b: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with values drawn from :math:`\mathcal U(a, b)`, as :func:`torch.nn.init.uniform_`.

    Args:
        tensor: a floating tensor of any shape.
        a: the lower bound.
        b: the upper bound, ``>= a``.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: non-finite bounds, ``a > b``, or bounds beyond the tensor's dtype's range.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.uniform_(torch.empty(100, 100), -0.5, 0.5, generator=g)
        >>> bool(w.min() >= -0.5 and w.max() < 0.5)
        True
    """
    check_float_tensor("tensor", tensor)
    a, b = check_real("a", a), check_real("b", b)
    if a > b:
        raise ValueError(f"uniform_ needs a <= b, got a={a!r}, b={b!r}")
    check_generator(generator)
    return _no_grad_uniform_(tensor, a, b, generator)


def normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with values drawn from :math:`\mathcal N(\text{mean}, \text{std}^2)`, as :func:`torch.nn.init.normal_`.

    Args:
        tensor: a floating tensor of any shape.
        mean: the mean.
        std: the standard deviation, finite and ``>= 0``.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: a non-finite ``mean``, a negative or non-finite ``std``, or values that overflow the
            tensor's dtype to inf.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.normal_(torch.empty(500, 500), std=0.02, generator=g)
        >>> round(w.std().item(), 3)
        0.02
    """
    check_float_tensor("tensor", tensor)
    mean = check_real("mean", mean)
    std = check_real("std", std, nonnegative=True)
    check_generator(generator)
    return _no_grad_normal_(tensor, mean, std, generator)


def trunc_normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from :math:`\mathcal N(\text{mean}, \text{std}^2)` truncated to :math:`[a, b]`, as :func:`torch.nn.init.trunc_normal_`.

    .. warning::
        ``a`` and ``b`` are **absolute** bounds, not multiples of ``std``: with the defaults ``a=-2``,
        ``b=2`` and a typical weight scale such as ``std=0.02``, the cut sits at 100 standard deviations
        and nothing is truncated. To cut at two standard deviations pass ``a=-2 * std, b=2 * std``.
        Neither is the variance corrected: cut at :math:`\pm 2\,\text{std}`, the values have standard
        deviation :math:`0.88\,\text{std}` (:data:`TRUNCATED_NORMAL_STD`). JAX-style initializers
        (:func:`variance_scaling_` with ``"truncated_normal"``, :func:`lecun_normal_`,
        :func:`he_normal_`, :func:`glorot_normal_`) cut at two standard deviations *and* correct.

    Values are exact rejection samples when :math:`[a, b]` holds at least 30% of the mass, and come from
    the inverse CDF in float64 otherwise, so bounds far in a tail are sampled correctly (torch warns there).

    Args:
        tensor: a floating tensor of any shape.
        mean: the mean of the underlying normal.
        std: the standard deviation of the underlying normal, ``> 0``.
        a: the lower cut-off (absolute; may be ``-inf``).
        b: the upper cut-off (absolute, ``> a``; may be ``inf``).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: ``std <= 0``, ``a >= b``, an interval with no mass in float64, or values that
            overflow the tensor's dtype to inf.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.trunc_normal_(torch.empty(500, 500), std=0.02, generator=g)
        >>> round(w.std().item(), 3)  # the defaults cut at +-2, i.e. +-100 std: nothing is cut
        0.02
        >>> w = initbook.trunc_normal_(torch.empty(500, 500), std=0.02, a=-0.04, b=0.04, generator=g)
        >>> round(w.std().item() / 0.02, 2)  # cut at +-2 std: 12% smaller
        0.88
    """
    check_float_tensor("tensor", tensor)
    mean = check_real("mean", mean)
    std = check_real("std", std, positive=True)
    a = check_real("a", a, allow_inf=True)
    b = check_real("b", b, allow_inf=True)
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a!r}, b={b!r}")
    check_generator(generator)
    try:
        return _no_grad_trunc_normal_(
            tensor, mean, std, (a - mean) / std, (b - mean) / std, generator
        )
    except ValueError as error:  # name the caller's values, not only the standardized interval
        raise ValueError(
            f"trunc_normal_ with a={a!r}, b={b!r}, mean={mean!r}, std={std!r}: {error}"
        ) from None


def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    r"""Fill ``tensor`` with the value ``val``, as :func:`torch.nn.init.constant_`.

    Args:
        tensor: a floating tensor of any shape.
        val: the value (``inf`` and ``-inf`` are allowed, NaN is not).

    Returns:
        ``tensor``, filled in place.

    Examples:
        >>> initbook.constant_(torch.empty(2, 3), 0.5).sum().item()
        3.0
    """
    check_float_tensor("tensor", tensor)
    val = check_real("val", val, allow_inf=True)
    with torch.no_grad():
        return tensor.fill_(val)


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    r"""Fill ``tensor`` with zeros, as :func:`torch.nn.init.zeros_`.

    Examples:
        >>> initbook.zeros_(torch.ones(2, 3)).abs().sum().item()
        0.0
    """
    check_float_tensor("tensor", tensor)
    with torch.no_grad():
        return tensor.zero_()


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    r"""Fill ``tensor`` with ones, as :func:`torch.nn.init.ones_`.

    Examples:
        >>> initbook.ones_(torch.empty(2, 3)).sum().item()
        6.0
    """
    check_float_tensor("tensor", tensor)
    with torch.no_grad():
        return tensor.fill_(1.0)


def eye_(tensor: torch.Tensor) -> torch.Tensor:
    r"""Fill a 2-dimensional ``tensor`` with the identity matrix, as :func:`torch.nn.init.eye_`.

    A ``Linear`` layer initialized this way passes as many of its inputs through unchanged as it can.

    Raises:
        ValueError: ``tensor`` does not have exactly 2 dimensions.

    Examples:
        >>> initbook.eye_(torch.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    check_float_tensor("tensor", tensor)
    if tensor.dim() != 2:
        raise ValueError(
            f"eye_ needs a 2-dimensional tensor, got {tensor.dim()} dimension(s) "
            f"(shape {tuple(tensor.shape)})"
        )
    with torch.no_grad():
        tensor.zero_()
        tensor.diagonal().fill_(1.0)
    return tensor


def dirac_(tensor: torch.Tensor, groups: int = 1) -> torch.Tensor:
    r"""Fill a 3-, 4- or 5-dimensional ``tensor`` with the Dirac delta, as :func:`torch.nn.init.dirac_`.

    A convolution initialized this way is the identity on as many input channels as it has output
    channels (per group when ``groups > 1``): the kernel is 1 at its centre, output channel :math:`d` of
    each group reading input channel :math:`d` of that group, and 0 elsewhere.

    Args:
        tensor: a ``(out, in, *kernel)`` floating tensor with 1, 2 or 3 kernel dimensions.
        groups: the convolution's number of groups; must divide ``out``.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: wrong number of dimensions, or ``groups`` does not divide the first dimension.

    Examples:
        >>> w = initbook.dirac_(torch.empty(2, 2, 3))
        >>> x = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
        >>> torch.equal(torch.nn.functional.conv1d(x, w, padding=1), x)
        True
    """
    check_float_tensor("tensor", tensor)
    dims = tensor.dim()
    if dims not in (3, 4, 5):
        raise ValueError(
            f"dirac_ needs a 3-, 4- or 5-dimensional tensor (out, in, *kernel), got {dims} "
            f"dimension(s) (shape {tuple(tensor.shape)})"
        )
    groups = check_int("groups", groups, minimum=1)
    if tensor.shape[0] % groups != 0:
        raise ValueError(
            f"groups={groups} does not divide the first dimension of shape {tuple(tensor.shape)}"
        )
    per_group = tensor.shape[0] // groups
    count = min(per_group, tensor.shape[1])
    with torch.no_grad():
        tensor.zero_()
        if count > 0 and tensor.numel() > 0 and not tensor.is_meta:
            d = torch.arange(count, device=tensor.device)
            g = torch.arange(groups, device=tensor.device)
            rows = (g[:, None] * per_group + d).flatten()
            centre = tuple(size // 2 for size in tensor.shape[2:])
            index: tuple[torch.Tensor | int, ...] = (rows, d.repeat(groups), *centre)
            tensor[index] = 1.0
    return tensor


# ---------------------------------------------------------------------------------------------------
# Presets of variance_scaling_: torch's names first, then JAX's
# ---------------------------------------------------------------------------------------------------


def xavier_uniform_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the Xavier (Glorot) uniform distribution.

    The method is described in "Understanding the difficulty of training deep feedforward neural
    networks", Glorot, X. & Bengio, Y. (2010). Values are drawn from :math:`\mathcal U(-a, a)` with

    .. math:: a = \text{gain} \times \sqrt{\frac{6}{n_\text{in} + n_\text{out}}},

    i.e. ``variance_scaling_(tensor, gain**2, "fan_avg", "uniform")``. The same distribution as
    :func:`torch.nn.init.xavier_uniform_`.

    Also known as Glorot uniform initialization; :func:`glorot_uniform_` is this same function (with
    ``gain=1`` it is JAX's and Keras's ``glorot_uniform``).

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        gain: a scaling factor, finite and ``>= 0`` (see :func:`calculate_gain`).
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions, or a negative or non-finite ``gain``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.xavier_uniform_(torch.empty(300, 500), generator=g)
        >>> bound = math.sqrt(6 / (500 + 300))
        >>> bool(w.abs().max() <= bound), round(w.abs().max().item() / bound, 3)
        (True, 1.0)
    """
    check_float_tensor("tensor", tensor)
    gain = check_real("gain", gain, nonnegative=True)
    check_generator(generator)
    return _variance_scaling(tensor, _gain_squared(gain), "fan_avg", "uniform", fans, generator)


def xavier_normal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the Xavier (Glorot) normal distribution.

    The method is described in "Understanding the difficulty of training deep feedforward neural
    networks", Glorot, X. & Bengio, Y. (2010). Values are drawn from :math:`\mathcal N(0, \text{std}^2)`
    with

    .. math:: \text{std} = \text{gain} \times \sqrt{\frac{2}{n_\text{in} + n_\text{out}}},

    i.e. ``variance_scaling_(tensor, gain**2, "fan_avg", "normal")``. The same distribution as
    :func:`torch.nn.init.xavier_normal_`.

    Also known as Glorot normal initialization, but JAX's and Keras's ``glorot_normal`` is a
    *truncated* normal: that one is :func:`glorot_normal_`.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        gain: a scaling factor, finite and ``>= 0`` (see :func:`calculate_gain`).
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions, or a negative or non-finite ``gain``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.xavier_normal_(torch.empty(300, 500), generator=g)
        >>> round(w.std().item() / math.sqrt(2 / (500 + 300)), 2)
        1.0
    """
    check_float_tensor("tensor", tensor)
    gain = check_real("gain", gain, nonnegative=True)
    check_generator(generator)
    return _variance_scaling(tensor, _gain_squared(gain), "fan_avg", "normal", fans, generator)


def kaiming_uniform_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the Kaiming (He) uniform distribution.

    The method is described in "Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification", He, K. et al. (2015). Values are drawn from
    :math:`\mathcal U(-\text{bound}, \text{bound})` with

    .. math:: \text{bound} = \text{gain} \times \sqrt{\frac{3}{n_\text{mode}}},

    i.e. ``variance_scaling_(tensor, gain**2, mode, "uniform")`` with
    ``gain = calculate_gain(nonlinearity, a)``. The same distribution as
    :func:`torch.nn.init.kaiming_uniform_`.

    Also known as He uniform initialization; :func:`he_uniform_` is this same function (with the defaults,
    ``gain**2 = 2``, it is JAX's and Keras's ``he_uniform``).

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        a: the negative slope of the rectifier after this layer (used only with ``"leaky_relu"``).
        mode: ``"fan_in"`` (default; preserves the variance of the forward signal) or ``"fan_out"``
            (preserves it in the backward pass).
        nonlinearity: the function after this layer; ``"relu"`` or ``"leaky_relu"`` (default) are the
            intended ones.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: unknown ``mode`` or ``nonlinearity``, or fewer than 2 dimensions.
        TypeError: ``a`` is not a real number (``bool`` included).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.kaiming_uniform_(torch.empty(256, 64, 3, 3), nonlinearity="relu", generator=g)
        >>> initbook.compute_fans(w)
        (576, 2304)
        >>> bound = math.sqrt(2) * math.sqrt(3 / 576)
        >>> bool(w.abs().max() <= bound), round(w.std().item() / math.sqrt(2 / 576), 2)
        (True, 1.0)
    """
    check_float_tensor("tensor", tensor)
    gain = calculate_gain(nonlinearity, check_real("a", a))
    fan_mode = _check_mode(mode, _TORCH_FAN_MODES)
    check_generator(generator)
    return _variance_scaling(tensor, _gain_squared(gain), fan_mode, "uniform", fans, generator)


def kaiming_normal_(
    tensor: torch.Tensor,
    a: float = 0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the Kaiming (He) normal distribution.

    The method is described in "Delving deep into rectifiers: Surpassing human-level performance on
    ImageNet classification", He, K. et al. (2015). Values are drawn from
    :math:`\mathcal N(0, \text{std}^2)` with

    .. math:: \text{std} = \frac{\text{gain}}{\sqrt{n_\text{mode}}},

    i.e. ``variance_scaling_(tensor, gain**2, mode, "normal")`` with
    ``gain = calculate_gain(nonlinearity, a)``. The same distribution as
    :func:`torch.nn.init.kaiming_normal_`.

    Also known as He normal initialization, but JAX's and Keras's ``he_normal`` is a *truncated*
    normal (cut at two standard deviations, variance corrected): that one is :func:`he_normal_`.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        a: the negative slope of the rectifier after this layer (used only with ``"leaky_relu"``).
        mode: ``"fan_in"`` (default; preserves the variance of the forward signal) or ``"fan_out"``
            (preserves it in the backward pass).
        nonlinearity: the function after this layer; ``"relu"`` or ``"leaky_relu"`` (default) are the
            intended ones.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: unknown ``mode`` or ``nonlinearity``, or fewer than 2 dimensions.
        TypeError: ``a`` is not a real number (``bool`` included).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.kaiming_normal_(torch.empty(512, 256), nonlinearity="relu", generator=g)
        >>> initbook.compute_fans(w)
        (256, 512)
        >>> round(w.std().item() / (math.sqrt(2) / math.sqrt(256)), 2)
        1.0
        >>> w = initbook.kaiming_normal_(torch.empty(512, 256), mode="fan_out", nonlinearity="relu", generator=g)
        >>> round(w.std().item() / (math.sqrt(2) / math.sqrt(512)), 2)
        1.0
    """
    check_float_tensor("tensor", tensor)
    gain = calculate_gain(nonlinearity, check_real("a", a))
    fan_mode = _check_mode(mode, _TORCH_FAN_MODES)
    check_generator(generator)
    return _variance_scaling(tensor, _gain_squared(gain), fan_mode, "normal", fans, generator)


def lecun_normal_(
    tensor: torch.Tensor,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the LeCun truncated normal distribution (JAX's and Keras's ``lecun_normal``).

    The scaling is from "Efficient BackProp", LeCun, Y. et al. (1998), and is the one self-normalizing
    SELU networks need (Klambauer, G. et al. 2017). Values are drawn from a normal cut at two standard
    deviations and rescaled so that, after truncation,

    .. math:: \text{std} = \frac{1}{\sqrt{n_\text{in}}},

    i.e. ``variance_scaling_(tensor, 1.0, "fan_in", "truncated_normal")``. Torch has no counterpart; the
    untruncated version is ``kaiming_normal_(tensor, nonlinearity="linear")``.

    Also known as LeCun normal initialization.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.lecun_normal_(torch.empty(400, 625), generator=g)
        >>> round(w.std().item() * math.sqrt(625), 2)  # 1 / sqrt(fan_in), after truncation
        1.0
    """
    return variance_scaling_(
        tensor, 1.0, "fan_in", "truncated_normal", fans=fans, generator=generator
    )


def lecun_uniform_(
    tensor: torch.Tensor,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the LeCun uniform distribution (JAX's and Keras's ``lecun_uniform``).

    The scaling is from "Efficient BackProp", LeCun, Y. et al. (1998). Values are drawn from
    :math:`\mathcal U(-a, a)` with

    .. math:: a = \sqrt{\frac{3}{n_\text{in}}},

    i.e. ``variance_scaling_(tensor, 1.0, "fan_in", "uniform")``, the same distribution as
    ``kaiming_uniform_(tensor, nonlinearity="linear")``.

    Also known as LeCun uniform initialization.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.lecun_uniform_(torch.empty(400, 300), generator=g)
        >>> bool(w.abs().max() <= math.sqrt(3 / 300))
        True
    """
    return variance_scaling_(tensor, 1.0, "fan_in", "uniform", fans=fans, generator=generator)


def he_normal_(
    tensor: torch.Tensor,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the He *truncated* normal distribution, as JAX's and Keras's ``he_normal``.

    The scaling is from "Delving deep into rectifiers", He, K. et al. (2015). Values are drawn from a
    normal cut at two standard deviations and rescaled so that, after truncation,

    .. math:: \text{std} = \sqrt{\frac{2}{n_\text{in}}},

    i.e. ``variance_scaling_(tensor, 2.0, "fan_in", "truncated_normal")``.

    .. note::
        Same variance, different distribution from torch's :func:`kaiming_normal_` (``nonlinearity="relu"``),
        which is an *untruncated* normal: no value of ``he_normal_`` exceeds
        :math:`2 \cdot 1.137\,\text{std}`, while ``kaiming_normal_`` has unbounded tails. This
        function follows JAX (``jax.nn.initializers.he_normal``) and Keras (``HeNormal``), so it is *not*
        an alias of :func:`kaiming_normal_`.

    Also known as He normal initialization (JAX/Keras flavour).

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.he_normal_(torch.empty(512, 256), generator=g)
        >>> round(w.std().item() / math.sqrt(2 / 256), 2)
        1.0
        >>> bool(w.abs().max() <= 2 * math.sqrt(2 / 256) / initbook.TRUNCATED_NORMAL_STD)
        True
    """
    return variance_scaling_(
        tensor, 2.0, "fan_in", "truncated_normal", fans=fans, generator=generator
    )


def glorot_normal_(
    tensor: torch.Tensor,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` from the Glorot *truncated* normal distribution, as JAX's and Keras's ``glorot_normal``.

    The scaling is from "Understanding the difficulty of training deep feedforward neural networks",
    Glorot, X. & Bengio, Y. (2010). Values are drawn from a normal cut at two standard deviations and
    rescaled so that, after truncation,

    .. math:: \text{std} = \sqrt{\frac{2}{n_\text{in} + n_\text{out}}},

    i.e. ``variance_scaling_(tensor, 1.0, "fan_avg", "truncated_normal")``.

    .. note::
        Same variance, different distribution from torch's :func:`xavier_normal_`, which is an
        *untruncated* normal. This function follows JAX (``jax.nn.initializers.glorot_normal``) and Keras
        (``GlorotNormal``), so it is *not* an alias of :func:`xavier_normal_`.

    Also known as Xavier normal initialization (JAX/Keras flavour).

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.glorot_normal_(torch.empty(300, 500), generator=g)
        >>> round(w.std().item() / math.sqrt(2 / (300 + 500)), 2)
        1.0
    """
    return variance_scaling_(
        tensor, 1.0, "fan_avg", "truncated_normal", fans=fans, generator=generator
    )


#: JAX's and Keras's ``glorot_uniform``: the same distribution as :func:`xavier_uniform_` (this *is*
#: that function), :math:`\mathcal U(\pm\sqrt{6/(n_\text{in}+n_\text{out})})` with ``gain=1``.
glorot_uniform_ = xavier_uniform_

#: JAX's and Keras's ``he_uniform``: the same distribution as :func:`kaiming_uniform_` with its defaults
#: (this *is* that function), :math:`\mathcal U(\pm\sqrt{6/n_\text{in}})`.
he_uniform_ = kaiming_uniform_


def torch_default_(
    tensor: torch.Tensor,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill a weight the way ``nn.Linear`` and ``nn.Conv*d`` do by default.

    Their ``reset_parameters`` call ``kaiming_uniform_(weight, a=math.sqrt(5))``: a leaky-ReLU gain
    :math:`\sqrt{2/(1+5)} = 1/\sqrt 3` that makes the bound exactly

    .. math:: \text{bound} = \frac{1}{\sqrt{n_\text{in}}},

    i.e. ``variance_scaling_(tensor, 1/3, "fan_in", "uniform")``: a variance of
    :math:`1/(3\,n_\text{in})`, a third of LeCun's. (The :math:`\sqrt 5` is a leftover from Lua
    Torch's ``U(±1/√fan_in)``, kept for backward compatibility.) See :func:`default_linear_init_` for the
    weight and the bias together.

    Also known as PyTorch's default initialization.

    Args:
        tensor: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        fans: ``(fan_in, fan_out)`` overriding the shape's (see :func:`fans_of`).
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.torch_default_(torch.empty(100, 400), generator=g)
        >>> bool(w.abs().max() <= 1 / math.sqrt(400)), round(w.std().item() * math.sqrt(3 * 400), 2)
        (True, 1.0)
    """
    return variance_scaling_(tensor, 1.0 / 3.0, "fan_in", "uniform", fans=fans, generator=generator)


def default_linear_init_(
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    fans: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Initialize a weight and its bias exactly as ``nn.Linear.reset_parameters`` does.

    The weight gets :func:`torch_default_`, :math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})`, and then the
    bias the same bound, :math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})` (0 if ``fan_in`` is 0), drawn in
    that order, so a generator seeded like torch's global one reproduces a freshly built layer.
    ``nn.Conv*d`` do the same with their fans; for ``nn.ConvTranspose*d`` torch reads ``fan_in`` from the
    weight's second dimension (``out_channels / groups * k``; see :func:`fans_of`), so pass
    ``fans=fans_of(layer)`` to use the true one.

    Args:
        weight: a floating tensor with at least 2 dimensions, layout ``(out, in, *kernel)``.
        bias: the bias, or ``None``.
        fans: ``(fan_in, fan_out)`` overriding the weight shape's.
        generator: the source of randomness.

    Returns:
        ``weight``, filled in place (``bias`` is filled in place too).

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> layer = torch.nn.Linear(20, 10)
        >>> w, b = torch.empty(10, 20), torch.empty(10)
        >>> _ = initbook.default_linear_init_(w, b, generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w, layer.weight), torch.allclose(b, layer.bias)
        (True, True)
    """
    fan_in, _ = _resolve_fans(check_float_tensor("weight", weight), fans)
    torch_default_(weight, fans=fans, generator=generator)
    if bias is not None:
        check_float_tensor("bias", bias)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        _no_grad_uniform_(bias, -bound, bound, generator)
    return weight


# ---------------------------------------------------------------------------------------------------
# Orthogonal, sparse, spectral
# ---------------------------------------------------------------------------------------------------


def orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with a (semi-)orthogonal matrix, uniformly distributed (Haar), times ``gain``.

    The method is described in "Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks", Saxe, A. et al. (2014). The tensor is viewed as a matrix :math:`W` of shape
    ``(rows, cols) = (out, in * prod(kernel))``; a Gaussian matrix is QR-factorized and the signs of
    :math:`R`'s diagonal are moved into :math:`Q` (Mezzadri 2007), which makes :math:`Q` Haar-distributed.
    Then

    .. math:: W W^\top = \text{gain}^2 I \ (\text{rows} \le \text{cols}), \qquad
        W^\top W = \text{gain}^2 I \ (\text{rows} \ge \text{cols}).

    The same distribution as :func:`torch.nn.init.orthogonal_` (and the same values for float32 and
    float64 with the same generator). float16 and bfloat16 tensors, for which torch's QR has no CPU
    kernel, are factorized in float32.

    Also known as Saxe initialization.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        gain: a scaling factor, finite and ``>= 0``.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions, or a negative or non-finite ``gain``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.orthogonal_(torch.empty(3, 5), gain=2.0, generator=g)
        >>> torch.allclose(w @ w.T, 4 * torch.eye(3), atol=1e-5)
        True
    """
    check_float_tensor("tensor", tensor)
    gain = check_real("gain", gain, nonnegative=True)
    check_generator(generator)
    _check_min_dims(tensor, 2, "orthogonal_")
    if _is_noop(tensor) or tensor.is_meta:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    with torch.no_grad():
        flat = torch.empty(rows, cols, dtype=_work_dtype(tensor), device=tensor.device)
        flat.normal_(0.0, 1.0, generator=generator)
        if rows < cols:
            flat.t_()
        q = _haar_from_gaussian(flat)
        if rows < cols:
            q.t_()
        return tensor.copy_(q.mul_(gain).reshape(tensor.shape))


def _haar_from_gaussian(g: torch.Tensor) -> torch.Tensor:
    """Haar-orthogonal matrices from Gaussian ones ``g`` of shape ``(..., m, n)``, ``m >= n``.

    The ``Q`` of the QR factorization ``g = QR`` with the signs of ``R``'s diagonal moved into ``Q``
    (Mezzadri 2007), which makes ``Q`` exactly Haar-distributed. :func:`orthogonal_` and
    :func:`initbook.stats.haar_orthogonal` share it.
    """
    q, r = torch.linalg.qr(g)
    return q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(-2)


def sparse_(
    tensor: torch.Tensor,
    sparsity: float,
    std: float = 0.01,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill a 2-dimensional ``tensor`` as a sparse matrix: a fixed number of zeros in every column.

    The method is described in "Deep learning via Hessian-free optimization", Martens, J. (2010). Every
    entry is drawn from :math:`\mathcal N(0, \text{std}^2)`, then in every column
    :math:`\lceil \text{sparsity} \times \text{rows} \rceil` entries, at uniformly random rows, are set to
    zero. The same distribution as :func:`torch.nn.init.sparse_`, except that the zeros' positions also
    come from ``generator`` (torch 2.13 draws them from the global generator, so a seeded ``generator``
    does not make torch's result reproducible).

    Args:
        tensor: a 2-dimensional floating tensor.
        sparsity: the fraction of each column set to zero, in :math:`[0, 1]`.
        std: the standard deviation of the non-zero values, finite and ``>= 0``.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: not 2-dimensional, ``sparsity`` outside :math:`[0, 1]` or a negative ``std``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.sparse_(torch.empty(10, 4), sparsity=0.25, generator=g)
        >>> (w == 0).sum(dim=0).tolist()  # ceil(0.25 * 10) = 3 zeros per column
        [3, 3, 3, 3]
    """
    check_float_tensor("tensor", tensor)
    if tensor.dim() != 2:
        raise ValueError(
            f"sparse_ needs a 2-dimensional tensor, got {tensor.dim()} dimension(s) "
            f"(shape {tuple(tensor.shape)})"
        )
    sparsity = check_real("sparsity", sparsity, nonnegative=True)
    if sparsity > 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    std = check_real("std", std, nonnegative=True)
    check_generator(generator)
    if _is_noop(tensor) or tensor.is_meta:
        return tensor
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with torch.no_grad():
        _no_grad_normal_(tensor, 0.0, std, generator)
        if num_zeros > 0:
            # torch's algorithm (the first num_zeros of a random permutation of the rows, per column),
            # from ``generator``; one permutation buffer, reused, and one scatter at the end
            perm = torch.empty(rows, dtype=torch.int64, device=tensor.device)
            zero_rows = torch.empty(cols, num_zeros, dtype=torch.int64, device=tensor.device)
            for chosen in zero_rows:
                chosen.copy_(torch.randperm(rows, generator=generator, out=perm)[:num_zeros])
            tensor.t().scatter_(1, zero_rows, 0.0)
    return tensor


def _top_singular_value(
    matrix: torch.Tensor, n_iter: int, generator: torch.Generator | None
) -> float:
    """Largest singular value by block power (subspace) iteration with a Rayleigh-Ritz step."""
    rows, cols = matrix.shape
    block = min(16, rows, cols)
    start = torch.empty(cols, block, dtype=matrix.dtype, device=matrix.device)
    v = torch.linalg.qr(start.normal_(0.0, 1.0, generator=generator)).Q
    sigma = 0.0
    for _ in range(n_iter):
        u = torch.linalg.qr(matrix @ v).Q
        v, r = torch.linalg.qr(matrix.T @ u)
        # u^T W v = r^T, so the Ritz values are r's singular values; they increase towards sigma_1
        estimate = float(torch.linalg.matrix_norm(r, ord=2))
        if abs(estimate - sigma) <= 1e-12 * estimate:
            return estimate
        sigma = estimate
    return sigma


def spectral_normalize_(
    tensor: torch.Tensor,
    target: float = 1.0,
    *,
    n_iter: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Rescale ``tensor`` in place so that its largest singular value is ``target``.

    The tensor is viewed as the matrix :math:`W` of shape ``(out, in * prod(kernel))``, its largest
    singular value :math:`\sigma_1` is estimated by power iteration, and

    .. math:: W \leftarrow \frac{\text{target}}{\sigma_1}\, W.

    The iteration runs on a block of 16 vectors with a Rayleigh-Ritz step (subspace iteration), in
    float64, and stops when the estimate changes by less than :math:`10^{-12}` relatively, or after
    ``n_iter`` steps. Its error shrinks like :math:`(\sigma_{17}/\sigma_1)^{2t}` rather than the plain
    power method's :math:`(\sigma_2/\sigma_1)^{2t}`, which is slow for random matrices (their top
    singular values crowd together). The estimate never exceeds :math:`\sigma_1`. Unlike
    :func:`torch.nn.utils.parametrizations.spectral_norm`, which renormalizes at every forward pass, this
    rescales once, at initialization.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        target: the largest singular value wanted, finite and ``>= 0``.
        n_iter: the maximum number of iterations.
        generator: the source of randomness for the starting vectors.

    Returns:
        ``tensor``, rescaled in place.

    Raises:
        ValueError: fewer than 2 dimensions, a negative ``target``, or an all-zero tensor.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.normal_(torch.empty(64, 128), generator=g)
        >>> w = initbook.spectral_normalize_(w, 2.0, generator=g)
        >>> round(torch.linalg.matrix_norm(w, ord=2).item(), 4)
        2.0
    """
    check_float_tensor("tensor", tensor)
    target = check_real("target", target, nonnegative=True)
    n_iter = check_int("n_iter", n_iter, minimum=1)
    check_generator(generator)
    _check_min_dims(tensor, 2, "spectral_normalize_")
    if _is_noop(tensor) or tensor.is_meta:
        return tensor
    wide = torch.float32 if tensor.device.type == "mps" else torch.float64
    with torch.no_grad():
        matrix = tensor.reshape(tensor.shape[0], -1).to(wide)
        sigma = _top_singular_value(matrix, n_iter, generator)
        if not sigma > 0.0:
            raise ValueError(
                "spectral_normalize_ cannot rescale a tensor whose entries are all zero"
            )
        return tensor.copy_(matrix.mul_(target / sigma).reshape(tensor.shape))


# ---------------------------------------------------------------------------------------------------
# Whole models: LSUV and init_model
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LSUVRecord:
    """What :func:`lsuv_` did to one layer.

    Attributes:
        name: the layer's name in ``model.named_modules()``.
        var_before: the variance of the layer's output on the batch after the orthogonal pre-init,
            before any rescaling.
        var_after: the variance after the last rescaling.
        iterations: the number of rescalings.
        converged: whether ``abs(var_after - target_var) < tol``.
    """

    name: str
    var_before: float
    var_after: float
    iterations: int
    converged: bool


def _call(model: nn.Module, batch: Any) -> None:
    if isinstance(batch, tuple | list):
        model(*batch)
    else:
        model(batch)


def _forward_order(model: nn.Module, batch: Any, layers: Sequence[_Layer]) -> list[_Layer]:
    """The layers in the order the forward pass first calls them (layers never called are left out)."""
    order: list[_Layer] = []

    def record(module: nn.Module, args: Any, output: Any) -> None:
        if all(module is not seen for seen in order):
            order.append(cast("_Layer", module))  # hooked on the layers only

    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        _call(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    return order


def _output_variance(model: nn.Module, batch: Any, layer: nn.Module) -> float:
    """The variance of ``layer``'s output (its first call) when ``model`` runs on ``batch``."""
    captured: list[torch.Tensor] = []

    def capture(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if not captured:
            captured.append(output.detach())

    handle = layer.register_forward_hook(capture)
    try:
        _call(model, batch)
    finally:
        handle.remove()
    return float(captured[0].double().var())


def lsuv_(
    model: nn.Module,
    batch: torch.Tensor | Sequence[torch.Tensor],
    *,
    target_var: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    orthogonal: bool = True,
    zero_bias: bool = True,
    generator: torch.Generator | None = None,
) -> list[LSUVRecord]:
    r"""Layer-sequential unit-variance initialization of every ``Linear``/``Conv`` layer of ``model``.

    The method is described in "All you need is a good init", Mishkin, D. & Matas, J. (2016):

    1. pre-initialize every ``Linear``, ``Conv*d`` and ``ConvTranspose*d`` weight with :func:`orthogonal_`
       (and zero its bias);
    2. then, layer by layer in the order the forward pass reaches them, run ``model`` on ``batch``, measure
       the variance :math:`v` of that layer's output (over all its elements), and rescale

       .. math:: W \leftarrow W \sqrt{v_\text{target} / v}

       until :math:`|v - v_\text{target}| < \text{tol}` (:math:`v_\text{target}` is ``target_var``), at most
       ``max_iter`` times.

    Earlier layers are final when a later one is scaled, so with zero biases one rescaling per layer
    suffices. The model runs as it is (train or eval mode): put it in eval mode first if dropout or
    batch-norm statistics should not take part. Forward hooks are used and removed, also on error.

    Also known as LSUV.

    Args:
        model: the network; modified in place.
        batch: a representative input: a tensor, or a tuple of the model's positional arguments.
        target_var: the output variance wanted for every layer, ``> 0``.
        tol: the accepted absolute distance from ``target_var``, ``> 0``.
        max_iter: the most rescalings per layer (0 only measures).
        orthogonal: run the orthogonal pre-initialization (step 1).
        zero_bias: zero the biases in step 1.
        generator: the source of randomness for the orthogonal pre-initialization.

    Returns:
        One :class:`LSUVRecord` per layer, in forward order.

    Warns:
        UserWarning: for each layer that did not reach the tolerance (variance 0 or non-finite, or
            ``max_iter`` too small).

    Raises:
        ValueError: ``model`` has no ``Linear``/``Conv`` layer, or a bad ``target_var``, ``tol`` or
            ``max_iter``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> net = torch.nn.Sequential(
        ...     torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
        ...     torch.nn.Linear(64, 10),
        ... )
        >>> x = torch.randn(256, 32, generator=g)
        >>> report = initbook.lsuv_(net, x, generator=g)
        >>> [r.name for r in report], all(r.converged for r in report)
        (['0', '2', '4'], True)
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    target_var = check_real("target_var", target_var, positive=True)
    tol = check_real("tol", tol, positive=True)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    check_generator(generator)
    names = {
        module: name
        for name, module in model.named_modules()
        if isinstance(module, _WEIGHTED_LAYERS)
    }
    if not names:
        raise ValueError("lsuv_ found no Linear, Conv*d or ConvTranspose*d layer in the model")
    records = []
    with torch.no_grad():
        for layer in names:
            if orthogonal:
                orthogonal_(layer.weight, generator=generator)
            if zero_bias and layer.bias is not None:
                layer.bias.zero_()
        for layer in _forward_order(model, batch, list(names)):
            var = before = _output_variance(model, batch, layer)
            iterations = 0
            while (
                abs(var - target_var) >= tol
                and iterations < max_iter
                and math.isfinite(var)
                and var > 0.0
            ):
                layer.weight.mul_(math.sqrt(target_var / var))
                iterations += 1
                var = _output_variance(model, batch, layer)
            converged = abs(var - target_var) < tol
            if not converged:
                warnings.warn(
                    f"lsuv_: layer {names[layer]!r} has output variance {var:.4g} after "
                    f"{iterations} rescaling(s), not within tol={tol} of target_var={target_var}",
                    stacklevel=2,
                )
            records.append(LSUVRecord(names[layer], before, var, iterations, converged))
    return records


_FAN_SCHEMES: dict[str, Callable[..., torch.Tensor]] = {
    "glorot_normal": glorot_normal_,
    "glorot_uniform": glorot_uniform_,
    "he_normal": he_normal_,
    "he_uniform": he_uniform_,
    "kaiming_normal": kaiming_normal_,
    "kaiming_uniform": kaiming_uniform_,
    "lecun_normal": lecun_normal_,
    "lecun_uniform": lecun_uniform_,
    "torch_default": torch_default_,
    "variance_scaling": variance_scaling_,
    "xavier_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
}
_SCHEMES = (*_FAN_SCHEMES, "orthogonal")
_BIAS_SCHEMES = ("torch_default", "zeros")


def init_model(
    module: nn.Module,
    scheme: str | Callable[..., Any],
    *,
    bias: str | Callable[..., Any] | None = "zeros",
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> nn.Module:
    r"""Initialize every ``Linear``, ``Conv*d`` and ``ConvTranspose*d`` layer of ``module`` with one scheme.

    Fans come from the *layer* (:func:`fans_of`), not the weight's shape, so grouped and transposed
    convolutions get the variance the scheme intends (torch's initializers, given only the weight, get
    them wrong; see :func:`fans_of`). Layers are visited in ``module.modules()`` order, weight then bias.

    Schemes: ``"kaiming_normal"``, ``"kaiming_uniform"``, ``"xavier_normal"``, ``"xavier_uniform"``,
    ``"lecun_normal"``, ``"lecun_uniform"``, ``"he_normal"``, ``"he_uniform"``, ``"glorot_normal"``,
    ``"glorot_uniform"``, ``"variance_scaling"``, ``"torch_default"`` (the weight part of torch's
    default, with the true ``fan_in``; pass ``bias="torch_default"`` for the bias part) and
    ``"orthogonal"`` (shape-based, no fans); ``kwargs`` go to the initializer (``nonlinearity="relu"``,
    ``mode="fan_out"``, ``gain=...``). A callable is called as
    ``scheme(weight, fans=(fan_in, fan_out), generator=generator, **kwargs)``.

    Args:
        module: the model; modified in place.
        scheme: a scheme name or a callable.
        bias: ``"zeros"`` (default), ``"torch_default"`` (:math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})`),
            ``None`` (leave biases alone) or a callable, called as
            ``bias(bias_tensor, fans=(fan_in, fan_out), generator=generator)``.
        generator: the source of randomness.
        **kwargs: extra arguments for the scheme.

    Returns:
        ``module``.

    Raises:
        ValueError: an unknown scheme or bias name (the message lists the valid ones).
        TypeError: a lazy layer whose weight is not materialized yet, or a non-string, non-callable
            ``scheme`` or ``bias``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> up = torch.nn.ConvTranspose2d(256, 16, 3)  # true fan_in = 256 * 9; torch would use 16 * 9
        >>> _ = initbook.init_model(up, "kaiming_normal", nonlinearity="relu", generator=g)
        >>> round(up.weight.std().item() / math.sqrt(2 / (256 * 9)), 2), up.bias.abs().sum().item()
        (1.0, 0.0)
    """
    if not isinstance(module, nn.Module):
        raise ArgumentTypeError(f"module must be an nn.Module, got {type(module).__name__}")
    check_generator(generator)
    weight_init: Callable[..., torch.Tensor] | None
    if callable(scheme):
        weight_init = scheme
    else:
        name = check_choice("scheme", scheme, _SCHEMES)
        weight_init = _FAN_SCHEMES.get(name)
        if weight_init is None:  # orthogonal: from the shape, no fans

            def orthogonal_init(weight: torch.Tensor, *, fans: Any, **rest: Any) -> torch.Tensor:
                return orthogonal_(weight, **rest)

            weight_init = orthogonal_init

    if bias is not None and not callable(bias):
        check_choice("bias", bias, _BIAS_SCHEMES)
    for layer in module.modules():
        if not isinstance(layer, _WEIGHTED_LAYERS):
            continue
        if isinstance(layer.weight, nn.parameter.UninitializedParameter):
            raise ArgumentTypeError(
                f"{type(layer).__name__} is lazy and not materialized yet: run a forward pass first"
            )
        fans = fans_of(layer)
        weight_init(layer.weight, fans=fans, generator=generator, **kwargs)
        if layer.bias is None or bias is None:
            continue
        if callable(bias):
            bias(layer.bias, fans=fans, generator=generator)
        elif bias == "zeros":
            zeros_(layer.bias)
        else:
            bound = 1.0 / math.sqrt(fans[0])
            _no_grad_uniform_(layer.bias, -bound, bound, generator)
    return module


# The recipes for torch's recurrent and attention modules live in their own files and build on this module's
# initializers and on initbook.theory, which itself imports calculate_gain from here: importing them last,
# once everything above is defined, lets both directions resolve.
from ._init_recurrent import (
    gru_update_bias_,
    irnn_,
    lstm_forget_bias_,
    recurrent_orthogonal_,
)
from ._init_transformer import (
    deepnet_init_,
    gpt2_init_,
    t_fixup_init_,
    transformer_roles,
)
