r"""A small, fast training loop for the book's experiments.

Data are held as tensors; every epoch draws one seeded permutation and slices mini-batches from it, so there
is no per-sample Python work and no ``DataLoader``. The same seed gives the same history, bit for bit, on the
same machine and torch version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ._validation import check_choice, check_int, check_real

__all__ = ["History", "accuracy", "fit"]


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
