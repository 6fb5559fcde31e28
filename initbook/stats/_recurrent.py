r"""Measuring recurrent networks at initialization: gradient norms against the time lag.

Re-exported by :mod:`initbook.stats`. The predictions these measurements are compared with are in
:mod:`initbook.theory` (:func:`~initbook.theory.rnn_jacobian_growth`,
:func:`~initbook.theory.irnn_jacobian_growth`, :func:`~initbook.theory.gate_memory_time`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.functional import jvp

from .._validation import ArgumentTypeError, check_choice, check_int, check_real

__all__ = ["GatedCellRun", "RNNJacobianRun", "gated_cell_jacobian", "rnn_jacobian_norms"]

_WEIGHTS = ("gaussian", "identity", "orthogonal")
_PHIS = {
    "linear": (lambda a: a, torch.ones_like),
    "relu": (torch.relu, lambda a: (a > 0).to(a.dtype)),
    "tanh": (torch.tanh, lambda a: 1.0 - torch.tanh(a).square()),
}


class RNNJacobianRun(NamedTuple):
    r"""What :func:`rnn_jacobian_norms` measured, one row per independent network."""

    jacobian: torch.Tensor
    """:math:`\\lVert J_k v\\rVert^2` for a random unit vector :math:`v`, lag :math:`k = 0, \\dots,` steps;
    float64, shape ``(trials, steps + 1)``; its mean over trials estimates :math:`r_k`."""
    pre_mean_sq: torch.Tensor
    """:math:`q_t = \\frac1n\\lVert a_t\\rVert^2`, the pre-activations' mean square at steps
    :math:`t = 1, \\dots,` steps; float64, shape ``(trials, steps)``."""


def rnn_jacobian_norms(
    width: int,
    steps: int,
    *,
    weights: str = "gaussian",
    phi: str = "tanh",
    sigma_w2: float = 1.0,
    sigma_in2: float = 0.0,
    sigma_b2: float = 0.0,
    trials: int = 100,
    generator: torch.Generator | None = None,
) -> RNNJacobianRun:
    r"""Run ``trials`` random recurrent networks and measure how a perturbation of :math:`h_0` grows.

    Each trial draws its own recurrent matrix :math:`W` (``"gaussian"``: entries
    :math:`\mathcal N(0, \sigma_w^2/n)`; ``"orthogonal"``: :math:`\sigma_w` times a Haar-random orthogonal
    matrix; ``"identity"``: :math:`\sigma_w I`), its own bias :math:`b_i \sim \mathcal N(0, \sigma_b^2)`,
    and a fresh input drive :math:`u_{t,i} \sim \mathcal N(0, \sigma_\text{in}^2)` per step, and runs

    .. math:: a_t = W h_{t-1} + u_t + b, \quad h_t = \phi(a_t), \quad h_0 = 0,
        \qquad \delta_t = \phi'(a_t) \odot W \delta_{t-1},

    with :math:`\delta_0 = v` a uniformly random unit vector: :math:`\delta_k = J_k v` with
    :math:`J_k = \partial h_k/\partial h_0`, the forward-mode form of back-propagation through time (the same
    :math:`W` at every step). :math:`\mathbb E\lVert J_k v\rVert^2 = \lVert J_k\rVert_F^2/n`, the same as for
    a gradient sent backwards from a random direction. All trials run as one batched product per step, in
    float64; :math:`\delta` is renormalized every step and its log-norm accumulated, so nothing overflows
    before the result does.

    Args:
        width: :math:`n`.
        steps: number of steps :math:`k`.
        weights: ``"gaussian"``, ``"orthogonal"`` or ``"identity"``.
        phi: ``"linear"``, ``"relu"`` or ``"tanh"``.
        sigma_w2: :math:`\sigma_w^2`.
        sigma_in2: :math:`\sigma_\text{in}^2`.
        sigma_b2: :math:`\sigma_b^2`.
        trials: number of independent networks.
        generator: the source of every random draw.

    Returns:
        An :class:`RNNJacobianRun`.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> run = initbook.stats.rnn_jacobian_norms(16, 5, weights="orthogonal", phi="linear",
        ...                                          trials=3, generator=gen)
        >>> torch.allclose(run.jacobian, torch.ones(3, 6, dtype=torch.float64))  # orthogonal: isometry
        True
    """
    n = check_int("width", width, minimum=1)
    check_int("steps", steps, minimum=0)
    check_int("trials", trials, minimum=1)
    check_choice("weights", weights, _WEIGHTS)
    fn, dfn = _PHIS[check_choice("phi", phi, _PHIS)]
    sigma_w2 = check_real("sigma_w2", sigma_w2, nonnegative=True)
    sigma_in = math.sqrt(check_real("sigma_in2", sigma_in2, nonnegative=True))
    sigma_b = math.sqrt(check_real("sigma_b2", sigma_b2, nonnegative=True))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    f64 = torch.float64
    gain = math.sqrt(sigma_w2)
    if weights == "gaussian":
        w = torch.randn(trials, n, n, generator=generator, dtype=f64) * (gain / math.sqrt(n))
    elif weights == "orthogonal":
        from ._isometry import haar_orthogonal

        w = haar_orthogonal(trials, n, generator=generator, dtype=f64) * gain
    else:
        w = torch.eye(n, dtype=f64).expand(trials, n, n) * gain
    b = torch.randn(trials, n, generator=generator, dtype=f64) * sigma_b
    state = torch.zeros(trials, n, 2, dtype=f64)  # columns: h_t and delta_t
    delta0 = torch.randn(trials, n, generator=generator, dtype=f64)
    state[:, :, 1] = delta0 / delta0.norm(dim=1, keepdim=True)
    log_norm = torch.zeros(trials, dtype=f64)
    jac = torch.ones(trials, steps + 1, dtype=f64)
    q = torch.empty(trials, steps, dtype=f64)
    for t in range(steps):
        u = torch.randn(trials, n, generator=generator, dtype=f64) * sigma_in
        prod = torch.bmm(w, state)
        a = prod[:, :, 0] + u + b
        delta = dfn(a) * prod[:, :, 1]
        sq = delta.square().sum(dim=1)
        log_norm = log_norm + 0.5 * sq.log()
        jac[:, t + 1] = (2.0 * log_norm).exp()
        state = torch.stack([fn(a), delta / sq.sqrt().clamp_min(1e-300).unsqueeze(1)], dim=2)
        q[:, t] = a.square().mean(dim=1)
    if not (torch.isfinite(jac).all() and torch.isfinite(q).all()):
        raise ValueError(
            f"the run overflows float64 within {steps} steps (sigma_w2={sigma_w2!r}, "
            f"sigma_in2={sigma_in2!r}); ask for fewer steps"
        )
    return RNNJacobianRun(jac, q)


class GatedCellRun(NamedTuple):
    r"""What :func:`gated_cell_jacobian` measured, one row per input sequence."""

    full: torch.Tensor
    """:math:`\\lVert \\partial s_k/\\partial s_0\\, v\\rVert^2` for a random unit :math:`v`, through every
    path (autograd), lag :math:`k = 0, \\dots,` steps; float64, shape ``(batch, steps + 1)``. The state
    :math:`s` is the cell state :math:`c` of an LSTM and the hidden state :math:`h` of a GRU."""
    direct: torch.Tensor
    """The same along the direct path only, :math:`\\sum_i v_i^2 \\prod_{t \\le k} f_{t,i}^2`, with
    :math:`f` the keep gate (LSTM: forget gate; GRU: update gate :math:`z`); shape ``(batch, steps + 1)``."""
    gate_pre_var: torch.Tensor
    """The keep gate's pre-activation minus its bias, mean square over units and steps; shape ``(batch,)``."""


def gated_cell_jacobian(
    cell: nn.LSTMCell | nn.GRUCell,
    steps: int,
    *,
    batch: int = 64,
    input_std: float = 1.0,
    generator: torch.Generator | None = None,
) -> GatedCellRun:
    r"""Feed random inputs to an LSTM or GRU cell and measure how a perturbation of its initial state decays.

    The inputs are :math:`x_t \sim \mathcal N(0, \sigma^2 I)` with :math:`\sigma` = ``input_std``, fresh at every step, and the
    initial state is zero. The tangent :math:`\partial s_k/\partial s_0\,v` is propagated with
    :func:`torch.autograd.functional.jvp` through ``cell`` itself, so everything torch's cell computes is included. The
    direct path multiplies by the keep gate only: torch's gate order is :math:`(i, f, g, o)` for the LSTM
    (:math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t`) and :math:`(r, z, n)` for the GRU
    (:math:`h_t = (1 - z_t)\odot n_t + z_t \odot h_{t-1}`), so the keep gate is rows
    ``hidden_size:2*hidden_size`` of both weight matrices and biases.

    Args:
        cell: an :class:`torch.nn.LSTMCell` or :class:`torch.nn.GRUCell` (float32 or float64).
        steps: number of steps.
        batch: number of independent input sequences (one cell, shared weights).
        input_std: standard deviation of the inputs.
        generator: the source of the inputs and of :math:`v`.

    Returns:
        A :class:`GatedCellRun`.

    Examples:
        >>> cell = torch.nn.LSTMCell(8, 8, dtype=torch.float64)
        >>> _ = torch.nn.init.zeros_(cell.weight_hh)  # no path through h: the direct path is all there is
        >>> run = initbook.stats.gated_cell_jacobian(cell, 4, batch=5,
        ...                                          generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(run.full, run.direct)
        True
    """
    if not isinstance(cell, nn.LSTMCell | nn.GRUCell):
        raise ArgumentTypeError(
            f"cell must be one of ['nn.GRUCell', 'nn.LSTMCell'], got {type(cell).__name__}"
        )
    check_int("steps", steps, minimum=0)
    check_int("batch", batch, minimum=1)
    input_std = check_real("input_std", input_std, nonnegative=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    lstm = isinstance(cell, nn.LSTMCell)
    hid, dtype = cell.hidden_size, cell.weight_ih.dtype
    if dtype not in (torch.float32, torch.float64):
        raise ArgumentTypeError(
            f"cell must have float32 or float64 weights, got {dtype}; convert it with cell.double()"
        )
    rows = slice(hid, 2 * hid)
    f64 = torch.float64
    v = torch.randn(batch, hid, generator=generator, dtype=f64)
    v = (v / v.norm(dim=1, keepdim=True)).to(dtype)
    h = torch.zeros(batch, hid, dtype=dtype)
    c = torch.zeros(batch, hid, dtype=dtype)
    dh = torch.zeros(batch, hid, dtype=dtype) if lstm else v
    dc = v
    v2 = v.double().square()
    full = torch.ones(batch, steps + 1, dtype=f64)
    direct = torch.ones(batch, steps + 1, dtype=f64)
    keep_sq = torch.ones(batch, hid, dtype=f64)
    pre_sq = torch.zeros(batch, dtype=f64)
    bias = torch.zeros(hid, dtype=dtype)
    if cell.bias_ih is not None and cell.bias_hh is not None:
        bias = (cell.bias_ih[rows] + cell.bias_hh[rows]).detach()
    w_ih, w_hh = cell.weight_ih[rows].detach(), cell.weight_hh[rows].detach()
    for t in range(steps):
        x = (torch.randn(batch, cell.input_size, generator=generator, dtype=f64) * input_std).to(
            dtype
        )
        with torch.no_grad():
            pre = x @ w_ih.T + h @ w_hh.T
            pre_sq += pre.double().square().mean(dim=1)
            keep_sq *= torch.sigmoid(pre + bias).double().square()
            direct[:, t + 1] = (keep_sq * v2).sum(dim=1)
        if lstm:
            (h, c), (dh, dc) = jvp(lambda h_, c_, x=x: cell(x, (h_, c_)), (h, c), (dh, dc))
            tangent = dc
        else:
            h, dh = jvp(lambda h_, x=x: cell(x, h_), (h,), (dh,))
            tangent = dh
        full[:, t + 1] = tangent.detach().double().square().sum(dim=1)
    return GatedCellRun(full, direct, pre_sq / max(steps, 1))
