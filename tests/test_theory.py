r"""Tests for initbook.theory: exact facts, bad inputs, and every formula against Monte Carlo.

How the Monte-Carlo tolerances are chosen
-----------------------------------------
A statistical test compares an estimate :math:`\hat\mu` (the mean of ``n`` independent per-trial values,
from :func:`initbook.stats.monte_carlo`) with a prediction :math:`\mu` and passes when

.. math:: |\hat\mu - \mu| \le k\,\widehat{\operatorname{se}} \; (+ \text{a stated systematic allowance}).

``k`` is not a guess: it is fixed by the false-failure rate we accept for a *correct* formula,
``P_FALSE = 5.7e-7`` per comparison, the two-sided normal tail beyond 5 standard errors. Because the
standard error is itself estimated from the ``n`` trials, ``k`` is the Student-t quantile with ``n - 1``
degrees of freedom (5.03 for n = 1000, 5.57 for n = 64, 8.27 for n = 16), which tends to 5 for large
``n`` (``k_sigma`` and ``assert_agrees`` in ``tests/_stats.py``, shared by every statistical test file). Per-trial values are themselves averages over many units, so they are close to normal and the
t/normal quantile is accurate in the tail we use. A test that compares a vector of ``m`` estimates (one
per layer, say) fails falsely with probability at most ``m * P_FALSE`` (union bound); the largest ``m``
here is 40, so every test in this module has a false-failure rate below 3e-5, and the suite as a whole
below 1e-3. Every draw comes from a :class:`torch.Generator` seeded by the ``seed`` fixture (the test's
node id, shifted by ``INITBOOK_TEST_SEED``), so the outcome is reproducible: the rate above is the chance
that a *different* seed would have failed a correct formula.

The overflow and underflow steps at the end are not means: the measured median step must lie within one
step of the prediction, with an error budget derived there. The budget leaves no room for an estimate of
its false-failure rate, so the rate of those 16 tests is the one measured over the seeds
``INITBOOK_TEST_SEED=0..20`` (0 failures in 336 runs).

Where a prediction is exact only for infinite width (the mean-field theory), the systematic difference
at width ``n`` is of order ``1/n``; each such test says how large it is and why the allowance covers it.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate

from initbook import stats, theory
from tests._stats import assert_agrees, k_sigma, matmul_flushes_subnormals, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------------------
# Exact facts
# ---------------------------------------------------------------------------------------------------------


def test_sum_and_rectifier_moments_exact():
    assert theory.sum_variance(512, 1 / 512, 1.0) == 1.0
    assert theory.sum_variance(10, 0.3, 2.0) == pytest.approx(6.0, rel=1e-15)
    assert theory.relu_second_moment(1.0) == 0.5
    assert theory.relu_second_moment(3.0) == 1.5
    assert theory.leaky_relu_second_moment(2.0, 0.0) == theory.relu_second_moment(2.0)
    assert theory.leaky_relu_second_moment(2.0, 1.0) == 2.0  # slope 1: the identity
    assert theory.leaky_relu_second_moment(1.0, -1.0) == 1.0  # slope -1: |y|
    assert theory.relu_mean_gaussian(2 * math.pi) == 1.0
    # Var = E[relu^2] - E[relu]^2
    for v in (0.5, 1.0, 7.0):
        expected = theory.relu_second_moment(v) - theory.relu_mean_gaussian(v) ** 2
        assert theory.relu_variance_gaussian(v) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("fan", [1, 3, 64, 256, 1000])
def test_initializer_scales_exact(fan):
    assert theory.kaiming_std(fan) == pytest.approx(math.sqrt(2 / fan), rel=1e-15)
    assert theory.kaiming_std(fan, nonlinearity="relu") == pytest.approx(math.sqrt(2 / fan))
    assert theory.kaiming_std(fan, a=0.2) == pytest.approx(math.sqrt(2 / (1.04 * fan)))
    assert theory.kaiming_std(fan, nonlinearity="tanh") == pytest.approx(5 / 3 / math.sqrt(fan))
    assert theory.kaiming_std(fan, nonlinearity="selu") == pytest.approx(0.75 / math.sqrt(fan))
    assert theory.kaiming_std(fan, a=5.0, nonlinearity="linear") == pytest.approx(
        1 / math.sqrt(fan)
    )
    assert theory.lecun_std(fan) == pytest.approx(1 / math.sqrt(fan), rel=1e-15)
    assert theory.xavier_std(fan, fan) == pytest.approx(theory.lecun_std(fan), rel=1e-15)
    assert theory.xavier_std(fan, 3 * fan, gain=2.0) == pytest.approx(2 * math.sqrt(2 / (4 * fan)))
    assert theory.uniform_bound(theory.lecun_std(fan)) == pytest.approx(math.sqrt(3 / fan))
    # torch's default: kaiming_uniform_(a=sqrt(5)), derived step by step here, not taken from the code
    gain = math.sqrt(2.0 / (1.0 + math.sqrt(5) ** 2))
    assert gain == pytest.approx(math.sqrt(1 / 3), rel=1e-15)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    assert theory.torch_default_bound(fan) == pytest.approx(bound, rel=1e-14)
    assert theory.torch_default_bound(fan) == 1 / math.sqrt(fan)


def test_torch_default_bound_matches_torch_kaiming_uniform(seed):
    """torch's own kaiming_uniform_(a=sqrt(5)) stays within the bound and has variance bound**2 / 3."""
    fan_in, fan_out = 300, 400
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=seeded(seed, 0))
    bound = theory.torch_default_bound(fan_in)
    assert w.abs().max() <= bound
    # P(max < 0.999 bound) = 0.999**120000 ~ 1e-52
    assert w.abs().max() > 0.999 * bound
    # the mean of w**2 estimates bound**2 / 3; Var[w**2] = bound**4 (1/5 - 1/9) for a uniform w
    k = w.numel()
    se = bound**2 * math.sqrt((1 / 5 - 1 / 9) / k)
    assert abs(float(w.square().mean()) - bound**2 / 3) <= k_sigma(k) * se


def test_gauss_hermite_integrates_normal_moments_exactly():
    z, w = theory.gauss_hermite(8)  # exact up to degree 15
    assert z.dtype == w.dtype == torch.float64
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-14)
    for p in range(16):
        exact = 0.0 if p % 2 else float(math.prod(range(p - 1, 0, -2)))  # (p-1)!!
        scale = float((w * z.abs() ** p).sum())  # rounding error is relative to the terms' size
        assert float((w * z**p).sum()) == pytest.approx(exact, abs=1e-13 * scale), p
    z1, w1 = theory.gauss_hermite(1)
    assert z1.tolist() == [0.0]
    assert w1.tolist() == [1.0]


def _tanh_reference(f, q):
    """E[f(sqrt(q) z)] by adaptive quadrature (scipy), the independent reference."""
    density = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return integrate.quad(lambda z: f(math.sqrt(q) * z) * density(z), -40, 40, limit=400)[0]


@pytest.mark.parametrize("q", [0.01, 0.5, 2.0, 8.0, 30.0])
def test_tanh_expectations_match_adaptive_quadrature(q):
    """The quadrature behind length_map and chi1 is accurate also where the integrand is sharp (large q)."""
    mean_sq = _tanh_reference(lambda x: math.tanh(x) ** 2, q)
    dmean_sq = _tanh_reference(lambda x: (1 - math.tanh(x) ** 2) ** 2, q)
    assert theory.length_map(q, 1.0, 0.0, "tanh") == pytest.approx(mean_sq, rel=1e-9)
    assert theory.chi1(1.0, 0.0, "tanh", q=q) == pytest.approx(dmean_sq, rel=1e-9)
    # for small q a 101-point Gauss-Hermite rule agrees too
    if q <= 0.5:
        z, w = theory.gauss_hermite(101)
        assert float((w * torch.tanh(math.sqrt(q) * z) ** 2).sum()) == pytest.approx(
            mean_sq, rel=1e-12
        )


@pytest.mark.parametrize(
    ("name", "fn"), [("erf", lambda x: torch.erf(x)), ("relu", lambda x: x.clamp(min=0))]
)
@pytest.mark.parametrize(("q", "c"), [(0.3, 0.2), (1.0, -0.7), (2.5, 0.95)])
def test_quadrature_agrees_with_closed_forms(name, fn, q, c):
    """Callables go through quadrature and autograd; the named activations use closed forms."""
    sw, sb = 1.7, 0.2
    # the quadrature is spectrally accurate for the smooth erf; for relu's kink the symmetric grid still
    # gives the one-dimensional moments exactly, but the 2-D cross term only to a few 1e-4 (the kink lies
    # along a line through the grid), as the correlation_map docstring says
    rel = 1e-10 if name == "erf" else 2e-3
    assert theory.length_map(q, sw, sb, fn) == pytest.approx(
        theory.length_map(q, sw, sb, name), rel=1e-10
    )
    assert theory.chi1(sw, sb, fn, q=q) == pytest.approx(theory.chi1(sw, sb, name, q=q), rel=1e-10)
    assert theory.correlation_map(c, q, sw, sb, fn) == pytest.approx(
        theory.correlation_map(c, q, sw, sb, name), rel=rel
    )


def test_explicit_derivative_is_used():
    dphi = lambda x: 1 - torch.tanh(x) ** 2
    assert theory.chi1(1.5, 0.05, torch.tanh, dphi) == pytest.approx(
        theory.chi1(1.5, 0.05, "tanh"), rel=1e-12
    )
    assert theory.chi1(1.5, 0.05, lambda x: torch.tanh(x)) == pytest.approx(
        theory.chi1(1.5, 0.05, "tanh"), rel=1e-12
    )


def test_mean_field_exact_facts():
    # tanh, sigma_b2 = 0: q* = 0 for sigma_w2 <= 1, and chi1 = sigma_w2 * tanh'(0)**2 = sigma_w2 there
    assert theory.fixed_point_q(0.5, 0.0, "tanh") == 0.0
    assert theory.chi1(1.0, 0.0, "tanh") == pytest.approx(1.0, abs=1e-12)
    assert theory.chi1(0.7, 0.0, "tanh") == pytest.approx(0.7, abs=1e-12)
    assert theory.critical_sigma_w2(0.0, "tanh") == pytest.approx(1.0, abs=1e-9)
    # erf'(0)^2 = 4/pi, so with sigma_b2 = 0 the edge of chaos is at sigma_w2 = pi/4; there chi1 - 1 is
    # quadratic in sigma_w2 - pi/4 on the chaotic side, so the root is determined only to ~sqrt(eps)
    assert theory.critical_sigma_w2(0.0, "erf") == pytest.approx(math.pi / 4, abs=1e-7)
    # the critical line of Schoenholz et al. (2017) at sigma_b2 = 0.05
    assert theory.critical_sigma_w2(0.05, "tanh") == pytest.approx(1.76, abs=0.005)
    assert theory.chi1(theory.critical_sigma_w2(0.05), 0.05) == pytest.approx(1.0, abs=1e-9)
    # ReLU: chi1 = sigma_w2 / 2 for any bias, critical at He's sigma_w2 = 2; linear at 1
    assert theory.critical_sigma_w2(0.3, "relu") == 2.0
    assert theory.critical_sigma_w2(0.3, "linear") == 1.0
    assert theory.chi1(1.2, 0.7, "relu") == pytest.approx(0.6)
    assert theory.fixed_point_q(1.0, 0.5, "relu") == 1.0  # q = q/2 + 1/2
    assert theory.fixed_point_q(0.5, 0.2, "linear") == pytest.approx(0.4)
    assert theory.fixed_point_q(3.0, 0.1, "relu") == math.inf
    # ReLU with a bias in the ordered phase: q* = 0.1 / (1 - 1/2) = 0.2 > 0 and chi_c = chi1 = 1/2
    assert theory.correlation_depth_scale(1.0, 0.1, "relu") == pytest.approx(-1 / math.log(0.5))
    assert theory.correlation_depth_scale(2.0, 0.1, "relu") == math.inf
    # without a bias the ReLU correlation map is the arc-cosine map for every sigma_w2: slope 1 at c = 1,
    # a power law, no finite depth scale (see test_depth_scales_match_the_iterated_maps_at_q_star_0)
    assert theory.correlation_depth_scale(1.0, 0.0, "relu") == math.inf
    assert theory.fixed_point_c(1.0, 0.0, "relu") == 1.0
    # tanh without bias, ordered: q* = 0, correlations freeze; gradients still vanish by chi1 = sigma_w2
    assert theory.correlation_depth_scale(0.5, 0.0, "tanh") == math.inf
    assert theory.gradient_depth_scale(0.5, 0.0, "tanh") == pytest.approx(-1 / math.log(0.5))
    with pytest.raises(ValueError, match="freeze"):
        theory.fixed_point_c(0.5, 0.0, "tanh")
    with pytest.raises(ValueError, match="freeze"):
        theory.fixed_point_c(0.5, 0.0, "linear")
    with pytest.raises(ValueError, match="known only for"):
        theory.correlation_depth_scale(0.5, 0.0, lambda x: torch.sin(x))
    # odd phi without bias: in the chaotic phase c* = 0. c = -1 is a fixed point too (unstable), and at
    # sigma_w2 = 2 and 2.5 rounding made C(-1) + 1 a hair negative, which once sent the bisection there.
    for sigma_w2 in (1.2, 1.5, 2.0, 2.5, 3.0, 4.0):
        assert theory.fixed_point_c(sigma_w2, 0.0, "tanh") == pytest.approx(0.0, abs=1e-12)
        assert theory.fixed_point_c(sigma_w2, 0.0, "erf") == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("sigma_w2", "sigma_b2"), [(0.8, 0.0), (1.5, 0.05), (2.5, 0.05), (4.0, 0.5)]
)
@pytest.mark.parametrize("phi", ["tanh", "erf"])
def test_fixed_points_are_fixed(sigma_w2, sigma_b2, phi):
    q = theory.fixed_point_q(sigma_w2, sigma_b2, phi)
    assert theory.length_map(q, sigma_w2, sigma_b2, phi) == pytest.approx(q, rel=1e-11, abs=1e-13)
    # starting above or below converges to the same point
    assert theory.fixed_point_q(sigma_w2, sigma_b2, phi, q0=10.0) == pytest.approx(
        q, rel=1e-10, abs=1e-12
    )
    chi = theory.chi1(sigma_w2, sigma_b2, phi)
    if q == 0.0:  # tanh at (0.8, 0): the trivial fixed point, where correlations freeze
        with pytest.raises(ValueError, match="freeze"):
            theory.fixed_point_c(sigma_w2, sigma_b2, phi)
        assert theory.correlation_depth_scale(sigma_w2, sigma_b2, phi) == math.inf
        return
    c = theory.fixed_point_c(sigma_w2, sigma_b2, phi)
    if chi <= 1:
        assert c == 1.0
        xi = theory.correlation_depth_scale(sigma_w2, sigma_b2, phi)
        assert xi == pytest.approx(-1 / math.log(chi), rel=1e-12)
    else:
        assert c < 1.0
        assert theory.correlation_map(c, q, sigma_w2, sigma_b2, phi) == pytest.approx(c, abs=1e-11)


@pytest.mark.parametrize(
    ("sigma_w2", "sigma_b2", "phi"), [(2.5, 0.05, "tanh"), (3.0, 0.3, "tanh"), (3.0, 0.1, "erf")]
)
def test_chaotic_depth_scale_is_the_slope_of_the_correlation_map_at_c_star(sigma_w2, sigma_b2, phi):
    """chi_c = C'(c*) < 1 < chi1 in the chaotic phase; the depth scale uses chi_c, not chi1."""
    q = theory.fixed_point_q(sigma_w2, sigma_b2, phi)
    c = theory.fixed_point_c(sigma_w2, sigma_b2, phi)
    h = 1e-5
    slope = (
        theory.correlation_map(c + h, q, sigma_w2, sigma_b2, phi)
        - theory.correlation_map(c - h, q, sigma_w2, sigma_b2, phi)
    ) / (2 * h)
    assert theory.chi1(sigma_w2, sigma_b2, phi) > 1 > slope
    xi = theory.correlation_depth_scale(sigma_w2, sigma_b2, phi)
    assert xi == pytest.approx(-1 / math.log(slope), rel=1e-6)


@pytest.mark.parametrize(
    ("sigma_w2", "sigma_b2", "phi"),
    [
        (0.5, 0.05, "tanh"),  # ordered, far from the line (the chapter's training run)
        (1.2, 0.05, "tanh"),  # ordered
        (1.7, 0.05, "tanh"),  # ordered, near the critical 1.761 (xi_c = 75)
        (2.5, 0.05, "tanh"),  # chaotic: c* = 0.447, chi_c < 1 < chi1
        (0.5, 0.1, "erf"),
        (3.0, 0.1, "erf"),  # chaotic
        (1.0, 0.1, "relu"),  # q* = 0.2 > 0: the bias makes the depth scale finite
        (1.9, 0.3, "relu"),
        (0.5, 0.2, "linear"),
    ],
)
def test_correlation_depth_scale_matches_the_iterated_map(sigma_w2, sigma_b2, phi):
    r"""Iterate the correlation map at q* and measure how fast c^l approaches c*: the rate is 1/xi_c.

    Deterministic quadrature, no sampling. Starting 1e-3 from c* (on both sides in the chaotic phase),
    the map is iterated until eps_l = |c^l - c*| < 1e-7, and the last per-layer rate ln(eps_l/eps_{l-1})
    is compared with -1/xi_c. The tolerance is what is neglected. (1) The map's nonlinearity: for a
    smooth phi, C(c* + e) - c* = chi_c e + C''(c*) e^2/2 + ..., so the rate is off by about
    |C''(c*)| eps / (2 chi_c); we allow twice that, with C'' from a second difference of the map
    (step 1e-3; its quadrature error, 1e-12/1e-6, is negligible). For ReLU the map has a
    (1 - c)^{3/2} term instead, C(1 - e) = 1 - chi1 e + chi1 k e^{3/2} with k = 2 sqrt(2)/(3 pi) = 0.30,
    so the rate is off by k sqrt(eps); we allow sqrt(eps). (2) The quadrature of the map is accurate to
    about 1e-12, which moves a rate measured at distance eps by at most 2e-12/eps; we allow 4e-12/eps
    (4e-5 at eps = 1e-7). While writing this test the largest error was 2e-4 of the rate (ReLU at
    sigma_w2 = 1.9, of which k sqrt(eps) predicts 1.9e-3 relative, i.e. the bound is tight) and below
    1e-6 of the rate for the smooth activations.
    """
    q = theory.fixed_point_q(sigma_w2, sigma_b2, phi)
    c_star = theory.fixed_point_c(sigma_w2, sigma_b2, phi)
    xi = theory.correlation_depth_scale(sigma_w2, sigma_b2, phi)
    assert 0 < q < math.inf
    assert 0 < xi < math.inf

    def cmap(c):
        return theory.correlation_map(c, q, sigma_w2, sigma_b2, phi)

    h = 1e-3
    if c_star == 1.0:
        second = (cmap(1.0) - 2 * cmap(1.0 - h) + cmap(1.0 - 2 * h)) / h**2
    else:
        second = (cmap(c_star + h) - 2 * cmap(c_star) + cmap(c_star - h)) / h**2
    chi_c = math.exp(-1 / xi)
    for sign in (-1,) if c_star == 1.0 else (-1, 1):
        c, eps = c_star + sign * 1e-3, [1e-3]
        while eps[-1] > 1e-7:
            c = cmap(c)
            eps.append(abs(c - c_star))
            assert len(eps) < 2000, "no exponential approach"
        rate = math.log(eps[-1] / eps[-2])
        nonlinearity = math.sqrt(eps[-2]) if phi == "relu" else abs(second) * eps[-2] / chi_c
        tol = nonlinearity + 4e-12 / eps[-1]
        assert abs(rate + 1 / xi) <= tol, (rate, -1 / xi, tol)
        assert tol < 0.05 / xi  # the test can tell xi_c from a value 5 % off


def test_depth_scales_match_the_iterated_maps_at_q_star_0():
    r"""Erratum E1: with sigma_b2 = 0 the fixed point can be q* = 0, and then xi_c is infinite.

    *tanh, sigma_w2 = 0.5.* -1/ln chi1 = 1.44 layers was once returned as xi_c, predicting
    1 - c^40 ~ 0.9 e^{-40/1.44} ~ 1e-12. Iterating the maps shows instead that q^l <= sigma_w2^l q^0
    (tanh(x)^2 <= x^2), so the signal vanishes, while the correlation freezes: expanding tanh for small
    q gives C(c; q) = c - (2/3) c (1 - c^2) q^2 + O(q^3), so c can move by at most about
    (2/3) c0 sum_l (q^l)^2 <= (2/3) 0.1 (0.5^2 / (1 - 0.5^2)) = 0.022 in total (it moves by 0.0044).
    Gradients do vanish by chi1(q^l) -> sigma_w2 per layer: gradient_depth_scale is right there.
    The slope of the correlation map at c = 1 is chi1(q) q / V(q), which tends to 1 as q -> 0.

    *ReLU, no bias.* The correlation map is the arc-cosine map for every sigma_w2, with slope 1 at
    c = 1 and C(1 - e) = 1 - e + k e^{3/2} (k = 2 sqrt(2) / (3 pi)), so 1 - c^l ~ 4 / (k l)^2 =
    9 pi^2 / (2 l^2). The relative deviation of l^2 (1 - c^l) from 9 pi^2 / 2 falls like 1/l (2.9 %,
    1.6 %, 0.85 % at l = 1000, 2000, 4000 while writing this test); we allow 2 % at l = 4000 and
    require it to at least halve from l = 2000 on, up to 20 %.
    """
    sw = 0.5
    maps = theory.iterate_maps(0.5, 0.1, sw, 0.0, 40)
    assert theory.fixed_point_q(sw, 0.0) == 0.0
    assert float(maps.q[-1]) <= sw**40 * 0.5
    assert abs(float(maps.c[-1]) - 0.1) <= 0.022
    # frozen: the increment is ~ (q^39)^2 ~ 1e-25, below the 1.4e-17 spacing of floats near 0.1
    assert abs(float(maps.c[-1] - maps.c[-2])) <= 1e-16
    assert theory.correlation_depth_scale(sw, 0.0) == math.inf
    chi_last = theory.chi1(sw, 0.0, q=float(maps.q[-1]))
    assert chi_last == pytest.approx(math.exp(-1 / theory.gradient_depth_scale(sw, 0.0)), rel=1e-9)
    for q in (0.3, 1e-4):  # slope at c = 1 = chi1(q) q / V(q), not chi1(q)
        h = 1e-6
        slope = (1.0 - theory.correlation_map(1.0 - h, q, sw, 0.0)) / h
        predicted = theory.chi1(sw, 0.0, q=q) * q / theory.length_map(q, sw, 0.0)
        assert slope == pytest.approx(predicted, rel=1e-4)
    assert slope == pytest.approx(1.0, abs=1e-3)

    target = 9 * math.pi**2 / 2
    c = {1.0: 0.1, 2.0: 0.1, 4.0: 0.1}
    deviation = {}
    for layer in range(1, 4001):
        prev = dict(c)
        c = {s: theory.correlation_map(v, 1.0, s, 0.0, "relu") for s, v in c.items()}
        if layer in (2000, 4000):
            deviation[layer] = abs(layer**2 * (1 - c[1.0]) / target - 1)
    assert c[2.0] == pytest.approx(c[1.0], rel=1e-12)
    assert c[4.0] == pytest.approx(c[1.0], rel=1e-12)
    assert deviation[4000] < 0.02
    assert deviation[4000] < 0.6 * deviation[2000]
    assert (1 - c[1.0]) / (1 - prev[1.0]) > 0.999  # no exponential decay; chi1 = 1/2 would give 0.5
    for s in c:
        assert theory.correlation_depth_scale(s, 0.0, "relu") == math.inf
        assert theory.fixed_point_c(s, 0.0, "relu") == 1.0


def test_propagate_variance_is_the_iterated_length_map():
    n, sw, sb = 200, 1.5, 0.05
    pre, post = theory.propagate_variance(
        [n] * 6, sw / n, "tanh", sb / 1.0, input_second_moment=0.8
    )
    q = n * (sw / n) * 0.8 + sb
    for layer in range(5):
        assert pre[layer] == pytest.approx(q, rel=1e-12)
        assert post[layer] == pytest.approx((theory.length_map(q, sw, 0.0) / sw), rel=1e-12)
        q = theory.length_map(q, sw, sb)


def test_propagate_variance_per_layer_arguments():
    out = theory.propagate_variance(
        [4, 10, 20, 5],
        [0.5, 0.1, 0.2],
        ["linear", "relu", "leaky_relu"],
        bias_vars=[0.0, 1.0, 0.5],
        input_second_moment=2.0,
        negative_slope=0.5,
    )
    q1 = 4 * 0.5 * 2.0
    q2 = 10 * 0.1 * q1 + 1.0
    q3 = 20 * 0.2 * (q2 / 2) + 0.5
    assert out.pre_var == pytest.approx((q1, q2, q3))
    assert out.post_mean_sq == pytest.approx((q1, q2 / 2, 1.25 / 2 * q3))


# ---------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: theory.sum_variance(0, 1.0, 1.0), ValueError, "n must be >= 1, got 0"),
        (lambda: theory.sum_variance(4, -1.0, 1.0), ValueError, "var_w must be >= 0, got -1.0"),
        (
            lambda: theory.sum_variance(4, 1.0, True),
            TypeError,
            "mean_sq_x must be a real number, got True",
        ),
        (lambda: theory.relu_second_moment(float("nan")), ValueError, "v must be finite, got nan"),
        (lambda: theory.relu_mean_gaussian("1"), TypeError, "v must be a real number, got '1'"),
        (
            lambda: theory.leaky_relu_second_moment(1.0, None),
            TypeError,
            "slope must be a real number",
        ),
        (lambda: theory.kaiming_std(0), ValueError, "fan must be >= 1, got 0"),
        (
            lambda: theory.kaiming_std(8, nonlinearity="gelu"),
            ValueError,
            r"nonlinearity='gelu' is not one of \[",
        ),
        (lambda: theory.kaiming_std(8, a=True), TypeError, "a must be a real number, got True"),
        (lambda: theory.xavier_std(8, 2.5), TypeError, "fan_out must be an int, got 2.5"),
        (lambda: theory.lecun_std(-3), ValueError, "fan_in must be >= 1, got -3"),
        (lambda: theory.uniform_bound(-0.1), ValueError, "std must be >= 0, got -0.1"),
        (lambda: theory.torch_default_bound(1.0), TypeError, "fan_in must be an int, got 1.0"),
        (lambda: theory.gauss_hermite(0), ValueError, "n must be >= 1, got 0"),
        (lambda: theory.length_map(-1.0, 1.0, 0.0), ValueError, "q must be >= 0, got -1.0"),
        (
            lambda: theory.length_map(1.0, 1.0, 0.0, "sigmoid"),
            ValueError,
            r"phi='sigmoid' is not one of \['erf'",
        ),
        (
            lambda: theory.length_map(1.0, 1.0, 0.0, 3),
            TypeError,
            r"phi must be one of \[.*\] or a callable, got 3",
        ),
        (lambda: theory.fixed_point_q(-2.0, 0.0), ValueError, "sigma_w2 must be >= 0, got -2.0"),
        (
            lambda: theory.fixed_point_q(1.0, float("inf")),
            ValueError,
            "sigma_b2 must be finite, got inf",
        ),
        (
            lambda: theory.chi1(1.0, 0.0, "tanh", dphi="x"),
            TypeError,
            "dphi must be a callable or None, got 'x'",
        ),
        (
            lambda: theory.chi1(3.0, 0.0, lambda x: 2 * x),
            ValueError,
            "no finite fixed point for sigma_w2=3.0",
        ),
        (
            lambda: theory.correlation_map(1.5, 1.0, 1.0, 0.0),
            ValueError,
            r"c must be a correlation in \[-1, 1\], got 1.5",
        ),
        (
            lambda: theory.correlation_map(0.5, 0.0, 1.0, 0.0),
            ValueError,
            "the next layer's variance is 0 for q=0.0",
        ),
        (lambda: theory.critical_sigma_w2(-0.1), ValueError, "sigma_b2 must be >= 0, got -0.1"),
        (
            lambda: theory.critical_sigma_w2(0.0, lambda x: torch.zeros_like(x)),
            ValueError,
            "chi1 stays below 1",
        ),
        (lambda: theory.correlation_depth_scale(1.0, 0.0, None), TypeError, "phi must be one of"),
        (
            lambda: theory.propagate_variance([4], 1.0, "relu"),
            ValueError,
            r"at least one layer, got \[4\]",
        ),
        (
            lambda: theory.propagate_variance("44", 1.0, "relu"),
            TypeError,
            "widths must be a sequence of ints, got '44'",
        ),
        (
            lambda: theory.propagate_variance([4, 0], 1.0, "relu"),
            ValueError,
            r"widths\[1\] must be >= 1, got 0",
        ),
        (
            lambda: theory.propagate_variance([4, 4, 4], [1.0], "relu"),
            ValueError,
            "weight_vars must have 2 entries",
        ),
        (
            lambda: theory.propagate_variance([4, 4, 4], 1.0, ["relu", "gelu"]),
            ValueError,
            r"activations\[1\]='gelu' is not one of",
        ),
        (
            lambda: theory.propagate_variance([4, 4], [-1.0], "relu"),
            ValueError,
            r"weight_vars\[0\] must be >= 0, got -1.0",
        ),
        (
            lambda: theory.propagate_variance([4, 4], 1.0, "relu", input_second_moment=-1),
            ValueError,
            "input_second_moment must be >= 0",
        ),
    ],
)
def test_bad_arguments_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------------------
# Variance of a sum and rectifier moments against Monte Carlo
# ---------------------------------------------------------------------------------------------------------


def test_sum_variance_against_matrix_products(seed):
    """y = a @ x with zero-mean (uniform) weights and ReLU inputs: Var[y] = n Var[w] E[x^2], not n Var[w] Var[x]."""
    n, half_width = 16, 0.3  # uniform weights on [-0.3, 0.3]: Var[w] = 0.03
    var_w = half_width**2 / 3

    def sample(b, gen):
        a = (torch.rand(b, 1, n, generator=gen, dtype=torch.float64) * 2 - 1) * half_width
        x = torch.randn(b, n, 1, generator=gen, dtype=torch.float64).clamp(min=0)  # E[x^2] = 1/2
        return (a @ x).flatten()

    est = stats.monte_carlo(sample, torch.square, trials=200_000, generator=seeded(seed, 1))
    assert_agrees(est, theory.sum_variance(n, var_w, 0.5), what="E[y^2]")
    # the variance of x (1/2 - 1/(2 pi)) would predict a value far outside the tolerance
    assert not est.agrees_with(
        theory.sum_variance(n, var_w, theory.relu_variance_gaussian(1.0)), z=50
    )


@pytest.mark.parametrize("v", [0.25, 1.0, 9.0])
def test_relu_moments_against_samples(v, seed):
    def sample(b, gen):
        z = math.sqrt(v) * torch.randn(b, 2, generator=gen, dtype=torch.float64)
        r = z.clamp(min=0)
        # per trial: relu(z1), relu(z1)^2 and (relu(z1) - relu(z2))^2 / 2, an unbiased variance estimate
        return torch.stack([r[:, 0], r[:, 0] ** 2, (r[:, 0] - r[:, 1]) ** 2 / 2], dim=1)

    est = stats.monte_carlo(sample, trials=200_000, generator=seeded(seed, 2), batch=50_000)
    predicted = [
        theory.relu_mean_gaussian(v),
        theory.relu_second_moment(v),
        theory.relu_variance_gaussian(v),
    ]
    assert_agrees(est, predicted, what=f"relu moments at v={v}")


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, -0.5])
def test_leaky_relu_second_moment_needs_only_symmetry(slope, seed):
    """A uniform (symmetric, not Gaussian) input of variance v: E[phi(y)^2] = (1 + slope^2) v / 2."""
    v = 2.0
    b_half = math.sqrt(3 * v)

    def sample(b, gen):
        y = (torch.rand(b, generator=gen, dtype=torch.float64) * 2 - 1) * b_half
        return torch.nn.functional.leaky_relu(y, slope) ** 2

    est = stats.monte_carlo(sample, trials=200_000, generator=seeded(seed, 3))
    assert_agrees(est, theory.leaky_relu_second_moment(v, slope), what=f"slope {slope}")


def test_propagate_variance_against_a_simulated_mlp(seed):
    """Fresh random layers per trial; the recursion is exact at any width for linear/relu/leaky_relu.

    Non-Gaussian weights (uniform) and inputs (uniform) on purpose: only zero mean, independence and
    symmetry are needed. Compares the per-layer mean squares of pre- and post-activations, 8 estimates.
    """
    widths = [6, 16, 12, 20, 8]
    weight_vars = [0.5, 0.1, 0.2, 0.08]
    bias_vars = [0.1, 0.0, 0.3, 0.05]
    acts = ["relu", "leaky_relu", "linear", "relu"]
    slope, m0 = 0.3, 0.7
    pred = theory.propagate_variance(widths, weight_vars, acts, bias_vars, m0, negative_slope=slope)

    def uniform(shape, var, gen):  # zero-mean uniform with the given variance
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * math.sqrt(3 * var)

    def sample(b, gen):
        x = uniform((b, widths[0], 1), m0, gen)
        out = []
        for n_in, n_out, s2, b2, act in zip(
            widths, widths[1:], weight_vars, bias_vars, acts, strict=False
        ):
            y = uniform((b, n_out, n_in), s2, gen) @ x + uniform((b, n_out, 1), b2, gen)
            if act == "relu":
                x = y.clamp(min=0)
            elif act == "leaky_relu":
                x = torch.nn.functional.leaky_relu(y, slope)
            else:
                x = y
            out += [y.square().mean(dim=(1, 2)), x.square().mean(dim=(1, 2))]
        return torch.stack(out, dim=1)

    est = stats.monte_carlo(sample, trials=40_000, generator=seeded(seed, 4), batch=10_000)
    predicted = [v for pair in zip(pred.pre_var, pred.post_mean_sq, strict=True) for v in pair]
    assert_agrees(est, predicted, what="per-layer second moments")


# ---------------------------------------------------------------------------------------------------------
# Mean-field maps: one layer, exact at any width
# ---------------------------------------------------------------------------------------------------------

SILU = torch.nn.functional.silu  # a callable without a closed form: quadrature plus autograd


@pytest.mark.parametrize("phi", ["tanh", "erf", "relu", SILU])
@pytest.mark.parametrize(("q", "c"), [(0.4, 0.3), (2.0, 0.9)])
def test_one_layer_maps_against_a_random_layer(phi, q, c, seed):
    """One fresh Gaussian layer applied to exactly Gaussian pre-activations of variance q, correlation c.

    For every width n, E[mean_i y_a,i^2] = V(q) (the length map), E[mean_i y_a,i y_b,i] = C(c) V(q) (the
    correlation map times the new length), and the Jacobian J = W diag(phi'(h_a)) has
    E[||J||_F^2 / n] = sigma_w2 E[phi'(sqrt(q) z)^2] = chi1 at q. No large-width limit is involved.
    """
    n, sw, sb = 16, 1.7, 0.1
    fn = {"tanh": torch.tanh, "erf": torch.erf, "relu": torch.relu}.get(phi, phi)

    def sample(b, gen):
        z = torch.randn(b, 2, n, generator=gen, dtype=torch.float64)
        ha = math.sqrt(q) * z[:, 0]
        hb = math.sqrt(q) * (c * z[:, 0] + math.sqrt(1 - c * c) * z[:, 1])
        w = math.sqrt(sw / n) * torch.randn(b, n, n, generator=gen, dtype=torch.float64)
        bias = math.sqrt(sb) * torch.randn(b, n, generator=gen, dtype=torch.float64)
        ya = (w @ fn(ha).unsqueeze(-1)).squeeze(-1) + bias
        yb = (w @ fn(hb).unsqueeze(-1)).squeeze(-1) + bias
        hh = ha.clone().requires_grad_(True)
        (dphi,) = torch.autograd.grad(fn(hh).sum(), hh)
        jac_sq = (w.square() * dphi.square().unsqueeze(1)).sum(dim=(1, 2)) / n
        return torch.stack([ya.square().mean(-1), (ya * yb).mean(-1), jac_sq], dim=1)

    est = stats.monte_carlo(sample, trials=10_000, generator=seeded(seed, 5))
    v = theory.length_map(q, sw, sb, phi)
    predicted = [v, theory.correlation_map(c, q, sw, sb, phi) * v, theory.chi1(sw, sb, phi, q=q)]
    assert_agrees(est, predicted, what=f"one layer, phi={phi}, q={q}, c={c}")


# ---------------------------------------------------------------------------------------------------------
# Mean-field theory against deep, wide random tanh networks
# ---------------------------------------------------------------------------------------------------------


def test_wide_tanh_network_length_map_fixed_point_and_chi1(seed):
    """Width 1000, explicit weight matrices: per-layer q and the Jacobian's mean squared singular value.

    16 independent networks of depth 7 start from Gaussian pre-activations of variance q0 = 0.5 and
    approach q* = 0.418 (sigma_w2 = 1.5, sigma_b2 = 0.05). Per layer we compare the mean square of the
    pre-activations with the iterated length map, and the Jacobian's mean squared singular value
    ||W diag(phi'(h))||_F^2 / n with chi1 at the previous layer's q; at the last layer the iterated map
    is within 0.3 % of q*, so this also checks fixed_point_q and chi1(q*) (at the t quantile for 15
    degrees of freedom, the tolerance is about 10 % for q and 4 % for chi1; the exact-sampler test below
    pins both to 1 %). Finite width shifts these expectations by O(1/n), about 0.1 %, well inside that.
    """
    n, depth, sw, sb, q0 = 1000, 7, 1.5, 0.05, 0.5

    def sample(b, gen):
        h = math.sqrt(q0) * torch.randn(b, n, 1, generator=gen)
        qs, chis = [], []
        for _ in range(depth):
            w = torch.randn(b, n, n, generator=gen).mul_(math.sqrt(sw / n))
            dphi_sq = (1 - torch.tanh(h).square()).square()  # (b, n, 1): phi'(h)^2 per input unit
            chis.append((w.square().sum(dim=1, keepdim=True).mT * dphi_sq).sum(dim=(1, 2)) / n)
            h = w @ torch.tanh(h) + math.sqrt(sb) * torch.randn(b, n, 1, generator=gen)
            qs.append(h.square().mean(dim=(1, 2)))
        return torch.cat([torch.stack(qs, 1), torch.stack(chis, 1)], dim=1)

    est = stats.monte_carlo(sample, trials=16, generator=seeded(seed, 6), batch=4)
    q, q_prev, pred_q, pred_chi = q0, [], [], []
    for _ in range(depth):
        q_prev.append(q)
        q = theory.length_map(q, sw, sb)
        pred_q.append(q)
    pred_chi = [theory.chi1(sw, sb, q=qp) for qp in q_prev]
    assert_agrees(est, pred_q + pred_chi, what="q_l and chi1 per layer")
    # the last layer is at the fixed point
    q_star = theory.fixed_point_q(sw, sb)
    assert abs(pred_q[-1] - q_star) < 3e-3 * q_star
    last = stats.Estimate(est.value[depth - 1].item(), est.stderr[depth - 1].item(), est.n)
    assert_agrees(last, q_star, allowance=abs(pred_q[-1] - q_star), what="q*")
    chi_last = stats.Estimate(est.value[-1].item(), est.stderr[-1].item(), est.n)
    chi_star = theory.chi1(sw, sb)
    assert_agrees(chi_last, chi_star, allowance=abs(pred_chi[-1] - chi_star), what="chi1(q*)")


def wide_network(b, gen, *, width, depth, sigma_w2, sigma_b2, q0, corr, tangent=False):
    r"""Exact sampler of a deep random tanh network with fresh Gaussian layers, at O(width) cost per layer.

    Propagates ``k`` inputs (initial pre-activations with variance ``q0`` and correlation matrix ``corr``)
    and optionally a tangent vector (a forward-mode derivative) through ``depth`` layers
    :math:`h^\ell = W^\ell \phi(h^{\ell-1}) + b^\ell` with :math:`W_{ij} \sim \mathcal N(0, \sigma_w^2/n)`.

    Instead of drawing the n-by-n matrix, it uses that the rows :math:`w_i` of a fresh Gaussian W are i.i.d.
    :math:`\mathcal N(0, \tfrac{\sigma_w^2}{n} I)`: with :math:`X = QR` the thin QR factorisation of the
    ``n x k`` matrix of layer inputs, :math:`w_i^\top X = (Q^\top w_i)^\top R` and :math:`Q^\top w_i \sim
    \mathcal N(0, \tfrac{\sigma_w^2}{n} I_k)`. So ``Z @ R`` with Z i.i.d. normal has *exactly* the
    distribution of the network's next pre-activations given the current ones, finite-width fluctuations
    included; nothing here assumes the mean-field limit.

    Returns ``(one_minus_c, q, log_ratio)``: per layer, :math:`1 - c` between input 0 and each other input
    (``(b, depth, k-1)``, computed as :math:`\tfrac12\lVert \hat h_0 - \hat h_j\rVert^2` to keep precision
    near :math:`c = 1`), the mean square of input 0 (``(b, depth)``), and the log of the tangent's squared
    norm ratio per layer (``(b, depth)``, only with ``tangent=True``).
    """
    n, k = width, corr.shape[0]
    chol = torch.linalg.cholesky(torch.as_tensor(corr, dtype=torch.float64))
    h = math.sqrt(q0) * (torch.randn(b, n, k, generator=gen).double() @ chol.mT)
    u = torch.randn(b, n, 1, generator=gen).double()
    one_minus_c, q, log_ratio = [], [], []
    for _ in range(depth):
        x = torch.tanh(h)
        if tangent:
            x = torch.cat([x, (1 - x[..., :1].square()) * u], dim=-1)
        r = torch.linalg.qr(x, mode="r").R
        y = torch.randn(b, n, x.shape[-1], generator=gen).double() @ (math.sqrt(sigma_w2 / n) * r)
        h = y[..., :k] + math.sqrt(sigma_b2) * torch.randn(b, n, 1, generator=gen).double()
        if tangent:
            u_next = y[..., k:]
            log_ratio.append(
                torch.log(u_next.square().sum(dim=(1, 2)) / u.square().sum(dim=(1, 2)))
            )
            u = u_next
        e = h / h.norm(dim=1, keepdim=True)
        one_minus_c.append(0.5 * (e[..., :1] - e[..., 1:]).square().sum(dim=1))
        q.append(h[..., 0].square().mean(dim=1))
    lr = torch.stack(log_ratio, 1) if tangent else None
    return torch.stack(one_minus_c, 1), torch.stack(q, 1), lr


def _mean_field_correlations(c0, q0, sigma_w2, sigma_b2, depth):
    q, c, out = q0, c0, []
    for _ in range(depth):
        c = theory.correlation_map(c, q, sigma_w2, sigma_b2)
        q = theory.length_map(q, sigma_w2, sigma_b2)
        out.append(c)
    return out


def test_fixed_point_and_chi1_with_many_wide_networks(seed):
    """256 exact-sampled networks of width 1000: q* and chi1 (as the tangent norm ratio) to about 1 %.

    Starting at q0 = q*, q stays there; the per-trial value is the average over layers 3-12 of q_l and
    of ||u_l||^2 / ||u_{l-1}||^2 (the squared gradient/tangent norm ratio, whose conditional expectation
    given the previous layer is sigma_w2 * sum_i phi'(h_i)^2 u_i^2 / sum_i u_i^2, i.e. chi1 up to O(1/n)).
    The tolerance is about 1 % for q* and 0.6 % for chi1. Finite-width offsets, measured with 1000-4000
    networks while writing this test, were at most 0.5 % at n = 100 and 0.15 % at n = 1000 (O(1/n)),
    so no allowance is added.
    """
    sw, sb, depth = 1.5, 0.05, 12
    q_star, chi = theory.fixed_point_q(sw, sb), theory.chi1(sw, sb)

    def sample(b, gen):
        _, q, lr = wide_network(
            b,
            gen,
            width=1000,
            depth=depth,
            sigma_w2=sw,
            sigma_b2=sb,
            q0=q_star,
            corr=torch.eye(2),
            tangent=True,
        )
        return torch.stack([q[:, 2:].mean(1), lr[:, 2:].exp().mean(1)], dim=1)

    est = stats.monte_carlo(sample, trials=256, generator=seeded(seed, 7), batch=128)
    assert_agrees(est, [q_star, chi], what="q*, chi1")
    assert (k_sigma(est.n) * est.stderr / torch.tensor([q_star, chi])).max() < 0.02


@pytest.mark.parametrize("phase", ["ordered", "chaotic"])
def test_critical_line_separates_converging_from_decorrelating_inputs(phase, seed):
    """Just below the critical sigma_w2 two inputs become more correlated with depth, just above less.

    sigma_b2 = 0.05, critical sigma_w2 = 1.761; we use 1.761 -+ 0.3. Two inputs start with correlation
    0.9 at q = q*. Measured correlations at every 5th of 40 layers (8 estimates) must match the iterated
    correlation map, and the last one must lie above 0.9 (ordered: towards c* = 1) or below it
    (chaotic: towards c* < 1). The standard errors are 0.0005-0.001 (ordered) and 0.002-0.007
    (chaotic) with 128 networks of width n = 500, small enough to see finite width: c comes out lower
    than the mean-field value by about 0.4/n (measured with 2048 networks at n = 100 and 1000 while
    writing this test), so we allow a systematic 1/n = 0.002 on top of k standard errors.
    """
    sb, c0, depth = 0.05, 0.9, 40
    crit = theory.critical_sigma_w2(sb)
    sw = crit - 0.3 if phase == "ordered" else crit + 0.3
    q_star = theory.fixed_point_q(sw, sb)
    corr = torch.tensor([[1.0, c0], [c0, 1.0]])

    def sample(b, gen):
        omc, _, _ = wide_network(
            b, gen, width=500, depth=depth, sigma_w2=sw, sigma_b2=sb, q0=q_star, corr=corr
        )
        return 1 - omc[:, 4::5, 0]

    est = stats.monte_carlo(sample, trials=128, generator=seeded(seed, 8), batch=128)
    predicted = _mean_field_correlations(c0, q_star, sw, sb, depth)[4::5]
    assert_agrees(est, predicted, allowance=1 / 500, what=f"{phase} correlations")
    last = stats.Estimate(est.value[-1].item(), est.stderr[-1].item(), est.n)
    margin = k_sigma(est.n) * last.stderr
    if phase == "ordered":
        assert theory.chi1(sw, sb) < 1
        assert theory.fixed_point_c(sw, sb) == 1.0
        assert last.value > c0 + margin
    else:
        assert theory.chi1(sw, sb) > 1
        assert theory.fixed_point_c(sw, sb) < c0
        assert last.value < c0 - margin


def test_ordered_depth_scale_matches_the_decay_of_one_minus_c(seed):
    r"""log(1 - c_l) falls by 1/xi_c per layer; fitted per network, averaged over 64 networks of width 1000.

    sigma_w2 = 1.2, sigma_b2 = 0.05 (ordered, xi_c = 5.94). Two inputs start at c0 = 1 - 1e-3, so the
    linearisation of the correlation map around c* = 1 holds from the start (its relative correction is
    O(1 - c) <= 1e-3), and after 30 layers 1 - c is about 7e-6, far above float64 resolution. Each
    network's slope is the least-squares fit of log(1 - c_l) over layers 3-30.

    Tolerance: k * stderr of the mean slope (k = 5.57 for 64 networks; 4.7 % of 1/xi_c here), plus a
    systematic allowance 0.5 * v, with v the variance of the per-layer increments of log(1 - c),
    estimated from the same runs (about 0.005, i.e. 1.4 % of 1/xi_c). A mean of logs falls faster than
    the log of the mean by 0.5 * Var per layer (Jensen; exactly so for log-normal increments), which is
    the dominant finite-width bias: while writing this test the total offset was 0.0066 at n = 250
    (0.5 v = 0.009) and 0.0010 at n = 1000 (0.5 v = 0.0024). The resulting relative tolerance on the
    decay rate (and on xi_c) is about 6 %.
    """
    sw, sb, depth, first = 1.2, 0.05, 30, 3
    xi = theory.correlation_depth_scale(sw, sb)
    q_star = theory.fixed_point_q(sw, sb)
    c0 = 1 - 1e-3
    corr = torch.tensor([[1.0, c0], [c0, 1.0]], dtype=torch.float64)
    layers = torch.arange(first, depth + 1, dtype=torch.float64)
    centred = layers - layers.mean()

    def sample(b, gen):
        omc, _, _ = wide_network(
            b, gen, width=1000, depth=depth, sigma_w2=sw, sigma_b2=sb, q0=q_star, corr=corr
        )
        y = torch.log(omc[:, first - 1 :, 0])
        slope = (y * centred).sum(1) / centred.square().sum()
        increments_var = y.diff(dim=1).var(dim=1)
        return torch.stack([slope, increments_var], dim=1)

    est = stats.monte_carlo(sample, trials=64, generator=seeded(seed, 9), batch=64)
    slope = stats.Estimate(est.value[0].item(), est.stderr[0].item(), est.n)
    jensen = 0.5 * est.value[1].item()
    assert jensen < 0.03 / xi  # the allowance is small compared with the rate itself
    assert_agrees(slope, -1 / xi, allowance=jensen, what=f"decay rate of 1 - c (xi_c = {xi:.3f})")


def test_chaotic_depth_scale_matches_the_decay_towards_c_star(seed):
    r"""In the chaotic phase c_l approaches c* < 1 at the rate 1/xi_c with chi_c = C'(c*), not chi1.

    sigma_w2 = 2.5, sigma_b2 = 0.05: c* = 0.447, chi1 = 1.13 (> 1), xi_c = 11.8. Three inputs per network,
    with correlations c* + 0.25 and c* - 0.25 to the first; d_l = (c_l^+ - c_l^-)/2 cancels both the
    finite-width offset of c and the quadratic term of the map around c*, so d_l ~ 0.25 chi_c^l. The
    rate is the least-squares slope of log(mean d_l) over layers 1-24 from 768 networks of width 500,
    with a jackknife standard error over 32 groups (t quantile with 31 degrees of freedom). The cubic
    term of the map makes even the exact mean-field d_l decay at a slightly different fitted rate; that
    difference (5 % of 1/xi_c here, computed from correlation_map) is the systematic allowance. The
    statistical part is large, about 16 % of 1/xi_c, because chaos amplifies the per-network noise of
    d_l (starting closer to c* shrinks the curvature but not the noise, so the signal drowns); a rate
    computed from chi1 would even have the wrong sign.
    """
    sw, sb, depth, d0, groups = 2.5, 0.05, 24, 0.25, 32
    q_star, c_star = theory.fixed_point_q(sw, sb), theory.fixed_point_c(sw, sb)
    xi = theory.correlation_depth_scale(sw, sb)
    cp, cm = c_star + d0, c_star - d0
    corr = torch.tensor(
        [[1.0, cp, cm], [cp, 1.0, cp * cm], [cm, cp * cm, 1.0]], dtype=torch.float64
    )
    layers = torch.arange(1, depth + 1, dtype=torch.float64)
    centred = layers - layers.mean()

    def fit(d):
        return float((torch.log(d) * centred).sum() / centred.square().sum())

    gen = seeded(seed, 10)
    d = []
    for _ in range(768 // 128):
        omc, _, _ = wide_network(
            128, gen, width=500, depth=depth, sigma_w2=sw, sigma_b2=sb, q0=q_star, corr=corr
        )
        d.append((omc[..., 1] - omc[..., 0]) / 2)  # (c+ - c-)/2 = ((1 - c-) - (1 - c+))/2
    d = torch.cat(d)
    group_means = d.reshape(groups, -1, depth).mean(1)
    total = group_means.mean(0)
    slope = fit(total)
    jack = torch.tensor([fit((total * groups - g) / (groups - 1)) for g in group_means])
    se = math.sqrt((groups - 1) / groups * (jack - jack.mean()).square().sum())
    mean_field = torch.tensor(
        [
            (a - b) / 2
            for a, b in zip(
                _mean_field_correlations(cp, q_star, sw, sb, depth),
                _mean_field_correlations(cm, q_star, sw, sb, depth),
                strict=True,
            )
        ]
    )
    curvature = abs(fit(mean_field) + 1 / xi)
    assert curvature < 0.06 / xi
    assert theory.chi1(sw, sb) > 1
    assert abs(slope + 1 / xi) <= k_sigma(groups) * se + curvature, (slope, -1 / xi, se)
    assert k_sigma(groups) * se < 0.25 / xi  # the test can tell the rate from zero


# ---------------------------------------------------------------------------------------------------------
# Overflow and underflow steps against measurement
# ---------------------------------------------------------------------------------------------------------

# Tolerance: the measured median step must be within +-1 of the prediction. The prediction is the first
# integer above t* = (ln M - ln r0 - ln sqrt(2 ln n)) / ln g. A chain overflows at the first step where the
# log of its largest entry crosses ln M; at the median chain that log differs from the prediction's by
# delta = (error of the extreme-value factor) + (drift of ln r_t) + (noise of the median), and
# |delta| < |ln g| moves the first crossing by at most one step. _log_error_budget bounds delta:
#   * the largest of n |N(0,1)| has its median below sqrt(2 ln n) by a factor e^{-0.15} (n = 16) to
#     e^{-0.11} (n = 128), and its Gumbel spread is about 1/(2 ln 2n) <= 0.2 in log units: 0.4 in all;
#     for underflow the product of the two maxima overestimates the largest product a_ik x_k by up to
#     another factor sqrt(2 ln n) ~ e^{0.9};
#   * ln r_t drifts from t ln g by -t/(2n) (initbook.theory.log_rms_moments), with a spread sqrt(t/2n)
#     between chains, of which the median of 16 chains keeps about 1.25 sqrt(t/2n) / 4.
# The widths and scales below are chosen per dtype so that this budget stays below |ln g| (the test checks
# it; the tightest case is float64 underflow at n = 32, 4.0 < 5.2) and float64 needs at most ~150 steps.


def _log_error_budget(n, steps, underflow):
    extreme = 0.4 + (0.9 if underflow else 0.0)
    drift = steps / (2 * n)
    median_noise = 1.25 * math.sqrt(steps / (2 * n)) / math.sqrt(16)
    return extreme + drift + median_noise


_OVERFLOW_CASES = [
    (torch.float16, 16, 1.0),
    (torch.float16, 128, 1.0),
    (torch.bfloat16, 16, 10.0),
    (torch.bfloat16, 64, 1.0),
    (torch.float32, 16, 10.0),
    (torch.float32, 64, 1.0),
    (torch.float64, 16, 1e3),
    (torch.float64, 32, 1e2),
]
_UNDERFLOW_CASES = [
    (torch.float16, 16, 1e-2),
    (torch.float16, 128, 1e-2),
    (torch.bfloat16, 16, 1e-3),
    (torch.bfloat16, 64, 1e-3),
    (torch.float32, 16, 1e-3),
    (torch.float32, 64, 1e-3),
    (torch.float64, 16, 1e-4),
    (torch.float64, 32, 1e-3),
]


def _median_first_step(n, scale, dtype, condition, max_steps, gen):
    step = stats.matmul_map(n, scale=scale, trials=16, reuse=False, dtype=dtype, generator=gen)
    x0 = torch.randn(16, n, generator=gen).to(dtype)
    steps = stats.first_step(step, x0, max_steps, condition)
    assert (steps > 0).all(), steps
    return float(steps.double().median())


@pytest.mark.parametrize(("dtype", "n", "scale"), _OVERFLOW_CASES)
def test_overflow_step_against_measurement(dtype, n, scale, seed):
    predicted = theory.overflow_step(n, scale, dtype=dtype)
    assert _log_error_budget(n, predicted, False) < math.log(theory.growth_factor(n, scale))
    measured = _median_first_step(
        n, scale, dtype, "nonfinite", 2 * predicted + 10, seeded(seed, 11)
    )
    assert abs(measured - predicted) <= 1, (measured, predicted)


@pytest.mark.parametrize(("dtype", "n", "scale"), _UNDERFLOW_CASES)
def test_underflow_step_against_measurement(dtype, n, scale, seed):
    # where the CPU's product flushes subnormals (bfloat16 on AVX512-BF16), underflow comes at the
    # smallest normal value: the prediction for an input smaller by eps / 2 (see tests/_stats.py)
    flush = matmul_flushes_subnormals(dtype, n, 16)
    x_rms = torch.finfo(dtype).eps / 2 if flush else 1.0
    predicted = theory.underflow_step(n, scale, dtype=dtype, x_rms=x_rms)
    assert _log_error_budget(n, predicted, True) < -math.log(theory.growth_factor(n, scale))
    measured = _median_first_step(n, scale, dtype, "zero", 2 * predicted + 10, seeded(seed, 12))
    assert abs(measured - predicted) <= 1, (measured, predicted)
