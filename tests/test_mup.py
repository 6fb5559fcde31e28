"""Tests for initbook.mup: the SP/μP table, its application to models and optimizers, the coordinate check."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from initbook import mup
from tests._stats import Z, estimate, k_sigma, seeded

# Statistical comparisons (tests/_stats.py): a sample variance against the table allows Z = 5 exact standard
# errors (normal quantile, 5.7e-7 per comparison, 8 comparisons per test); a width exponent averaged over
# 16 seeds allows k_sigma(16) = 8.27 estimated standard errors (Student t, 15 degrees of freedom: the same
# 5.7e-7 per comparison, 3 comparisons per test) plus the finite-width allowance FINITE_WIDTH.


@pytest.mark.parametrize("parameterization", ["sp", "mup"])
def test_init_variances_match_table(parameterization, seed):
    width, base, d_in = 512, 64, 300
    model = mup.mlp(d_in, width, 10, depth=4)
    mup.mup_init_(
        model,
        parameterization=parameterization,
        base_width=base,
        generator=seeded(seed, 1),
    )
    m = width / base
    expected = {
        "input": 2.0 / d_in,
        "hidden": 2.0 / width,
        "output": 1.0 / width / (m if parameterization == "mup" else 1.0),
    }
    for role, lin in mup.layer_roles(model):
        w = lin.weight.detach().double().flatten()
        # Var of the sample variance of N iid normals: 2 sigma^4 / (N - 1); the mean is known to be 0.
        sample_var = float(w.square().mean())
        se = expected[role] * math.sqrt(2.0 / w.numel())
        assert abs(sample_var - expected[role]) <= Z * se, (role, sample_var, expected[role])
        assert abs(float(w.mean())) <= Z * math.sqrt(expected[role] / w.numel())


def test_zero_readout_and_biases(seed):
    model = mup.mlp(20, 128, 3, bias=True)
    mup.mup_init_(model, readout="zero", generator=seeded(seed, 0))
    assert torch.count_nonzero(model[4].weight) == 0
    assert all(torch.count_nonzero(lin.bias) == 0 for _, lin in mup.layer_roles(model))
    with pytest.raises(ValueError, match="readout='zero'"):
        mup.mup_init_(model, parameterization="sp", readout="zero")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("width", [64, 256, 2048])
def test_lr_multipliers_exact(optimizer, width):
    base, lr = 64, 0.125  # a power of two, so every product below is exact in floating point
    m = width / base
    model = mup.mlp(30, width, 10, bias=True)
    table = {  # Yang et al. (2022), Table 3, relative to the base width
        "sgd": {"input": (m, m), "hidden": (1.0, m), "output": (1 / m, 1.0)},
        "adam": {"input": (1.0, 1.0), "hidden": (1 / m, 1.0), "output": (1 / m, 1.0)},
    }[optimizer]
    groups = mup.mup_param_groups(model, lr, optimizer=optimizer, base_width=base)
    assert [g["name"] for g in groups] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    for g in groups:
        w_mult, b_mult = table[g["role"]]
        assert g["lr"] == lr * (w_mult if g["name"].endswith("weight") else b_mult)
    sp = mup.mup_param_groups(
        model, lr, optimizer=optimizer, parameterization="sp", base_width=base
    )
    assert all(g["lr"] == lr for g in sp)


def test_mup_equals_sp_at_base_width():
    for role in ["input", "hidden", "output"]:
        for opt in ["sgd", "adam"]:
            a = mup.scaling(role, 64, 64, parameterization="mup", optimizer=opt, base_width=64)
            b = mup.scaling(role, 64, 64, parameterization="sp", optimizer=opt, base_width=64)
            assert (a.init_var, a.lr_mult, a.bias_lr_mult) == (
                b.init_var,
                b.lr_mult,
                b.bias_lr_mult,
            )


def test_base_width_one_is_table_3_verbatim():
    n, d = 1000, 784
    out = mup.scaling("output", n, 10, optimizer="sgd", base_width=1, gain=1.0)
    assert out.init_var == pytest.approx(1 / n**2, rel=1e-12)
    assert out.lr_mult == pytest.approx(1 / n, rel=1e-12)
    assert mup.scaling("input", d, n, optimizer="sgd", base_width=1).lr_mult == n
    assert mup.scaling("hidden", n, n, optimizer="adam", base_width=1).lr_mult == pytest.approx(
        1 / n
    )
    assert mup.scaling("input", d, n, optimizer="adam", base_width=1).lr_mult == 1.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_coord_check_updates_equal_torch_optim(optimizer, seed):
    gen = seeded(seed, 3)
    x, y = (
        torch.randn(16, 12, generator=gen, dtype=torch.float64),
        torch.randint(0, 3, (16,), generator=gen),
    )
    rows = mup.coord_check(
        x.clone(), y, [96], optimizer=optimizer, lr=0.05, steps=2, seeds=1, base_width=32
    )
    model = mup.mlp(12, 96, 3).double()
    mup.mup_init_(model, base_width=32, generator=torch.Generator().manual_seed(0))  # coord_check's
    h0 = model(x).detach()
    groups = mup.mup_param_groups(model, 0.05, optimizer=optimizer, base_width=32)
    opt = torch.optim.SGD(groups) if optimizer == "sgd" else torch.optim.Adam(groups)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    delta = float((model(x).detach() - h0).square().mean().sqrt())
    last = next(r for r in rows if r.step == 2 and r.role == "output")
    assert last.delta_rms == pytest.approx(delta, rel=1e-9)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_lr_sweep_equals_module_training(optimizer, seed):
    gen = seeded(seed, 5)
    x, y = (
        torch.randn(40, 6, generator=gen, dtype=torch.float64),
        torch.randint(0, 3, (40,), generator=gen),
    )
    lrs = [0.01, 0.1]
    rows = mup.lr_sweep(
        x, y, [48], lrs, optimizer=optimizer, steps=4, batch_size=8, base_width=16, seed=7
    )
    # Rebuild the sweep's draws: the initial noise per layer, then the batch indices, from one generator.
    for p in ["sp", "mup"]:
        for lr in lrs:
            g = torch.Generator().manual_seed(7)  # lr_sweep's seed=7
            model = mup.mlp(6, 48, 3).double()
            with torch.no_grad():
                for s, (_, lin) in zip(
                    mup.layer_scalings(model, parameterization=p, base_width=16),
                    mup.layer_roles(model),
                    strict=True,
                ):
                    noise = torch.randn(
                        lin.in_features, lin.out_features, generator=g, dtype=torch.float64
                    )
                    lin.weight.copy_(math.sqrt(s.init_var) * noise.T)
            groups = mup.mup_param_groups(
                model, lr, optimizer=optimizer, parameterization=p, base_width=16
            )
            opt = torch.optim.SGD(groups) if optimizer == "sgd" else torch.optim.Adam(groups)
            for _ in range(4):
                idx = torch.randint(0, 40, (8,), generator=g)
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            expected = float(F.cross_entropy(model(x), y).detach())
            got = next(r.loss for r in rows if r.parameterization == p and r.lr == lr)
            assert got == pytest.approx(expected, rel=1e-9)


WIDTHS, SEEDS = [128, 256, 512, 1024], 16  # as many flops as 4 seeds at 256..2048


def _exponents(parameterization, optimizer, lr, seed):
    """Log-log slopes of the RMS change of each layer after one step, widths 128..1024: mean and stderr.

    One training sample per seed: the one-step update of every weight matrix is then exactly rank one, the
    setting of the derivation in the book. The slope is averaged over 16 seeds (independent draws of the
    sample and the networks); its standard error is estimated from them, hence Student's t.
    """
    widths, seeds = WIDTHS, SEEDS
    slopes = {1: [], 2: [], 3: []}
    for s in range(seeds):
        gen = seeded(seed, 100 + s)
        x, y = torch.randn(1, 32, generator=gen), torch.randint(0, 4, (1,), generator=gen)
        rows = mup.coord_check(
            x,
            y,
            widths,
            parameterization=parameterization,
            optimizer=optimizer,
            lr=lr,
            steps=1,
            seeds=1,
            d_out=4,
        )
        for layer, per_seed in slopes.items():
            vals = [r.delta_rms for r in rows if r.step == 1 and r.layer == layer]
            per_seed.append(mup.scaling_exponent(widths, vals))
    return {layer: estimate(torch.tensor(v)) for layer, v in slopes.items()}


# Finite-width allowance for an exponent fitted over widths n_min..n_max: corrections of relative size up to
# c / sqrt(n) with c <= 2 move log(delta) by at most 2 / sqrt(n_min), hence the slope by at most
# 2 / (sqrt(n_min) * ln(n_max / n_min)) = 0.085 for 128..1024.
FINITE_WIDTH = 2 / (math.sqrt(WIDTHS[0]) * math.log(WIDTHS[-1] / WIDTHS[0]))
K = k_sigma(SEEDS)


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e-2), ("sgd", 0.1)])
def test_coord_check_mup_is_width_independent(optimizer, lr, seed):
    for layer, est in _exponents("mup", optimizer, lr, seed).items():
        assert abs(est.value) <= K * est.stderr + FINITE_WIDTH, (layer, str(est))


def test_coord_check_sp_grows_with_width(seed):
    adam = _exponents("sp", "adam", 1e-2, seed)
    est = adam[2]  # hidden layer under Adam: delta h ~ eta * n
    assert abs(est.value - 1.0) <= K * est.stderr + FINITE_WIDTH, str(est)
    sgd = _exponents("sp", "sgd", 0.1, seed)
    est = sgd[3]  # output under SGD: delta f ~ eta * n
    assert abs(est.value - 1.0) <= K * est.stderr + FINITE_WIDTH, str(est)
    est = sgd[1]  # first layer under SGD: delta h ~ eta / sqrt(n)
    assert abs(est.value + 0.5) <= K * est.stderr + FINITE_WIDTH, str(est)
    # (the tolerances under SGD are 0.35-0.55, measured over a few seeds: 16 one-sample seeds pin these
    # noisy exponents only loosely, to about their distance from muP's 0; Adam's hidden layer to 0.17)


def test_optimal_lr_and_exponent():
    lrs = [10.0**e for e in (-4, -3, -2, -1)]
    assert mup.optimal_lr(lrs, [3.0, 1.0, 2.0, math.nan]) == pytest.approx(
        10 ** (-3 + 1 / 6), rel=1e-9
    )
    assert mup.optimal_lr(lrs, [0.5, 1.0, 2.0, 3.0]) == 1e-4
    assert mup.scaling_exponent([1, 2, 4, 8], [3 * w**1.5 for w in (1, 2, 4, 8)]) == pytest.approx(
        1.5
    )


def test_bad_inputs():
    model = mup.mlp(4, 8, 2)
    x, y = torch.randn(5, 4), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match="'ntk'"):
        mup.mup_param_groups(model, 0.1, parameterization="ntk")
    with pytest.raises(ValueError, match="'rmsprop'"):
        mup.mup_param_groups(model, 0.1, optimizer="rmsprop")
    with pytest.raises(ValueError, match=r"-0\.1"):
        mup.mup_param_groups(model, -0.1)
    with pytest.raises(ValueError, match="base_width must be >= 1, got 0"):
        mup.mup_init_(model, base_width=0)
    with pytest.raises(TypeError, match=r"2\.5"):
        mup.mlp(4, 2.5, 2)
    with pytest.raises(ValueError, match="'middle'"):
        mup.scaling("middle", 3, 3)
    with pytest.raises(ValueError, match=r"at least 2 Linear layers \(input and output\), got 1"):
        mup.layer_roles(torch.nn.Sequential(torch.nn.Linear(3, 3)))
    with pytest.raises(TypeError, match=r"'1\.weight'"):
        mup.layer_roles(
            torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 1))
        )
    with pytest.raises(TypeError, match="widths"):
        mup.coord_check(x, y, 64)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        mup.coord_check(x, y, [8], steps=0)
    with pytest.raises(TypeError, match="y must be a LongTensor"):
        mup.coord_check(x, y.float(), [8])
    with pytest.raises(TypeError, match="'sp'"):
        mup.lr_sweep(x, y, [8], [0.1], parameterizations="sp")
    with pytest.raises(ValueError, match="nan"):
        mup.lr_sweep(x, y, [8], [math.nan])
    with pytest.raises(ValueError, match="increasing"):
        mup.optimal_lr([0.1, 0.01], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        mup.scaling_exponent([1, 2], [0.0, 1.0])
