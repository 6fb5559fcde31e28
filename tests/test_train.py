"""Tests for initbook.train: determinism, history bookkeeping, divergence, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initbook
from initbook import data, nets, train
from tests._stats import Z


def _problem(seed=0, n=256):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def _model(seed=0):
    torch.manual_seed(seed)
    return nets.mlp([4, 16, 2])


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


# -- the five schemes of Part II -------------------------------------------------------------------------


@pytest.mark.parametrize("name", train.SCHEMES)
def test_scheme_model_is_the_pages_recipe(name):
    """``scheme_model`` is what the pages wrote by hand: seed, build, re-initialize from a seeded generator."""
    sizes = [20, 12, 8, 3]
    torch.manual_seed(4)
    by_hand = nn.Sequential(
        nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )
    recipe = {
        "U(±0.01)": (
            lambda w, fans, generator: nn.init.uniform_(w, -0.01, 0.01, generator=generator),
            {},
        ),
        "He normal": ("kaiming_normal", {"nonlinearity": "relu"}),
        "He uniform": ("kaiming_uniform", {"nonlinearity": "relu"}),
        "Xavier normal": ("xavier_normal", {}),
    }.get(name)
    if recipe is not None:
        initbook.init_model(
            by_hand, recipe[0], generator=torch.Generator().manual_seed(4), **recipe[1]
        )
    built = train.scheme_model(name, 4, sizes)
    for a, b in zip(built.state_dict().values(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", train.SCHEMES)
def test_scheme_variances_match_the_weights(name):
    """Each layer's sample weight variance agrees with ``scheme_variances`` within Z = 5 standard errors.

    The standard error of a sample variance of m draws is Var * sqrt((kurtosis - 1) / m): kurtosis 3 for the
    normal schemes, 9/5 for the uniform ones. With m >= 16,384 weights per layer that is at most 1.1% of
    the variance, so the tolerance is at most 5.5%: a factor-2 error (Xavier's n_in + n_out written as
    n_in, or the default's 1/3 dropped) is 18 standard errors or more away and fails.
    """
    sizes = [512, 256, 128, 64]
    model = train.scheme_model(name, 0, sizes)
    weight_vars, bias_vars = train.scheme_variances(name, sizes)
    uniform = name in ("U(±0.01)", "He uniform", "PyTorch default")
    kurtosis = 9 / 5 if uniform else 3.0
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(weight_vars) == len(bias_vars) == len(linears) == 3
    for layer, var_w, var_b in zip(linears, weight_vars, bias_vars, strict=True):
        w = layer.weight.detach().double().flatten()
        se = var_w * math.sqrt((kurtosis - 1) / w.numel())
        assert abs(w.pow(2).mean().item() - var_w) <= Z * se, (name, layer)
        if var_b == 0.0:
            assert layer.bias.abs().max().item() == 0.0
        else:  # the default's biases: U(±1/sqrt(n_in)), 64 to 256 of them
            b = layer.bias.detach().double()
            se_b = var_b * math.sqrt((9 / 5 - 1) / b.numel())
            assert abs(b.pow(2).mean().item() - var_b) <= Z * se_b, (name, layer)


def test_train_schemes_first_epoch_is_the_one_epoch_run():
    """The gallery's one-epoch run is the start of the page's longer run, bit for bit."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=gen)
    y = (x[:, 0] > 0).long()
    split = data.Split(x[:200], y[:200], x[200:], y[200:])
    short = train.train_schemes(
        split, ["He normal", "PyTorch default"], sizes=[6, 8, 2], batch_size=50
    )
    long = train.train_schemes(
        split,
        ["He normal", "PyTorch default"],
        seeds=(0, 1),
        epochs=2,
        sizes=[6, 8, 2],
        batch_size=50,
    )
    assert list(long) == ["He normal", "PyTorch default"]
    for name in short:
        assert len(long[name]) == 2
        assert torch.equal(long[name][0].loss[:4], short[name][0].loss)
        assert long[name][0].heldout_accuracy[:2] == short[name][0].heldout_accuracy


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: train.scheme_model("He", 0), ValueError, "name='He' is not one of"),
        (lambda: train.scheme_model("He normal", 0.5), TypeError, "seed must be an int"),
        (lambda: train.scheme_model("He normal", 0, [784]), TypeError, "at least two ints"),
        (lambda: train.scheme_variances("xavier", [4, 2]), ValueError, "is not one of"),
        (
            lambda: train.scheme_variances("He normal", [4, 0]),
            ValueError,
            r"sizes\[1\] must be >= 1",
        ),
    ],
)
def test_schemes_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
