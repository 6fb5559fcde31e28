r"""Statistical helpers shared by the test files: tolerances derived from a false-failure rate, seeded draws.

A statistical test compares an estimate (the mean of ``n`` independent per-trial values) with a prediction
and passes when :math:`|\hat\mu - \mu| \le k\,\widehat{\mathrm{se}} + \text{allowance}`. ``k`` is fixed by
the false-failure rate accepted for a *correct* prediction, ``P_FALSE = 5.7e-7`` per comparison (the
two-sided normal tail beyond 5 standard errors). When the standard error is itself estimated from the
``n`` values, ``k`` is the Student-t quantile with ``n - 1`` degrees of freedom (:func:`k_sigma`: 5.03 for
n = 1000, 5.57 for n = 64, 8.27 for n = 16), so the rate stays ``P_FALSE`` also for a few samples; where
the standard error is known exactly (e.g. ``sqrt(2/N) sigma^2`` for a sample of normals), ``k = Z = 5``.

Every random draw of a statistical test comes from :func:`seeded`, seeded by the ``seed`` fixture of the
root ``conftest.py`` (the test's node id, shifted by ``INITBOOK_TEST_SEED``), so a rerun with
``INITBOOK_TEST_SEED=1, 2, ...`` draws fresh samples for every test.
"""

from __future__ import annotations

import math

import torch
from scipy import stats as sps

from initbook import stats

Z = 5.0  # standard errors, where the standard error is known exactly
P_FALSE = float(2 * sps.norm.sf(Z))  # 5.7e-7: the two-sided normal tail beyond 5 standard errors


def k_sigma(n: int, p_false: float = P_FALSE) -> float:
    """The two-sided ``p_false`` quantile of Student's t with ``n - 1`` degrees of freedom."""
    return float(sps.t.ppf(1.0 - p_false / 2.0, n - 1))


def false_failure_rate(k: float, n: int | None = None) -> float:
    """``P(|T| > k)`` for Student's t with ``n - 1`` degrees of freedom (normal for ``n=None``)."""
    return float(2 * (sps.norm.sf(k) if n is None else sps.t.sf(k, n - 1)))


def estimate(values: torch.Tensor) -> stats.Estimate:
    """Mean and standard error over the first dimension (the independent trials) of ``values``."""
    values = torch.as_tensor(values, dtype=torch.float64)
    n = values.shape[0]
    mean, sd = values.mean(dim=0), values.std(dim=0)
    if mean.dim() == 0:
        return stats.Estimate(float(mean), float(sd / math.sqrt(n)), n)
    return stats.Estimate(mean, sd / math.sqrt(n), n)


def agrees(est: stats.Estimate, predicted, *, allowance=0.0, p_false: float = P_FALSE) -> bool:
    """``|estimate - predicted| <= k_sigma(n) * stderr + allowance`` for every entry."""
    predicted = torch.as_tensor(predicted, dtype=torch.float64)
    value = torch.as_tensor(est.value, dtype=torch.float64)
    stderr = torch.as_tensor(est.stderr, dtype=torch.float64)
    return bool(((value - predicted).abs() <= k_sigma(est.n, p_false) * stderr + allowance).all())


def assert_agrees(
    est: stats.Estimate, predicted, *, allowance=0.0, what: str = "", p_false: float = P_FALSE
) -> None:
    """Assert :func:`agrees`, with the numbers in the message."""
    k = k_sigma(est.n, p_false)
    assert agrees(est, predicted, allowance=allowance, p_false=p_false), (
        f"{what}: estimate {est} vs predicted {torch.as_tensor(predicted).tolist()}; "
        f"tolerance {k:.2f} x stderr + {allowance} (n={est.n})"
    )


def seeded(seed: int, stream: int = 0) -> torch.Generator:
    """An independent generator per (test seed, stream); ``seed`` is the ``seed`` fixture."""
    return torch.Generator().manual_seed((seed * 7919 + stream) % 2**63)


def matmul_flushes_subnormals(dtype: torch.dtype, n: int, trials: int) -> bool:
    """Does ``torch.matmul`` of ``(trials, n, n)`` by ``(trials, n, 1)`` flush subnormal results to zero here?

    IEEE arithmetic underflows gradually; the bfloat16 dot-product instructions of AVX512-BF16 CPUs
    (which oneDNN uses for batched bfloat16 products) flush subnormal inputs and results to zero instead,
    so there a product underflows at the smallest *normal* value. The probe: normal inputs whose exact
    product is a quarter of the smallest normal value, a subnormal that IEEE arithmetic keeps.
    """
    tiny = torch.finfo(dtype).smallest_normal
    a = torch.full((trials, n, n), 2.0 ** -(math.ceil(math.log2(n)) + 2), dtype=dtype)
    x = torch.full((trials, n, 1), tiny, dtype=dtype)
    return bool((torch.matmul(a, x) == 0).all())
