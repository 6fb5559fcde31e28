r"""Simulations for the chapter "Normalization layers": batched BN/LN networks at initialization and in training.

Every function runs many independent networks at once, as batched matrix products (one ``bmm`` per layer
for all trials), so that error bars over seeds cost about as much as one network.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._validation import check_choice, check_float_tensor, check_int, check_real
from ..init import init_model

__all__ = [
    "MLPGridRun",
    "ResidualStackRun",
    "bn_mlp_gradients",
    "deep_mlp",
    "init_scheme_",
    "residual_stack_at_init",
    "train_mlp_grid",
]

_NORMS = {"none", "bn", "ln"}
_SCHEMES = {"torch_default", "xavier", "he", "uniform_0.01"}


def _bn(h: torch.Tensor, eps: float) -> torch.Tensor:
    """Batch normalization of ``(trials, batch, features)`` over the batch dimension (biased variance)."""
    hc = h - h.mean(dim=1, keepdim=True)
    return hc / (hc.square().mean(dim=1, keepdim=True) + eps).sqrt()


def _ln(h: torch.Tensor, eps: float) -> torch.Tensor:
    """Layer normalization of ``(..., features)`` over the last dimension (biased variance)."""
    hc = h - h.mean(dim=-1, keepdim=True)
    return hc / (hc.square().mean(dim=-1, keepdim=True) + eps).sqrt()


def _gaussian(trials: int, rows: int, cols: int, var: float, generator, dtype) -> torch.Tensor:
    w = torch.randn(trials, rows, cols, generator=generator, dtype=dtype) * math.sqrt(var)
    return w.requires_grad_()


def bn_mlp_gradients(
    width: int,
    depth: int,
    batch_size: int,
    *,
    nonlinearity: str = "linear",
    trials: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Squared gradient norm of every weight matrix of deep BN MLPs without skips, at initialization.

    Each of ``trials`` independent networks is :math:`x_{l+1} = \phi(\operatorname{BN}(W_l x_l))`,
    :math:`l = 0, \dots, L-1`, with :math:`W_l \in \mathbb R^{n\times n}` Gaussian of variance :math:`1/n`
    (BN makes the scale irrelevant), BN over a batch of :math:`B` standard-normal inputs with
    :math:`\epsilon = 0` and no affine parameters, and the loss :math:`\sum c \odot x_L` with a Gaussian
    :math:`c`. Compare :math:`\lVert\partial\mathcal L/\partial W_l\rVert^2` with
    :func:`initbook.theory.bn_gradient_growth`.

    Args:
        width: :math:`n`.
        depth: :math:`L`, number of BN layers.
        batch_size: :math:`B \ge 2`.
        nonlinearity: ``"linear"`` or ``"relu"``.
        trials: independent networks (each with its own weights, inputs and read-out).
        generator: the source of every random draw.
        dtype: floating dtype of the computation.

    Returns:
        A ``(trials, depth)`` tensor, layer 0 (nearest the input) first.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> initbook.stats.bn_mlp_gradients(16, 5, 8, trials=3, generator=g).shape
        torch.Size([3, 5])
    """
    n = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    b = check_int("batch_size", batch_size, minimum=2)
    check_choice("nonlinearity", nonlinearity, {"linear", "relu"})
    trials = check_int("trials", trials, minimum=1)
    h = torch.randn(trials, b, n, generator=generator, dtype=dtype)
    weights = [_gaussian(trials, n, n, 1.0 / n, generator, dtype) for _ in range(depth)]
    with torch.enable_grad():
        for w in weights:
            h = _bn(torch.bmm(h, w.transpose(1, 2)), 0.0)
            if nonlinearity == "relu":
                h = h.relu()
        readout = torch.randn(trials, b, n, generator=generator, dtype=dtype)
        grads = torch.autograd.grad((h * readout).sum(), weights)
    return torch.stack([g.square().sum(dim=(1, 2)) for g in grads], dim=1)


class ResidualStackRun(NamedTuple):
    """What :func:`residual_stack_at_init` measured, per trial."""

    stream: torch.Tensor
    """``(trials, depth + 1)``: :math:`q_l`, mean square of the residual stream entering block :math:`l`
    (the last entry is the stream after the last block)."""
    grad2: torch.Tensor
    """``(trials, depth)``: squared norm of the gradient with respect to block :math:`l`'s two weight
    matrices together."""


def residual_stack_at_init(
    width: int,
    depth: int,
    norm: str,
    *,
    gamma: float = 1.0,
    batch_size: int = 32,
    trials: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> ResidualStackRun:
    r"""Residual MLP stacks with normalization layers at initialization: stream second moment and gradients.

    The branch is :math:`F(x) = W_2\operatorname{relu}(W_1 x)` with He's variance :math:`2/n` for
    :math:`W_1` and :math:`1/n` for :math:`W_2` (a second-moment gain of 1), and ``norm`` places the
    normalization:

    * ``"pre_ln"``: :math:`x_{l+1} = x_l + F_l(\operatorname{LN}(x_l))`, read out through a final LN;
    * ``"post_ln"``: :math:`x_{l+1} = \operatorname{LN}(x_l + F_l(x_l))`;
    * ``"bn"``: :math:`x_{l+1} = x_l + \gamma\,\operatorname{BN}(W_2\operatorname{relu}(\operatorname{BN}(W_1
      x_l)))`, the ResNet block, whose last BN has scale :math:`\gamma` (``gamma``; 0 is Goyal et al.'s
      zero-init).

    The input is a batch of standard-normal vectors, normalizations use :math:`\epsilon = 0`, and the loss is
    :math:`\sum c\odot y` with a Gaussian :math:`c` and :math:`y` the read-out. Compare with
    :func:`initbook.theory.ln_gradient_profile` and :func:`initbook.theory.bn_residual_stream_variance`.

    Args:
        width: :math:`n`.
        depth: number of blocks :math:`L \ge 1`.
        norm: ``"pre_ln"``, ``"post_ln"`` or ``"bn"``.
        gamma: the last BN's scale (``"bn"`` only).
        batch_size: samples per batch (BN normalizes over them; LN does not care).
        trials: independent stacks.
        generator: the source of every random draw.
        dtype: floating dtype.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> run = initbook.stats.residual_stack_at_init(16, 3, "bn", gamma=0.0, batch_size=8, generator=g)
        >>> bool((run.stream[0] == run.stream[0, 0]).all())  # zero gamma: every block is the identity
        True
    """
    n = check_int("width", width, minimum=2)
    depth = check_int("depth", depth, minimum=1)
    check_choice("norm", norm, {"pre_ln", "post_ln", "bn"})
    gamma = check_real("gamma", gamma)
    b = check_int("batch_size", batch_size, minimum=2)
    trials = check_int("trials", trials, minimum=1)
    x = torch.randn(trials, b, n, generator=generator, dtype=dtype)
    w1 = [_gaussian(trials, n, n, 2.0 / n, generator, dtype) for _ in range(depth)]
    w2 = [_gaussian(trials, n, n, 1.0 / n, generator, dtype) for _ in range(depth)]
    stream = [x.detach().square().mean(dim=(1, 2))]
    with torch.enable_grad():
        for a, c in zip(w1, w2, strict=True):
            if norm == "pre_ln":
                x = x + torch.bmm(
                    torch.bmm(_ln(x, 0.0), a.transpose(1, 2)).relu(), c.transpose(1, 2)
                )
            elif norm == "post_ln":
                x = _ln(
                    x + torch.bmm(torch.bmm(x, a.transpose(1, 2)).relu(), c.transpose(1, 2)), 0.0
                )
            else:
                hidden = _bn(torch.bmm(x, a.transpose(1, 2)), 0.0).relu()
                x = x + gamma * _bn(torch.bmm(hidden, c.transpose(1, 2)), 0.0)
            stream.append(x.detach().square().mean(dim=(1, 2)))
        y = _ln(x, 0.0) if norm == "pre_ln" else x
        readout = torch.randn(trials, b, n, generator=generator, dtype=dtype)
        grads = torch.autograd.grad((y * readout).sum(), w1 + w2, allow_unused=True)
    g2 = [
        torch.zeros(trials, dtype=dtype) if g is None else g.square().sum(dim=(1, 2)) for g in grads
    ]
    grad2 = torch.stack([g2[i] + g2[depth + i] for i in range(depth)], dim=1)
    return ResidualStackRun(torch.stack(stream, dim=1), grad2)


def deep_mlp(
    depth: int,
    width: int,
    norm: str = "none",
    *,
    n_in: int = 784,
    n_out: int = 10,
    eps: float = 1e-5,
) -> nn.Sequential:
    r"""The Part II MLP: ``depth`` linear layers, each hidden one followed by ``norm`` and a ReLU.

    Hidden block: ``Linear -> ReLU`` (``"none"``), ``Linear -> BatchNorm1d -> ReLU`` (``"bn"``) or
    ``Linear -> LayerNorm -> ReLU`` (``"ln"``); the last ``Linear`` has no normalization. Weights are
    PyTorch's defaults; initialize them with :func:`initbook.init_model`.

    Examples:
        >>> net = initbook.stats.deep_mlp(3, 8, "bn", n_in=4, n_out=2)
        >>> [type(m).__name__ for m in net]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    """
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    check_choice("norm", norm, _NORMS)
    eps = check_real("eps", eps, nonnegative=True)
    sizes = (
        [check_int("n_in", n_in, minimum=1)]
        + [width] * (depth - 1)
        + [check_int("n_out", n_out, minimum=1)]
    )
    layers: list[nn.Module] = []
    for i, (a, c) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, c))
        if i < depth - 1:
            if norm == "bn":
                layers.append(nn.BatchNorm1d(c, eps=eps))
            elif norm == "ln":
                layers.append(nn.LayerNorm(c, eps=eps))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def init_scheme_(
    model: nn.Module, scheme: str, *, generator: torch.Generator | None = None
) -> nn.Module:
    r"""Initialize every linear layer of ``model`` with one of the four schemes of :func:`train_mlp_grid`.

    ``"torch_default"``: PyTorch's :math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})` for weights and biases;
    ``"xavier"``: ``xavier_normal``; ``"he"``: ``kaiming_normal`` for ReLU; ``"uniform_0.01"``:
    :math:`\mathcal U(\pm 0.01)`; all but the first with zero biases. Normalization layers keep
    :math:`\gamma = 1, \beta = 0`.

    Raises:
        ValueError: an unknown scheme (the message lists the valid ones).

    Examples:
        >>> net = initbook.stats.deep_mlp(3, 8, "ln", n_in=4, n_out=2)
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.stats.init_scheme_(net, "uniform_0.01", generator=g)[3].weight.detach()
        >>> float(w.abs().max()) <= 0.01
        True
    """
    check_choice("scheme", scheme, _SCHEMES)
    if scheme == "torch_default":
        return init_model(model, "torch_default", bias="torch_default", generator=generator)
    if scheme == "xavier":
        return init_model(model, "xavier_normal", generator=generator)
    if scheme == "he":
        return init_model(model, "kaiming_normal", nonlinearity="relu", generator=generator)

    def small_uniform(w: torch.Tensor, *, fans, generator) -> torch.Tensor:
        with torch.no_grad():
            return w.uniform_(-0.01, 0.01, generator=generator)

    return init_model(model, small_uniform, generator=generator)


@dataclass
class MLPGridRun:
    """One configuration of :func:`train_mlp_grid` and what it measured."""

    norm: str
    scheme: str
    lr: float
    seed: int
    loss: torch.Tensor
    """Training loss of every step (float64; NaN after the first non-finite one)."""
    heldout_accuracy: float
    """Accuracy on the held-out set after training (BN in eval mode, with its running statistics)."""

    @property
    def diverged(self) -> bool:
        """True if some training loss was not finite."""
        return not bool(torch.isfinite(self.loss).all())


def train_mlp_grid(
    x: torch.Tensor,
    y: torch.Tensor,
    heldout: tuple[torch.Tensor, torch.Tensor],
    *,
    norms: Sequence[str] = ("none", "bn", "ln"),
    schemes: Sequence[str] = ("torch_default", "xavier", "he", "uniform_0.01"),
    lrs: Sequence[float] = (0.01,),
    seeds: Sequence[int] = (0,),
    depth: int = 30,
    width: int = 64,
    steps: int = 200,
    batch_size: int = 64,
    momentum: float = 0.9,
) -> list[MLPGridRun]:
    r"""Train :func:`deep_mlp` under every (norm, scheme, lr, seed) at once: one batched network per norm.

    Each configuration is exactly what :func:`initbook.train.fit` would do to ``deep_mlp(depth, width,
    norm)`` initialized by ``scheme`` with ``torch.Generator().manual_seed(seed)`` (SGD with momentum,
    mini-batches from a per-epoch permutation seeded by ``seed``, the last partial batch dropped), but all
    configurations with the same norm run as one stack of batched matrix products.

    Schemes: ``"torch_default"`` (PyTorch's :math:`\mathcal U(\pm 1/\sqrt{n_\text{in}})` for weights and
    biases), ``"xavier"`` (``xavier_normal``), ``"he"`` (``kaiming_normal``, ReLU) and ``"uniform_0.01"``
    (:math:`\mathcal U(\pm 0.01)`); all but the first with zero biases. BN and LN start at
    :math:`\gamma = 1, \beta = 0` and are trained too.

    Returns:
        One :class:`MLPGridRun` per configuration, in ``norms x schemes x lrs x seeds`` order.

    Raises:
        ValueError: an unknown norm or scheme, or bad sizes.
        TypeError: ``x`` is not a floating-point tensor.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 5, generator=g)
        >>> y = (x[:, 0] > 0).long()
        >>> runs = initbook.stats.train_mlp_grid(
        ...     x, y, (x, y), norms=("bn",), schemes=("he", "xavier"), depth=3, width=8, steps=4,
        ...     batch_size=16)
        >>> [(r.norm, r.scheme, r.loss.shape[0], r.diverged) for r in runs]
        [('bn', 'he', 4, False), ('bn', 'xavier', 4, False)]
    """
    check_float_tensor("x", x)
    for name in norms:
        check_choice("norms", name, _NORMS)
    for name in schemes:
        check_choice("schemes", name, _SCHEMES)
    lrs = [check_real("lrs", lr, positive=True) for lr in lrs]
    seeds = [check_int("seeds", s) for s in seeds]
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=2)
    momentum = check_real("momentum", momentum, nonnegative=True)
    if x.shape[0] != y.shape[0] or x.shape[0] < batch_size:
        raise ValueError(
            f"need as many labels as inputs and at least batch_size={batch_size} of them"
        )
    configs = [(s, lr, seed) for s in schemes for lr in lrs for seed in seeds]
    runs: list[MLPGridRun] = []
    for norm in norms:
        runs += _train_stack(
            x, y, heldout, norm, configs, depth, width, steps, batch_size, momentum
        )
    return runs


def _train_stack(
    x: torch.Tensor,
    y: torch.Tensor,
    heldout: tuple[torch.Tensor, torch.Tensor],
    norm: str,
    configs: list[tuple[str, float, int]],
    depth: int,
    width: int,
    steps: int,
    batch_size: int,
    momentum: float,
) -> list[MLPGridRun]:
    """Train the configurations of one norm as one batched stack (see :func:`train_mlp_grid`)."""
    models: list[nn.Sequential] = []
    for scheme, _, seed in configs:
        models.append(deep_mlp(depth, width, norm, n_in=x.shape[1], n_out=int(y.max()) + 1))
        init_scheme_(models[-1], scheme, generator=torch.Generator().manual_seed(seed))
    linears = [[m for m in net if isinstance(m, nn.Linear)] for net in models]
    norms_ = [[m for m in net if isinstance(m, nn.BatchNorm1d | nn.LayerNorm)] for net in models]
    eps = norms_[0][0].eps if norm != "none" else 0.0
    params = [torch.stack([lin[i].weight.detach() for lin in linears]) for i in range(depth)]
    params += [
        torch.stack([lin[i].bias.detach() for lin in linears]).unsqueeze(1) for i in range(depth)
    ]
    if norm != "none":
        params += [
            torch.stack([nm[i].weight.detach() for nm in norms_]).unsqueeze(1)
            for i in range(depth - 1)
        ]
        params += [
            torch.stack([nm[i].bias.detach() for nm in norms_]).unsqueeze(1)
            for i in range(depth - 1)
        ]
    params = [p.clone().requires_grad_() for p in params]
    r = len(configs)
    lr = torch.tensor([c[1] for c in configs], dtype=x.dtype)
    run_mean = [torch.zeros(r, 1, width, dtype=x.dtype) for _ in range(depth - 1)]
    run_var = [torch.ones(r, 1, width, dtype=x.dtype) for _ in range(depth - 1)]

    def forward(h: torch.Tensor, train: bool) -> torch.Tensor:
        for i in range(depth):
            h = torch.baddbmm(params[depth + i], h, params[i].transpose(1, 2))
            if i == depth - 1:
                break
            if norm == "bn":
                if train:
                    mean, var = (
                        h.mean(dim=1, keepdim=True),
                        h.var(dim=1, keepdim=True, correction=0),
                    )
                    with torch.no_grad():
                        m = h.shape[1]
                        run_mean[i].mul_(0.9).add_(0.1 * mean)
                        run_var[i].mul_(0.9).add_(0.1 * var * m / (m - 1))
                else:
                    mean, var = run_mean[i], run_var[i]
                h = (h - mean) / (var + eps).sqrt()
            elif norm == "ln":
                h = _ln(h, eps)
            if norm != "none":
                h = h * params[2 * depth + i] + params[3 * depth - 1 + i]
            h = h.relu()
        return h

    n = x.shape[0]
    per_epoch = n // batch_size
    gens = [torch.Generator().manual_seed(c[2]) for c in configs]
    losses = torch.full((r, steps), math.nan, dtype=torch.float64)
    alive = torch.ones(r, dtype=torch.bool)
    buffers: list[torch.Tensor | None] = [None] * len(params)
    order = torch.empty(r, n, dtype=torch.int64)
    for step in range(steps):
        b = step % per_epoch
        if b == 0:
            order = torch.stack([torch.randperm(n, generator=g) for g in gens])
        idx = order[:, b * batch_size : (b + 1) * batch_size]
        out = forward(x[idx], True)
        loss = (
            nn.functional.cross_entropy(
                out.reshape(-1, out.shape[-1]), y[idx].reshape(-1), reduction="none"
            )
            .view(r, -1)
            .mean(dim=1)
        )
        losses[:, step] = torch.where(alive, loss.detach().double(), math.nan)
        alive &= torch.isfinite(loss.detach())
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            for k, (p, g) in enumerate(zip(params, grads, strict=True)):
                buf = buffers[k]
                buf = g.clone() if buf is None else buf.mul_(momentum).add_(g)
                buffers[k] = buf
                p.sub_(lr.view(-1, *([1] * (p.dim() - 1))) * buf)
    xh, yh = heldout
    with torch.no_grad():
        pred = forward(xh.expand(r, *xh.shape), False).argmax(dim=-1)
        acc = (pred == yh).double().mean(dim=1)
    return [
        MLPGridRun(norm, scheme, float(lr_), seed, losses[k], float(acc[k]))
        for k, (scheme, lr_, seed) in enumerate(configs)
    ]
