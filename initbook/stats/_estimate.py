r"""Moments and Monte-Carlo estimates with their standard errors."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .._validation import check_choice, check_generator, check_int, check_real


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

    @classmethod
    def from_samples(cls, values: torch.Tensor | Sequence[float], dim: int = 0) -> Estimate:
        r"""The estimate from independent per-trial values laid out along ``dim``.

        The mean and the standard error :math:`s/\sqrt n` (with the :math:`n-1` sample variance) along
        ``dim``, computed in float64. A 1-D input gives float fields; more dimensions give float64 tensors
        with ``dim`` removed (one estimate per remaining entry, e.g. per layer). This is what
        :func:`monte_carlo` returns when the trials are already drawn.

        Args:
            values: the per-trial values, a real tensor or a sequence of numbers.
            dim: the dimension that indexes the independent trials (negative counts from the end).

        Returns:
            An :class:`Estimate` with ``n`` the size of ``dim``.

        Raises:
            TypeError: ``values`` is not a real tensor or a sequence of numbers, or ``dim`` is not an int.
            ValueError: ``dim`` is out of range, or fewer than 2 trials lie along it.

        Examples:
            >>> est = initbook.stats.Estimate.from_samples(torch.tensor([1.0, 2.0, 3.0, 4.0]))
            >>> est.value, round(est.stderr, 4), est.n  # sd = 1.291, se = sd / 2
            (2.5, 0.6455, 4)
            >>> per_layer = torch.tensor([[1.0, 10.0], [3.0, 10.0]])  # 2 trials, 2 layers
            >>> print(initbook.stats.Estimate.from_samples(per_layer))
            [2.0 ± 1.0, 10 ± 0]
            >>> initbook.stats.Estimate.from_samples(per_layer, dim=1).value
            tensor([5.5000, 6.5000], dtype=torch.float64)
        """
        if not isinstance(values, torch.Tensor):
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise TypeError(
                    f"values must be a torch.Tensor or a sequence of numbers, got {type(values).__name__}"
                )
            try:
                values = torch.as_tensor(values, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(f"values must be a sequence of numbers, got {values!r}") from exc
        if values.is_complex() or values.dtype == torch.bool:
            raise TypeError(
                f"values must have a real floating or integer dtype, got {values.dtype}"
            )
        check_int("dim", dim)
        if values.dim() == 0 or not -values.dim() <= dim < values.dim():
            raise ValueError(
                f"dim={dim} is out of range for values of shape {tuple(values.shape)}; "
                f"valid dims are {-max(values.dim(), 1)} to {max(values.dim(), 1) - 1}"
            )
        n = values.shape[dim]
        if n < 2:
            raise ValueError(
                f"need at least 2 trials along dim={dim} for a standard error, got {n} "
                f"(values of shape {tuple(values.shape)})"
            )
        trials = values.detach().to(torch.float64).movedim(dim, 0)
        # the same arithmetic as monte_carlo over one batch: mean, then the sum of squared deviations
        mean = trials.mean(dim=0)
        m2 = (trials - mean).square().sum(dim=0)
        stderr = (m2 / (n - 1) / n).sqrt()
        if mean.dim() == 0:
            return cls(float(mean), float(stderr), n)
        return cls(mean, stderr, n)

    def __str__(self) -> str:
        if isinstance(self.value, torch.Tensor):
            stderr = torch.as_tensor(self.stderr).flatten().tolist()
            pairs = zip(self.value.flatten().tolist(), stderr, strict=True)
            return "[" + ", ".join(_format_estimate(v, s) for v, s in pairs) + "]"
        return _format_estimate(self.value, float(self.stderr))

    def __format__(self, spec: str) -> str:
        """Format the value and the standard error with the same spec: ``f"{est:.3f}"`` -> ``"0.123 ± 0.004"``.

        An empty spec gives :meth:`__str__` (the value rounded to the standard error's second significant
        digit). A vector-valued estimate formats each entry, in brackets.

        Examples:
            >>> est = initbook.stats.Estimate(0.12345, 0.00412, 100)
            >>> f"{est:.3f}", f"{est:.1e}", f"{est}"
            ('0.123 ± 0.004', '1.2e-01 ± 4.1e-03', '0.1235 ± 0.0041')
            >>> f"{initbook.stats.Estimate(torch.tensor([1.0, 2.0]), torch.tensor([0.1, 0.2]), 10):.2f}"
            '[1.00 ± 0.10, 2.00 ± 0.20]'
        """
        if not spec:
            return str(self)
        try:
            if isinstance(self.value, torch.Tensor):
                stderr = torch.as_tensor(self.stderr).flatten().tolist()
                pairs = zip(self.value.flatten().tolist(), stderr, strict=True)
                return "[" + ", ".join(f"{v:{spec}} ± {s:{spec}}" for v, s in pairs) + "]"
            return f"{self.value:{spec}} ± {float(self.stderr):{spec}}"
        except ValueError as exc:
            raise ValueError(
                f"invalid format spec {spec!r} for an Estimate: use a float spec such as '.3f' ({exc})"
            ) from None


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
    reduce: Callable[[torch.Tensor], torch.Tensor] | None
    if isinstance(statistic, str):
        reduce = _MC_STATISTICS[check_choice("statistic", statistic, _MC_STATISTICS)]
    elif statistic is None or callable(statistic):
        reduce = statistic
    else:
        raise TypeError(f"statistic must be None, a name or a callable, got {statistic!r}")
    check_int("trials", trials, minimum=2)
    if batch is not None:
        check_int("batch", batch, minimum=1)
    check_generator(generator)

    count, mean, m2 = 0, None, None
    unit = None  # a power of 2 (exact) that keeps the squared deviations in float64's range
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
        if unit is None:
            peak = float(values.abs().max()) if values.numel() else 0.0
            unit = 2.0 ** math.frexp(peak)[1] if math.isfinite(peak) and peak > 0 else 1.0
        values = values / unit
        b_mean = values.mean(dim=0)
        b_m2 = (values - b_mean).square().sum(dim=0)
        if mean is None or m2 is None:
            mean, m2 = b_mean, b_m2
        else:
            total = count + b
            delta = b_mean - mean
            mean = mean + delta * (b / total)
            m2 = m2 + b_m2 + delta.square() * (count * b / total)
        count += b
    assert mean is not None  # trials >= 2: the loop ran
    assert m2 is not None
    assert unit is not None
    stderr = (m2 / (count - 1) / count).sqrt() * unit
    mean = mean * unit
    if mean.dim() == 0:
        return Estimate(float(mean), float(stderr), count)
    return Estimate(mean, stderr, count)
