r"""Initializers for torch's recurrent modules: gate biases and recurrent matrices, block by block.

torch stacks the gates of a recurrent layer in one matrix: ``weight_hh`` has ``gates * hidden_size`` rows,
one block of ``hidden_size`` rows per gate, in the order

============================== ===== =====================================================
module                         gates order of the row blocks
============================== ===== =====================================================
``nn.RNN``, ``nn.RNNCell``     1     (the single map)
``nn.LSTM``, ``nn.LSTMCell``   4     input :math:`i`, forget :math:`f`, cell :math:`g`, output :math:`o`
``nn.GRU``, ``nn.GRUCell``     3     reset :math:`r`, update :math:`z`, new :math:`n`
============================== ===== =====================================================

and ``bias_ih`` and ``bias_hh`` are stacked the same way. A gate's pre-activation contains the *sum* of its
two bias slices. The bias initializers here write the whole value into ``bias_ih`` and zero the slice of
``bias_hh``, so that the sum is exactly the value asked for. Multi-layer and bidirectional modules are
handled layer by layer and direction by direction (``weight_hh_l{k}`` and ``weight_hh_l{k}_reverse``).
Re-exported by :mod:`initbook.init`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from . import init as _init
from ._validation import ArgumentTypeError, check_real

__all__ = ["gru_update_bias_", "irnn_", "lstm_forget_bias_", "recurrent_orthogonal_"]

_GATES: dict[type, int] = {
    nn.RNN: 1,
    nn.RNNCell: 1,
    nn.LSTM: 4,
    nn.LSTMCell: 4,
    nn.GRU: 3,
    nn.GRUCell: 3,
}
_RNNModule = nn.RNNBase | nn.RNNCellBase


def _check_module(module: object, valid: tuple[type, ...], hint: str = "") -> None:
    if not isinstance(module, valid):
        names = sorted(f"nn.{t.__name__}" for t in valid)
        raise ArgumentTypeError(f"module must be one of {names}, got {type(module).__name__}{hint}")


def _layers(
    module: nn.Module,
) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
    """``(weight_hh, bias_ih, bias_hh)`` of every layer and direction."""
    if isinstance(module, nn.RNNCellBase):
        return [(module.weight_hh, module.bias_ih, module.bias_hh)]
    assert isinstance(module, nn.RNNBase)
    out = []
    for k in range(module.num_layers):
        for suffix in ("", "_reverse") if module.bidirectional else ("",):
            names = (f"{kind}_l{k}{suffix}" for kind in ("weight_hh", "bias_ih", "bias_hh"))
            weight_hh, bias_ih, bias_hh = (getattr(module, name, None) for name in names)
            out.append(
                (
                    cast("torch.Tensor", weight_hh),
                    cast("torch.Tensor | None", bias_ih),
                    cast("torch.Tensor | None", bias_hh),
                )
            )
    return out


def _gate_bias_(module: nn.Module, gate: int, value: float) -> None:
    hid = cast("int", module.hidden_size)
    rows = slice(gate * hid, (gate + 1) * hid)
    with torch.no_grad():
        for _, bias_ih, bias_hh in _layers(module):
            if bias_ih is None or bias_hh is None:
                raise ValueError(
                    f"{type(module).__name__} was built with bias=False: it has no gate biases to set"
                )
            bias_ih[rows] = value
            bias_hh[rows] = 0.0


def lstm_forget_bias_(module: nn.LSTM | nn.LSTMCell, value: float = 1.0) -> nn.LSTM | nn.LSTMCell:
    r"""Set the forget-gate bias of every layer of an LSTM to ``value``.

    The forget gate :math:`f_t = \sigma(U_f x_t + W_f h_{t-1} + b_f)` multiplies the cell state,
    :math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t`, so its bias sets how long the cell remembers at
    initialization: with torch's default initialization the weighted sums are small and
    :math:`f \approx \sigma(b_f)`, which is :math:`1/2` for :math:`b_f = 0`, and a gradient along the cell
    state shrinks by :math:`\mathbb E[f^2]` per step (:func:`initbook.theory.gate_memory_time`). Gers,
    Schmidhuber and Cummins, "Learning to forget" (2000), start the forget gate near 1; Jozefowicz, Zaremba
    and Sutskever, "An empirical exploration of recurrent network architectures" (2015), recommend
    :math:`b_f = 1`.

    Convention: rows ``hidden_size:2*hidden_size`` (the :math:`f` block of torch's :math:`(i, f, g, o)`)
    of ``bias_ih`` are set to ``value`` and the same rows of ``bias_hh`` to 0, so :math:`b_f` = ``value``
    exactly. Every other entry is left as it was.

    Args:
        module: an :class:`torch.nn.LSTM` (any number of layers, bidirectional or not, with or without
            ``proj_size``) or an :class:`torch.nn.LSTMCell`, built with ``bias=True``.
        value: the forget-gate bias :math:`b_f`, a finite real number.

    Returns:
        ``module``, changed in place.

    Raises:
        TypeError: ``module`` is not an LSTM (the message names the valid types).
        ValueError: ``value`` is not finite, or the module has no biases.

    Examples:
        >>> lstm = torch.nn.LSTM(3, 4, num_layers=2)
        >>> _ = initbook.init.lstm_forget_bias_(lstm, 1.0)
        >>> (lstm.bias_ih_l1[4:8] + lstm.bias_hh_l1[4:8]).tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    hint = " (for a GRU use gru_update_bias_)" if isinstance(module, nn.GRU | nn.GRUCell) else ""
    _check_module(module, (nn.LSTM, nn.LSTMCell), hint)
    value = check_real("value", value)
    _gate_bias_(module, 1, value)
    return module


def gru_update_bias_(module: nn.GRU | nn.GRUCell, value: float = 1.0) -> nn.GRU | nn.GRUCell:
    r"""Set the update-gate bias of every layer of a GRU to ``value``; positive values lengthen memory.

    torch's GRU computes :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`, as in Cho et al. (2014):
    the update gate :math:`z_t = \sigma(U_z x_t + W_z h_{t-1} + b_z)` is the fraction of the old state that
    is *kept*, the role the forget gate :math:`f` plays in an LSTM, with the same sign. A large positive
    :math:`b_z` makes the GRU remember at initialization; a large negative one makes it forget at once.
    (Some papers, e.g. Chung et al. 2014, write :math:`h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t`, where
    the sign is the opposite; this function follows torch.)

    Convention: rows ``hidden_size:2*hidden_size`` (the :math:`z` block of torch's :math:`(r, z, n)`)
    of ``bias_ih`` are set to ``value`` and the same rows of ``bias_hh`` to 0.

    Args:
        module: an :class:`torch.nn.GRU` (any number of layers, bidirectional or not) or an
            :class:`torch.nn.GRUCell`, built with ``bias=True``.
        value: :math:`b_z`, a finite real number.

    Returns:
        ``module``, changed in place.

    Raises:
        TypeError: ``module`` is not a GRU (the message names the valid types).
        ValueError: ``value`` is not finite, or the module has no biases.

    Examples:
        >>> gru = torch.nn.GRUCell(3, 2)
        >>> _ = initbook.init.gru_update_bias_(gru, 2.0)
        >>> (gru.bias_ih + gru.bias_hh)[2:4].tolist()
        [2.0, 2.0]
    """
    hint = (
        " (for an LSTM use lstm_forget_bias_)" if isinstance(module, nn.LSTM | nn.LSTMCell) else ""
    )
    _check_module(module, (nn.GRU, nn.GRUCell), hint)
    value = check_real("value", value)
    _gate_bias_(module, 1, value)
    return module


def recurrent_orthogonal_(
    module: nn.RNNBase | nn.RNNCellBase,
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> nn.RNNBase | nn.RNNCellBase:
    r"""Fill every gate block of every recurrent matrix ``weight_hh`` with its own random orthogonal matrix.

    An orthogonal recurrent matrix preserves the norm of everything it multiplies, so a *linear* recurrent
    network neither explodes nor vanishes over any number of steps (Saxe, McClelland and Ganguli 2014; Le,
    Jaitly and Hinton 2015 compare it with the identity). Calling :func:`initbook.orthogonal_` on the
    whole stacked ``weight_hh`` of an LSTM would give a :math:`4n \times n` matrix with orthonormal
    *columns*, whose gate blocks are not orthogonal (each has squared singular values 1/4 on average);
    this function draws one :math:`n \times n` Haar-orthogonal block per gate instead (semi-orthogonal
    :math:`n \times p` blocks for an LSTM with ``proj_size = p``). Input weights and biases are left
    unchanged.

    Args:
        module: one of torch's recurrent modules: :class:`~torch.nn.RNN`, :class:`~torch.nn.LSTM`,
            :class:`~torch.nn.GRU` or their cells.
        gain: the factor :math:`\sigma_w` (every singular value of every block), finite and ``>= 0``.
        generator: the source of randomness.

    Returns:
        ``module``, changed in place.

    Raises:
        TypeError: ``module`` is not one of these types (the message names them).
        ValueError: ``gain`` is negative or not finite.

    Examples:
        >>> gru = torch.nn.GRU(3, 5)
        >>> _ = initbook.init.recurrent_orthogonal_(gru, generator=torch.Generator().manual_seed(0))
        >>> z = gru.weight_hh_l0[5:10]  # the update gate's block
        >>> torch.allclose(z @ z.T, torch.eye(5), atol=1e-6)
        True
    """
    _check_module(module, tuple(_GATES))
    gain = check_real("gain", gain, nonnegative=True)
    gates = next(g for kind, g in _GATES.items() if isinstance(module, kind))
    hid = module.hidden_size
    with torch.no_grad():
        for weight_hh, _, _ in _layers(module):
            for k in range(gates):
                _init.orthogonal_(weight_hh[k * hid : (k + 1) * hid], gain, generator=generator)
    return module


def irnn_(module: nn.RNN | nn.RNNCell, scale: float = 1.0) -> nn.RNN | nn.RNNCell:
    r"""The IRNN initialization: recurrent matrix :math:`\text{scale}\cdot I`, all biases zero.

    Le, Jaitly and Hinton, "A simple way to initialize recurrent networks of rectified linear units" (2015):
    with ReLU units, :math:`W = I` and :math:`b = 0`, a unit whose pre-activation stays positive copies its
    state (plus the input) from step to step, and its gradient passes back unchanged. The gradient of the
    whole state decays only as a power of the lag (:func:`initbook.theory.irnn_jacobian_growth`). The paper
    uses ``nonlinearity="relu"``; a tanh RNN is accepted too (the identity then acts on saturating units).
    Input weights ``weight_ih`` are left unchanged.

    Args:
        module: an :class:`torch.nn.RNN` or :class:`torch.nn.RNNCell` (gated modules have no single
            recurrent matrix to set to the identity).
        scale: the factor on the identity, finite and ``>= 0`` (Le et al. also try 0.01 for some tasks).

    Returns:
        ``module``, changed in place.

    Raises:
        TypeError: ``module`` is not a plain RNN (the message names the valid types).
        ValueError: ``scale`` is negative or not finite.

    Examples:
        >>> rnn = torch.nn.RNN(2, 3, nonlinearity="relu")
        >>> _ = initbook.init.irnn_(rnn)
        >>> rnn.weight_hh_l0.tolist(), rnn.bias_hh_l0.tolist()
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0.0, 0.0, 0.0])
    """
    _check_module(module, (nn.RNN, nn.RNNCell))
    scale = check_real("scale", scale, nonnegative=True)
    with torch.no_grad():
        for weight_hh, bias_ih, bias_hh in _layers(module):
            weight_hh.copy_(scale * torch.eye(*weight_hh.shape, dtype=weight_hh.dtype))
            for bias in (bias_ih, bias_hh):
                if bias is not None:
                    bias.zero_()
    return module
