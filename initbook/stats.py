r"""Measurement: iterate maps, find the step where they break, and summarise what flows through them.

The book's first experiment is the iterated map :math:`x_{t} = a_t x_{t-1}` with random matrices
:math:`a_t`: a deep linear network with no nonlinearity. This module builds such maps for many independent
chains at once (one batched matrix product per step instead of a Python loop over seeds) and measures them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from ._validation import check_choice, check_float_dtype, check_float_tensor, check_int, check_real

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "Condition",
    "Estimate",
    "LayerStats",
    "Moments",
    "Statistic",
    "Trace",
    "first_nonfinite_step",
    "first_step",
    "first_steps",
    "matmul_map",
    "moments",
    "monte_carlo",
    "trace",
    "trajectory",
]

Condition = Literal["nonfinite", "inf", "nan", "mean_nan", "std_nan", "zero"]
Statistic = Literal["rms", "mean", "std", "max_abs"]


def _per_chain(x: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``reduce`` to each chain's 1-D vector separately, as ``x.std()`` on a single vector does.

    A reduction over the last dimension of a batch (``x.std(dim=-1)``) runs a different kernel, with a
    different summation order, than the same reduction of a 1-D tensor; near the overflow threshold the
    two can disagree about NaN. The seed notebooks reduce 1-D vectors, so this does too.
    """
    flat = x.reshape(-1, x.shape[-1])
    return torch.stack([reduce(row) for row in flat]).reshape(x.shape[:-1])


_CONDITIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # any entry is inf or NaN
    "nonfinite": lambda x: ~torch.isfinite(x).all(dim=-1),
    # any entry is +-inf
    "inf": lambda x: torch.isinf(x).any(dim=-1),
    # any entry is NaN: NaN is the only value that is not equal to itself
    "nan": lambda x: (x != x).any(dim=-1),  # noqa: PLR0124 (the point: NaN != NaN)
    # the seeds' checks: the statistic of each chain's 1-D vector, computed in its own dtype, is NaN
    "mean_nan": lambda x: _per_chain(x, torch.mean).isnan(),
    "std_nan": lambda x: _per_chain(x, torch.std).isnan(),
    # every entry is exactly zero (underflow)
    "zero": lambda x: (x == 0).all(dim=-1),
}

_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rms": lambda x: x.pow(2).mean(dim=-1).sqrt(),
    "mean": lambda x: x.mean(dim=-1),
    "std": lambda x: x.std(dim=-1),
    "max_abs": lambda x: x.abs().amax(dim=-1),
}


def matmul_map(
    n: int,
    *,
    scale: float = 1.0,
    trials: int = 1,
    reuse: bool = True,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""Build the map :math:`x \mapsto a\,x` for ``trials`` independent chains of width ``n``.

    Each chain has its own matrix with i.i.d. entries :math:`a_{ik} \sim \mathcal N(0, \text{scale}^2)`.
    With ``reuse=True`` every call applies the *same* matrices (power iteration, as in the seed
    notebooks' ``for i in range(100): x = a @ x``); with ``reuse=False`` every call draws fresh ones,
    which is what a deep network with independently initialised layers does.

    Args:
        n: width of the square matrices.
        scale: standard deviation of the entries (``1.0``, ``0.01`` and ``1/sqrt(n)`` in the book).
        trials: number of independent chains, computed together as one batched product.
        reuse: apply the same matrix at every step (``True``) or fresh matrices (``False``).
        dtype: floating dtype of matrices and products.
        generator: source of randomness; pass a seeded :class:`torch.Generator` for reproducible runs.

    Returns:
        A function mapping a ``(trials, n)`` tensor to the ``(trials, n)`` tensor :math:`a\,x`.

    Examples:
        >>> gen = torch.Generator().manual_seed(0)
        >>> step = initbook.stats.matmul_map(4, trials=3, generator=gen)
        >>> x = torch.ones(3, 4)
        >>> step(x).shape
        torch.Size([3, 4])
        >>> torch.equal(step(x), step(x))  # the same matrices every call
        True
    """
    check_int("n", n, minimum=1)
    check_int("trials", trials, minimum=1)
    scale = check_real("scale", scale, nonnegative=True)
    check_float_dtype("dtype", dtype)
    if not isinstance(reuse, bool):
        raise TypeError(f"reuse must be a bool, got {reuse!r}")

    def draw() -> torch.Tensor:
        a = torch.empty(trials, n, n, dtype=torch.float32).normal_(0.0, scale, generator=generator)
        return a.to(dtype)

    fixed = draw() if reuse else None

    def step(x: torch.Tensor) -> torch.Tensor:
        a = fixed if fixed is not None else draw()
        return torch.matmul(a, x.to(dtype).unsqueeze(-1)).squeeze(-1)

    return step


def first_step(
    step: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    max_steps: int,
    condition: Condition | Callable[[torch.Tensor], torch.Tensor] = "nonfinite",
) -> torch.Tensor:
    r"""Iterate :math:`x_t = \text{step}(x_{t-1})` and return the first step at which ``condition`` holds.

    The last dimension of ``x0`` is the feature dimension; all leading dimensions are independent chains
    (trials), and the condition is evaluated per chain.

    Conditions:

    ``"nonfinite"``
        some entry is ``inf`` or ``NaN`` (:func:`torch.isfinite`);
    ``"inf"``
        some entry is :math:`\pm\infty`;
    ``"nan"``
        some entry is NaN, detected as ``x != x`` (NaN is the one value not equal to itself);
    ``"mean_nan"`` / ``"std_nan"``
        the seed notebooks' checks ``x.mean() != x.mean()`` and ``x.std() != x.std()``, applied to each
        chain's 1-D vector in its own dtype: they fire when the *statistic* is NaN, which need not be the
        step of the first non-finite entry (the statistic's own float sum can overflow first, and an
        all-``+inf`` vector has mean ``inf``, not NaN);
    ``"zero"``
        every entry is exactly ``0`` (underflow);

    or a callable mapping the ``(..., n)`` state to a boolean tensor of shape ``(...)``.

    Args:
        step: the map, applied to the whole batch of chains at once.
        x0: initial state, shape ``(..., n)``, floating point.
        max_steps: the largest number of steps to try.
        condition: one of the names above or a callable.

    Returns:
        A ``torch.int64`` tensor of shape ``x0.shape[:-1]``: the 1-based step :math:`t` at which the
        condition first held for :math:`x_t`, or ``-1`` for chains where it never held within ``max_steps``.
        Step ``0`` means the condition already held for ``x0``.

    Raises:
        ValueError: unknown ``condition`` or ``max_steps < 0``.
        TypeError: ``x0`` is not a floating tensor, or ``condition``/``max_steps`` have the wrong type.

    Examples:
        Doubling overflows float16 (largest value 65504) on the 16th step, since :math:`2^{16} > 65504`:

        >>> x0 = torch.ones(1, 3, dtype=torch.float16)
        >>> initbook.stats.first_step(lambda x: 2 * x, x0, max_steps=40)
        tensor([16])

        Halving reaches exactly zero on the 25th step: float16's smallest positive (subnormal) value is
        :math:`2^{-24}`, and :math:`2^{-25}` rounds to zero. It never becomes non-finite:

        >>> initbook.stats.first_step(lambda x: x / 2, x0, max_steps=40, condition="zero")
        tensor([25])
        >>> initbook.stats.first_step(lambda x: x / 2, x0, max_steps=40, condition="nonfinite")
        tensor([-1])
    """
    return first_steps(step, x0, max_steps, (condition,))[condition]


def first_steps(
    step: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    max_steps: int,
    conditions: tuple[Condition | Callable[[torch.Tensor], torch.Tensor], ...] = (
        "nonfinite",
        "mean_nan",
        "std_nan",
    ),
) -> dict:
    """:func:`first_step` for several conditions on the *same* trajectories, in one pass.

    Comparing checks (``x != x`` against ``x.mean() != x.mean()``, say) on different random draws mixes
    the difference between the checks with the difference between the draws; this function evaluates all
    of them on one trajectory per chain.

    Returns:
        A dict mapping each condition (name or callable) to its tensor of first steps (see
        :func:`first_step`).

    Examples:
        >>> x0 = torch.ones(1, 3)
        >>> steps = initbook.stats.first_steps(lambda x: 1e10 * x, x0, 10, ("inf", "nan"))
        >>> steps["inf"], steps["nan"]
        (tensor([4]), tensor([-1]))
    """
    check_float_tensor("x0", x0)
    if x0.dim() < 1:
        raise ValueError("x0 must have at least one dimension (the features), got a 0-d tensor")
    check_int("max_steps", max_steps, minimum=0)
    if isinstance(conditions, str) or callable(conditions):
        raise TypeError(f"conditions must be a tuple of conditions, got {conditions!r}")
    tests = {}
    for condition in conditions:
        if callable(condition):
            tests[condition] = condition
        else:
            tests[condition] = _CONDITIONS[check_choice("condition", condition, _CONDITIONS)]
    if not tests:
        raise ValueError("conditions must name at least one condition")

    found = {key: torch.full(x0.shape[:-1], -1, dtype=torch.int64) for key in tests}
    x = x0
    for t in range(max_steps + 1):
        if t > 0:
            x = step(x)
        done = True
        for key, test in tests.items():
            hit = test(x).to(torch.bool).reshape(found[key].shape)
            found[key] = torch.where((found[key] < 0) & hit, t, found[key])
            done = done and bool((found[key] >= 0).all())
        if done:
            break
    return found


def first_nonfinite_step(
    step: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, max_steps: int
) -> torch.Tensor:
    """The first step at which some entry of the iterated state is ``inf`` or ``NaN``.

    Shorthand for :func:`first_step` with ``condition="nonfinite"``; see there for the arguments.

    Examples:
        >>> x0 = torch.ones(2, 5)
        >>> initbook.stats.first_nonfinite_step(lambda x: 1e10 * x, x0, max_steps=10)
        tensor([4, 4])
    """
    return first_step(step, x0, max_steps, "nonfinite")


def trajectory(
    step: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    statistic: Statistic = "rms",
) -> torch.Tensor:
    r"""Iterate ``step`` from ``x0`` and record a statistic of the state after every step.

    The statistic is computed in float64 from the state's values, so that measuring a large (but finite)
    float32 state does not itself overflow: the root mean square of entries of size :math:`10^{30}`
    involves squares of size :math:`10^{60}`.

    Args:
        step: the map (applied to all chains at once).
        x0: initial state, shape ``(..., n)``.
        steps: number of steps.
        statistic: ``"rms"`` (:math:`\sqrt{\tfrac1n\sum_i x_i^2}`), ``"mean"``, ``"std"`` (Bessel-corrected)
            or ``"max_abs"``.

    Returns:
        A float64 tensor of shape ``(steps + 1, *x0.shape[:-1])``; row ``t`` is the statistic of
        :math:`x_t`, row 0 that of ``x0``. Once a chain is non-finite its entries are ``inf`` or ``nan``.

    Examples:
        >>> x0 = torch.full((1, 4), 3.0)
        >>> rms = initbook.stats.trajectory(lambda x: x / 3, x0, steps=2)
        >>> rms.shape, rms.dtype
        (torch.Size([3, 1]), torch.float64)
        >>> [round(v, 4) for v in rms[:, 0].tolist()]
        [3.0, 1.0, 0.3333]
    """
    check_float_tensor("x0", x0)
    check_int("steps", steps, minimum=0)
    measure = _STATISTICS[check_choice("statistic", statistic, _STATISTICS)]
    rows = [measure(x0.double())]
    x = x0
    for _ in range(steps):
        x = step(x)
        rows.append(measure(x.double()))
    return torch.stack(rows)


# ---------------------------------------------------------------------------------------------------------
# Moments and Monte-Carlo estimates
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    r"""Sample moments of a tensor, computed in float64 (see :func:`moments`).

    Attributes:
        mean: the sample mean.
        std: the Bessel-corrected sample standard deviation (NaN when ``count < 2``).
        mean_sq: the mean of the squares, :math:`\overline{x^2}` (the second moment about zero).
        count: the number of values each moment was computed from.

    With ``dim=None`` the moments are Python floats; otherwise float64 tensors of the reduced shape.
    """

    mean: float | torch.Tensor
    std: float | torch.Tensor
    mean_sq: float | torch.Tensor
    count: int


def _check_dims(name: str, dim: object, ndim: int) -> tuple[int, ...]:
    """Return ``dim`` (an int or a sequence of ints) as a tuple of non-negative dimension indices."""
    dims = (dim,) if isinstance(dim, int) and not isinstance(dim, bool) else dim
    if not isinstance(dims, Sequence) or isinstance(dims, str) or not dims:
        raise TypeError(f"{name} must be None, an int or a non-empty sequence of ints, got {dim!r}")
    out = []
    for d in dims:
        check_int(name, d)
        if not -ndim <= d < ndim:
            raise ValueError(f"{name}={dim!r} is out of range for a tensor with {ndim} dimensions")
        out.append(d % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={dim!r} names a dimension twice")
    return tuple(out)


def moments(x: torch.Tensor, dim: int | Sequence[int] | None = None) -> Moments:
    r"""Mean, standard deviation and mean square of ``x``, computed in float64.

    .. math::
        \bar x = \frac1N\sum_i x_i, \qquad
        s = \sqrt{\frac{1}{N-1}\sum_i (x_i - \bar x)^2}, \qquad
        \overline{x^2} = \frac1N \sum_i x_i^2 .

    The book works with second moments :math:`\overline{x^2}` rather than variances: the forward recursion
    :math:`\operatorname{Var}[y] = n \operatorname{Var}[w]\,\mathbb E[x^2]` needs the second moment of the
    layer input, which differs from its variance after a ReLU.

    Args:
        x: a real tensor (any floating or integer dtype); it is converted to float64 first, so that large
            float16/float32 values do not overflow when squared.
        dim: reduce over this dimension (or these dimensions); ``None`` reduces over all of them.

    Returns:
        A :class:`Moments`; its fields are floats when ``dim is None``, float64 tensors otherwise.

    Raises:
        TypeError: ``x`` is not a real tensor, or ``dim`` is not an int or a sequence of ints.
        ValueError: ``x`` is empty, or ``dim`` is out of range.

    Examples:
        >>> m = initbook.stats.moments(torch.tensor([1.0, -1.0, 3.0, -3.0]))
        >>> m.mean, m.mean_sq, m.count
        (0.0, 5.0, 4)
        >>> round(m.std, 4)  # sqrt(20 / 3)
        2.582
        >>> initbook.stats.moments(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), dim=1).mean
        tensor([2., 2.], dtype=torch.float64)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"x must have a real floating or integer dtype, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got a tensor of shape {tuple(x.shape)}")
    xd = x.detach().to(torch.float64)
    if dim is None:
        count = xd.numel()
        mean = xd.mean()
        mean_sq = xd.square().mean()
        std = xd.std() if count > 1 else torch.tensor(math.nan, dtype=torch.float64)
        return Moments(float(mean), float(std), float(mean_sq), count)
    dims = _check_dims("dim", dim, xd.dim())
    count = math.prod(xd.shape[d] for d in dims)
    mean = xd.mean(dim=dims)
    mean_sq = xd.square().mean(dim=dims)
    std = xd.std(dim=dims) if count > 1 else torch.full_like(mean, math.nan)
    return Moments(mean, std, mean_sq, count)


def _format_estimate(value: float, stderr: float) -> str:
    """``0.4999 ± 0.0012``: the value rounded to the second significant digit of its standard error."""
    if not (math.isfinite(value) and math.isfinite(stderr)) or stderr <= 0:
        return f"{value:.6g} ± {stderr:.2g}"
    decimals = max(0, 1 - math.floor(math.log10(stderr)))
    return f"{value:.{decimals}f} ± {stderr:.{decimals}f}"


@dataclass(frozen=True)
class Estimate:
    r"""A Monte-Carlo estimate: the mean of ``n`` independent per-trial values and its standard error.

    .. math:: \hat\mu = \frac1n \sum_{t=1}^n v_t, \qquad
        \operatorname{se} = \frac{s}{\sqrt n}, \quad s^2 = \frac{1}{n-1}\sum_t (v_t - \hat\mu)^2 .

    ``value`` and ``stderr`` are floats for a scalar statistic and float64 tensors for a vector-valued one
    (one estimate per entry, e.g. one per layer).

    Examples:
        >>> est = initbook.stats.Estimate(0.49987, 0.00123, 1000)
        >>> print(est)
        0.4999 ± 0.0012
        >>> [round(v, 4) for v in est.ci(0.95)]
        [0.4975, 0.5023]
        >>> est.agrees_with(0.5), est.agrees_with(0.6)
        (True, False)
    """

    value: float | torch.Tensor
    stderr: float | torch.Tensor
    n: int

    def ci(self, level: float = 0.95) -> tuple[Any, Any]:
        r"""The normal-approximation confidence interval :math:`\hat\mu \pm z_{(1+\text{level})/2}\,\operatorname{se}`."""
        level = check_real("level", level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
        z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
        return self.value - z * self.stderr, self.value + z * self.stderr

    def z_score(self, value: float | torch.Tensor) -> float | torch.Tensor:
        """How many standard errors the estimate lies from ``value`` (signed; ``inf`` if ``stderr`` is 0)."""
        diff = self.value - value
        if isinstance(diff, torch.Tensor) or isinstance(self.stderr, torch.Tensor):
            diff = torch.as_tensor(diff, dtype=torch.float64)
            return torch.where(
                diff == 0, 0.0, diff / torch.as_tensor(self.stderr, dtype=torch.float64)
            )
        if diff == 0:
            return 0.0
        return diff / self.stderr if self.stderr > 0 else math.copysign(math.inf, diff)

    def agrees_with(self, value: float | torch.Tensor, z: float = 5.0) -> bool:
        r"""Whether :math:`|\hat\mu - \text{value}| \le z\,\operatorname{se}` (for every entry).

        With ``z = 5`` a correct ``value`` fails with probability about :math:`5.7\times10^{-7}` (two-sided
        normal tail), provided ``n`` is large enough for the standard error itself to be accurate.
        """
        z = check_real("z", z, nonnegative=True)
        diff = torch.as_tensor(self.value - value, dtype=torch.float64).abs()
        return bool((diff <= z * torch.as_tensor(self.stderr, dtype=torch.float64)).all())

    def __str__(self) -> str:
        if isinstance(self.value, torch.Tensor):
            pairs = zip(self.value.flatten().tolist(), self.stderr.flatten().tolist(), strict=True)
            return "[" + ", ".join(_format_estimate(v, s) for v, s in pairs) + "]"
        return _format_estimate(self.value, self.stderr)


_MC_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # reshape, not flatten(1): a 1-D sample (one number per trial) is valid too
    "mean": lambda x: x.reshape(x.shape[0], -1).mean(dim=1),
    "mean_sq": lambda x: x.reshape(x.shape[0], -1).square().mean(dim=1),
}


def monte_carlo(
    sample_fn: Callable[[int, torch.Generator | None], torch.Tensor],
    statistic: Literal["mean", "mean_sq"] | Callable[[torch.Tensor], torch.Tensor] | None = None,
    trials: int = 10_000,
    *,
    generator: torch.Generator | None = None,
    batch: int | None = None,
) -> Estimate:
    r"""Estimate :math:`\mathbb E[\text{statistic}(\text{sample})]` from ``trials`` independent trials, batched.

    ``sample_fn(b, generator)`` must draw ``b`` independent trials at once and return a tensor whose
    leading dimension is ``b``: one batched computation instead of a Python loop over seeds. The per-trial
    values are ``statistic(sample)`` (shape ``(b,)`` or ``(b, *rest)`` for a vector of estimates); their
    mean and standard error are accumulated in float64 over batches of at most ``batch`` trials (Chan et
    al.'s pairwise update, so batching does not lose precision).

    Args:
        sample_fn: draws a batch of trials; it must use the generator it is given for every random draw.
        statistic: ``None`` (the sample itself is the per-trial value), ``"mean"`` or ``"mean_sq"`` (the
            mean or mean square over all non-leading dimensions of each trial), or a callable mapping the
            batched sample to per-trial values.
        trials: number of independent trials, at least 2.
        generator: passed on to ``sample_fn``; a seeded generator makes the estimate reproducible.
        batch: largest number of trials per call of ``sample_fn`` (bounds memory); ``None``: all at once.

    Returns:
        An :class:`Estimate` with ``n == trials``.

    Raises:
        TypeError: ``sample_fn`` or ``statistic`` is not callable, or ``sample_fn`` returns a non-tensor.
        ValueError: fewer than 2 trials, an unknown statistic name, or per-trial values whose leading
            dimension is not the batch size.

    Examples:
        The second moment of a standard normal variable is 1:

        >>> gen = torch.Generator().manual_seed(0)
        >>> est = initbook.stats.monte_carlo(
        ...     lambda b, g: torch.randn(b, generator=g), statistic=torch.square, trials=100_000,
        ...     generator=gen, batch=30_000)
        >>> est.n, est.agrees_with(1.0)
        (100000, True)
        >>> round(est.stderr, 4)  # sqrt(Var[z^2] / n) = sqrt(2 / n)
        0.0045
    """
    if not callable(sample_fn):
        raise TypeError(f"sample_fn must be callable, got {sample_fn!r}")
    if isinstance(statistic, str):
        reduce = _MC_STATISTICS[check_choice("statistic", statistic, _MC_STATISTICS)]
    elif statistic is None or callable(statistic):
        reduce = statistic
    else:
        raise TypeError(f"statistic must be None, a name or a callable, got {statistic!r}")
    check_int("trials", trials, minimum=2)
    if batch is not None:
        check_int("batch", batch, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")

    count, mean, m2 = 0, None, None
    while count < trials:
        b = trials - count if batch is None else min(batch, trials - count)
        sample = sample_fn(b, generator)
        if not isinstance(sample, torch.Tensor):
            raise TypeError(f"sample_fn must return a torch.Tensor, got {type(sample).__name__}")
        if sample.dim() == 0:
            raise ValueError(f"sample_fn must return a batch of {b} trials, got a 0-d tensor")
        values = sample if reduce is None else reduce(sample)
        values = torch.as_tensor(values).detach().to(torch.float64)
        if values.dim() == 0 or values.shape[0] != b:
            raise ValueError(
                f"per-trial values must have leading dimension {b} (the batch size), "
                f"got shape {tuple(values.shape)}"
            )
        b_mean = values.mean(dim=0)
        b_m2 = (values - b_mean).square().sum(dim=0)
        if mean is None:
            mean, m2 = b_mean, b_m2
        else:
            total = count + b
            delta = b_mean - mean
            mean = mean + delta * (b / total)
            m2 = m2 + b_m2 + delta.square() * (count * b / total)
        count += b
    stderr = (m2 / (count - 1) / count).sqrt()
    if mean.dim() == 0:
        return Estimate(float(mean), float(stderr), count)
    return Estimate(mean, stderr, count)


# ---------------------------------------------------------------------------------------------------------
# Tracing activations and gradients through a model
# ---------------------------------------------------------------------------------------------------------

# Saturation of bounded activations: the output is within 0.01 of a bound, where the derivative is < 0.02.
_SATURATION: tuple[tuple[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]], ...] = (
    (nn.Tanh, lambda y: y.abs() > 0.99),
    (nn.Sigmoid, lambda y: (y < 0.01) | (y > 0.99)),
)


@dataclass(frozen=True)
class LayerStats:
    """One row of a :class:`Trace`: statistics of one layer's output and of the gradient reaching it.

    Moments are over all entries of the output (batch and features together), in float64, with the
    population standard deviation. Gradient fields are ``None`` when the trace ran without a backward pass,
    and NaN when the backward pass did not reach this output (or, for ``weight_grad_std``, when the module
    has no ``weight``).

    Attributes:
        name: the module's qualified name (``"(model)"`` for the root); ``name#k`` for its ``k``-th call when
            a module is called more than once.
        type: the module's class name.
        shape: shape of the output tensor (the first tensor, for modules returning tuples).
        act_mean, act_std, act_mean_sq: mean, standard deviation and second moment of the output.
        act_zero_frac: fraction of entries exactly zero (dead ReLUs).
        act_sat_frac: fraction saturated, for :class:`~torch.nn.Tanh` (:math:`|y| > 0.99`) and
            :class:`~torch.nn.Sigmoid` (:math:`y < 0.01` or :math:`y > 0.99`); NaN for other modules.
        act_max_abs: largest absolute entry.
        hist: histogram counts of the output over ``bins`` equal bins on ``[-hist_range, hist_range]``
            (``None`` when ``bins=0``); non-finite values, and values outside a fixed range, are not
            counted.
        hist_range: half-width of the histogram range.
        grad_mean, grad_std, grad_mean_sq: moments of the gradient of the loss w.r.t. the output.
        weight_grad_std: standard deviation of the gradient w.r.t. the module's ``weight``.
    """

    name: str
    type: str
    shape: tuple[int, ...]
    act_mean: float
    act_std: float
    act_mean_sq: float
    act_zero_frac: float
    act_sat_frac: float
    act_max_abs: float
    hist: tuple[int, ...] | None
    hist_range: float
    grad_mean: float | None
    grad_std: float | None
    grad_mean_sq: float | None
    weight_grad_std: float | None

    def hist_edges(self) -> torch.Tensor:
        """The ``bins + 1`` bin edges of :attr:`hist`, as a float64 tensor."""
        bins = 0 if self.hist is None else len(self.hist)
        return torch.linspace(-self.hist_range, self.hist_range, bins + 1, dtype=torch.float64)


_NUMERIC_COLUMNS = tuple(
    f.name for f in fields(LayerStats) if f.name not in ("name", "type", "shape", "hist")
)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return str(value)


@dataclass(frozen=True)
class Trace:
    """Per-layer statistics of one forward (and backward) pass, as returned by :func:`trace`.

    A tidy table: one :class:`LayerStats` row per traced module call, in call order. Index it by position or
    by layer name, iterate over its rows, get columns with :meth:`to_dict`, print it as an aligned text
    table, or plot one column with :meth:`plot`.
    """

    rows: tuple[LayerStats, ...]
    backward: bool

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in order (the fields of :class:`LayerStats`)."""
        return tuple(f.name for f in fields(LayerStats))

    def to_dict(self) -> dict[str, list]:
        """The table as ``{column: [value per row]}`` (ready for ``pandas.DataFrame``)."""
        return {c: [getattr(r, c) for r in self.rows] for c in self.columns}

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerStats]:
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> LayerStats:
        if isinstance(key, str):
            for row in self.rows:
                if row.name == key:
                    return row
            raise KeyError(f"no traced layer named {key!r}; names: {[r.name for r in self.rows]}")
        return self.rows[key]

    def table(self) -> str:
        """The aligned text table that ``str()`` and ``repr()`` show."""
        header = ("#", "layer", "type", "shape", "act mean", "act std", "zero frac", "grad std")
        body = [
            (
                str(i),
                r.name,
                r.type,
                "x".join(map(str, r.shape)),
                _fmt(r.act_mean),
                _fmt(r.act_std),
                f"{r.act_zero_frac:.3f}",
                _fmt(r.grad_std),
            )
            for i, r in enumerate(self.rows)
        ]
        widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]
        left = {1, 2, 3}  # text columns are left-aligned, numbers right-aligned

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if j in left else c.rjust(w)
                for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        title = f"Trace of {len(self.rows)} layer call(s), backward={self.backward}"
        return "\n".join([title, line(header), *(line(b) for b in body)])

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()

    def plot(self, ax: Axes | None = None, quantity: str = "act_std") -> Axes:
        """Plot one numeric column against the layer index, one marker colour per module type.

        Standard deviations, second moments and maxima are drawn on a log scale.

        Args:
            ax: the matplotlib Axes to draw into; a new figure is made when ``None``.
            quantity: a numeric column, e.g. ``"act_std"``, ``"grad_std"``, ``"act_zero_frac"``.

        Returns:
            The Axes.
        """
        check_choice("quantity", quantity, _NUMERIC_COLUMNS)
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        values = [math.nan if v is None else float(v) for v in self.to_dict()[quantity]]
        index = list(range(len(values)))
        ax.plot(index, values, color="0.75", linewidth=1, zorder=1)
        for kind in dict.fromkeys(r.type for r in self.rows):
            xs = [i for i, r in enumerate(self.rows) if r.type == kind]
            ax.plot(xs, [values[i] for i in xs], "o", markersize=4, label=kind, zorder=2)
        log_scale = any(k in quantity for k in ("std", "mean_sq", "max_abs", "range"))
        if log_scale and any(math.isfinite(v) and v > 0 for v in values):
            ax.set_yscale("log")
        ax.set(xlabel="layer (call order)", ylabel=quantity)
        if self.rows:
            ax.legend(fontsize="small")
        return ax


def _first_tensor(obj: object) -> torch.Tensor | None:
    """The first tensor in a (possibly nested) module output: a tensor, tuple, list or dict."""
    if isinstance(obj, torch.Tensor):
        return obj
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, tuple | list) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _select_layers(
    model: nn.Module, layers: Sequence[type[nn.Module] | str] | None
) -> list[tuple[str, nn.Module]]:
    named = list(model.named_modules())
    if layers is None:
        return [(n, m) for n, m in named if next(m.children(), None) is None]
    if isinstance(layers, str | type):
        layers = [layers]
    if not isinstance(layers, Sequence):
        raise TypeError(f"layers must be None or a list of module types or names, got {layers!r}")
    names, types = set(), []
    for item in layers:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, type) and issubclass(item, nn.Module):
            types.append(item)
        else:
            raise TypeError(f"layers entries must be nn.Module subclasses or names, got {item!r}")
    valid = [n for n, _ in named]
    unknown = sorted(names - set(valid))
    if unknown:
        shown = valid if len(valid) <= 20 else [*valid[:20], "..."]
        raise ValueError(
            f"layers: no submodule named {unknown[0]!r}; the model's modules are {shown}"
        )
    selected = [(n, m) for n, m in named if n in names or isinstance(m, tuple(types))]
    if not selected:
        raise ValueError(f"layers={layers!r} selects no module of the model")
    return selected


class _Scratch:
    """A reusable float64 buffer per (purpose, device): statistics of each output are computed in place in
    one copy instead of several fresh allocations (allocating and touching new 0.5 MB buffers costs more
    than the arithmetic). Hooks run one at a time, so one buffer for forward and one for backward suffice.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.device], torch.Tensor] = {}

    def empty(self, purpose: str, n: int, device: torch.device) -> torch.Tensor:
        """A 1-D float64 buffer of length ``n`` (uninitialised)."""
        key = (purpose, device)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < n:
            buf = self._buffers[key] = torch.empty(n, dtype=torch.float64, device=device)
        return buf[:n]

    def copy(self, purpose: str, t: torch.Tensor) -> torch.Tensor:
        """A 1-D float64 copy of ``t`` in the reused buffer."""
        return self.empty(purpose, t.numel(), t.device).copy_(t.detach().reshape(-1))


def _centre_and_moments(xd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population variance of a 1-D float64 tensor, two-pass (no cancellation).

    Subtracts the mean from ``xd`` in place. (``torch.var_mean`` would do this in one call, but on CPU it is
    about 10 times slower than a mean, a subtraction and a dot product.)
    """
    mean = xd.mean()
    xd.sub_(mean)
    return mean, torch.dot(xd, xd) / xd.numel()


def _histogram_inplace(
    xd: torch.Tensor, shift: torch.Tensor, bins: int, r: torch.Tensor | float, fixed: bool
) -> torch.Tensor:
    """Counts of ``xd + shift`` in ``bins`` equal bins on ``[-r, r]``; overwrites ``xd``.

    Equivalent to ``torch.histc(xd + shift, bins, -r, r)`` (which is 3 to 5 times slower on CPU, and
    needs ``r`` as a Python number, i.e. a host sync) up to values that fall exactly on a bin edge.
    Non-finite entries are not counted; with a ``fixed`` range neither are values outside it.
    """
    # u in [1, bins + 1) for values in range; slot 0 collects values below, slot bins + 1 those above
    k = bins / 2.0 / r
    u = xd.mul_(k).add_(shift * k + (bins / 2.0 + 1.0))
    top = bins + 1.0 if fixed else bins + 0.5  # own range: the maximum goes in the last bin
    torch.nan_to_num_(u, nan=-1.0, posinf=-1.0, neginf=-1.0)  # non-finite entries go to slot 0
    u.clamp_(0.0, top)  # conversion to an integer below truncates, which is floor for u >= 0
    if u.is_cpu:  # bincount of uint8 indices is the fastest CPU path (bins + 2 <= 256 slots)
        idx = u.to(torch.uint8) if bins + 2 <= 256 else u.long()
        return torch.bincount(idx, minlength=bins + 2)[1 : bins + 1]
    # on an accelerator torch.bincount synchronises with the host to size its output; a scatter does not
    idx = u.long()
    counts = torch.zeros(bins + 2, dtype=torch.long, device=u.device)
    return counts.scatter_add_(0, idx, torch.ones_like(idx))[1 : bins + 1]


# the raw per-output vector kept during the pass; derived quantities are computed once at the end
_RAW = ("mean", "var", "zeros", "saturated", "max_abs", "hist_range")


def _act_stats(
    y: torch.Tensor,
    saturated: Callable | None,
    bins: int,
    hist_range: float | None,
    scratch: _Scratch,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Raw statistics of one output (see ``_RAW``) and its histogram, in a few kernels, no host syncs."""
    if y.numel() == 0:
        return torch.full((len(_RAW),), math.nan, dtype=torch.float64, device=y.device), None
    yd = scratch.copy("forward", y)
    lo, hi = torch.aminmax(yd)
    max_abs = torch.maximum(-lo, hi)
    zeros = torch.eq(
        yd, 0, out=scratch.empty("mask", yd.numel(), yd.device)
    ).sum()  # 3x (yd==0).sum()
    sat = saturated(yd).sum() if saturated is not None else yd.new_tensor(math.nan)
    mean, var = _centre_and_moments(yd)
    # a histogram over the layer's own symmetric range [-max|y|, max|y|], or the fixed one
    r = max_abs.clamp_min(1e-300) if hist_range is None else yd.new_tensor(hist_range)
    raw = torch.stack([mean, var, zeros, sat, max_abs, r])
    if bins == 0:
        return raw, None
    fixed = hist_range is not None
    return raw, _histogram_inplace(yd, mean, bins, hist_range if fixed else r, fixed)


def _grad_stats(g: torch.Tensor, scratch: _Scratch) -> torch.Tensor:
    """Raw gradient statistics: mean and population variance."""
    if g.numel() == 0:
        return torch.full((2,), math.nan, dtype=torch.float64, device=g.device)
    return torch.stack(_centre_and_moments(scratch.copy("backward", g)))


def _random_projection_loss(generator: torch.Generator | None) -> Callable[[Any], torch.Tensor]:
    def loss_fn(output: Any) -> torch.Tensor:
        y = _first_tensor(output)
        if y is None or not y.is_floating_point():
            raise TypeError(
                "the default loss needs a floating tensor output; pass loss_fn for this model"
            )
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        r = torch.randn(y.shape, generator=gen, dtype=torch.float32, device=gen.device)
        return (y * r.to(device=y.device, dtype=y.dtype)).sum()

    return loss_fn


def trace(
    model: nn.Module,
    x: torch.Tensor | tuple[Any, ...],
    backward: bool = True,
    *,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    layers: Sequence[type[nn.Module] | str] | None = None,
    bins: int = 41,
    hist_range: float | None = None,
    generator: torch.Generator | None = None,
) -> Trace:
    r"""Run ``model`` on ``x`` once and record per-layer activation and gradient statistics.

    A forward hook on each traced module measures its output as soon as it is computed (so an in-place
    activation that later overwrites it does not matter), and registers a hook on the output *tensor* that
    measures the gradient reaching it during the backward pass. Tensor hooks, unlike
    :meth:`~torch.nn.Module.register_full_backward_hook`, work with in-place operations: a hook registered
    before an in-place change receives the gradient w.r.t. the value before the change. All hooks are
    removed before this function returns, also when the model raises.

    The backward pass uses :func:`torch.autograd.grad` with respect to the (floating) inputs and the
    model's parameters, so the parameters' ``.grad`` are left untouched. Without ``loss_fn`` the loss is a
    fixed random projection of the output,

    .. math:: \mathcal L = \sum_i r_i\, y_i, \qquad r_i \sim \mathcal N(0, 1) \text{ i.i.d.},

    so the gradient reaching the output is i.i.d. :math:`\mathcal N(0, 1)` and independent of the forward
    pass: the assumption under which He et al. (2015) analyse the backward pass. The gradient standard
    deviation at a layer is then the backward gain from the output to that layer. :math:`r` is drawn from
    ``generator`` (default: a fresh generator seeded with 0, so traces are reproducible).

    The module's train/eval mode is used as is (dropout is active in training mode). Statistics are
    computed in float64 in a reused buffer, a dozen elementwise passes per output, kept as tensors until
    the end (no host synchronisation per statistic) and converted to Python floats in one step. On CPU a
    trace costs about twice a plain forward and backward pass of a 20-layer, width-256 ReLU MLP and 1.6 to
    1.9 times that of a small transformer encoder; ``bins=0`` saves about a fifth of the extra time.

    Args:
        model: any :class:`~torch.nn.Module`.
        x: the input, or a tuple of inputs passed as ``model(*x)``.
        backward: also run a backward pass and record gradient statistics.
        loss_fn: maps the model output to a scalar loss; see above for the default.
        layers: modules to trace: ``None`` for every leaf module (one without children: Linear, Conv,
            activations, norms, dropout), or a list of module classes and/or qualified names as in
            :meth:`~torch.nn.Module.named_modules`. Modules that never run produce no row.
        bins: number of histogram bins (0: no histograms, a little faster).
        hist_range: half-width of a fixed histogram range for every layer; ``None`` uses each layer's own
            largest absolute output.
        generator: source of the default loss's random projection.

    Returns:
        A :class:`Trace` with one row per traced module call, in call order.

    Raises:
        TypeError: ``model`` is not a module, or arguments have the wrong type.
        ValueError: ``layers`` names an unknown module or selects none, or ``backward=True`` but the loss
            does not depend on anything that requires a gradient.

    Examples:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        >>> t = initbook.stats.trace(model, torch.randn(32, 8))
        >>> len(t), [row.type for row in t]
        (3, ['Linear', 'ReLU', 'Linear'])
        >>> t["1"].shape, t.backward
        ((32, 16), True)
        >>> t.columns[:4]
        ('name', 'type', 'shape', 'act_mean')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {backward!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable or None, got {loss_fn!r}")
    check_int("bins", bins, minimum=0)
    if hist_range is not None:
        hist_range = check_real("hist_range", hist_range, positive=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {generator!r}")
    selected = _select_layers(model, layers)

    records: list[dict[str, Any]] = []
    calls: dict[str, int] = {}
    scratch = _Scratch()
    handles: list[Any] = []

    def make_hook(name: str, module: nn.Module) -> Callable:
        saturated = next((f for cls, f in _SATURATION if isinstance(module, cls)), None)
        label = name or "(model)"

        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            y = _first_tensor(output)
            if y is None or not y.is_floating_point():
                return
            calls[label] = calls.get(label, 0) + 1
            stats, hist = _act_stats(y, saturated, bins, hist_range, scratch)
            record = {
                "name": label if calls[label] == 1 else f"{label}#{calls[label]}",
                "module": module,
                "shape": tuple(y.shape),
                "stats": stats,
                "hist": hist,
                "grad": None,
            }
            records.append(record)
            if backward and y.requires_grad:

                def grad_hook(grad: torch.Tensor) -> None:
                    record["grad"] = _grad_stats(grad, scratch)

                handles.append(y.register_hook(grad_hook))

        return hook

    inputs = tuple(x) if isinstance(x, tuple | list) else (x,)
    weight_grads: dict[int, torch.Tensor] = {}
    try:
        for name, module in selected:
            handles.append(module.register_forward_hook(make_hook(name, module)))
        if not backward:
            model(*inputs)
        else:
            inputs = tuple(
                t.detach().requires_grad_(True)
                if isinstance(t, torch.Tensor) and t.is_floating_point()
                else t
                for t in inputs
            )
            with torch.enable_grad():
                output = model(*inputs)
                loss = (loss_fn or _random_projection_loss(generator))(output)
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise TypeError(f"loss_fn must return a scalar tensor, got {loss!r}")
                wrt = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
                wrt += [p for p in model.parameters() if p.requires_grad]
                if not loss.requires_grad or not wrt:
                    raise ValueError(
                        "backward=True, but the loss does not depend on anything that requires a "
                        "gradient (integer input and frozen parameters?); use backward=False"
                    )
                grads = torch.autograd.grad(loss.reshape(()), wrt, allow_unused=True)
            weight_grads = {id(t): g for t, g in zip(wrt, grads, strict=True) if g is not None}
    finally:
        for handle in handles:
            handle.remove()

    # one transfer and one conversion to Python numbers at the end, instead of one per statistic
    if not records:
        return Trace((), backward)
    device = records[0]["stats"].device
    raw = torch.stack([r["stats"].to(device) for r in records]).cpu()
    nan2 = torch.full((2,), math.nan, dtype=torch.float64, device=device)
    raw_grad = torch.stack([nan2 if r["grad"] is None else r["grad"].to(device) for r in records])
    w_var = []
    for r in records:
        w = getattr(r["module"], "weight", None)
        g = weight_grads.get(id(w)) if isinstance(w, torch.Tensor) else None
        w_var.append(
            nan2[1] if g is None or g.numel() == 0 else _grad_stats(g, scratch)[1].to(device)
        )
    raw_grad = torch.cat([raw_grad, torch.stack(w_var)[:, None]], dim=1).cpu()
    hists = [None if r["hist"] is None else tuple(r["hist"].tolist()) for r in records]

    numel = torch.tensor([math.prod(r["shape"]) for r in records], dtype=torch.float64)
    mean, var, zeros, sat, max_abs, r_hist = raw.unbind(1)
    act = torch.stack(
        [mean, var.sqrt(), var + mean * mean, zeros / numel, sat / numel, max_abs, r_hist],
        1,
    ).tolist()
    g_mean, g_var, w_var = raw_grad.unbind(1)
    grad = torch.stack([g_mean, g_var.sqrt(), g_var + g_mean * g_mean, w_var.sqrt()], 1).tolist()

    rows = []
    for i, r in enumerate(records):
        mean, std, mean_sq, zero, sat, max_abs, r_hist = act[i]
        rows.append(
            LayerStats(
                name=r["name"],
                type=type(r["module"]).__name__,
                shape=r["shape"],
                act_mean=mean,
                act_std=std,
                act_mean_sq=mean_sq,
                act_zero_frac=zero,
                act_sat_frac=sat,
                act_max_abs=max_abs,
                hist=hists[i],
                hist_range=r_hist,
                grad_mean=grad[i][0] if backward else None,
                grad_std=grad[i][1] if backward else None,
                grad_mean_sq=grad[i][2] if backward else None,
                weight_grad_std=grad[i][3] if backward else None,
            )
        )
    return Trace(tuple(rows), backward)
