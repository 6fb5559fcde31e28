r"""A small, fast training loop for the book's experiments.

Data are held as tensors; every epoch draws one seeded permutation and slices mini-batches from it, so there
is no per-sample Python work and no ``DataLoader``. The same seed gives the same history, bit for bit, on the
same machine and torch version.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._validation import check_choice, check_int, check_real
from .init import init_model
from .nets import mlp

if TYPE_CHECKING:
    from .data import Split

__all__ = [
    "BOOK_SIZES",
    "SCHEMES",
    "History",
    "accuracy",
    "fit",
    "scheme_model",
    "scheme_variances",
    "train_schemes",
]


@dataclass
class History:
    """What :func:`fit` measured.

    Attributes:
        loss: training loss of every step (mini-batch), float64 tensor of shape ``(steps,)``.
        epoch_loss: mean training loss of each epoch.
        train_accuracy: accuracy on the whole training set after each epoch (and before the first, at index 0).
        heldout_accuracy: the same on the held-out set (empty if none was given).
        snapshots: ``(step, value)`` pairs from ``snapshot_fn``, taken every ``snapshot_every`` steps.
        steps_per_epoch: number of optimizer steps in one epoch.
    """

    loss: torch.Tensor
    epoch_loss: list[float]
    train_accuracy: list[float]
    heldout_accuracy: list[float]
    snapshots: list[tuple[int, object]] = field(default_factory=list)
    steps_per_epoch: int = 0

    @property
    def diverged(self) -> bool:
        """True if some training loss was not finite."""
        return not bool(torch.isfinite(self.loss).all())


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """Fraction of ``x`` whose arg-max prediction equals ``y`` (evaluated in eval mode, in chunks).

    Examples:
        >>> model = torch.nn.Linear(2, 2)
        >>> _ = model.weight.data.copy_(torch.eye(2)); _ = model.bias.data.zero_()
        >>> initbook.train.accuracy(model, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        0.5
    """
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, x.shape[0], batch_size):
            pred = model(x[start : start + batch_size]).argmax(dim=1)
            correct += int((pred == y[start : start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(1, x.shape[0])


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 1,
    batch_size: int = 100,
    lr: float = 0.01,
    momentum: float = 0.9,
    optimizer: str = "sgd",
    weight_decay: float = 0.0,
    heldout: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    snapshot_every: int | None = None,
    snapshot_fn: Callable[[nn.Module, int], object] | None = None,
    stop_on_divergence: bool = True,
    track_train_accuracy: bool = True,
) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batch SGD (or Adam) and return its :class:`History`.

    Args:
        model: the network; trained in place.
        x: inputs, first dimension = samples.
        y: integer class labels.
        epochs: passes over the data.
        batch_size: samples per step; the last, smaller batch of an epoch is dropped so all steps are alike.
        lr: learning rate.
        momentum: SGD momentum (ignored by Adam).
        optimizer: ``"sgd"`` or ``"adam"``.
        weight_decay: L2 penalty passed to the optimizer.
        heldout: ``(x, y)`` evaluated after every epoch.
        loss_fn: defaults to cross-entropy.
        seed: seeds the per-epoch shuffling (the model's initialization is the caller's business).
        snapshot_every: call ``snapshot_fn(model, step)`` every this many steps (and at step 0).
        snapshot_fn: e.g. ``lambda m, step: initbook.stats.trace(m, x[:256])``.
        stop_on_divergence: stop at the first non-finite loss (the history records it).
        track_train_accuracy: evaluate the accuracy on the whole training set before training and after
            every epoch (a forward pass over ``x``: about a third of an epoch's compute); ``False`` leaves
            :attr:`History.train_accuracy` empty.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> x = torch.randn(512, 2, generator=gen)
        >>> y = (x[:, 0] > 0).long()
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Linear(2, 2)
        >>> hist = initbook.train.fit(model, x, y, epochs=5, batch_size=64, lr=0.1)
        >>> hist.loss.shape, hist.train_accuracy[-1] > 0.95
        (torch.Size([40]), True)
    """
    check_int("epochs", epochs, minimum=0)
    check_int("batch_size", batch_size, minimum=1)
    lr = check_real("lr", lr, positive=True)
    momentum = check_real("momentum", momentum, nonnegative=True)
    weight_decay = check_real("weight_decay", weight_decay, nonnegative=True)
    check_choice("optimizer", optimizer, {"sgd", "adam"})
    check_int("seed", seed)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    if x.shape[0] < batch_size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {x.shape[0]} training samples"
        )
    if snapshot_every is not None:
        check_int("snapshot_every", snapshot_every, minimum=1)
        if snapshot_fn is None:
            raise ValueError("snapshot_every needs a snapshot_fn")
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = x.shape[0] // batch_size
    losses = torch.full((epochs * steps_per_epoch,), math.nan, dtype=torch.float64)
    history = History(losses, [], [], [], [], steps_per_epoch)
    if track_train_accuracy:
        history.train_accuracy.append(accuracy(model, x, y))
    if heldout is not None:
        history.heldout_accuracy.append(accuracy(model, *heldout))
    if snapshot_every is not None and snapshot_fn is not None:
        history.snapshots.append((0, snapshot_fn(model, 0)))

    model.train()
    step = 0
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        epoch_losses = []
        for b in range(steps_per_epoch):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.detach()
            epoch_losses.append(value)
            step += 1
            if (
                snapshot_every is not None
                and snapshot_fn is not None
                and step % snapshot_every == 0
            ):
                history.snapshots.append((step, snapshot_fn(model, step)))
            if stop_on_divergence and not torch.isfinite(value):
                break
        stacked = torch.stack(epoch_losses).double()
        losses[step - stacked.numel() : step] = stacked
        history.epoch_loss.append(float(stacked.mean()))
        if track_train_accuracy:
            history.train_accuracy.append(accuracy(model, x, y))
        if heldout is not None:
            history.heldout_accuracy.append(accuracy(model, *heldout))
        if stop_on_divergence and not torch.isfinite(stacked).all():
            history.loss = losses[:step]
            break
    return history


# ---------------------------------------------------------------------------------------------------------
# The five initialization schemes Part II compares on one MLP
# ---------------------------------------------------------------------------------------------------------

BOOK_SIZES: tuple[int, ...] = (784, 512, 256, 128, 64, 10)
"""The widths of seed notebook 003's MLP, the network Part II trains (ReLU between the layers)."""

SCHEMES: tuple[str, ...] = (
    "U(±0.01)",
    "He normal",
    "He uniform",
    "Xavier normal",
    "PyTorch default",
)
"""The initializations Part II compares, in the book's order."""


def _uniform_001(
    weight: torch.Tensor, fans: tuple[int, int], generator: torch.Generator | None
) -> torch.Tensor:
    """Seed notebook 003's :math:`\\mathcal U(-0.01, 0.01)`, whatever the fans."""
    return nn.init.uniform_(weight, -0.01, 0.01, generator=generator)


_SCHEME_ARGS: dict[str, tuple[object, dict[str, str]] | None] = {
    "U(±0.01)": (_uniform_001, {}),
    "He normal": ("kaiming_normal", {"nonlinearity": "relu"}),
    "He uniform": ("kaiming_uniform", {"nonlinearity": "relu"}),
    "Xavier normal": ("xavier_normal", {}),
    "PyTorch default": None,  # keep the layers' own initialization (weights and biases)
}


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise TypeError(f"sizes must be a sequence of at least two ints, got {sizes!r}")
    return [check_int(f"sizes[{i}]", n, minimum=1) for i, n in enumerate(sizes)]


def scheme_model(name: str, seed: int = 0, sizes: Sequence[int] = BOOK_SIZES) -> nn.Sequential:
    r"""The ReLU MLP of ``sizes`` (:func:`initbook.nets.mlp`) initialized by the scheme ``name``.

    ``torch.manual_seed(seed)`` is set first, so the layers' default weights (which ``"PyTorch default"``
    keeps) depend on ``seed`` only; the other schemes redraw the weights from a generator seeded with
    ``seed`` (:func:`initbook.init_model`) and zero the biases. The same ``(name, seed)`` gives the same
    network in every page and script; ``"He normal"`` and ``"Xavier normal"`` of one seed draw the same
    standard normals, scaled differently.

    Args:
        name: one of :data:`SCHEMES`.
        seed: the network's seed.
        sizes: the widths, input first.

    Returns:
        The initialized :class:`torch.nn.Sequential`.

    Raises:
        ValueError: an unknown scheme name or a negative size.
        TypeError: ``seed`` is not an int, or ``sizes`` is not a sequence of ints.

    Examples:
        >>> model = initbook.train.scheme_model("He normal", seed=0, sizes=[784, 256, 10])
        >>> round(model[0].weight.var().item() * 784, 2), model[0].bias.abs().max().item()
        (2.0, 0.0)
    """
    check_choice("name", name, _SCHEME_ARGS)
    check_int("seed", seed)
    widths = _check_sizes(sizes)
    torch.manual_seed(seed)
    model = mlp(widths)
    spec = _SCHEME_ARGS[name]
    if spec is not None:
        scheme, kwargs = spec
        init_model(model, scheme, generator=torch.Generator().manual_seed(seed), **kwargs)  # type: ignore[arg-type]
    return model


def scheme_variances(
    name: str, sizes: Sequence[int] = BOOK_SIZES
) -> tuple[list[float], list[float]]:
    r"""The weight and bias variances of every layer under the scheme ``name``: ``(weight_vars, bias_vars)``.

    What :func:`initbook.theory.propagate_variance` needs to predict the scheme's signal:
    :math:`0.01^2/3` for :math:`\mathcal U(\pm 0.01)`, :math:`2/n_\text{in}` for He,
    :math:`2/(n_\text{in}+n_\text{out})` for Xavier, and :math:`1/(3 n_\text{in})` for the weights *and*
    biases of PyTorch's default; the other schemes' biases are zero.

    Examples:
        >>> initbook.train.scheme_variances("Xavier normal", [6, 2, 1])
        ([0.25, 0.6666666666666666], [0.0, 0.0])
    """
    check_choice("name", name, _SCHEME_ARGS)
    widths = _check_sizes(sizes)
    layers = len(widths) - 1
    zeros = [0.0] * layers
    if name == "U(±0.01)":
        return [0.01**2 / 3] * layers, zeros
    if name in ("He normal", "He uniform"):
        return [2 / a for a in widths[:-1]], zeros
    if name == "Xavier normal":
        return [2 / (a + b) for a, b in itertools.pairwise(widths)], zeros
    default = [1 / (3 * a) for a in widths[:-1]]
    return default, list(default)


def train_schemes(
    split: Split,
    names: Sequence[str] = SCHEMES,
    *,
    seeds: Sequence[int] = (0,),
    epochs: int = 1,
    sizes: Sequence[int] = BOOK_SIZES,
    lr: float = 0.01,
    momentum: float = 0.9,
    batch_size: int = 100,
) -> dict[str, list[History]]:
    """Train :func:`scheme_model` ``(name, seed)`` on ``split`` for every scheme and seed; Part II's experiment.

    Every run uses SGD with the same learning rate, momentum and batch size, the held-out part of the split
    after every epoch, and the data order of its seed (:func:`fit` with ``seed=seed``), so every scheme sees
    the same batches. The first epoch of a longer run is the one-epoch run of the same seed, bit for bit:
    the gallery's one-epoch, one-seed figure is the start of the page's three-epoch, three-seed experiment.

    Args:
        split: the data (:func:`initbook.data.load_book_split`).
        names: schemes to train, from :data:`SCHEMES`.
        seeds: one run per seed and scheme.
        epochs, lr, momentum, batch_size: passed to :func:`fit`.
        sizes: the MLP's widths.

    Returns:
        ``{name: [History per seed]}``, in the order of ``names`` and ``seeds``.
    """
    for name in names:
        check_choice("names[...]", name, _SCHEME_ARGS)
    return {
        name: [
            fit(
                scheme_model(name, seed, sizes),
                split.x_train,
                split.y_train,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                momentum=momentum,
                heldout=(split.x_heldout, split.y_heldout),
                seed=seed,
                track_train_accuracy=False,
            )
            for seed in seeds
        ]
        for name in names
    }
