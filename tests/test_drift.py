"""The random-walk law of ln(rms) at the critical scale (chapter 1, Eq. eq-drift) against simulation.

Tolerances: the sample mean of k i.i.d. values has standard error sd/sqrt(k), and a sample standard
deviation of k near-Gaussian values has standard error about sd/sqrt(2(k-1)). Both standard errors come
from the theory's sd, not from the sample, so the normal quantile applies: we accept Z = 5 standard
errors, a two-sided false-failure probability of 5.7e-7 per comparison (2 comparisons) under the normal
approximation (k = 400 sums of 40 log-chi-square terms are close to normal). Every draw comes from the
``seed`` fixture (``tests/_stats.py``), so ``INITBOOK_TEST_SEED`` shifts it.
"""

from __future__ import annotations

import math

import torch

from initbook import stats, theory
from tests._stats import Z, seeded


def test_log_rms_moments_match_fresh_gaussian_layers(seed):
    n, steps, trials = 64, 40, 400
    gen = seeded(seed, 11)
    step = stats.matmul_map(
        n, scale=1 / math.sqrt(n), trials=trials, reuse=False, generator=gen, dtype=torch.float64
    )
    x0 = torch.randn(trials, n, generator=gen, dtype=torch.float64)
    rms = stats.trajectory(step, x0, steps)
    log_ratio = (rms[-1] / rms[0]).log()
    mean_th, sd_th = theory.log_rms_moments(n, steps)
    assert abs(log_ratio.mean().item() - mean_th) < Z * sd_th / math.sqrt(trials)
    assert abs(log_ratio.std().item() - sd_th) < Z * sd_th / math.sqrt(2 * (trials - 1))


def test_log_rms_moments_scale_shifts_the_mean_only():
    m1, s1 = theory.log_rms_moments(100, 10)
    m2, s2 = theory.log_rms_moments(100, 10, scale=2 / math.sqrt(100))
    assert math.isclose(m2 - m1, 10 * math.log(2))
    assert s1 == s2


def test_log_rms_sd_approximation():
    # trigamma(n/2) ~ 2/n for large n, so sd ~ sqrt(t / (2n))
    _, sd = theory.log_rms_moments(10_000, 100)
    assert math.isclose(sd, math.sqrt(100 / 20_000), rel_tol=1e-3)
