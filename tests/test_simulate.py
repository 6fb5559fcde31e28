"""initbook.simulate: the Part III experiments shared by pages and gallery scripts, against the theory.

Each statistical comparison is ``|estimate - theory| <= k * stderr + allowance`` (``tests/_stats.py``): ``k``
is the Student-t quantile for ``n`` independent networks at the false-failure rate ``P_FALSE = 5.7e-7`` per
comparison, and the allowance is a stated bound on the finite-width bias. Every draw comes from the ``seed``
fixture, so ``INITBOOK_TEST_SEED`` shifts all of them.
"""

from __future__ import annotations

import math

import pytest
import torch

from initbook import simulate, stats, theory
from tests._stats import assert_agrees, estimate, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


def test_chi1_grid_measures_ln_chi1(seed):
    r"""The grid's ln chi1 agrees with ln theory.chi1, ordered and chaotic (sigma_b2 = 0.05).

    32 networks of width 256 per weight variance (the grid's rows repeat each variance 32 times). One
    network's estimate averages 16 layers' squared-norm ratios, each with relative spread about sqrt(2/n);
    the log of that mean is biased by minus half its variance, about 1/(16 n), and chi1 at the layer's
    fluctuating q by O(1/n): we allow 2/n = 0.008. Power: ln chi1 is -0.168 and +0.125 here; a factor-2
    error in chi1 moves it by 0.69 and a sign error by 0.25 to 0.34, against a tolerance of 0.03 to 0.04.
    """
    width, nets = 256, 32
    sws = torch.tensor([1.2, 2.5], dtype=torch.float64)
    grid = simulate.chi1_grid(
        sws.repeat_interleave(nets), [0.05], width=width, depth=20, generator=seeded(seed)
    )
    assert grid.shape == (2 * nets, 1)
    per_net = grid[:, 0].reshape(2, nets).T  # (nets, 2)
    predicted = [math.log(theory.chi1(s, 0.05)) for s in sws.tolist()]
    assert_agrees(estimate(per_net), predicted, allowance=2.0 / width, what="ln chi1")


def test_chi1_grid_is_the_batched_mean_field_run(seed):
    """Same generator state, same numbers as calling mean_field_network on the flattened grid by hand."""
    sw2, sb2 = (
        torch.tensor([0.8, 1.5, 3.0], dtype=torch.float64),
        torch.tensor([0.0, 0.1], dtype=torch.float64),
    )
    grid = simulate.chi1_grid(sw2, sb2, width=32, depth=8, skip=2, generator=seeded(seed))
    w2, b2 = torch.meshgrid(sw2, sb2, indexing="ij")
    q0 = torch.tensor(
        [
            theory.fixed_point_q(w, b)
            for w, b in zip(w2.flatten().tolist(), b2.flatten().tolist(), strict=True)
        ]
    )
    run = stats.mean_field_network(
        w2.flatten(), b2.flatten(), width=32, depth=8, q0=q0.clamp_min(1e-3), generator=seeded(seed)
    )
    assert torch.equal(grid, run.chi1[:, 2:].mean(dim=1).log().reshape(3, 2))


def test_correlation_runs_follow_the_correlation_map(seed):
    r"""The mean correlation per layer agrees with theory.iterate_maps, ordered and chaotic.

    64 networks of width 1000 per weight variance, 8 layers from c0 = 0.5. Finite width biases the mean
    correlation by O(1/n) per layer (the correlation of a finite sample of units is a ratio), so we allow
    depth/n = 0.008. Power: after 8 layers the two phases sit at 0.86 and 0.47, with tolerances of about 0.02
    and 0.05; the map for a weight variance 10 % too large moves them by 0.065 (caught) and 0.035 (not
    caught: the chaotic phase needs an error of about 20 %).
    """
    sws, depth, nets = [1.2, 2.5], 8, 64
    c = simulate.correlation_runs(
        sws, 0.05, nets=nets, width=1000, depth=depth, generator=seeded(seed)
    )
    assert c.shape == (2, nets, depth + 1)
    assert torch.allclose(c[:, :, 0], torch.full((2, nets), 0.5, dtype=torch.float64), atol=0.1)
    predicted = torch.stack(
        [theory.iterate_maps(1.0, 0.5, s, 0.05, depth).c for s in sws]
    )  # (2, depth + 1)
    assert_agrees(
        estimate(c[:, :, 1:].transpose(0, 1)), predicted[:, 1:], allowance=depth / 1000, what="c"
    )


def test_tanh_gradient_profile_follows_the_product_of_chi1(seed):
    r"""log10 of the first layer's relative squared gradient agrees with tanh_gradient_theory.

    16 networks (seeds) of 10 layers of width 256, for gain 5/3 (chaotic) and sigma_w2 = 0.5 (ordered). The
    per-layer factor has O(1/n) finite-width corrections (in the length and in chi1) that compound over the
    9 layers: we allow 9 * 2/n / ln(10) = 0.031 in log10. Power: a factor 2 in the profile is 0.30 in log10,
    and the wrong sign of the exponent (vanishing for the chaotic network) is 1; the tolerance is about 0.07.
    """
    depth, width, nets = 10, 256, 16
    for sw2 in (25 / 9, 0.5):
        base = seed % 10_000 * 100
        logs = torch.stack(
            [
                simulate.tanh_gradient_profile(
                    sw2, depth=depth, width=width, batch=64, seed=base + k
                ).log10()
                for k in range(nets)
            ]
        )
        assert torch.equal(logs[:, -1], torch.zeros(nets, dtype=torch.float64))
        predicted = simulate.tanh_gradient_theory(sw2, depth=depth).log10()
        allowance = (depth - 1) * 2.0 / width / math.log(10)
        assert_agrees(
            estimate(logs[:, 0]), float(predicted[0]), allowance=allowance, what=f"sigma_w2={sw2}"
        )


def test_tanh_gradient_theory_is_chi1_to_a_power_at_the_fixed_point():
    """The prediction is the product of chi1(q^k) along the iterated length map, exactly."""
    p = simulate.tanh_gradient_theory(1.0, 0.0, depth=5)
    assert p.dtype == torch.float64
    assert p.shape == (5,)
    assert float(p[-1]) == 1.0
    # gain 1, zero bias: shrinking towards the input, by a power of the depth
    assert bool((p[:-1] < 1).all())
    chaotic = simulate.tanh_gradient_theory(25 / 9, depth=3)
    q = theory.iterate_maps(25 / 9, 0.5, 25 / 9, 0.0, 2).q
    expected = theory.chi1(25 / 9, 0.0, q=float(q[0])) * theory.chi1(25 / 9, 0.0, q=float(q[1]))
    assert math.isclose(float(chaotic[0]), expected, rel_tol=1e-12)


def test_zero_bias_draws_no_bias():
    """With sigma_b2 = 0 the weights are the only draws: the same network as drawing weights alone."""
    a = simulate.tanh_gradient_profile(1.0, 0.0, depth=4, width=16, batch=8, seed=3)
    b = simulate.tanh_gradient_profile(1.0, 1e-30, depth=4, width=16, batch=8, seed=3)
    assert not torch.equal(a, b)  # a tiny bias variance still draws, shifting the weights' stream
    assert torch.equal(a, simulate.tanh_gradient_profile(1.0, depth=4, width=16, batch=8, seed=3))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: simulate.chi1_grid([1.0], [0.0], width=8, depth=4, generator=torch.Generator()),
            ValueError,
            "skip",
        ),
        (
            lambda: simulate.chi1_grid(
                [[1.0]], [0.0], width=8, depth=8, generator=torch.Generator()
            ),
            ValueError,
            "1-D",
        ),
        (
            lambda: simulate.chi1_grid(
                [1.0], [-0.1], width=8, depth=8, generator=torch.Generator()
            ),
            ValueError,
            ">= 0",
        ),
        (
            lambda: simulate.chi1_grid(["a"], [0.0], width=8, depth=8, generator=torch.Generator()),
            TypeError,
            "sigma_w2",
        ),
        (
            lambda: simulate.chi1_grid([1.0], [0.0], width=8, depth=8, generator=0),
            TypeError,
            "torch.Generator",
        ),
        (
            lambda: simulate.correlation_runs(
                [1.0], 0.0, nets=0, width=8, depth=2, generator=torch.Generator()
            ),
            ValueError,
            "nets",
        ),
        (
            lambda: simulate.correlation_runs(
                [1.0], -1.0, nets=2, width=8, depth=2, generator=torch.Generator()
            ),
            ValueError,
            "sigma_b2",
        ),
        (
            lambda: simulate.tanh_gradient_profile(0.0, depth=2, width=4, batch=2, seed=0),
            ValueError,
            "sigma_w2",
        ),
        (
            lambda: simulate.tanh_gradient_profile(1.0, depth=2.0, width=4, batch=2, seed=0),
            TypeError,
            "depth",
        ),
        (lambda: simulate.tanh_gradient_theory(1.0, depth=0), ValueError, "depth"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
