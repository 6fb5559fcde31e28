"""The order-to-chaos line and the depth scales of initbook.theory against simulated wide tanh networks.

Every simulation uses :func:`initbook.stats.mean_field_network`, seeded, with many networks in one batched
computation. Each comparison is ``|estimate - theory| <= k * stderr + allowance``, where ``k`` is the
two-sided quantile of Student's t (``n - 1`` degrees of freedom, ``n`` independent networks) for a
false-failure probability of ``P_FALSE = 5.7e-7`` per comparison (k = 5 for large n; ``tests/_stats.py``),
and the allowance is a stated, derived bound on the systematic finite-width error (zero where none is
needed). Every draw comes from the ``seed`` fixture, so ``INITBOOK_TEST_SEED`` shifts all of them.
"""

from __future__ import annotations

import math

import pytest
import torch

from initbook import stats, theory
from tests._stats import estimate, k_sigma, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


def mean_and_stderr(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error over the first dimension (the independent networks)."""
    est = estimate(values)
    return torch.as_tensor(est.value), torch.as_tensor(est.stderr)


def test_critical_line_is_where_chi1_is_one():
    """The parametric critical line agrees with the nested bisection, and chi1 = 1 on it (pure theory)."""
    sb = torch.tensor([0.0, 1e-3, 0.05, 1.0], dtype=torch.float64)
    line = theory.critical_line(sb)
    for s_b, s_w in zip(sb.tolist(), line.tolist(), strict=True):
        assert abs(s_w - theory.critical_sigma_w2(s_b)) < 1e-9
        assert abs(theory.chi1(s_w, s_b) - 1.0) < 1e-9
        if s_b > 0:  # ordered just below the line, chaotic just above
            assert theory.chi1(0.99 * s_w, s_b) < 1.0 < theory.chi1(1.01 * s_w, s_b)
    assert bool((line.diff() > 0).all())  # the line rises with the bias variance
    with pytest.raises(ValueError, match="sigma_b2"):
        theory.critical_line([0.1, -0.1])
    with pytest.raises(TypeError, match="sigma_b2"):
        theory.critical_line(0.1)


@pytest.mark.parametrize("sigma_b2", [0.02, 0.05, 0.2])
def test_simulated_chi1_crosses_one_at_the_critical_line(sigma_b2, seed):
    r"""The simulated chi1 equals theory's at 0.85, 1 and 1.15 times the critical sigma_w2; its line crosses 1 there.

    32 networks of width 1000 per sigma_w2 (all 96 in one batched run, ``method="gram"``), each started at
    its own q*.
    The per-network estimate is the mean over layers 4-16 of the tangent's squared-norm ratio, whose
    conditional mean given the previous layer is sigma_w2 * mean(phi'(h)^2 u^2) / mean(u^2), i.e. chi1 at
    the layer's measured q. Finite width moves q around q* by O(n^-1/2), hence chi1's mean by O(1/n)
    (second order, Jensen): we allow 2/n = 0.002, about twice the largest offset (1.0e-3, itself within
    2.3 standard errors of 0) measured with 2048 networks per point while writing this test. The crossing is the root of the least-squares line through the three
    (sigma_w2, chi1 - 1) points; its standard error comes from the three independent standard errors by
    the delta method, and it must match critical_line within k standard errors plus the allowance mapped
    through the slope.
    """
    width, depth, trials = 1000, 16, 32
    crit = float(theory.critical_line([sigma_b2])[0])
    sws = torch.tensor([0.85 * crit, crit, 1.15 * crit], dtype=torch.float64)
    q_star = torch.tensor([theory.fixed_point_q(s, sigma_b2) for s in sws.tolist()])
    gen = seeded(seed, 20)
    run = stats.mean_field_network(
        sws.repeat_interleave(trials),
        sigma_b2,
        width=width,
        depth=depth,
        q0=q_star.repeat_interleave(trials),
        generator=gen,
        method="gram",
        dtype=torch.float64,
    )
    per_net = run.chi1[:, 3:].mean(dim=1).reshape(3, trials).T  # (trials, 3)
    est, se = mean_and_stderr(per_net)
    k, allowance = k_sigma(trials), 2.0 / width
    predicted = torch.tensor([theory.chi1(s, sigma_b2) for s in sws.tolist()], dtype=torch.float64)
    assert abs(predicted[1] - 1.0) < 1e-9
    assert bool(((est - predicted).abs() <= k * se + allowance).all()), (est, se, predicted)
    # ordered below the line, chaotic above: resolved well beyond the noise
    assert est[0] < 1.0 - k * se[0] - allowance
    assert est[2] > 1.0 + k * se[2] + allowance
    # the crossing of a least-squares line through the three points
    x = sws - crit
    xc = x - x.mean()
    slope = float((xc * (est - 1)).sum() / xc.square().sum())
    intercept = float((est - 1).mean() - slope * x.mean())
    crossing = crit - intercept / slope
    # d crossing / d est_j, for the delta method (slope and intercept are linear in est)
    d_slope = xc / xc.square().sum()
    d_intercept = 1 / 3 - x.mean() * d_slope
    grad = -(d_intercept * slope - intercept * d_slope) / slope**2
    se_crossing = float((grad.square() * se.square()).sum().sqrt())
    tolerance = k * se_crossing + allowance / slope
    assert abs(crossing - crit) <= tolerance, (crossing, crit, tolerance)
    assert tolerance < 0.05 * crit  # the simulation pins the line to within 5 %


def test_explicit_weights_follow_the_iterated_length_map(seed):
    r"""q^l of explicit-weight networks (``method="matrix"``, one torch.bmm per layer) vs the iterated map.

    48 networks of width 256 in one batch (sigma_w2 = 2.5, sigma_b2 = 0.1) start at q0 = 2, away from
    q* = 1.18, and relax to it within a few layers; the per-layer mean square over both inputs is compared
    with theory.iterate_maps at each of 8 layers. Allowance: finite width shifts E[q^l] by O(1/n) through
    the curvature of the length map (|V''| < 0.2 here, Var[q] ~ 2 q^2 / n per layer), bounded by 2 q / n
    (0.9 % at q = 1.2); in 4096 networks at n = 256 (``method="gram"``, the same distribution) the
    measured offset stayed below 0.3 %, within 2.1 standard errors of 0.
    """
    sw, sb, q0, width, depth, trials = 2.5, 0.1, 2.0, 256, 8, 48
    gen = seeded(seed, 31)
    run = stats.mean_field_network(
        torch.full((trials,), sw), sb, width=width, depth=depth, q0=q0, c0=0.3, generator=gen
    )
    est, se = mean_and_stderr(run.q[:, 1:])
    predicted = theory.iterate_maps(q0, 0.3, sw, sb, depth).q[1:]
    tol = k_sigma(trials) * se + 2 * predicted / width
    assert bool(((est - predicted).abs() <= tol).all()), (est, predicted, tol)
    assert abs(predicted[-1] - theory.fixed_point_q(sw, sb)) < 1e-3  # it has reached q*
    assert float(predicted[0]) > 1.3  # and started far from it: the transient is tested too


@pytest.mark.parametrize(("sigma_w2", "sigma_b2"), [(1.2, 0.05), (1.8, 0.3)])
def test_ordered_correlation_decay_rate_is_one_over_xi_c(sigma_w2, sigma_b2, seed):
    r"""In the ordered phase log(1 - c^l) falls by 1/xi_c per layer (Schoenholz et al. 2017).

    64 networks of width 1000 (``method="gram"``, float64) start at q* with c0 = 1 - 1e-3, where the
    correlation map is linear to O(1e-3). Each network's slope is the least-squares fit of log(1 - c^l)
    over layers 3-20. Allowance: the mean of a log falls faster than the log of the mean by half the
    variance of the per-layer increments (Jensen), estimated from the same runs (0.5 v ~ 0.002-0.003,
    under 2 % of 1/xi_c); plus 1e-3 for the residual non-linearity. The tolerance on 1/xi_c is 5-9 %.
    """
    width, depth, first, trials = 1000, 20, 3, 64
    q_star = theory.fixed_point_q(sigma_w2, sigma_b2)
    xi = theory.correlation_depth_scale(sigma_w2, sigma_b2)
    assert theory.chi1(sigma_w2, sigma_b2) < 1
    assert math.isfinite(xi)
    gen = seeded(seed, 40)
    run = stats.mean_field_network(
        torch.full((trials,), sigma_w2),
        sigma_b2,
        width=width,
        depth=depth,
        q0=q_star,
        c0=1 - 1e-3,
        generator=gen,
        method="gram",
        dtype=torch.float64,
    )
    y = run.one_minus_c[:, first:].log()
    layers = torch.arange(first, depth + 1, dtype=torch.float64)
    centred = layers - layers.mean()
    slopes = (y * centred).sum(dim=1) / centred.square().sum()
    est, se = mean_and_stderr(slopes)
    jensen = 0.5 * float(y.diff(dim=1).var(dim=1).mean())
    tol = k_sigma(trials) * float(se) + jensen + 1e-3
    assert abs(float(est) + 1 / xi) <= tol, (float(est), -1 / xi, tol)
    assert tol < 0.1 / xi


def test_chaotic_gradient_growth_rate_is_minus_one_over_xi_grad(seed):
    r"""A tangent (or gradient) grows by e^{-1/xi_grad} = chi1 per layer in the chaotic phase.

    sigma_w2 = 2.5, sigma_b2 = 0.05 (chi1 = 1.13, xi_grad = -8.0): 64 networks of width 1000, from q*.
    Per network, the mean of log ||u^l||^2/||u^{l-1}||^2 over layers 4-20 estimates -1/xi_grad = ln chi1
    minus half the variance of that log ratio (Jensen, exact to second order; the variance is measured on
    the same runs, about 2/n per layer), which we add back. Allowance 2/n for the O(1/n) offset of chi1
    itself (see the crossing test). The tolerance is about 10 % of ln chi1 (checked: below 15 %).
    """
    sw, sb, width, depth, trials = 2.5, 0.05, 1000, 20, 64
    xi_grad = theory.gradient_depth_scale(sw, sb)
    assert xi_grad < 0  # chaotic: gradients explode
    gen = seeded(seed, 50)
    run = stats.mean_field_network(
        torch.full((trials,), sw),
        sb,
        width=width,
        depth=depth,
        q0=theory.fixed_point_q(sw, sb),
        generator=gen,
        method="gram",
        dtype=torch.float64,
    )
    log_ratio = run.chi1[:, 3:].log()
    per_net = log_ratio.mean(dim=1) + 0.5 * log_ratio.var(dim=1)
    est, se = mean_and_stderr(per_net)
    tol = k_sigma(trials) * float(se) + 2.0 / width
    assert abs(float(est) + 1 / xi_grad) <= tol, (float(est), -1 / xi_grad, tol)
    # the test has power: the tolerance is a small part of the rate (its k * stderr is itself estimated,
    # with a relative error of about 1 / sqrt(2 * 63) = 9 %, so the bound leaves room for that)
    assert tol < 0.15 * abs(1 / xi_grad)


def test_mean_field_network_validates_its_arguments():
    with pytest.raises(ValueError, match="sigma_w2"):
        stats.mean_field_network(-1.0, 0.0, width=4, depth=1)
    with pytest.raises(ValueError, match="broadcast"):
        stats.mean_field_network(torch.ones(3), torch.ones(2), width=4, depth=1)
    with pytest.raises(ValueError, match="q0"):
        stats.mean_field_network(1.0, 0.0, width=4, depth=1, q0=torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="c0"):
        stats.mean_field_network(1.0, 0.0, width=4, depth=1, c0=1.5)
    with pytest.raises(ValueError, match="method"):
        stats.mean_field_network(1.0, 0.0, width=4, depth=1, method="exact")
    with pytest.raises(TypeError, match="width"):
        stats.mean_field_network(1.0, 0.0, width=4.0, depth=1)
    run = stats.mean_field_network(torch.ones(5), 0.0, width=4, depth=0)
    assert run.q.shape == (5, 1)
    assert run.chi1.shape == (5, 0)
