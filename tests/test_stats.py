"""Tests for initbook.stats: iterated maps, first-step detection, trajectories."""

from __future__ import annotations

import math

import pytest
import torch

from initbook import stats


def test_matmul_map_reuse_applies_same_matrix():
    gen = torch.Generator().manual_seed(1)
    step = stats.matmul_map(8, trials=3, reuse=True, generator=gen)
    x = torch.randn(3, 8, generator=gen)
    assert torch.equal(step(x), step(x))


def test_matmul_map_fresh_draws_new_matrices():
    gen = torch.Generator().manual_seed(1)
    step = stats.matmul_map(8, trials=3, reuse=False, generator=gen)
    x = torch.randn(3, 8, generator=gen)
    assert not torch.equal(step(x), step(x))


def test_matmul_map_is_deterministic_under_generator():
    out = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(7)
        step = stats.matmul_map(16, trials=2, reuse=False, generator=gen)
        out.append(step(torch.ones(2, 16)))
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_matmul_map_dtype(dtype):
    step = stats.matmul_map(4, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert step(torch.ones(1, 4)).dtype == dtype


def test_matmul_map_entry_variance_matches_scale():
    """The sample variance of a @ e_1 (a column of a) estimates scale**2; 4 sigma tolerance."""
    n, trials, scale = 64, 200, 0.3
    step = stats.matmul_map(
        n, scale=scale, trials=trials, generator=torch.Generator().manual_seed(3)
    )
    e1 = torch.zeros(trials, n, dtype=torch.float64)
    e1[:, 0] = 1
    col = step(e1.float()).double().flatten()
    k = col.numel()
    # Var of the sample mean of squares of N(0, s^2) is 2 s^4 / k.
    assert abs(col.pow(2).mean() - scale**2) < 4 * math.sqrt(2 * scale**4 / k)


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


def test_first_step_on_repeated_gaussian_product_matches_seed_notebooks():
    """n = 512, N(0,1): the seeds report a NaN after 28-29 multiplications."""
    gen = torch.Generator().manual_seed(0)
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
