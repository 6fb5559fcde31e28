r"""Width: standard parameterization (SP) against the maximal-update parameterization (μP).

A parameterization says how each layer's initial variance and learning rate change with the width :math:`n`.
This module implements Table 3 of Yang et al. (2022, *Tensor Programs V*, arXiv:2203.03466v2) for MLPs made
of :class:`torch.nn.Linear` layers, written relative to a ``base_width`` :math:`n_0` (the convention of the
``mup`` package), so that μP and SP coincide at :math:`n = n_0`. With the width multiplier
:math:`m = n / n_0` and a global learning rate :math:`\eta`:

=============  ======================  ==================  =====================
layer          init variance           SGD learning rate   Adam learning rate
=============  ======================  ==================  =====================
input          :math:`g^2/d`           :math:`\eta\,m`     :math:`\eta`
hidden         :math:`g^2/n`           :math:`\eta`        :math:`\eta/m`
output         :math:`1/(n\,m)`        :math:`\eta/m`      :math:`\eta/m`
=============  ======================  ==================  =====================

(:math:`d` is the input dimension, :math:`g^2 = 2` the ReLU gain.) SP keeps the same variances except the
output layer's, :math:`1/n`, and uses :math:`\eta` everywhere. With :math:`n_0 = 1` (and :math:`g = 1`) this
is Table 3 verbatim (fan-in :math:`n_\text{in}`, fan-out :math:`n_\text{out}`): output variance
:math:`1/n_\text{in}^2`, SGD rates :math:`\eta\,n_\text{out}`, :math:`\eta`, :math:`\eta/n_\text{in}`, Adam rates
:math:`\eta`, :math:`\eta/n_\text{in}`, :math:`\eta/n_\text{in}`. Biases (initialized to zero) follow the input-weight rule with their own size as
``fan_out``: :math:`\eta\,m` under SGD for the hidden biases, :math:`\eta` otherwise (the output bias has a
finite size). ``readout="zero"`` initializes the output layer to zero instead, which Yang et al. recommend
(their Appendix D.2) and which is also μP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice, check_each, check_float_tensor, check_int, check_real

__all__ = [
    "CoordRow",
    "LayerScaling",
    "SweepRow",
    "coord_check",
    "layer_roles",
    "layer_scalings",
    "lr_sweep",
    "mlp",
    "mup_init_",
    "mup_param_groups",
    "optimal_lr",
    "scaling",
    "scaling_exponent",
]

Parameterization = Literal["sp", "mup"]
Optimizer = Literal["sgd", "adam"]
Role = Literal["input", "hidden", "output"]
PARAMETERIZATIONS = ("sp", "mup")
OPTIMIZERS = ("sgd", "adam")
ROLES = ("input", "hidden", "output")
RELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class LayerScaling:
    """Initialization and learning-rate multipliers of one linear layer (one row of the table).

    Attributes:
        role: ``"input"``, ``"hidden"`` or ``"output"``.
        fan_in: input features of the layer.
        fan_out: output features of the layer.
        init_var: variance of the weights at initialization.
        lr_mult: the weights' learning rate divided by the global learning rate.
        bias_lr_mult: the same for the bias.
    """

    role: str
    fan_in: int
    fan_out: int
    init_var: float
    lr_mult: float
    bias_lr_mult: float


def _check_common(parameterization: object, optimizer: object, base_width: object) -> None:
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_int("base_width", base_width, minimum=1)


def scaling(
    role: str,
    fan_in: int,
    fan_out: int,
    *,
    parameterization: str = "mup",
    optimizer: str = "adam",
    base_width: int = 64,
    gain: float = RELU_GAIN,
    readout: str = "normal",
) -> LayerScaling:
    r"""The table's row for one layer: its init variance and learning-rate multipliers.

    The width is the layer's infinite dimension: ``fan_out`` for the input layer, ``fan_in`` for hidden and
    output layers; the width multiplier is ``width / base_width``. ``gain`` multiplies the standard deviation
    of input and hidden layers (He: :math:`\sqrt 2` for ReLU); the output layer has gain 1.

    Args:
        role: ``"input"``, ``"hidden"`` or ``"output"``.
        fan_in: input features (>= 1).
        fan_out: output features (>= 1).
        parameterization: ``"sp"`` or ``"mup"``.
        optimizer: ``"sgd"`` or ``"adam"``.
        base_width: the width at which μP equals SP.
        gain: standard-deviation gain of input and hidden layers.
        readout: ``"normal"`` or ``"zero"`` (μP only: a zero-initialized output layer).

    Examples:
        >>> s = initbook.mup.scaling("output", 1024, 10, parameterization="mup", optimizer="adam",
        ...                          base_width=64)
        >>> s.init_var * 1024 * 16, s.lr_mult  # variance 1/(n m), m = 1024/64 = 16
        (1.0, 0.0625)
        >>> initbook.mup.scaling("input", 784, 1024, optimizer="sgd", base_width=64).lr_mult
        16.0
        >>> initbook.mup.scaling("hidden", 1024, 1024, parameterization="sp").lr_mult
        1.0
    """
    check_choice("role", role, ROLES)
    check_int("fan_in", fan_in, minimum=1)
    check_int("fan_out", fan_out, minimum=1)
    _check_common(parameterization, optimizer, base_width)
    gain = check_real("gain", gain, positive=True)
    check_choice("readout", readout, ("normal", "zero"))
    if readout == "zero" and parameterization != "mup":
        raise ValueError(
            f"readout='zero' is a μP option; got parameterization={parameterization!r}"
        )
    width = fan_out if role == "input" else fan_in
    m = width / base_width
    if role == "output":
        init_var = 1.0 / fan_in
        if parameterization == "mup":
            init_var = 0.0 if readout == "zero" else init_var / m
    else:
        init_var = gain**2 / fan_in
    lr_mult = bias_lr_mult = 1.0
    if parameterization == "mup":
        if optimizer == "sgd":
            lr_mult = {"input": m, "hidden": 1.0, "output": 1.0 / m}[role]
            bias_lr_mult = 1.0 if role == "output" else m
        else:
            lr_mult = {"input": 1.0, "hidden": 1.0 / m, "output": 1.0 / m}[role]
    return LayerScaling(role, fan_in, fan_out, init_var, lr_mult, bias_lr_mult)


def mlp(
    d_in: int,
    width: int,
    d_out: int,
    *,
    depth: int = 3,
    bias: bool = False,
) -> nn.Sequential:
    """A ReLU MLP: ``depth`` linear layers (input, ``depth - 2`` hidden, output), ``width`` units each.

    The weights are PyTorch's defaults; call :func:`mup_init_` to initialize them for SP or μP.

    Examples:
        >>> initbook.mup.mlp(784, 128, 10, depth=3)
        Sequential(
          (0): Linear(in_features=784, out_features=128, bias=False)
          (1): ReLU()
          (2): Linear(in_features=128, out_features=128, bias=False)
          (3): ReLU()
          (4): Linear(in_features=128, out_features=10, bias=False)
        )
    """
    check_int("d_in", d_in, minimum=1)
    check_int("width", width, minimum=1)
    check_int("d_out", d_out, minimum=1)
    check_int("depth", depth, minimum=2)
    return _mlp(d_in, width, d_out, depth, bias, skip_init=False)


def _mlp(
    d_in: int, width: int, d_out: int, depth: int, bias: bool, *, skip_init: bool
) -> nn.Sequential:
    """:func:`mlp` without checks; ``skip_init`` leaves the weights uninitialized, for callers that
    initialize them right away."""
    sizes = [d_in] + [width] * (depth - 1) + [d_out]
    layers: list[nn.Module] = []
    for i in range(depth):
        if skip_init:
            layers.append(torch.nn.utils.skip_init(nn.Linear, sizes[i], sizes[i + 1], bias=bias))
        else:
            layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def layer_roles(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's linear layers in order, each with its role: first ``"input"``, last ``"output"``.

    Raises ``TypeError`` if a parameter lives outside a :class:`torch.nn.Linear` (μP's table here covers
    linear layers only) and ``ValueError`` if there are fewer than two linear layers.

    Examples:
        >>> [r for r, _ in initbook.mup.layer_roles(initbook.mup.mlp(5, 8, 2, depth=4))]
        ['input', 'hidden', 'hidden', 'output']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    covered = {id(p) for m in linears for p in m.parameters()}
    for name, p in model.named_parameters():
        if id(p) not in covered:
            raise TypeError(
                f"parameter {name!r} is not in an nn.Linear; only Linear layers are supported"
            )
    if len(linears) < 2:
        raise ValueError(
            f"model needs at least 2 Linear layers (input and output), got {len(linears)}"
        )
    roles = ["input"] + ["hidden"] * (len(linears) - 2) + ["output"]
    return list(zip(roles, linears, strict=True))


def layer_scalings(
    model: nn.Module,
    *,
    parameterization: str = "mup",
    optimizer: str = "adam",
    base_width: int = 64,
    gain: float = RELU_GAIN,
    readout: str = "normal",
) -> list[LayerScaling]:
    """:func:`scaling` for every linear layer of ``model``, in order.

    Examples:
        >>> model = initbook.mup.mlp(784, 256, 10)
        >>> for s in initbook.mup.layer_scalings(model, optimizer="sgd", base_width=64):
        ...     print(s.role, round(s.init_var * s.fan_in, 4), s.lr_mult)
        input 2.0 4.0
        hidden 2.0 1.0
        output 0.25 0.25
    """
    return [
        scaling(
            role,
            lin.in_features,
            lin.out_features,
            parameterization=parameterization,
            optimizer=optimizer,
            base_width=base_width,
            gain=gain,
            readout=readout,
        )
        for role, lin in layer_roles(model)
    ]


@torch.no_grad()
def mup_init_(
    model: nn.Module,
    *,
    parameterization: str = "mup",
    base_width: int = 64,
    gain: float = RELU_GAIN,
    readout: str = "normal",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialize every linear layer of ``model`` in place from the table (normal weights, zero biases).

    The initialization does not depend on the optimizer. Returns ``model``.

    Examples:
        >>> model = initbook.mup.mlp(784, 1024, 10)
        >>> _ = initbook.mup.mup_init_(model, base_width=64, generator=torch.Generator().manual_seed(0))
        >>> w = model[4].weight  # output layer: variance 1 / (n m) = 1 / (1024 * 16)
        >>> round(w.var().item() * 1024 * 16, 1)
        1.0
    """
    for s, (_, lin) in zip(
        layer_scalings(
            model,
            parameterization=parameterization,
            optimizer="adam",
            base_width=base_width,
            gain=gain,
            readout=readout,
        ),
        layer_roles(model),
        strict=True,
    ):
        lin.weight.normal_(0.0, 1.0, generator=generator).mul_(math.sqrt(s.init_var))
        if lin.bias is not None:
            lin.bias.zero_()
    return model


def mup_param_groups(
    model: nn.Module,
    lr: float,
    *,
    optimizer: str = "adam",
    parameterization: str = "mup",
    base_width: int = 64,
) -> list[dict]:
    """Optimizer parameter groups with each layer's learning rate from the table.

    Pass the result to :class:`torch.optim.SGD` (``optimizer="sgd"``) or :class:`torch.optim.Adam`
    (``"adam"``); each group also carries its ``"name"`` (e.g. ``"input.weight"``) and ``"role"``.

    Examples:
        >>> model = initbook.mup.mlp(784, 256, 10, bias=True)
        >>> groups = initbook.mup.mup_param_groups(model, 1e-3, optimizer="adam", base_width=64)
        >>> [(g["name"], g["lr"]) for g in groups]  # doctest: +NORMALIZE_WHITESPACE
        [('0.weight', 0.001), ('0.bias', 0.001), ('2.weight', 0.00025), ('2.bias', 0.001),
         ('4.weight', 0.00025), ('4.bias', 0.001)]
        >>> opt = torch.optim.Adam(groups)
    """
    lr = check_real("lr", lr, positive=True)
    scalings = layer_scalings(
        model, parameterization=parameterization, optimizer=optimizer, base_width=base_width
    )
    names = {id(m): n for n, m in model.named_modules()}
    groups = []
    for s, (role, lin) in zip(scalings, layer_roles(model), strict=True):
        name = names[id(lin)]
        groups.append(
            {"params": [lin.weight], "lr": lr * s.lr_mult, "name": f"{name}.weight", "role": role}
        )
        if lin.bias is not None:
            groups.append(
                {
                    "params": [lin.bias],
                    "lr": lr * s.bias_lr_mult,
                    "name": f"{name}.bias",
                    "role": role,
                }
            )
    return groups


@dataclass(frozen=True)
class CoordRow:
    """One row of :func:`coord_check`'s table: one layer of one width after ``step`` steps.

    Attributes:
        parameterization: ``"sp"`` or ``"mup"``.
        optimizer: ``"sgd"`` or ``"adam"``.
        width: hidden width.
        step: optimizer steps taken (0 = initialization).
        layer: 1-based index of the linear layer (its pre-activation output; the last is the logits).
        role: ``"input"``, ``"hidden"`` or ``"output"``.
        rms: RMS of the layer's output, mean over seeds.
        delta_rms: RMS of the change of the layer's output since step 0, mean over seeds.
        delta_stderr: standard error of ``delta_rms`` over seeds.
        seeds: number of seeds.
    """

    parameterization: str
    optimizer: str
    width: int
    step: int
    layer: int
    role: str
    rms: float
    delta_rms: float
    delta_stderr: float
    seeds: int


def _rms(t: torch.Tensor) -> float:
    return float(t.double().square().mean().sqrt())


def _check_xy(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    x = check_float_tensor("x", x)
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (samples, features), got shape {tuple(x.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != (x.shape[0],):
        raise TypeError(
            f"y must be a LongTensor of shape ({x.shape[0]},) with class labels, got {y!r}"
        )
    return x, y


def _check_widths(widths: object) -> list[int]:
    return check_each("widths", widths, check_int, minimum=1)


@torch.no_grad()
def _update(
    groups: list[dict],
    grads: Sequence[torch.Tensor],
    state: list[tuple[torch.Tensor, torch.Tensor]],
    optimizer: str,
    t: int,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> None:
    """One step of plain SGD or Adam (as torch.optim does it, without the import cost), per group lr."""
    for group, g, (m, v) in zip(groups, grads, state, strict=True):
        p, lr = group["params"][0], group["lr"]
        if optimizer == "sgd":
            p.sub_(lr * g)
        else:
            _adam_step_(p, g, m, v, lr, t, betas, eps)


@torch.no_grad()
def _adam_step_(
    p: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    lr: float | torch.Tensor,
    t: int,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """Adam's step ``t`` (from 1) on ``p`` in place, updating its moments ``m`` and ``v``.

    A float ``lr`` takes :class:`torch.optim.Adam`'s exact arithmetic; a tensor ``lr`` broadcasts against
    ``p`` (one rate per stacked model in :func:`lr_sweep`).
    """
    b1, b2 = betas
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = v.sqrt().div_(math.sqrt(1 - b2**t)).add_(eps)
    if isinstance(lr, torch.Tensor):
        p.sub_(lr * m.div(denom).div_(1 - b1**t))
    else:
        p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


def coord_check(
    x: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    *,
    parameterization: str = "mup",
    optimizer: str = "adam",
    lr: float = 1e-2,
    steps: int = 3,
    depth: int = 3,
    base_width: int = 64,
    seeds: int = 4,
    d_out: int | None = None,
) -> list[CoordRow]:
    r"""The μP coordinate check: how much each layer's output moves in the first steps, for every width.

    For each width and seed, builds :func:`mlp`, initializes it with :func:`mup_init_` and trains it with
    full-batch steps on ``(x, y)`` (cross-entropy; plain SGD or Adam with the learning rates of
    :func:`mup_param_groups`, the same updates as :class:`torch.optim.SGD` and :class:`torch.optim.Adam`). After every step it records, for every linear layer, the RMS over samples and
    units of its output :math:`h_t` and of its change :math:`\Delta h = h_t - h_0` on ``x``. Under μP the
    change is width-independent; under SP it grows with width.

    Args:
        x: inputs, shape (samples, features).
        y: class labels, shape (samples,).
        widths: hidden widths to compare.
        parameterization: ``"sp"`` or ``"mup"``.
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: global learning rate.
        steps: optimizer steps (>= 1).
        depth: linear layers in the MLP (>= 2).
        base_width: where μP equals SP.
        seeds: independent initializations per width (seed ``s`` uses ``torch.Generator().manual_seed(s)``).
        d_out: number of outputs (default ``int(y.max()) + 1``).

    Returns:
        A tidy table: one :class:`CoordRow` per (width, step, layer), steps 0 to ``steps``.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(1, 16, generator=gen), torch.tensor([2])
        >>> for p in ["sp", "mup"]:
        ...     rows = initbook.mup.coord_check(x, y, [128, 1024], parameterization=p, optimizer="adam",
        ...                                     lr=1e-2, steps=1, seeds=2, d_out=4)
        ...     print(p, [round(r.delta_rms, 1) for r in rows if r.step == 1 and r.role == "hidden"])
        sp [0.6, 4.0]
        mup [0.3, 0.3]
    """
    x, y = _check_xy(x, y)
    widths = _check_widths(widths)
    _check_common(parameterization, optimizer, base_width)
    lr = check_real("lr", lr, positive=True)
    check_int("steps", steps, minimum=1)
    check_int("depth", depth, minimum=2)
    check_int("seeds", seeds, minimum=1)
    d_out = int(y.max()) + 1 if d_out is None else check_int("d_out", d_out, minimum=1)
    rows = []
    for width in widths:
        # per[seed][step][layer] = (rms, delta_rms)
        per = []
        for seed in range(seeds):
            model = _mlp(x.shape[1], width, d_out, depth, False, skip_init=True).to(x.dtype)
            mup_init_(
                model,
                parameterization=parameterization,
                base_width=base_width,
                generator=torch.Generator().manual_seed(seed),
            )
            groups = mup_param_groups(
                model,
                lr,
                optimizer=optimizer,
                parameterization=parameterization,
                base_width=base_width,
            )
            state = [
                (torch.zeros_like(g["params"][0]), torch.zeros_like(g["params"][0])) for g in groups
            ]
            linears = [lin for _, lin in layer_roles(model)]
            outs: list[torch.Tensor] = []
            hooks = [
                lin.register_forward_hook(lambda m, i, o, outs=outs: outs.append(o.detach()))
                for lin in linears
            ]
            try:
                h0 = None
                record = []
                for step in range(steps + 1):
                    outs.clear()
                    loss = F.cross_entropy(model(x), y)
                    if h0 is None:
                        h0 = list(outs)
                    record.append([(_rms(o), _rms(o - o0)) for o, o0 in zip(outs, h0, strict=True)])
                    if step < steps:
                        params = [g["params"][0] for g in groups]
                        grads = torch.autograd.grad(loss, params)
                        _update(groups, grads, state, optimizer, step + 1)
            finally:
                for hook in hooks:
                    hook.remove()
            per.append(record)
        roles = [r for r, _ in layer_roles(model)]
        for step in range(steps + 1):
            for layer, role in enumerate(roles):
                rms = torch.tensor(
                    [per[s][step][layer][0] for s in range(seeds)], dtype=torch.float64
                )
                d = torch.tensor(
                    [per[s][step][layer][1] for s in range(seeds)], dtype=torch.float64
                )
                se = float(d.std() / math.sqrt(seeds)) if seeds > 1 else float("nan")
                rows.append(
                    CoordRow(
                        parameterization,
                        optimizer,
                        width,
                        step,
                        layer + 1,
                        role,
                        float(rms.mean()),
                        float(d.mean()),
                        se,
                        seeds,
                    )
                )
    return rows


def scaling_exponent(widths: Sequence[float], values: Sequence[float]) -> float:
    r"""Least-squares slope of :math:`\log(\text{value})` against :math:`\log(\text{width})`.

    An exponent :math:`k` means value :math:`\propto \text{width}^k`.

    Examples:
        >>> round(initbook.mup.scaling_exponent([64, 128, 256], [1.0, 2.0, 4.0]), 6)
        1.0
        >>> round(initbook.mup.scaling_exponent([64, 128, 256], [3.0, 3.0, 3.0]), 6)
        0.0
    """
    w = torch.as_tensor(list(widths), dtype=torch.float64)
    v = torch.as_tensor(list(values), dtype=torch.float64)
    if w.dim() != 1 or w.shape != v.shape or w.numel() < 2:
        raise ValueError(
            f"need two equal-length sequences of >= 2 numbers, got {widths!r}, {values!r}"
        )
    if not (bool((w > 0).all()) and bool((v > 0).all())):
        raise ValueError(f"widths and values must be positive, got {widths!r}, {values!r}")
    if not (bool(w.isfinite().all()) and bool(v.isfinite().all())):
        raise ValueError(f"widths and values must be finite, got {widths!r}, {values!r}")
    if bool((w == w[0]).all()):
        raise ValueError(f"need at least two different widths, got {widths!r}")
    lw, lv = w.log(), v.log()
    lw = lw - lw.mean()
    return float((lw * (lv - lv.mean())).sum() / lw.square().sum())


@dataclass(frozen=True)
class SweepRow:
    """One trained model of :func:`lr_sweep`.

    Attributes:
        parameterization: ``"sp"`` or ``"mup"``.
        optimizer: ``"sgd"`` or ``"adam"``.
        width: hidden width.
        lr: global learning rate.
        loss: cross-entropy on the evaluation set after training (NaN if training diverged).
    """

    parameterization: str
    optimizer: str
    width: int
    lr: float
    loss: float


def lr_sweep(
    x: torch.Tensor,
    y: torch.Tensor,
    widths: Sequence[int],
    lrs: Sequence[float],
    *,
    parameterizations: Sequence[str] = ("sp", "mup"),
    optimizer: str = "adam",
    steps: int = 200,
    batch_size: int = 64,
    depth: int = 3,
    base_width: int = 64,
    seed: int = 0,
    eval_x: torch.Tensor | None = None,
    eval_y: torch.Tensor | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    readout: str = "normal",
) -> list[SweepRow]:
    """Train one MLP per (parameterization, width, learning rate) and return the final losses.

    All models of one width are trained at once: their weights are stacked along a leading model dimension
    and every step is one batched matrix product per layer, with per-model, per-layer learning rates from
    :func:`scaling`. Every model sees the same mini-batches (sampled with ``seed``), and the models of one
    width share the same initial noise (scaled by each parameterization's standard deviation), so the curves
    differ only by learning rate and parameterization. Plain SGD (no momentum) or Adam (``betas``, ``eps``),
    no biases. The result equals training :func:`mlp` with :func:`mup_init_` and :func:`mup_param_groups`.

    Args:
        x, y: training inputs and labels.
        widths: hidden widths.
        lrs: global learning rates.
        parameterizations: any of ``"sp"``, ``"mup"``.
        optimizer: ``"sgd"`` or ``"adam"``.
        steps: optimizer steps per model.
        batch_size: samples per step (drawn with replacement).
        depth: linear layers (>= 2).
        base_width: where μP equals SP.
        seed: seeds the initialization and the batches.
        eval_x, eval_y: where the final loss is measured (default: ``x``, ``y``).
        betas, eps: Adam's constants.
        readout: ``"normal"`` or ``"zero"`` (applies to the μP models only).

    Returns:
        One :class:`SweepRow` per (parameterization, width, lr), in that nesting order.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> x = torch.randn(256, 8, generator=gen)
        >>> y = (x[:, 0] > 0).long()
        >>> rows = initbook.mup.lr_sweep(x, y, [32, 64], [1e-3, 1e-2], steps=50, base_width=32)
        >>> len(rows), all(r.loss < math.log(2) for r in rows if r.lr == 1e-2)
        (8, True)
    """
    x, y = _check_xy(x, y)
    eval_x, eval_y = (x, y) if eval_x is None else _check_xy(eval_x, eval_y)
    widths = _check_widths(widths)
    lrs = check_each("lrs", lrs, check_real, positive=True)
    check_each(
        "parameterizations",
        parameterizations,
        check_choice,
        nonempty=False,
        valid=PARAMETERIZATIONS,
    )
    _check_common("mup", optimizer, base_width)
    check_int("steps", steps, minimum=0)
    check_int("batch_size", batch_size, minimum=1)
    check_int("depth", depth, minimum=2)
    check_int("seed", seed)
    b1, b2 = check_each("betas", betas, check_real, nonnegative=True)
    eps = check_real("eps", eps, positive=True)
    d_in, d_out = x.shape[1], int(max(y.max(), eval_y.max())) + 1
    configs = [(p, lr) for p in parameterizations for lr in lrs]
    n_models = len(configs)
    rows = []
    for width in widths:
        gen = torch.Generator().manual_seed(seed)
        sizes = [d_in] + [width] * (depth - 1) + [d_out]
        roles = ["input"] + ["hidden"] * (depth - 2) + ["output"]
        weights, lr_tensors = [], []
        for role, a, b in zip(roles, sizes[:-1], sizes[1:], strict=True):
            noise = torch.randn(a, b, generator=gen, dtype=x.dtype)
            table = {
                p: scaling(
                    role,
                    a,
                    b,
                    parameterization=p,
                    optimizer=optimizer,
                    base_width=base_width,
                    readout=readout if p == "mup" else "normal",
                )
                for p in parameterizations
            }
            std = torch.tensor([math.sqrt(table[p].init_var) for p, _ in configs], dtype=x.dtype)
            weights.append((std[:, None, None] * noise).requires_grad_(True))
            lr_tensors.append(
                torch.tensor([lr * table[p].lr_mult for p, lr in configs], dtype=x.dtype)[
                    :, None, None
                ]
            )
        m1 = [torch.zeros_like(w) for w in weights]
        m2 = [torch.zeros_like(w) for w in weights]

        def forward(inp: torch.Tensor, ws: list[torch.Tensor]) -> torch.Tensor:
            h = inp
            for i, w in enumerate(ws):
                h = h @ w
                if i < len(ws) - 1:
                    h = torch.relu(h)
            return h  # (models, samples, d_out)

        for t in range(1, steps + 1):
            idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen)
            logits = forward(x[idx], weights)
            loss = (
                F.cross_entropy(logits.reshape(-1, d_out), y[idx].repeat(n_models), reduction="sum")
                / batch_size
            )
            grads = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                for w, g, lr_t, m, v in zip(weights, grads, lr_tensors, m1, m2, strict=True):
                    if optimizer == "sgd":
                        w.sub_(lr_t * g)
                    else:
                        _adam_step_(w, g, m, v, lr_t, t, (b1, b2), eps)
        with torch.no_grad():
            logits = forward(eval_x, weights)
            losses = (
                F.cross_entropy(
                    logits.reshape(-1, d_out), eval_y.repeat(n_models), reduction="none"
                )
                .reshape(n_models, -1)
                .mean(dim=1)
            )
        for (p, lr), loss_value in zip(configs, losses.tolist(), strict=True):
            rows.append(
                SweepRow(
                    p, optimizer, width, lr, loss_value if math.isfinite(loss_value) else math.nan
                )
            )
    order = {p: i for i, p in enumerate(parameterizations)}
    rows.sort(key=lambda r: (order[r.parameterization], widths.index(r.width), lrs.index(r.lr)))
    return rows


def optimal_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    r"""The learning rate that minimizes the loss, refined by a parabola in :math:`\log(\text{lr})`.

    Fits a parabola through the grid's best point and its two neighbours and returns its vertex (clipped to
    that bracket); at the edge of the grid returns the grid's best. NaN losses (diverged runs) are ignored.

    Examples:
        >>> lrs = [1e-4, 1e-3, 1e-2, 1e-1]
        >>> losses = [(math.log10(lr) + 2.5) ** 2 for lr in lrs]  # minimum at 10**-2.5
        >>> round(math.log10(initbook.mup.optimal_lr(lrs, losses)), 6)
        -2.5
    """
    lr_t = torch.as_tensor(list(lrs), dtype=torch.float64)
    loss_t = torch.as_tensor(list(losses), dtype=torch.float64)
    if lr_t.dim() != 1 or lr_t.shape != loss_t.shape or lr_t.numel() < 1:
        raise ValueError(f"need two equal-length sequences, got {lrs!r}, {losses!r}")
    if not bool((lr_t > 0).all()) or not bool((lr_t[1:] > lr_t[:-1]).all()):
        raise ValueError(f"lrs must be positive and increasing, got {lrs!r}")
    finite = torch.isfinite(loss_t)
    if not bool(finite.any()):
        raise ValueError(f"every loss is NaN or infinite: {losses!r}")
    i = int(torch.where(finite, loss_t, torch.inf).argmin())
    if i == 0 or i == len(lr_t) - 1 or not bool(finite[i - 1] and finite[i + 1]):
        return float(lr_t[i])
    xs, ys = lr_t[i - 1 : i + 2].log(), loss_t[i - 1 : i + 2]
    # vertex of the parabola through three points
    d1, d2 = (ys[1] - ys[0]) / (xs[1] - xs[0]), (ys[2] - ys[1]) / (xs[2] - xs[1])
    curv = (d2 - d1) / (xs[2] - xs[0])
    if curv <= 0:
        return float(lr_t[i])
    vertex = 0.5 * (xs[0] + xs[1]) - d1 / (2 * curv)
    vertex = vertex.clamp(xs[0], xs[2])
    return float(vertex.exp())
