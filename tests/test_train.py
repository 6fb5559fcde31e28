"""Tests for initbook.train: determinism, history bookkeeping, divergence, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initbook import train


def _problem(seed=0, n=256):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def test_fit_is_deterministic():
    x, y = _problem()
    h1 = train.fit(_model(), x, y, epochs=3, batch_size=32, seed=5)
    h2 = train.fit(_model(), x, y, epochs=3, batch_size=32, seed=5)
    assert torch.equal(h1.loss, h2.loss)
    h3 = train.fit(_model(), x, y, epochs=3, batch_size=32, seed=6)
    assert not torch.equal(h1.loss, h3.loss)


def test_fit_history_shapes_and_learning():
    x, y = _problem()
    held = _problem(seed=1, n=128)
    h = train.fit(_model(), x, y, epochs=4, batch_size=50, lr=0.1, heldout=held)
    assert h.steps_per_epoch == 256 // 50
    assert h.loss.shape == (4 * (256 // 50),)
    assert len(h.train_accuracy) == len(h.heldout_accuracy) == 5  # before training + each epoch
    assert len(h.epoch_loss) == 4
    assert h.train_accuracy[-1] > 0.9
    assert not h.diverged


def test_fit_without_train_accuracy():
    x, y = _problem()
    h = train.fit(_model(), x, y, epochs=2, batch_size=64, track_train_accuracy=False)
    assert h.train_accuracy == []
    assert len(h.epoch_loss) == 2


def test_fit_snapshots():
    x, y = _problem()
    h = train.fit(
        _model(), x, y, epochs=2, batch_size=64, snapshot_every=2, snapshot_fn=lambda m, step: step
    )
    assert [s for s, _ in h.snapshots] == [0, 2, 4, 6, 8]


def test_fit_stops_on_divergence():
    x, y = _problem()
    model = _model()
    with torch.no_grad():
        model[0].weight.mul_(1e30)
    h = train.fit(model, x, y, epochs=3, batch_size=32, lr=1e10)
    assert h.diverged
    assert not math.isfinite(float(h.loss[-1]))
    assert len(h.epoch_loss) == 1


def test_fit_adam():
    x, y = _problem()
    h = train.fit(_model(), x, y, epochs=3, batch_size=32, lr=0.01, optimizer="adam")
    assert h.train_accuracy[-1] > 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": -1}, ValueError, "epochs must be >= 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 1000}, ValueError, "larger than the 256 training samples"),
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"lr": True}, TypeError, "lr must be a real number"),
        (
            {"optimizer": "rmsprop"},
            ValueError,
            r"optimizer='rmsprop' is not one of \['adam', 'sgd'\]",
        ),
        ({"snapshot_every": 2}, ValueError, "snapshot_every needs a snapshot_fn"),
    ],
)
def test_fit_bad_arguments(kwargs, error, match):
    x, y = _problem()
    with pytest.raises(error, match=match):
        train.fit(_model(), x, y, **kwargs)


def test_fit_sample_count_mismatch():
    x, y = _problem()
    with pytest.raises(ValueError, match="x has 256 samples but y has 255"):
        train.fit(_model(), x, y[:-1])


def test_accuracy_restores_training_mode():
    model = _model()
    model.train()
    x, y = _problem()
    train.accuracy(model, x, y)
    assert model.training
