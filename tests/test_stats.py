"""Tests for initbook.stats: iterated maps, first-step detection, trajectories, moments and Monte Carlo.

Statistical checks allow Z = 5 standard errors, exact or estimated from at least 2 000 trials (where the
Student-t and normal quantiles agree to 0.1 %): 5.7e-7 per comparison, 6 comparisons in the file. The
seed-notebook check (a first non-finite step in 27..30) has no derived rate; over INITBOOK_TEST_SEED=0..20
it did not fail. Every draw comes from the ``seed`` fixture (tests/_stats.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from initbook import stats
from initbook.stats import _maps
from tests._stats import Z, seeded


def test_matmul_map_reuse_applies_same_matrix(seed):
    gen = seeded(seed, 1)
    step = stats.matmul_map(8, trials=3, reuse=True, generator=gen)
    x = torch.randn(3, 8, generator=gen)
    assert torch.equal(step(x), step(x))


def test_matmul_map_fresh_draws_new_matrices(seed):
    gen = seeded(seed, 1)
    step = stats.matmul_map(8, trials=3, reuse=False, generator=gen)
    x = torch.randn(3, 8, generator=gen)
    assert not torch.equal(step(x), step(x))


def test_matmul_map_is_deterministic_under_generator(seed):
    out = []
    for _ in range(2):
        gen = seeded(seed, 7)
        step = stats.matmul_map(16, trials=2, reuse=False, generator=gen)
        out.append(step(torch.ones(2, 16)))
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_matmul_map_dtype(dtype, seed):
    step = stats.matmul_map(4, dtype=dtype, generator=seeded(seed, 0))
    assert step(torch.ones(1, 4)).dtype == dtype


def test_matmul_map_entry_variance_matches_scale(seed):
    """The sample variance of a @ e_1 (a column of a) estimates scale**2, within Z = 5 exact standard errors."""
    n, trials, scale = 64, 200, 0.3
    step = stats.matmul_map(n, scale=scale, trials=trials, generator=seeded(seed, 3))
    e1 = torch.zeros(trials, n, dtype=torch.float64)
    e1[:, 0] = 1
    col = step(e1.float()).double().flatten()
    k = col.numel()
    # Var of the sample mean of squares of N(0, s^2) is 2 s^4 / k.
    assert abs(col.pow(2).mean() - scale**2) < Z * math.sqrt(2 * scale**4 / k)


def test_first_step_exact_float16_overflow_and_underflow():
    x0 = torch.ones(1, 3, dtype=torch.float16)
    # 2**16 = 65536 > 65504 = float16 max
    assert stats.first_step(lambda x: 2 * x, x0, 40).tolist() == [16]
    # 2**-25 rounds to zero (smallest subnormal is 2**-24)
    assert stats.first_step(lambda x: x / 2, x0, 40, "zero").tolist() == [25]
    assert stats.first_step(lambda x: x / 2, x0, 40, "nonfinite").tolist() == [-1]


def test_first_step_zero_means_initial_state():
    x0 = torch.tensor([[float("nan"), 1.0], [1.0, 1.0]])
    assert stats.first_step(lambda x: x, x0, 3, "nan").tolist() == [0, -1]


def test_first_steps_distinguishes_inf_and_nan():
    # a map that overflows to +inf only: no NaN ever appears in the entries
    x0 = torch.ones(2, 4)
    out = stats.first_steps(
        lambda x: x * 1e20, x0, 5, ("inf", "nan", "nonfinite", "std_nan", "mean_nan")
    )
    assert out["inf"].tolist() == [2, 2]
    assert out["nonfinite"].tolist() == [2, 2]
    assert out["nan"].tolist() == [-1, -1]
    # mean of all-(+inf) is +inf, not NaN; std of all-(+inf) is NaN (inf - inf)
    assert out["mean_nan"].tolist() == [-1, -1]
    assert out["std_nan"].tolist() == [2, 2]


def test_first_step_callable_condition():
    x0 = torch.zeros(3, 2)
    hit = stats.first_step(lambda x: x + 1, x0, 10, lambda x: x[..., 0] >= 4)
    assert hit.tolist() == [4, 4, 4]


def test_first_step_on_repeated_gaussian_product_matches_seed_notebooks(seed):
    """n = 512, N(0,1): the seeds report a NaN after 28-29 multiplications."""
    gen = seeded(seed, 0)
    step = stats.matmul_map(512, trials=8, reuse=True, generator=gen)
    steps = stats.first_nonfinite_step(step, torch.randn(8, 512, generator=gen), 60)
    assert set(steps.tolist()) <= {27, 28, 29, 30}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"condition": "bogus"}, ValueError, r"condition='bogus' is not one of \["),
        ({"condition": 3}, TypeError, "condition must be a string"),
        ({"max_steps": -1}, ValueError, "max_steps must be >= 0"),
        ({"max_steps": 2.5}, TypeError, "max_steps must be an int"),
        ({"max_steps": True}, TypeError, "max_steps must be an int"),
    ],
)
def test_first_step_bad_arguments(kwargs, error, match):
    args = {"step": lambda x: x, "x0": torch.ones(1, 2), "max_steps": 3, **kwargs}
    with pytest.raises(error, match=match):
        stats.first_step(**args)


def test_first_step_rejects_integer_state():
    with pytest.raises(TypeError, match="floating dtype"):
        stats.first_step(lambda x: x, torch.ones(1, 2, dtype=torch.int64), 3)


def test_first_steps_rejects_a_bare_string():
    with pytest.raises(TypeError, match="tuple of conditions"):
        stats.first_steps(lambda x: x, torch.ones(1, 2), 3, "nan")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be >= 1"),
        ({"n": 4.0}, TypeError, "n must be an int"),
        ({"n": 4, "scale": -1.0}, ValueError, "scale must be >= 0"),
        ({"n": 4, "scale": float("nan")}, ValueError, "scale must be finite"),
        ({"n": 4, "scale": True}, TypeError, "scale must be a real number"),
        ({"n": 4, "dtype": torch.int32}, ValueError, "not a supported floating dtype"),
        ({"n": 4, "dtype": "float32"}, TypeError, "must be a torch.dtype"),
        ({"n": 4, "reuse": 1}, TypeError, "reuse must be a bool"),
    ],
)
def test_matmul_map_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        stats.matmul_map(**kwargs)


def test_matmul_map_draws_what_it_always_drew(seed):
    """The random draws do not depend on how the products are computed: reuse=True draws all matrices
    once, at their first use; reuse=False draws a fresh (trials, n, n) batch at every call."""
    n, trials, scale = 16, 5, 0.5
    for reuse in (True, False):
        gen, ref = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        step = stats.matmul_map(n, scale=scale, trials=trials, reuse=reuse, generator=gen)
        x = torch.randn(trials, n, generator=gen)
        y = step(step(x))

        def draw(ref=ref):
            return torch.empty(trials, n, n).normal_(0.0, scale, generator=ref)

        x_ref = torch.randn(trials, n, generator=ref)
        if reuse:
            a1 = a2 = draw()
        else:
            a1, a2 = draw(), draw()
        assert torch.equal(x, x_ref)
        assert torch.equal(gen.get_state(), ref.get_state())

        def mv(a, v):
            return torch.einsum("tij,tj->ti", a.double(), v.double())

        # |fl(a x) - a x| <= gamma_n |a| |x| for each float32 product (Higham, Thm 3.5); two products,
        # the second of a rounded vector: 3 gamma_n |a2| |a1| |x| bounds the total to first order.
        u = 2.0**-24
        gamma = n * u / (1 - n * u)
        bound = 3 * gamma * mv(a2.abs(), mv(a1.abs(), x_ref.abs()))
        assert bool(((y.double() - mv(a2, mv(a1, x_ref))).abs() <= bound).all())


# 48*48 numbers per chain: drawn block by block; 6*6 (not a multiple of 16): all at once
@pytest.mark.parametrize("n", [48, 6])
def test_blocks_draw_the_matrices_of_one_full_draw(monkeypatch, seed, n):
    """Iterating in blocks draws the same matrices as one draw of all of them, advances the caller's
    generator exactly as that draw does, and a second use replays them without drawing again."""
    trials = 12
    monkeypatch.setattr(_maps, "_BLOCK_BYTES", 5 * n * n * 4)  # blocks of 5, 5 and 2 chains
    gen, ref = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    step = stats.matmul_map(n, scale=0.3, trials=trials, generator=gen)
    x0 = torch.randn(trials, n, generator=gen)
    assert _maps._chain_blocks(step, x0) == [slice(0, 5), slice(5, 10), slice(10, 12)]
    first = stats.trajectory(step, x0, 3, "rms")
    state_after = gen.get_state()
    x_ref = torch.randn(trials, n, generator=ref)
    a = torch.empty(trials, n, n).normal_(0.0, 0.3, generator=ref)
    assert torch.equal(state_after, ref.get_state())  # advanced by exactly one full draw
    assert torch.equal(step.fixed, a)  # the replayed matrices are the drawn ones
    assert torch.equal(gen.get_state(), state_after)  # ... and replaying drew nothing from gen
    x, rms = x_ref, [x_ref.double().pow(2).mean(-1).sqrt()]
    for _ in range(3):
        x = _maps._matvec(a, x)
        rms.append(x.double().pow(2).mean(-1).sqrt())
    assert torch.equal(first, torch.stack(rms))
    assert torch.equal(stats.trajectory(step, x0, 3, "rms"), first)  # second use: same matrices


def _big_reused_map(seed, trials=12, n=48):
    return stats.matmul_map(
        n, trials=trials, reuse=True, generator=torch.Generator().manual_seed(seed)
    )


def test_chain_blocks_only_split_large_reused_maps(monkeypatch, seed):
    step = _big_reused_map(seed)
    x0 = torch.ones(12, 48)
    matrix = 48 * 48 * 4
    monkeypatch.setattr(_maps, "_BLOCK_BYTES", 5 * matrix)
    assert _maps._chain_blocks(step, x0) == [slice(0, 5), slice(5, 10), slice(10, 12)]
    monkeypatch.setattr(_maps, "_BLOCK_BYTES", matrix // 2)  # one chain per block, never zero
    assert len(_maps._chain_blocks(step, x0)) == 12
    monkeypatch.setattr(_maps, "_BLOCK_BYTES", 12 * matrix)  # everything fits: one block
    assert _maps._chain_blocks(step, x0) == [slice(0, 12)]
    monkeypatch.setattr(_maps, "_BLOCK_BYTES", matrix)
    fresh = stats.matmul_map(
        48, trials=12, reuse=False, generator=torch.Generator().manual_seed(seed)
    )
    assert _maps._chain_blocks(fresh, x0) == [slice(0, 12)]  # splitting would reorder the draws
    assert _maps._chain_blocks(lambda x: x, x0) == [slice(0, 12)]  # any other map: all at once
    assert _maps._chain_blocks(step, torch.ones(3, 12, 48)) == [slice(0, 3)]  # not (trials, n)
    with pytest.raises(ValueError, match="reuse=True"):
        fresh.block(0, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_iterating_in_blocks_gives_the_same_result_bit_for_bit(monkeypatch, seed, dtype):
    """first_steps and trajectory return the same tensors whether the chains run together or in blocks."""
    gen = torch.Generator().manual_seed(seed)
    step = stats.matmul_map(48, scale=1e4, trials=12, reuse=True, dtype=dtype, generator=gen)
    x0 = torch.randn(12, 48, generator=gen).to(dtype)
    conditions = ("nonfinite", "inf", "nan", "mean_nan", "std_nan", "zero")
    out = {}
    for label, budget in (("together", 2**40), ("blocks", 5 * 48 * 48 * step.fixed.element_size())):
        monkeypatch.setattr(_maps, "_BLOCK_BYTES", budget)
        assert len(_maps._chain_blocks(step, x0)) == (1 if label == "together" else 3)
        out[label] = (
            stats.first_steps(step, x0, 80, conditions),
            stats.trajectory(step, x0, 40, "rms"),
            stats.trajectory(step, x0, 40, "std"),
        )
    steps_t, rms_t, std_t = out["together"]
    steps_b, rms_b, std_b = out["blocks"]
    for condition in conditions:
        assert torch.equal(steps_t[condition], steps_b[condition])
    # growth ~ 1e4 * sqrt(48) per step: every chain overflows, float64 too (after ~64 steps)
    assert bool((steps_t["nonfinite"] > 0).all())
    torch.testing.assert_close(rms_t, rms_b, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(std_t, std_b, rtol=0, atol=0, equal_nan=True)


def test_trajectory_statistics():
    x0 = torch.tensor([[3.0, -3.0, 3.0, -3.0]])
    rms = stats.trajectory(lambda x: x / 3, x0, 2)
    assert rms.shape == (3, 1)
    assert rms.dtype == torch.float64
    assert torch.allclose(rms[:, 0], torch.tensor([3.0, 1.0, 1 / 3], dtype=torch.float64))
    assert stats.trajectory(lambda x: x, x0, 1, "mean")[:, 0].tolist() == [0.0, 0.0]
    assert stats.trajectory(lambda x: x, x0, 0, "max_abs")[:, 0].tolist() == [3.0]


def test_trajectory_does_not_overflow_while_measuring():
    x0 = torch.full((1, 8), 1e30)  # squares overflow float32, not float64
    assert math.isclose(stats.trajectory(lambda x: x, x0, 0)[0, 0].item(), 1e30, rel_tol=1e-6)


def test_trajectory_bad_statistic():
    with pytest.raises(ValueError, match=r"statistic='var' is not one of"):
        stats.trajectory(lambda x: x, torch.ones(1, 2), 1, "var")


# ---------------------------------------------------------------------------------------------------------
# moments, Estimate, monte_carlo
# ---------------------------------------------------------------------------------------------------------


def test_moments_of_a_tensor():
    x = torch.tensor([1.0, -1.0, 3.0, -3.0], dtype=torch.float16)
    m = stats.moments(x)
    assert (m.mean, m.mean_sq, m.count) == (0.0, 5.0, 4)
    assert m.std == pytest.approx(math.sqrt(20 / 3), rel=1e-15)
    assert isinstance(m.mean, float)
    # integer tensors are fine; squares are taken in float64, so large float32 values do not overflow
    assert stats.moments(torch.arange(5)).mean == 2.0
    assert stats.moments(torch.full((3,), 1e30)).mean_sq == pytest.approx(1e60, rel=1e-6)
    single = stats.moments(torch.tensor([2.0]))
    assert math.isnan(single.std)
    assert single.mean_sq == 4.0


def test_moments_along_dimensions():
    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    m = stats.moments(x, dim=(0, 2))
    assert m.count == 8
    assert m.mean.dtype == torch.float64
    assert torch.allclose(m.mean, x.double().mean(dim=(0, 2)))
    assert torch.allclose(m.std, x.double().std(dim=(0, 2)))
    assert torch.allclose(m.mean_sq, x.double().square().mean(dim=(0, 2)))
    assert torch.equal(stats.moments(x, dim=-1).mean, stats.moments(x, dim=2).mean)
    assert stats.moments(x, dim=[1]).count == 3
    assert torch.isnan(stats.moments(x[:, :1], dim=1).std).all()


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (
            (torch.ones(2, 3), 2),
            ValueError,
            r"dim=2 is out of range for a tensor with 2 dimensions",
        ),
        ((torch.ones(2, 3), (0, -2)), ValueError, r"dim=\(0, -2\) names a dimension twice"),
        ((torch.ones(2, 3), 1.0), TypeError, "dim must be None, an int or a non-empty sequence"),
        ((torch.ones(2, 3), ()), TypeError, "dim must be None, an int or a non-empty sequence"),
        ((torch.ones(2, 3), True), TypeError, "dim must be None, an int or a non-empty sequence"),
        (([1.0, 2.0],), TypeError, "x must be a torch.Tensor, got list"),
        (
            (torch.ones(2, dtype=torch.bool),),
            TypeError,
            "real floating or integer dtype, got torch.bool",
        ),
        ((torch.ones(0),), ValueError, r"x must not be empty, got a tensor of shape \(0,\)"),
    ],
)
def test_moments_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        stats.moments(*args)


def test_estimate_interval_string_and_agreement():
    est = stats.Estimate(0.49987, 0.00123, 1000)
    assert str(est) == "0.4999 ± 0.0012"
    lo, hi = est.ci(0.95)
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * 0.00123, rel=1e-12)
    assert est.ci(0.6827)[1] - est.value == pytest.approx(0.00123, rel=1e-3)  # one sigma
    assert est.agrees_with(0.5)
    assert not est.agrees_with(0.51)
    assert est.agrees_with(0.51, z=10)
    assert est.z_score(0.5) == pytest.approx((0.49987 - 0.5) / 0.00123)
    assert str(stats.Estimate(1234.5, 12.3, 10)) == "1234 ± 12"
    assert str(stats.Estimate(2.0, 0.0, 10)) == "2 ± 0"
    assert stats.Estimate(2.0, 0.0, 10).z_score(2.0) == 0.0
    assert stats.Estimate(2.0, 0.0, 10).z_score(1.0) == math.inf
    f64 = torch.float64
    vec = stats.Estimate(
        torch.tensor([1.0, 2.0], dtype=f64), torch.tensor([0.1, 0.01], dtype=f64), 5
    )
    assert str(vec) == "[1.00 ± 0.10, 2.000 ± 0.010]"
    assert vec.agrees_with(torch.tensor([1.2, 2.0]), z=3)
    assert not vec.agrees_with(torch.tensor([1.0, 2.1]), z=3)
    with pytest.raises(ValueError, match=r"level must be strictly between 0 and 1, got 1\.5"):
        est.ci(1.5)


def _normal_pairs(b, gen):
    return torch.randn(b, 2, generator=gen, dtype=torch.float64)


def test_monte_carlo_mean_and_stderr(seed):
    """E[z1 * z2] = 0 and E[z1^2] = 1; the standard errors are sqrt(1/n) and sqrt(2/n)."""
    n = 40_000

    def stat(s):
        return torch.stack([s[:, 0] * s[:, 1], s[:, 0] ** 2], dim=1)

    est = stats.monte_carlo(_normal_pairs, stat, n, generator=seeded(seed, 0))
    assert est.n == n
    assert est.value.shape == (2,)
    assert est.agrees_with(torch.tensor([0.0, 1.0]))  # 5 standard errors
    # the standard error is itself estimated: its relative error is about 1/sqrt(2n) (z1 z2), and
    # sqrt(Var[z^4 - 1] / (4 n Var[z^2]^2)) = sqrt(96 / (16 n)) for z^2; 5 of those
    expected = torch.tensor([math.sqrt(1 / n), math.sqrt(2 / n)], dtype=torch.float64)
    rel = torch.tensor([5 / math.sqrt(2 * n), 5 * math.sqrt(96 / (16 * n))], dtype=torch.float64)
    assert ((est.stderr / expected - 1).abs() <= rel).all()


def test_monte_carlo_is_deterministic_and_batching_keeps_the_statistics(seed):
    def run(batch):
        return stats.monte_carlo(
            _normal_pairs,
            "mean_sq",
            10_001,
            generator=seeded(seed, 3),
            batch=batch,
        )

    a, b = run(None), run(None)
    assert (a.value, a.stderr) == (b.value, b.stderr)
    # batched accumulation (Chan's update) equals the one-pass mean and variance of the same values
    values = torch.cat(
        [
            _normal_pairs(k, g).square().mean(dim=1)
            for g in [seeded(seed, 3)]
            for k in (4_000, 4_000, 2_001)
        ]
    )
    c = run(4_000)
    assert c.value == pytest.approx(float(values.mean()), rel=1e-13)
    assert c.stderr == pytest.approx(float(values.std() / math.sqrt(values.numel())), rel=1e-10)


def test_monte_carlo_named_statistics(seed):
    gen = seeded(seed, 4)
    est = stats.monte_carlo(
        lambda b, g: torch.randn(b, 8, 8, generator=g), "mean", 2_000, generator=gen
    )
    # each trial averages 64 standard normals: standard error 1 / sqrt(64 * 2000)
    assert est.agrees_with(0.0)
    assert est.stderr == pytest.approx(1 / math.sqrt(64 * 2_000), rel=0.2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sample_fn": 3}, TypeError, "sample_fn must be callable, got 3"),
        (
            {"statistic": "median"},
            ValueError,
            r"statistic='median' is not one of \['mean', 'mean_sq'\]",
        ),
        ({"statistic": 2}, TypeError, "statistic must be None, a name or a callable, got 2"),
        ({"trials": 1}, ValueError, "trials must be >= 2, got 1"),
        ({"trials": 10.0}, TypeError, "trials must be an int"),
        ({"batch": 0}, ValueError, "batch must be >= 1, got 0"),
        ({"generator": 5}, TypeError, "generator must be a torch.Generator or None, got 5"),
        (
            {"sample_fn": lambda b, g: [1.0] * b},
            TypeError,
            "sample_fn must return a torch.Tensor, got list",
        ),
        (
            {"sample_fn": lambda b, g: torch.ones(3)},
            ValueError,
            r"leading dimension 10 .* got shape \(3,\)",
        ),
        ({"statistic": lambda s: s.sum()}, ValueError, r"got shape \(\)"),
    ],
)
def test_monte_carlo_bad_arguments(kwargs, error, match):
    args = {"sample_fn": lambda b, g: torch.ones(b), "trials": 10, **kwargs}
    with pytest.raises(error, match=match):
        stats.monte_carlo(**args)
