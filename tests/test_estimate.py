"""``Estimate.from_samples`` and ``Estimate.__format__``: the estimate of already drawn trials, and its text."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as sps

from initbook import stats
from tests._stats import Z, seeded


def test_from_samples_matches_monte_carlo_exactly(seed):
    """Same per-trial values, same arithmetic: the two estimates are equal to the last bit."""
    values = torch.randn(500, 3, generator=seeded(seed)) * 3.0 + 1.0
    direct = stats.Estimate.from_samples(values)
    mc = stats.monte_carlo(lambda b, g: values, trials=500)
    assert torch.equal(direct.value, mc.value)
    assert torch.equal(direct.stderr, mc.stderr)
    assert direct.n == mc.n == 500
    scalar = stats.Estimate.from_samples(values[:, 0])
    mc0 = stats.monte_carlo(lambda b, g: values[:, 0], trials=500)
    assert (scalar.value, scalar.stderr, scalar.n) == (mc0.value, mc0.stderr, mc0.n)
    assert isinstance(scalar.value, float)
    assert isinstance(scalar.stderr, float)


def test_from_samples_dim_and_sequences():
    values = torch.tensor([[1.0, 2.0, 6.0], [3.0, 4.0, 6.0]])
    by_rows = stats.Estimate.from_samples(values, dim=1)
    assert by_rows.n == 3
    assert by_rows.value.tolist() == [3.0, pytest.approx(13 / 3)]
    # sd of (1, 2, 6) is sqrt(7), so se = sqrt(7 / 3)
    assert by_rows.stderr[0].item() == pytest.approx(math.sqrt(7 / 3), rel=1e-12)
    assert torch.equal(stats.Estimate.from_samples(values, dim=-1).value, by_rows.value)
    listed = stats.Estimate.from_samples([1.0, 2.0, 6.0])
    assert (listed.value, listed.n) == (3.0, 3)
    assert listed.stderr == pytest.approx(math.sqrt(7 / 3), rel=1e-12)
    ints = stats.Estimate.from_samples(torch.tensor([1, 2, 6]))
    assert ints.value == 3.0


def test_from_samples_standard_error_has_the_right_coverage(seed):
    """Over many experiments of n = 10 draws, ``|mean - mu| <= t * se`` holds 95% of the time.

    ``t`` is Student's 97.5% quantile with 9 degrees of freedom. Power: a standard error off by a factor of
    2 (either way) gives a coverage of about 68% or 99.97%; 4,000 experiments measure the coverage to
    ±0.34% (one binomial standard error), so either is more than 25 standard errors away, while the
    tolerance for the correct rule is Z = 5 standard errors. The same for a forgotten sqrt (se = s / n).
    """
    experiments, n, mu, sigma = 4000, 10, 2.0, 3.0
    draws = mu + sigma * torch.randn(n, experiments, generator=seeded(seed), dtype=torch.float64)
    est = stats.Estimate.from_samples(draws)
    t = float(sps.t.ppf(0.975, n - 1))
    covered = ((est.value - mu).abs() <= t * est.stderr).double().mean().item()
    binomial_se = math.sqrt(0.95 * 0.05 / experiments)
    assert abs(covered - 0.95) <= Z * binomial_se, covered


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        ("1, 2, 3", {}, TypeError, "sequence of numbers"),
        (3.0, {}, TypeError, "sequence of numbers"),
        (["a", "b"], {}, TypeError, "sequence of numbers"),
        (torch.tensor([True, False]), {}, TypeError, "real floating or integer dtype"),
        (torch.ones(4), {"dim": 1}, ValueError, "dim=1 is out of range"),
        (torch.ones(4), {"dim": 1.0}, TypeError, "dim must be an int"),
        (torch.tensor(1.0), {}, ValueError, "out of range"),
        (
            torch.ones(1, 5),
            {},
            ValueError,
            "at least 2 trials along dim=0 for a standard error, got 1",
        ),
    ],
)
def test_from_samples_rejects_bad_input(values, kwargs, error, match):
    with pytest.raises(error, match=match):
        stats.Estimate.from_samples(values, **kwargs)


def test_format_spec_applies_to_value_and_stderr():
    est = stats.Estimate(0.12345, 0.00412, 100)
    assert f"{est:.3f}" == "0.123 ± 0.004"
    assert f"{est:.2e}" == "1.23e-01 ± 4.12e-03"
    assert f"{est}" == str(est) == "0.1235 ± 0.0041"
    assert f"{stats.Estimate(1234.5, 6.78, 10):.1f}" == "1234.5 ± 6.8"
    vector = stats.Estimate(torch.tensor([1.0, 2.5]), torch.tensor([0.25, 0.5]), 10)
    assert f"{vector:.2f}" == "[1.00 ± 0.25, 2.50 ± 0.50]"


def test_format_rejects_a_non_float_spec():
    with pytest.raises(ValueError, match="invalid format spec 'd' for an Estimate"):
        f"{stats.Estimate(1.5, 0.1, 10):d}"
