"""Dynamical isometry: Jacobian spectra of deep random networks against their theory.

Monte-Carlo comparisons use |estimate - theory| <= k * stderr with the standard error estimated from the
networks and k = k_sigma(n) the Student-t quantile (5.10 for 300 networks, 5.02 for 1500): a correct theory
fails such a comparison with probability 5.7e-7 (tests/_stats.py), so the whole file (18 comparisons)
fails falsely with probability below 1.1e-5. Every random draw comes from the ``seed`` fixture.
"""

from __future__ import annotations

import math

import pytest
import torch

from initbook import stats, theory
from tests._stats import agrees, assert_agrees, estimate, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


def _spectral_moments(s: torch.Tensor) -> tuple[stats.Estimate, stats.Estimate]:
    """Per-network mean and mean square of lambda = s**2, averaged over networks (with standard errors)."""
    lam = s.double().square()
    return estimate(lam.mean(dim=-1)), estimate(lam.square().mean(dim=-1))


def test_orthogonal_linear_network_is_an_exact_isometry(seed):
    s = stats.jacobian_singular_values(
        30, 32, phi="linear", weights="orthogonal", nets=4, generator=seeded(seed, 0)
    )
    assert s.shape == (4, 32)
    assert torch.allclose(s, torch.ones_like(s), rtol=0, atol=1e-10)
    # with gain sigma_w every singular value is sigma_w**L
    s = stats.jacobian_singular_values(
        5, 16, phi="linear", weights="orthogonal", sigma_w2=1.21, nets=2, generator=seeded(seed, 1)
    )
    assert torch.allclose(s, torch.full_like(s, 1.1**5), rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    ("phi", "weights", "sigma_w2"),
    [
        ("relu", "gaussian", 2.0),
        ("relu", "orthogonal", 2.0),
        ("relu", "gaussian", 1.5),  # ordered: chi1 = 0.75
        ("linear", "gaussian", 1.2),  # chaotic: chi1 = 1.2
    ],
)
def test_mean_squared_singular_value_is_chi1_to_the_depth(phi, weights, sigma_w2, seed):
    # For linear and ReLU networks (no bias) E[lambda] = chi1**L holds exactly at any width: a row of W and
    # its negative are equally likely, and flipping it flips that unit's ReLU gate.
    depths = [1, 3, 6]
    s = stats.jacobian_singular_values(
        depths, 32, phi=phi, weights=weights, sigma_w2=sigma_w2, nets=300, generator=seeded(seed, 2)
    )
    chi1 = theory.chi1(sigma_w2, 0.0, phi)
    for depth, s_d in zip(depths, s, strict=True):
        mean, _ = _spectral_moments(s_d)
        assert_agrees(mean, chi1**depth, what=f"E[lambda] at depth {depth}")
        assert theory.jacobian_spectrum_moments(
            depth, sigma_w2, 0.0, phi, weights
        ).mean == pytest.approx(chi1**depth, rel=1e-12)


def test_gaussian_linear_second_moment_matches_the_exact_finite_width_formula(seed):
    n, depths = 8, [2, 6]
    s = stats.jacobian_singular_values(
        depths, n, phi="linear", weights="gaussian", nets=20_000, generator=seeded(seed, 3)
    )
    for depth, s_d in zip(depths, s, strict=True):
        _, second = _spectral_moments(s_d)
        exact = theory.linear_jacobian_moments(depth, n).second_moment
        assert_agrees(second, exact, what=f"E[lambda^2] at depth {depth}")
    # the test has power: at L = 6, n = 8 the wide-limit value 1 + L is rejected
    wide = theory.jacobian_spectrum_moments(6, 1.0, 0.0, "linear", "gaussian").second_moment
    assert wide == pytest.approx(7.0)
    assert not agrees(second, wide)


def test_linear_moments_formula_limits():
    # n = 1: a product of scalar N(0, s2) draws, E[w^4] = 3 s2^2 per layer
    assert theory.linear_jacobian_moments(4, 1, 0.5).second_moment == pytest.approx(3**4 * 0.25**4)
    # closed form equals the Wick recursion it was derived from
    n, u, w = 5, 1.0, 1.0
    for depth in range(1, 8):
        u, w = u + 2 * w / n**2, u + (1 + 1 / n) * w
        assert theory.linear_jacobian_moments(depth, n).second_moment == pytest.approx(w, rel=1e-12)
    # n -> infinity: 1 + L (free probability)
    assert theory.linear_jacobian_moments(7, 10**9).second_moment == pytest.approx(8.0, rel=1e-6)


@pytest.mark.parametrize(("weights", "exact"), [("orthogonal", 2.0), ("gaussian", 3.0 + 3.0 / 32)])
def test_one_relu_layer_second_moment(weights, exact, seed):
    # L = 1, sigma_w2 = 2: orthogonal gives lambda in {0, 2} half each (E[lambda^2] = 2 at any width);
    # Gaussian gives 3 + 3/n by the same sign-flip argument and E|v|^4 = 1 + 2/n, E(v_i.v_j)^2 = 1/n.
    s = stats.jacobian_singular_values(
        1, 32, phi="relu", weights=weights, sigma_w2=2.0, nets=1500, generator=seeded(seed, 4)
    )
    _, second = _spectral_moments(s)
    assert_agrees(second, exact, what="E[lambda^2]")
    wide = theory.jacobian_spectrum_moments(1, 2.0, 0.0, "relu", weights).second_moment
    assert wide == pytest.approx(2.0 if weights == "orthogonal" else 3.0)


def test_relu_cannot_be_isometric(seed):
    # chi1 = 1, orthogonal weights: still about half the singular values are exactly 0 (the last layer's
    # inactive units), so the spread is strictly positive and grows with depth.
    width, depths = 128, [1, 6]
    s = stats.jacobian_singular_values(
        depths,
        width,
        phi="relu",
        weights="orthogonal",
        sigma_w2=2.0,
        nets=8,
        generator=seeded(seed, 5),
    )
    lam = s.double().square()
    spread = lam.var(dim=-1, unbiased=False)
    zero_frac = (s < 1e-9 * s.amax(dim=-1, keepdim=True)).double().mean(dim=-1)
    # Binomial(128, 1/2) falls below 0.25 * 128 with probability ~1e-8
    assert bool((zero_frac >= 0.25).all()), zero_frac
    assert bool((spread > 0.5).all()), spread
    assert float(spread[1].mean()) > float(spread[0].mean())
    for depth in depths:
        assert (
            theory.jacobian_spectrum_moments(depth, 2.0, 0.0, "relu", "orthogonal").variance
            == depth
        )


def test_tanh_critical_line_approaches_isometry_as_q_star_vanishes():
    variances = []
    for sigma_b2 in [1e-6, 0.05, 0.5]:
        sigma_w2 = theory.critical_sigma_w2(sigma_b2, "tanh")
        m = theory.jacobian_spectrum_moments(10, sigma_w2, sigma_b2, "tanh", "orthogonal")
        assert m.mean == pytest.approx(1.0, abs=1e-9)
        variances.append(m.variance)
    assert variances[0] < 1e-2
    assert variances == sorted(variances)
    gauss = theory.jacobian_spectrum_moments(10, 1.0, 0.0, "tanh", "gaussian")
    assert gauss.variance == pytest.approx(10.0)  # q* = 0: a Gaussian linear network


def test_tanh_orthogonal_spread_is_smaller_than_gaussian(seed):
    sigma_b2 = 1e-3
    sigma_w2 = theory.critical_sigma_w2(sigma_b2, "tanh")
    spreads = {}
    for weights in ("orthogonal", "gaussian"):
        s = stats.jacobian_singular_values(
            8,
            64,
            phi="tanh",
            weights=weights,
            sigma_w2=sigma_w2,
            sigma_b2=sigma_b2,
            nets=8,
            generator=seeded(seed, 6),
        )
        spreads[weights] = s.double().square().var(dim=-1).mean()
    assert spreads["orthogonal"] < 0.5
    assert spreads["gaussian"] > 4.0


def test_haar_orthogonal_is_orthogonal_and_haar(seed):
    q = stats.haar_orthogonal(4000, 6, generator=seeded(seed, 7))
    eye = torch.eye(6, dtype=q.dtype).expand_as(q)
    assert torch.allclose(q.transpose(1, 2) @ q, eye, atol=1e-12)
    # Haar measure on O(n), n >= 2: E[tr Q] = 0, E[(tr Q)^2] = 1. Without Mezzadri's sign fix the QR
    # factor is biased and these fail.
    tr = torch.diagonal(q, dim1=-2, dim2=-1).sum(-1)
    assert_agrees(estimate(tr), 0.0, what="E[tr Q]")
    assert_agrees(estimate(tr.square()), 1.0, what="E[(tr Q)^2]")


def test_orthogonal_deep_linear_nets_learn_faster_than_gaussian(seed):
    kwargs = {"lr": 0.5, "max_steps": 300, "nets": 6}
    orth = stats.deep_linear_learning_steps(
        8, 8, weights="orthogonal", generator=seeded(seed, 8), **kwargs
    )
    gauss = stats.deep_linear_learning_steps(
        8, 8, weights="gaussian", generator=seeded(seed, 8), **kwargs
    )
    assert bool((orth < 300).all())
    assert float(orth.double().median()) < float(gauss.double().median())


def test_validation():
    with pytest.raises(ValueError, match="phi"):
        stats.jacobian_singular_values(2, 4, phi="gelu")
    with pytest.raises(ValueError, match="increasing"):
        stats.jacobian_singular_values([3, 2], 4)
    with pytest.raises(TypeError, match="depth"):
        stats.jacobian_singular_values(True, 4)
    with pytest.raises(ValueError, match="weights"):
        theory.jacobian_spectrum_moments(2, 1.0, 0.0, "tanh", "uniform")
    with pytest.raises(ValueError, match="finite"):
        theory.jacobian_spectrum_moments(2, 4.0, 0.0, "tanh", q=math.inf)
    with pytest.raises(ValueError, match="width"):
        theory.linear_jacobian_moments(2, 0)
