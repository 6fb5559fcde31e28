"""Low precision: float ranges, overflow/underflow steps in 16-bit formats, rounding error, gradient flush."""

from __future__ import annotations

import math

import pytest
import torch

from initbook import stats, theory
from tests._stats import k_sigma, matmul_flushes_subnormals, seeded

# Rounding-error comparisons: the per-network relative errors are averaged over 24 networks; the estimate is
# compared with the theory using |mean - theory| <= k * stderr + model tolerance, k = k_sigma(24) = 6.83,
# the Student-t quantile (23 degrees of freedom: the standard error comes from the 24 networks) for a
# false-failure rate of 5.7e-7 per comparison (6 per test). The model tolerance (10 %) is the accuracy of
# the independent-rounding model itself (Benford-distributed significands), not a statistical allowance.
# The overflow/underflow steps (a median within one step) have no derived rate; over the seeds
# INITBOOK_TEST_SEED=0..20 none failed. Every draw comes from the seed fixture (tests/_stats.py).
MODEL_RTOL = 0.10


def test_float_ranges_exact():
    assert theory.float_range(torch.float16) == (65504.0, 2.0**-14, 2.0**-24)
    assert theory.float_range(torch.bfloat16) == ((2 - 2**-7) * 2.0**127, 2.0**-126, 2.0**-133)
    assert theory.float_range(torch.float32)[2] == 2.0**-149
    # below mu/2 rounds to zero, mu/2 itself ties to even (zero), just above mu/2 rounds up to mu
    mu = 2.0**-24
    half = torch.tensor([mu / 2, mu / 2 * (1 + 2**-10), mu], dtype=torch.float64).to(torch.float16)
    assert half.tolist() == [0.0, mu, mu]


@pytest.mark.parametrize(
    ("dtype", "p"), [(torch.float16, 11), (torch.bfloat16, 8), (torch.float32, 24)]
)
def test_unit_roundoff_bounds_the_rounding_error(dtype, p, seed):
    u = theory.unit_roundoff(dtype)
    assert u == 2.0**-p
    x = torch.rand(100_000, generator=seeded(seed, 0), dtype=torch.float64) + 0.5
    rel = ((x.to(dtype).double() - x) / x).abs()
    assert float(rel.max()) <= u
    assert float(rel.max()) > 0.9 * u  # the bound is attained, so a wrong u fails one of the two


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_overflow_step_matches_measurement(dtype, seed):
    # the predicted step is the measured median, or one step later (the extreme-value factor is a
    # leading-order estimate); checked on 32 chains with fresh matrices
    n = 128
    gen = seeded(seed, 1)
    step = stats.matmul_map(n, trials=32, reuse=False, dtype=dtype, generator=gen)
    first = stats.first_nonfinite_step(step, torch.randn(32, n, generator=gen).to(dtype), 100)
    median = float(first.double().median())
    assert (first > 0).all()
    assert theory.overflow_step(n, dtype=dtype) - median in (0.0, 1.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_underflow_step_matches_measurement(dtype, seed):
    n = 128
    gen = seeded(seed, 2)
    step = stats.matmul_map(n, scale=0.01, trials=32, reuse=False, dtype=dtype, generator=gen)
    first = stats.first_step(step, torch.randn(32, n, generator=gen).to(dtype), 200, "zero")
    assert (first > 0).all()
    # a CPU whose bfloat16 products flush subnormals underflows at the smallest normal value instead
    x_rms = torch.finfo(dtype).eps / 2 if matmul_flushes_subnormals(dtype, n, 32) else 1.0
    predicted = theory.underflow_step(n, 0.01, dtype=dtype, x_rms=x_rms)
    assert abs(predicted - float(first.double().median())) <= 1


def test_float16_breaks_sooner_than_bfloat16():
    assert theory.overflow_step(512, dtype=torch.float16) < theory.overflow_step(
        512, dtype=torch.bfloat16
    )
    assert theory.overflow_step(512, dtype=torch.bfloat16) == theory.overflow_step(512)
    under = [
        theory.underflow_step(512, 0.01, dtype=d)
        for d in (torch.float16, torch.bfloat16, torch.float32)
    ]
    assert under[0] < under[1] < under[2]


@pytest.mark.parametrize(
    ("scale", "dtype"), [(1.0, torch.float16), (0.01, torch.float16), (1.0, torch.bfloat16)]
)
def test_relu_mlp_float_limits_match_a_cast_network(scale, dtype, seed):
    n, layers = 128, 60
    gen = seeded(seed, 3)
    x = torch.randn(64, n, generator=gen).to(dtype)
    over = zero = None
    h = x
    with torch.no_grad():
        for layer in range(1, layers + 1):
            w = (torch.randn(n, n, generator=gen) * scale).to(dtype)
            h = (h if layer == 1 else torch.relu(h)) @ w.T
            if over is None and not torch.isfinite(h).all():
                over = layer
            if zero is None and (h == 0).all():
                zero = layer
            if over or zero:
                break
    pred_over, pred_zero = theory.relu_mlp_float_limits(n, scale, dtype=dtype, max_layers=layers)
    assert (over is None) == (pred_over is None)
    assert (zero is None) == (pred_zero is None)
    if over is not None:
        assert abs(over - pred_over) <= 1
    if zero is not None:
        assert abs(zero - pred_zero) <= 1


def test_he_scale_never_breaks():
    n = 256
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        assert theory.relu_mlp_float_limits(n, math.sqrt(2 / n), dtype=dtype, max_layers=1000) == (
            None,
            None,
        )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rounding_error_of_a_he_mlp(dtype, seed):
    depth, width, nets = 6, 128, 24
    gen = seeded(seed, 4)
    err = torch.zeros(nets, depth, dtype=torch.float64)
    for k in range(nets):
        x = torch.randn(64, width, generator=gen, dtype=torch.float64)
        h64, h = x, x.to(dtype)
        for layer in range(depth):
            w = torch.randn(width, width, generator=gen, dtype=torch.float64) * math.sqrt(2 / width)
            h64, h = h64 @ w.T, h @ w.to(dtype).T
            err[k, layer] = (h.double() - h64).norm() / h64.norm()
            h64, h = torch.relu(h64), torch.relu(h)
    mean, se = err.mean(0), err.std(0) / math.sqrt(nets)
    k = k_sigma(nets)
    expected = torch.tensor(
        [theory.rounding_error(l, dtype) for l in range(1, depth + 1)], dtype=torch.float64
    )
    assert ((mean - expected).abs() <= k * se + MODEL_RTOL * expected).all(), (mean, expected)
    # and the error is not that of the other 16-bit format (a factor 8 apart)
    other = torch.bfloat16 if dtype == torch.float16 else torch.float16
    wrong = torch.tensor(
        [theory.rounding_error(l, other) for l in range(1, depth + 1)], dtype=torch.float64
    )
    assert not ((mean - wrong).abs() <= k * se + MODEL_RTOL * wrong).all()


def test_float16_gradients_flush_and_loss_scaling_restores_them():
    # gradients of size 2^-27 are lost in float16; scaled by 2^10 they survive, and unscaling in float32 is exact
    g = torch.full((10,), 2.0**-27)
    assert torch.count_nonzero(g.half()) == 0
    scaled = (g * 1024).half().float() / 1024
    assert torch.equal(scaled, g)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: theory.rounding_error(-1, torch.float16),
            ValueError,
            "depth must be >= 0, got -1",
        ),
        (lambda: theory.rounding_error(3, torch.int8), ValueError, "torch.int8"),
        (lambda: theory.rounding_error(3, "float16"), TypeError, "'float16'"),
        (lambda: theory.relu_mlp_float_limits(16, 0.0), ValueError, "scale must be > 0, got 0.0"),
        (
            lambda: theory.relu_mlp_float_limits(16, 1.0, max_layers=0),
            ValueError,
            "max_layers must be >= 1",
        ),
        (lambda: theory.relu_mlp_float_limits(16.0, 1.0), TypeError, "n must be an int, got 16.0"),
        (lambda: theory.unit_roundoff(None), TypeError, "None"),
        (lambda: theory.unit_roundoff(torch.int32), ValueError, "torch.int32"),
    ],
)
def test_bad_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
