r"""The book's networks: plain MLPs (:func:`initbook.nets.mlp`), and residual networks without normalization with the
initializations that make them trainable.

:func:`initbook.nets.mlp` builds the fully connected network every Part I and II experiment uses,
``Linear → activation → … → Linear``, with PyTorch's default initialization.

A residual block adds a branch to its input, :math:`x_{l+1} = x_l + \alpha\,F_l(x_l)`, where the branch
:math:`F_l` is ``m`` linear layers with a ReLU between consecutive ones (``Linear → ReLU → … → Linear``).
:class:`ResidualMLP` stacks such blocks between a linear stem and a linear classifier. Three
initializations are provided:

* :func:`he_branches_`: every layer of each branch He-initialised so that the branch preserves the second
  moment of its input; the residual stream then doubles its second moment in every block;
* :func:`zero_last_`: the same, but the last layer of each branch is zero, so every block is the identity at
  initialization (Goyal et al., 2017; De and Smith, 2020);
* :func:`fixup_`: Fixup (Zhang, Dauphin and Ma, 2019): inner branch layers scaled by
  :math:`L^{-1/(2m-2)}`, last branch layer and classifier zero, scalar biases zero and multipliers one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn

from ._nets_transformer import (
    CausalSelfAttention,
    DecoderBlock,
    SequenceRun,
    TinyDecoder,
    attention_token_spread,
    sorting_batch,
    train_sequence_task,
)
from ._validation import check_bool, check_choice, check_float_dtype, check_int, check_real
from .init import kaiming_normal_, normal_, zeros_
from .theory import fixup_scale

__all__ = [
    "CausalSelfAttention",
    "DecoderBlock",
    "ResidualBlock",
    "ResidualMLP",
    "SequenceRun",
    "TinyDecoder",
    "attention_token_spread",
    "fixup_",
    "he_branches_",
    "mlp",
    "sorting_batch",
    "stream_second_moments",
    "train_sequence_task",
    "zero_last_",
]


# The activations :func:`mlp` knows by name; a module class (or any callable returning a module) works too.
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def mlp(
    sizes: Sequence[int],
    activation: str | Callable[[], nn.Module] = "relu",
    *,
    bias: bool = True,
) -> nn.Sequential:
    r"""A fully connected network ``Linear(sizes[0], sizes[1]) → activation → … → Linear(…, sizes[-1])``.

    One :class:`torch.nn.Linear` per consecutive pair of ``sizes``, with a fresh activation module between
    consecutive linear layers and none after the last (the output is the logits). The layers keep
    PyTorch's default initialization, drawn from the global RNG in layer order, so
    ``torch.manual_seed(s); mlp(sizes)`` is the same network as the hand-written ``nn.Sequential``;
    re-initialize it with :func:`initbook.init_model` or the samplers of :mod:`initbook.init`.

    Args:
        sizes: the widths, input first and output last; at least two, each at least 1.
        activation: a name (``"relu"``, ``"tanh"``, ``"silu"``, ``"gelu"``, ``"selu"``, ``"sigmoid"``,
            ``"identity"``) or a callable with no arguments that returns a module, such as ``nn.ReLU``.
        bias: give every linear layer a bias.

    Returns:
        A :class:`torch.nn.Sequential`; ``model[2 * l]`` is the ``l``-th linear layer.

    Raises:
        TypeError: ``sizes`` is not a sequence of ints, ``activation`` is neither a name nor a callable
            returning a module, or ``bias`` is not a bool.
        ValueError: fewer than two sizes, a size below 1, or an unknown activation name.

    Examples:
        >>> model = initbook.nets.mlp([784, 256, 256, 10])
        >>> model
        Sequential(
          (0): Linear(in_features=784, out_features=256, bias=True)
          (1): ReLU()
          (2): Linear(in_features=256, out_features=256, bias=True)
          (3): ReLU()
          (4): Linear(in_features=256, out_features=10, bias=True)
        )
        >>> initbook.nets.mlp([4, 3, 2], torch.nn.Tanh, bias=False)[1:]
        Sequential(
          (1): Tanh()
          (2): Linear(in_features=3, out_features=2, bias=False)
        )
    """
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of ints, got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(
            f"sizes must hold at least two widths (input and output), got {list(sizes)}"
        )
    widths = [check_int(f"sizes[{i}]", size, minimum=1) for i, size in enumerate(sizes)]
    if isinstance(activation, str):
        make = _ACTIVATIONS[check_choice("activation", activation, _ACTIVATIONS)]
    elif callable(activation):
        make = activation
    else:
        raise TypeError(
            f"activation must be one of {sorted(_ACTIVATIONS)} or a callable returning a module, "
            f"got {activation!r}"
        )
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {bias!r}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < len(widths) - 2:
            module = make()
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"activation must return a torch.nn.Module, got {type(module).__name__} "
                    f"from {activation!r}"
                )
            layers.append(module)
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    r"""One residual block :math:`x \mapsto x + \alpha\,F(x)` of width ``width``.

    The branch is ``layers`` square linear layers, with a ReLU after each but the last:

    .. math:: F(x) = W_m\,\operatorname{relu}(W_{m-1} \cdots \operatorname{relu}(W_1 x)).

    With ``scalars=True`` the branch gets Fixup's scalar parameters (Zhang et al., 2019): a learnable scalar
    bias before every linear layer and before every ReLU, and a learnable scalar multiplier and bias at the
    end of the branch:

    .. math:: F(x) = c\,\bigl(W_m(\cdots\operatorname{relu}(W_1(x + a_1) + b_1) + a_2 \cdots)\bigr) + b_m .

    Args:
        width: number of features of the residual stream.
        layers: number of linear layers :math:`m` in the branch (at least 1).
        branch_scale: the fixed factor :math:`\alpha` on the branch output (not trained).
        scalars: add Fixup's scalar biases and multiplier (initialised to 0 and 1).
        bias: give the branch's linear layers their usual per-unit biases.

    Examples:
        >>> block = initbook.nets.ResidualBlock(8, layers=3, branch_scale=0.5)
        >>> block.extra_repr()
        'width=8, layers=3, branch_scale=0.5, scalars=False'
        >>> _ = block.linears[-1].weight.data.zero_()  # zero last layer: the block is the identity
        >>> x = torch.randn(4, 8)
        >>> torch.equal(block(x), x)
        True
    """

    def __init__(
        self,
        width: int,
        layers: int = 2,
        *,
        branch_scale: float = 1.0,
        scalars: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        check_int("width", width, minimum=1)
        check_int("layers", layers, minimum=1)
        self.branch_scale = check_real("branch_scale", branch_scale)
        check_bool("scalars", scalars)
        check_bool("bias", bias)
        self.width = width
        self.scalars = scalars
        self.linears = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(layers))
        if scalars:
            self.bias_in = nn.Parameter(torch.zeros(layers))
            self.bias_out = nn.Parameter(torch.zeros(layers))
            self.multiplier = nn.Parameter(torch.ones(()))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        r"""The branch output :math:`F(x)` (without the factor :math:`\alpha`)."""
        h = x
        last = len(self.linears) - 1
        for j, linear in enumerate(self.linears):
            if self.scalars:
                h = h + self.bias_in[j]
            h = linear(h)
            if j < last:
                if self.scalars:
                    h = h + self.bias_out[j]
                h = torch.relu(h)
        if self.scalars:
            h = h * self.multiplier + self.bias_out[last]
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + branch_scale * branch(x)``."""
        return x + self.branch_scale * self.branch(x)

    def extra_repr(self) -> str:
        return (
            f"width={self.width}, layers={len(self.linears)}, "
            f"branch_scale={self.branch_scale}, scalars={self.scalars}"
        )


class ResidualMLP(nn.Module):
    r"""A residual MLP without normalization: linear stem, ``blocks`` residual blocks, linear classifier.

    .. math::
        x_0 = W_\text{in}\,u, \qquad x_{l+1} = x_l + \alpha F_l(x_l) \;(l = 0, \dots, L-1), \qquad
        \text{logits} = W_\text{out}\,x_L + b_\text{out},

    with the branches :math:`F_l` of :class:`ResidualBlock`. The layers keep PyTorch's default
    initialization until one of :func:`he_branches_`, :func:`zero_last_` or :func:`fixup_` is applied.

    Args:
        in_features: input features (784 for MNIST).
        width: features of the residual stream.
        out_features: number of outputs (classes).
        blocks: number of residual blocks :math:`L` (0 gives a two-layer linear model).
        layers_per_branch: linear layers :math:`m` per branch.
        branch_scale: the fixed factor :math:`\alpha` on every branch.
        scalars: Fixup's scalar biases and multipliers in every branch.
        bias: per-unit biases in the stem and the branches (the classifier always has one).

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = initbook.nets.ResidualMLP(784, 64, 10, blocks=100)
        >>> len(model.blocks), sum(p.numel() for p in model.parameters())  # stem, 200 branch layers, head
        (100, 870026)
        >>> model(torch.randn(5, 784)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out_features: int,
        blocks: int,
        layers_per_branch: int = 2,
        *,
        branch_scale: float = 1.0,
        scalars: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        check_int("in_features", in_features, minimum=1)
        check_int("width", width, minimum=1)
        check_int("out_features", out_features, minimum=1)
        check_int("blocks", blocks, minimum=0)
        # checked here too: with blocks=0 no ResidualBlock is built to check them
        check_int("layers_per_branch", layers_per_branch, minimum=1)
        check_real("branch_scale", branch_scale)
        check_bool("scalars", scalars)
        check_bool("bias", bias)
        self.stem = nn.Linear(in_features, width, bias=bias)
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(
                    width,
                    layers_per_branch,
                    branch_scale=branch_scale,
                    scalars=scalars,
                    bias=bias,
                )
                for _ in range(blocks)
            )
        )
        self.head = nn.Linear(width, out_features)

    def stream(self, u: torch.Tensor) -> torch.Tensor:
        """The residual stream after the last block, :math:`x_L` (the classifier's input)."""
        return self.blocks(self.stem(u))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """The logits :math:`W_\\text{out} x_L + b_\\text{out}`."""
        return self.head(self.stream(u))


def _check_model(model: object) -> ResidualMLP:
    if not isinstance(model, ResidualMLP):
        raise TypeError(f"model must be an initbook.nets.ResidualMLP, got {type(model).__name__}")
    return model


def _zero_biases(model: ResidualMLP) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            zeros_(module.bias)
        if isinstance(module, ResidualBlock) and module.scalars:
            with torch.no_grad():
                module.bias_in.zero_()
                module.bias_out.zero_()
                module.multiplier.fill_(1.0)


@torch.no_grad()
def he_branches_(
    model: ResidualMLP,
    *,
    last_gain: float = 1.0,
    inner_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> ResidualMLP:
    r"""Initialise every branch so that it preserves the second moment of its input (He et al., 2015).

    The inner layers of each branch are followed by a ReLU and get He's variance :math:`2/n`
    (times :math:`s^2`, :math:`s` = ``inner_scale``); the last layer, followed by no ReLU, gets :math:`g^2/n`
    (:math:`g` = ``last_gain``). For an input :math:`x`, :math:`\mathbb E\,\lVert F(x)\rVert^2 =
    s^{2(m-1)}\,g^2\,\lVert x\rVert^2`
    (:func:`initbook.theory.relu_branch_gain2`). ``last_gain=1`` makes the branch norm-preserving;
    ``last_gain=math.sqrt(2)`` is ``kaiming_normal_(nonlinearity="relu")`` on every layer. The stem gets
    LeCun's :math:`1/n_\text{in}`, the classifier :math:`1/n`, all biases zero.

    Args:
        model: a :class:`ResidualMLP`.
        last_gain: gain of the last layer of each branch (0 zeroes it, see :func:`zero_last_`).
        inner_scale: extra factor on the inner layers' standard deviation (Fixup uses
            :math:`L^{-1/(2m-2)}`, see :func:`fixup_`).
        generator: source of randomness.

    Returns:
        ``model``, initialised in place.

    Examples:
        >>> model = initbook.nets.ResidualMLP(16, 512, 4, blocks=2)
        >>> _ = initbook.nets.he_branches_(model, generator=torch.Generator().manual_seed(0))
        >>> w1, w2 = model.blocks[0].linears
        >>> round(512 * w1.weight.detach().var().item(), 2), round(512 * w2.weight.detach().var().item(), 2)
        (2.0, 1.0)
    """
    _check_model(model)
    last_gain = check_real("last_gain", last_gain, nonnegative=True)
    inner_scale = check_real("inner_scale", inner_scale, nonnegative=True)
    normal_(model.stem.weight, 0.0, 1.0 / math.sqrt(model.stem.in_features), generator=generator)
    for block in cast("list[ResidualBlock]", model.blocks):
        *inner, last = cast("list[nn.Linear]", block.linears)
        for linear in inner:
            kaiming_normal_(linear.weight, nonlinearity="relu", generator=generator)
            linear.weight.mul_(inner_scale)
        std = last_gain / math.sqrt(last.in_features)
        if std > 0:
            normal_(last.weight, 0.0, std, generator=generator)
        else:
            zeros_(last.weight)
    normal_(model.head.weight, 0.0, 1.0 / math.sqrt(model.head.in_features), generator=generator)
    _zero_biases(model)
    return model


def zero_last_(model: ResidualMLP, *, generator: torch.Generator | None = None) -> ResidualMLP:
    r"""He-initialise the branches, then zero the last layer of each: every block starts as the identity.

    The trick of Goyal et al. (2017), who zero the scale of each block's last batch normalization, and of
    De and Smith (2020)'s SkipInit. At initialization :math:`F_l = 0`, so :math:`x_L = x_0`; the gradient
    with respect to each last layer, :math:`\partial\mathcal L/\partial W_m = g\,h^\top`, is not zero (its
    input :math:`h` is not), so training moves the last layers first.

    Examples:
        >>> model = initbook.nets.ResidualMLP(16, 32, 4, blocks=3)
        >>> _ = initbook.nets.zero_last_(model, generator=torch.Generator().manual_seed(0))
        >>> u = torch.randn(2, 16)
        >>> torch.equal(model.stream(u), model.stem(u))
        True
    """
    return he_branches_(model, last_gain=0.0, generator=generator)


def fixup_(model: ResidualMLP, *, generator: torch.Generator | None = None) -> ResidualMLP:
    r"""Fixup initialization (Zhang, Dauphin and Ma, 2019) of a :class:`ResidualMLP`.

    1. Initialise the classifier and the last layer of every branch at zero.
    2. Initialise the other branch layers with He's rule, then scale them by :math:`L^{-1/(2m-2)}`
       (:func:`initbook.theory.fixup_scale`), :math:`L` blocks of :math:`m` layers.
    3. Scalar biases zero and scalar multipliers one (if the model has them, ``scalars=True``).

    Branches of a single layer (:math:`m = 1`) have no inner layers; their scale is undefined and they
    raise a ``ValueError``.

    Examples:
        >>> model = initbook.nets.ResidualMLP(16, 512, 4, blocks=64, scalars=True)
        >>> _ = initbook.nets.fixup_(model, generator=torch.Generator().manual_seed(0))
        >>> w1 = model.blocks[0].linears[0].weight
        >>> round(512 * w1.detach().var().item() * 64, 2)  # He's 2, divided by L = 64 (m = 2)
        2.0
        >>> model.head.weight.abs().max().item(), model.blocks[5].multiplier.item()
        (0.0, 1.0)
    """
    _check_model(model)
    blocks = len(model.blocks)
    if blocks == 0:  # no branches to scale: the stem as usual, the classifier at zero
        he_branches_(model, generator=generator)
    else:
        scale = fixup_scale(blocks, len(cast("ResidualBlock", model.blocks[0]).linears))
        he_branches_(model, last_gain=0.0, inner_scale=scale, generator=generator)
    zeros_(model.head.weight)
    return model


@torch.no_grad()
def stream_second_moments(
    width: int,
    blocks: int,
    *,
    layers_per_branch: int = 2,
    inner_gain2: float = 2.0,
    last_gain2: float = 1.0,
    branch_scale: float = 1.0,
    trials: int = 1,
    dtype: torch.dtype = torch.float64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Simulate ``trials`` independent residual streams and return :math:`\lVert x_l\rVert^2/n` per block.

    Each trial draws its own network (fresh Gaussian weights for every layer of every block, variance
    ``inner_gain2/width`` for the inner branch layers and ``last_gain2/width`` for the last) and its own input
    :math:`x_0 \sim \mathcal N(0, I_n)`; all trials run together as batched matrix-vector products. The
    expectation of row :math:`l` divided by row 0 is :func:`initbook.theory.residual_variance` with
    :math:`\alpha^2 = ` ``branch_scale**2 *`` :func:`initbook.theory.relu_branch_gain2`, exactly at any
    width; use :func:`initbook.stats.monte_carlo` for its standard error.

    Args:
        width: stream width :math:`n`.
        blocks: number of blocks :math:`L`.
        layers_per_branch: linear layers :math:`m` per branch.
        inner_gain2: :math:`g^2` of the inner layers (2 is He's).
        last_gain2: :math:`g^2` of the last layer of each branch.
        branch_scale: the factor :math:`\alpha` on each branch.
        trials: independent networks.
        dtype: floating dtype of the computation.
        generator: source of randomness.

    Returns:
        A ``(trials, blocks + 1)`` tensor; column :math:`l` is :math:`\lVert x_l\rVert^2/n`.

    Examples:
        >>> q = initbook.nets.stream_second_moments(
        ...     256, 3, trials=4, generator=torch.Generator().manual_seed(0))
        >>> q.shape
        torch.Size([4, 4])
        >>> bool((q[:, 1:] > q[:, :-1]).all())  # a residual stream never shrinks on average; here per draw
        True
    """
    check_int("width", width, minimum=1)
    check_int("blocks", blocks, minimum=0)
    check_int("layers_per_branch", layers_per_branch, minimum=1)
    check_int("trials", trials, minimum=1)
    inner_std = math.sqrt(check_real("inner_gain2", inner_gain2, nonnegative=True) / width)
    last_std = math.sqrt(check_real("last_gain2", last_gain2, nonnegative=True) / width)
    alpha = check_real("branch_scale", branch_scale)
    check_float_dtype("dtype", dtype)

    def draw(std: float) -> torch.Tensor:
        w = torch.empty(trials, width, width, dtype=torch.float32).normal_(
            0.0, 1.0, generator=generator
        )
        return w.to(dtype) * std

    x = torch.randn(trials, width, 1, generator=generator, dtype=torch.float32).to(dtype)
    rows = [x.square().mean(dim=(1, 2))]
    for _ in range(blocks):
        h = x
        for _ in range(layers_per_branch - 1):
            h = torch.relu(torch.bmm(draw(inner_std), h))
        x = x + alpha * torch.bmm(draw(last_std), h)
        rows.append(x.square().mean(dim=(1, 2)))
    return torch.stack(rows, dim=1)
