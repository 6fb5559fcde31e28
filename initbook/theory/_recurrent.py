r"""Closed forms for recurrent networks at initialization: gradient growth with the time lag, memory times.

A recurrent network applies one map again and again, :math:`h_t = \phi(W h_{t-1} + u_t)` with the input
drive :math:`u_t = U x_t + b`, so back-propagation through time multiplies by the Jacobian
:math:`D_t W` (:math:`D_t = \operatorname{diag}\phi'(a_t)`, :math:`a_t` the pre-activation) once per step.
The functions here give the mean squared singular value of the product over :math:`k` steps,

.. math:: r_k = \frac{1}{n}\,\mathbb E\,\Bigl\lVert \frac{\partial h_k}{\partial h_0} \Bigr\rVert_F^2
    = \mathbb E\,\lVert J_k v\rVert^2 \ (\lVert v\rVert = 1,\ v \text{ uniform})
    = \mathbb E\,\lVert J_k^\top g\rVert^2 \ (\lVert g\rVert = 1,\ g \text{ uniform}),

which is the squared norm of a gradient sent back :math:`k` steps from a random direction. Re-exported by
:mod:`initbook.theory`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._activations import _activation
from .._validation import check_int, check_real
from ._meanfield import chi1, gradient_depth_scale, length_map

__all__ = [
    "gate_memory_time",
    "irnn_jacobian_growth",
    "rnn_jacobian_growth",
    "rnn_memory_time",
    "sigmoid_gate_moments",
]

_Phi = str | Callable[[torch.Tensor], torch.Tensor]


def rnn_jacobian_growth(
    steps: int,
    sigma_w2: float,
    sigma_in2: float = 0.0,
    phi: _Phi = "tanh",
    *,
    sigma_b2: float = 0.0,
) -> torch.Tensor:
    r"""Mean-field prediction of :math:`r_k`, the squared gradient norm over a lag of :math:`k` steps.

    For :math:`h_t = \phi(a_t)`, :math:`a_t = W h_{t-1} + u_t + b`, with :math:`h_0 = 0`, recurrent weights of
    variance :math:`\sigma_w^2/n` (Gaussian, or :math:`\sigma_w` times a random orthogonal matrix), a
    fixed bias :math:`b_i \sim \mathcal N(0, \sigma_b^2)` and a fresh input drive
    :math:`u_{t,i} \sim \mathcal N(0, \sigma_\text{in}^2)` at every step. The input acts like a second
    bias, so the pre-activation variance follows the :func:`~initbook.theory.length_map` of a deep network
    with bias variance :math:`\sigma_b^2 + \sigma_\text{in}^2`, starting from
    :math:`q_1 = \sigma_b^2 + \sigma_\text{in}^2`, and each step multiplies :math:`r` by
    :func:`~initbook.theory.chi1` evaluated at the current variance:

    .. math:: r_k = \prod_{t=1}^{k} \chi_1(q_t), \qquad \chi_1(q) = \sigma_w^2\,
        \mathbb E_z\bigl[\phi'(\sqrt q\, z)^2\bigr], \qquad
        q_{t+1} = \sigma_w^2\,\mathbb E_z\bigl[\phi(\sqrt{q_t}\, z)^2\bigr] + \sigma_b^2 + \sigma_\text{in}^2 .

    For a linear network this is :math:`r_k = \sigma_w^{2k}`, for ReLU :math:`(\sigma_w^2/2)^k`. The
    product treats :math:`W` as if it were drawn afresh at every step (the independence assumption of
    mean-field theory). For an orthogonal :math:`W` and a linear network the result is exact. For a reused
    Gaussian :math:`W` it is the mean over fresh matrices; the mean over reused ones is larger, and grows
    faster than any exponential in :math:`k` at fixed width (power iteration: rare matrices with a large
    spectral radius dominate it).

    Args:
        steps: the largest lag :math:`k`.
        sigma_w2: :math:`\sigma_w^2`, the recurrent weight variance times the width.
        sigma_in2: :math:`\sigma_\text{in}^2`, the variance of the input drive per unit and step.
        phi: ``"tanh"``, ``"relu"``, ``"linear"``, ``"erf"`` or a callable (see
            :func:`~initbook.theory.length_map`).
        sigma_b2: :math:`\sigma_b^2`, the bias variance.

    Returns:
        A float64 tensor ``r`` of length ``steps + 1`` with ``r[0] = 1``.

    Raises:
        ValueError: for ReLU without any drive (``sigma_in2 + sigma_b2 == 0``): the state stays at zero,
            where the derivative is zero, and the gradient is exactly zero after one step. Also when
            :math:`r_k` exceeds float64's range.

    Examples:
        >>> initbook.theory.rnn_jacobian_growth(3, 2.0, 0.1, "relu").tolist()
        [1.0, 1.0, 1.0, 1.0]
        >>> initbook.theory.rnn_jacobian_growth(2, 0.5, 0.0, "linear").tolist()
        [1.0, 0.5, 0.25]
        >>> [round(v, 4) for v in initbook.theory.rnn_jacobian_growth(3, 1.0, 0.1).tolist()]
        [1.0, 0.8492, 0.6511, 0.4724]
    """
    check_int("steps", steps, minimum=0)
    sigma_w2 = check_real("sigma_w2", sigma_w2, nonnegative=True)
    sigma_in2 = check_real("sigma_in2", sigma_in2, nonnegative=True)
    sigma_b2 = check_real("sigma_b2", sigma_b2, nonnegative=True)
    drive = sigma_b2 + sigma_in2
    act = _activation(phi)
    factors = []
    if act.name in ("linear", "relu"):
        if act.name == "relu" and drive == 0.0:
            raise ValueError(
                "phi='relu' needs sigma_in2 + sigma_b2 > 0: with no drive the state stays at 0, "
                "where relu' = 0, and the gradient vanishes after one step"
            )
        factors = [chi1(sigma_w2, drive, phi)] * steps
    else:
        q = drive
        for _ in range(steps):
            factors.append(chi1(sigma_w2, drive, phi, q=q))
            q = length_map(q, sigma_w2, drive, phi)
    out = torch.ones(steps + 1, dtype=torch.float64)
    if steps:
        out[1:] = torch.tensor(factors, dtype=torch.float64).cumprod(0)
    if not torch.isfinite(out).all():
        lag = int((~torch.isfinite(out)).nonzero()[0])
        raise ValueError(
            f"r_k exceeds float64's range at lag {lag} for sigma_w2={sigma_w2!r}; ask for fewer steps"
        )
    return out


def rnn_memory_time(
    sigma_w2: float,
    sigma_in2: float,
    phi: _Phi = "tanh",
    *,
    sigma_b2: float = 0.0,
) -> float:
    r"""The memory time :math:`\tau = -1/\ln\chi_1` of a random recurrent network, in steps.

    At the fixed point :math:`q^*` of the recurrent length map (bias variance
    :math:`\sigma_b^2 + \sigma_\text{in}^2`, see :func:`rnn_jacobian_growth`) the squared gradient norm
    decays like :math:`r_k \propto \chi_1^k = e^{-k/\tau}`: this is
    :func:`~initbook.theory.gradient_depth_scale` with time in place of depth. Positive in the ordered
    phase, infinite at the edge of chaos (:math:`\chi_1 = 1`), negative in the chaotic phase, where
    gradients grow by :math:`e` every :math:`|\tau|` steps.

    Args:
        sigma_w2: :math:`\sigma_w^2`.
        sigma_in2: :math:`\sigma_\text{in}^2`, the variance of the input drive.
        phi: the activation (see :func:`~initbook.theory.length_map`).
        sigma_b2: :math:`\sigma_b^2`.

    Examples:
        >>> round(initbook.theory.rnn_memory_time(1.5, 0.1), 2)
        7.65
        >>> crit = float(initbook.theory.critical_line([0.1])[0])
        >>> abs(initbook.theory.rnn_memory_time(crit, 0.1)) > 1e6
        True
    """
    sigma_in2 = check_real("sigma_in2", sigma_in2, nonnegative=True)
    sigma_b2 = check_real("sigma_b2", sigma_b2, nonnegative=True)
    return gradient_depth_scale(sigma_w2, sigma_b2 + sigma_in2, phi)


def irnn_jacobian_growth(steps: int) -> torch.Tensor:
    r""":math:`r_k` for a ReLU network with the identity as recurrent matrix (IRNN), exactly.

    Le, Jaitly and Hinton, "A simple way to initialize recurrent networks of rectified linear units" (2015),
    set :math:`W = I` and :math:`b = 0`. With :math:`h_0 = 0` each unit then evolves on its own,
    :math:`a_{t,i} = h_{t-1,i} + u_{t,i}`, and its gradient survives :math:`k` steps untouched if and only if
    :math:`a_{1,i}, \dots, a_{k,i}` are all positive, i.e. if the random walk
    :math:`S_t = u_{1,i} + \dots + u_{t,i}` stays positive. For steps that are independent, identically
    distributed, continuous and symmetric (any such distribution: Sparre Andersen's theorem)

    .. math:: r_k = P(S_1 > 0, \dots, S_k > 0) = \binom{2k}{k} 4^{-k} \approx \frac{1}{\sqrt{\pi k}} :

    no exponential decay, a power law. It holds at any width.

    Args:
        steps: the largest lag :math:`k`.

    Returns:
        A float64 tensor of length ``steps + 1``, ``r[0] = 1``.

    Examples:
        >>> initbook.theory.irnn_jacobian_growth(3).tolist()
        [1.0, 0.5, 0.375, 0.3125]
    """
    check_int("steps", steps, minimum=0)
    k = torch.arange(1, steps + 1, dtype=torch.float64)
    out = torch.ones(steps + 1, dtype=torch.float64)
    out[1:] = ((2 * k - 1) / (2 * k)).cumprod(0)
    return out


_Z = torch.linspace(-12.0, 12.0, 4801, dtype=torch.float64)
_ZW = torch.exp(-0.5 * _Z.square())
_ZW /= _ZW.sum()


def sigmoid_gate_moments(bias: float, q: float = 0.0) -> tuple[float, float]:
    r"""The mean and second moment of a sigmoid gate :math:`f = \sigma(b + \sqrt q\, z)`, :math:`z \sim \mathcal N(0,1)`.

    The forget gate of an LSTM is :math:`f_t = \sigma(U_f x_t + W_f h_{t-1} + b_f)`. At initialization
    the weighted sums are, unit by unit, approximately Gaussian with mean zero and some variance
    :math:`q`, so the gate is :math:`\sigma(b_f + \sqrt q\, z)`. Its mean is close to :math:`\sigma(b_f)`
    (exactly for :math:`q = 0`); the noise pulls it towards :math:`1/2`.

    The expectations are a trapezoidal rule on :math:`z \in [-12, 12]` (4801 nodes), accurate to about
    :math:`10^{-12}` for :math:`q \le 100`.

    Args:
        bias: the gate's bias :math:`b` (for torch's modules, the sum ``bias_ih + bias_hh`` of its slice).
        q: the variance of the rest of the pre-activation, ``0 <= q <= 100``.

    Returns:
        ``(E[f], E[f**2])``.

    Examples:
        >>> [round(v, 6) for v in initbook.theory.sigmoid_gate_moments(0.0)]
        [0.5, 0.25]
        >>> [round(v, 4) for v in initbook.theory.sigmoid_gate_moments(1.0, 0.5)]
        [0.7116, 0.5245]
    """
    bias = check_real("bias", bias)
    q = check_real("q", q, nonnegative=True)
    if q > 100.0:
        raise ValueError(f"q must be <= 100 (the quadrature's range), got {q!r}")
    f = torch.sigmoid(bias + math.sqrt(q) * _Z)
    return float((_ZW * f).sum()), float((_ZW * f.square()).sum())


def gate_memory_time(bias: float, q: float = 0.0) -> float:
    r"""Memory time :math:`\tau = -1/\ln \mathbb E[f^2]` of a gated cell state, in steps.

    In an LSTM the cell state's direct path is :math:`c_t = f_t \odot c_{t-1} + \dots`, so
    :math:`\partial c_k / \partial c_0` along it is :math:`\operatorname{diag}(f_k \cdots f_1)`. With gates
    independent across steps (a fresh input every step),

    .. math:: r_k = \mathbb E \prod_{t=1}^{k} f_t^2 = \bigl(\mathbb E[f^2]\bigr)^k = e^{-k/\tau},

    with :math:`\mathbb E[f^2]` from :func:`sigmoid_gate_moments` (Gers, Schmidhuber and Cummins 2000:
    a forget gate near 1 at the start; Jozefowicz, Zaremba and Sutskever 2015: a forget-gate bias of 1).
    The same holds for torch's GRU with its update gate :math:`z` in place of :math:`f`
    (:math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`).

    Args:
        bias: the gate's bias :math:`b`.
        q: the variance of the rest of its pre-activation (see :func:`sigmoid_gate_moments`).

    Returns:
        :math:`\tau` in steps; ``inf`` when :math:`\mathbb E[f^2]` rounds to 1, 0 when it rounds to 0.

    Examples:
        >>> round(initbook.theory.gate_memory_time(0.0), 4)  # E[f^2] = 1/4
        0.7213
        >>> round(initbook.theory.gate_memory_time(3.0), 2)
        10.29
    """
    _, m2 = sigmoid_gate_moments(bias, q)
    if m2 >= 1.0:  # the gate is 1 to float64 precision: the cell never forgets
        return math.inf
    if m2 == 0.0:
        return 0.0
    return -1.0 / math.log(m2)
