"""Residual networks: variance growth of the stream, Fixup's scaling, identity at initialization."""

from __future__ import annotations

import math

import pytest
import torch

from initbook import nets, stats, theory
from tests._stats import Z, agrees, assert_agrees, estimate, seeded

# Theory-vs-simulation comparisons use |estimate - theory| <= k * stderr with the standard error estimated from
# the trials, k = k_sigma(n) the Student-t quantile (5.01 for 4000 trials, 5.08 for 400): a correct theory
# fails one comparison with probability 5.7e-7, as long as the per-trial values have finite variance (9
# comparisons per test). Sample variances of Gaussian weights use Z = 5 exact standard errors (the same rate).
# Every draw comes from the seed fixture (tests/_stats.py).


def _ratio_estimate(trials: int, gen: torch.Generator, **kwargs) -> stats.Estimate:
    """Monte-Carlo estimate of E[|x_l|^2 / |x_0|^2] for every block l."""

    def sample(b: int, g: torch.Generator) -> torch.Tensor:
        q = nets.stream_second_moments(trials=b, generator=g, **kwargs)
        return q / q[:, :1]

    return stats.monte_carlo(sample, trials=trials, generator=gen)


@pytest.mark.parametrize(
    ("kwargs", "gain2"),
    [
        ({}, 1.0),  # He branch: doubling per block
        ({"last_gain2": 2.0}, 2.0),  # kaiming_normal_(relu) on every layer: tripling
        ({"branch_scale": 0.25}, 1.0 / 16),  # alpha = 1/4
        (
            {"layers_per_branch": 3, "inner_gain2": 1.0},
            0.25,
        ),  # two inner layers at half He's variance
    ],
)
def test_stream_second_moment_matches_theory(kwargs, gain2, seed):
    blocks = 8
    est = _ratio_estimate(4000, seeded(seed, 1), width=32, blocks=blocks, **kwargs)
    alpha2 = kwargs.get("branch_scale", 1.0) ** 2 * theory.relu_branch_gain2(
        kwargs.get("layers_per_branch", 2),
        kwargs.get("inner_gain2", 2.0),
        kwargs.get("last_gain2", 1.0),
    )
    assert alpha2 == pytest.approx(gain2)
    expected = torch.tensor(
        [theory.residual_variance(l, alpha2) for l in range(blocks + 1)], dtype=torch.float64
    )
    assert_agrees(est, expected, what="E[|x_l|^2 / |x_0|^2]")


def test_theory_rejects_a_wrong_growth_rate(seed):
    # the same simulation must disagree with a factor 1.5 per block instead of 2 (the test can fail)
    est = _ratio_estimate(4000, seeded(seed, 2), width=32, blocks=8)
    wrong = torch.tensor([1.5**l for l in range(9)], dtype=torch.float64)
    assert not agrees(est, wrong)


def test_resmlp_stream_matches_theory_over_networks(seed):
    # the nn.Module version of the He branch: E[|x_L|^2 / |x_0|^2] = 2^L over independently drawn networks
    blocks, width, trials = 4, 64, 400
    gen = seeded(seed, 3)
    model = nets.ResidualMLP(width, width, 2, blocks)
    ratios = []
    for _ in range(trials):
        nets.he_branches_(model, generator=gen)
        u = torch.randn(1, width, generator=gen)
        with torch.no_grad():
            x0 = model.stem(u)
            ratios.append(float(model.blocks(x0).square().sum() / x0.square().sum()))
    est = estimate(torch.tensor(ratios, dtype=torch.float64))
    assert_agrees(est, theory.residual_variance(blocks, 1.0), what="E[|x_L|^2 / |x_0|^2]")


@pytest.mark.parametrize(("blocks", "m", "expected"), [(100, 2, 0.1), (16, 3, 0.5), (81, 3, 1 / 3)])
def test_fixup_scale_exact(blocks, m, expected):
    assert theory.fixup_scale(blocks, m) == pytest.approx(expected, rel=1e-15)
    # c^(2m-2) = 1/L: the defining property
    assert theory.fixup_scale(blocks, m) ** (2 * m - 2) == pytest.approx(1 / blocks, rel=1e-14)


def test_fixup_init_values(seed):
    blocks, width = 36, 1024
    model = nets.ResidualMLP(8, width, 3, blocks, scalars=True)
    nets.fixup_(model, generator=seeded(seed, 0))
    w = torch.cat([b.linears[0].weight.detach().flatten() for b in model.blocks[:4]]).double()
    # Var[w] = 2/n / L: the sample variance of N = 4n^2 Gaussian values has relative stderr sqrt(2/(N-1))
    target = 2.0 / width / blocks
    rel_se = math.sqrt(2.0 / (w.numel() - 1))
    assert abs(float(w.var()) / target - 1) <= Z * rel_se
    for block in model.blocks:
        assert torch.count_nonzero(block.linears[-1].weight) == 0
        assert torch.count_nonzero(block.bias_in) == 0
        assert torch.count_nonzero(block.bias_out) == 0
        assert block.multiplier.item() == 1.0
    assert torch.count_nonzero(model.head.weight) == 0
    assert torch.count_nonzero(model.head.bias) == 0


@pytest.mark.parametrize("init", [nets.zero_last_, nets.fixup_])
@pytest.mark.parametrize("scalars", [False, True])
def test_identity_at_init(init, scalars, seed):
    model = nets.ResidualMLP(12, 16, 5, blocks=7, layers_per_branch=3, scalars=scalars)
    init(model, generator=seeded(seed, 0))
    u = torch.randn(9, 12, generator=seeded(seed, 1))
    with torch.no_grad():
        assert torch.equal(model.stream(u), model.stem(u))
        if init is nets.zero_last_:
            assert torch.equal(model(u), model.head(model.stem(u)))
        else:
            assert torch.count_nonzero(model(u)) == 0


def test_fixup_without_blocks_zeroes_the_classifier(seed):
    model = nets.fixup_(nets.ResidualMLP(5, 7, 3, 0), generator=seeded(seed, 0))
    assert torch.count_nonzero(model.head.weight) == 0
    assert torch.count_nonzero(model.stem.weight) > 0


def test_zero_last_gradients_reach_last_layers_only(seed):
    model = nets.ResidualMLP(12, 16, 5, blocks=3)
    nets.zero_last_(model, generator=seeded(seed, 0))
    u = torch.randn(9, 12, generator=seeded(seed, 1))
    model(u).square().sum().backward()
    for block in model.blocks:
        first, last = block.linears
        assert torch.count_nonzero(last.weight.grad) > 0  # the last layer learns at step one
        assert (
            torch.count_nonzero(first.weight.grad) == 0
        )  # no signal through a zero last layer yet


def test_he_branch_weight_variances(seed):
    width = 1024
    model = nets.ResidualMLP(8, width, 3, 2)
    nets.he_branches_(model, last_gain=math.sqrt(2), generator=seeded(seed, 0))
    w1, w2 = (lin.weight.detach().double() for lin in model.blocks[0].linears)
    rel_se = math.sqrt(2.0 / (w1.numel() - 1))
    for w in (w1, w2):
        assert abs(float(w.var()) * width / 2.0 - 1) <= Z * rel_se


def test_branch_scale_multiplies_the_branch(seed):
    a = nets.ResidualBlock(6, branch_scale=1.0)
    b = nets.ResidualBlock(6, branch_scale=0.5)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 6, generator=seeded(seed, 0))
    with torch.no_grad():
        torch.testing.assert_close(b(x) - x, 0.5 * (a(x) - x))


def test_theory_closed_forms():
    assert theory.residual_variance(0, 5.0, q0=3.0) == 3.0
    assert theory.residual_variance(7, 1.0) == 2.0**7
    assert theory.relu_branch_gain2(1, inner_gain2=123.0, last_gain2=0.5) == 0.5
    assert theory.relu_branch_gain2(4) == 1.0


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: theory.fixup_scale(10, 1), ValueError, "layers_per_branch=1"),
        (lambda: theory.fixup_scale(0, 2), ValueError, "blocks must be >= 1, got 0"),
        (lambda: theory.fixup_scale(10.0, 2), TypeError, "blocks must be an int, got 10.0"),
        (
            lambda: theory.residual_variance(3, -1.0),
            ValueError,
            "branch_gain2 must be >= 0, got -1.0",
        ),
        (lambda: theory.residual_variance(True, 1.0), TypeError, "depth must be an int, got True"),
        (lambda: theory.relu_branch_gain2(0), ValueError, "layers must be >= 1, got 0"),
        (
            lambda: nets.ResidualMLP(4, 4, 2, -1),
            ValueError,
            "blocks must be >= 0, got -1",
        ),
        (lambda: nets.ResidualBlock(4, layers=0), ValueError, "layers must be >= 1, got 0"),
        (lambda: nets.ResidualMLP(4, 0, 2, 3), ValueError, "width must be >= 1, got 0"),
        (lambda: nets.ResidualBlock(4, branch_scale="1"), TypeError, "branch_scale must be a real"),
        (lambda: nets.ResidualBlock(4, scalars=1), TypeError, "scalars must be a bool, got 1"),
        (lambda: nets.fixup_(torch.nn.Linear(2, 2)), TypeError, "got Linear"),
        (
            lambda: nets.fixup_(nets.ResidualMLP(4, 4, 2, 3, layers_per_branch=1)),
            ValueError,
            "m >= 2",
        ),
        (
            lambda: nets.he_branches_(nets.ResidualMLP(4, 4, 2, 1), last_gain=-1.0),
            ValueError,
            "-1.0",
        ),
        (lambda: nets.stream_second_moments(0, 3), ValueError, "width must be >= 1, got 0"),
        (lambda: nets.stream_second_moments(4, 3, dtype=torch.int64), ValueError, "torch.int64"),
    ],
)
def test_bad_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# -- nets.mlp -----------------------------------------------------------------------------------------


def test_mlp_is_the_hand_written_sequential():
    """Same layers, same order, same default weights from the same global seed."""
    sizes = [12, 8, 8, 3]
    torch.manual_seed(5)
    built = nets.mlp(sizes, "tanh")
    torch.manual_seed(5)
    layers: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    by_hand = torch.nn.Sequential(*layers)
    assert [type(m) for m in built] == [type(m) for m in by_hand]
    for a, b in zip(built.state_dict().values(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert built[-1].out_features == 3
    assert len(nets.mlp([5, 2])) == 1  # one layer, no activation


def test_mlp_activation_forms_and_bias():
    by_name = nets.mlp([4, 4, 4], "silu", bias=False)
    by_class = nets.mlp([4, 4, 4], torch.nn.SiLU, bias=False)
    assert isinstance(by_name[1], torch.nn.SiLU)
    assert isinstance(by_class[1], torch.nn.SiLU)
    assert all(m.bias is None for m in by_name if isinstance(m, torch.nn.Linear))
    deep = nets.mlp([4, 4, 4, 4])
    assert deep[1] is not deep[3]  # a fresh module per position


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([4],), {}, ValueError, "at least two widths"),
        (([4, 0, 2],), {}, ValueError, r"sizes\[1\] must be >= 1"),
        (([4, 2.0],), {}, TypeError, r"sizes\[1\] must be an int"),
        ((784,), {}, TypeError, "sizes must be a sequence of ints"),
        (("784",), {}, TypeError, "sizes must be a sequence of ints"),
        (([4, 4, 2], "softmax"), {}, ValueError, "activation='softmax' is not one of"),
        (([4, 4, 2], 3), {}, TypeError, "activation must be one of"),
        (
            ([4, 4, 2], lambda: torch.relu),
            {},
            TypeError,
            "activation must return a torch.nn.Module",
        ),
        (([4, 2],), {"bias": 1}, TypeError, "bias must be a bool, got 1"),
    ],
)
def test_mlp_rejects_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        nets.mlp(*args, **kwargs)
