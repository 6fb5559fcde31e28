r"""Iterated maps: build them for many independent chains at once, find the step where they break,
record a statistic per step.

The book's first experiment is the iterated map :math:`x_{t} = a_t x_{t-1}` with random matrices
:math:`a_t`: a deep linear network with no nonlinearity. This module builds such maps for many independent
chains at once (one batched matrix product per step instead of a Python loop over seeds) and measures them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal, cast

import torch

from .._validation import (
    check_bool,
    check_choice,
    check_float_dtype,
    check_float_tensor,
    check_int,
    check_real,
)

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


def _std(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Bessel-corrected standard deviation; NaN for a single value, without torch's warning about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"std\(\): degrees of freedom", UserWarning)
        return x.std() if dim is None else x.std(dim=dim)


_CONDITIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # any entry is inf or NaN
    "nonfinite": lambda x: ~torch.isfinite(x).all(dim=-1),
    # any entry is +-inf
    "inf": lambda x: torch.isinf(x).any(dim=-1),
    # any entry is NaN: NaN is the only value that is not equal to itself
    "nan": lambda x: (x != x).any(dim=-1),  # noqa: PLR0124 (the point: NaN != NaN)
    # the seeds' checks: the statistic of each chain's 1-D vector, computed in its own dtype, is NaN
    "mean_nan": lambda x: _per_chain(x, torch.mean).isnan(),
    "std_nan": lambda x: _per_chain(x, _std).isnan(),
    # every entry is exactly zero (underflow)
    "zero": lambda x: (x == 0).all(dim=-1),
}

_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rms": lambda x: x.pow(2).mean(dim=-1).sqrt(),
    "mean": lambda x: x.mean(dim=-1),
    "std": lambda x: _std(x, dim=-1),
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
        A function mapping a ``(trials, n)`` tensor to the ``(trials, n)`` tensor :math:`a\,x`. Given to
        :func:`first_step`, :func:`first_steps` or :func:`trajectory` with ``reuse=True``, it lets them
        iterate the chains in blocks whose matrices fit in the CPU cache when all of them would not, drawing
        each block's matrices just before its chains run (the same result as drawing them all at once, and
        as fast as the seed notebooks' loop over chains for 100 chains of width 512).

    The reused matrices are drawn from ``generator`` at their *first use*, not when the map is built; later
    uses apply the same matrices without drawing again. So ``x0`` drawn from the same generator between
    building the map and first using it comes before the matrices in the random stream.

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
    check_bool("reuse", reuse)
    return _MatmulMap(n, scale, trials, reuse, dtype, generator)


# Bytes of matrices that one block of chains may occupy when a map with reused matrices is iterated block by
# block (about an L2/L3 cache's worth on current CPUs; see :func:`_chain_blocks`).
_BLOCK_BYTES = 4 * 2**20


def _matvec(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` for a batch of matrices ``a`` (``(..., n, n)``) and vectors ``x`` (``(..., n)``).

    For float32 and float64 this computes the row-vector form :math:`(x^\top a^\top)^\top`, which torch
    runs through its matrix-vector kernel chain by chain; the batched column form ``a @ x[..., None]`` goes
    through a batched kernel that is 2-8 times slower on a CPU at the book's sizes (``nox -s benchmarks``).
    The two round differently in the last bits. float16 and bfloat16 keep the column form, which is as fast
    or faster for them at small sizes.
    """
    if a.dtype in (torch.float32, torch.float64):
        return torch.matmul(x.unsqueeze(-2), a.transpose(-1, -2)).squeeze(-2)
    return torch.matmul(a, x.unsqueeze(-1)).squeeze(-1)


class _MatmulMap:
    """The map returned by :func:`matmul_map`: ``x -> a x`` for a batch of chains.

    With ``reuse=True`` the matrices are drawn at their first use, not at construction. Iterated by
    :func:`first_steps` or :func:`trajectory` with more matrices than fit :data:`_BLOCK_BYTES`, they are drawn
    block by block, each block used for all its steps and then dropped, as the seed notebooks' loop over
    chains does: 100 chains of width 512 never hold 100 MB at once. torch fills a float tensor of normals in
    groups of 16, so drawing the blocks one after the other gives the same numbers, bit for bit, as one draw
    of all of them whenever one chain's matrix holds a multiple of 16 numbers (``n`` a multiple of 4;
    otherwise everything is drawn at once).
    The generator's state before the first draw is kept, so later uses replay the same matrices without
    advancing the caller's generator again.
    """

    def __init__(
        self,
        n: int,
        scale: float,
        trials: int,
        reuse: bool,
        dtype: torch.dtype,
        generator: torch.Generator | None,
        fixed: torch.Tensor | None = None,
    ) -> None:
        self.n, self.scale, self.trials, self.reuse = n, scale, trials, reuse
        self.dtype, self.generator = dtype, generator
        self._fixed = fixed
        # the generator's state before the first draw of the reused matrices
        self._start: torch.Tensor | None = None

    def _draw(
        self, count: int, generator: torch.Generator | None, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``count`` matrices of N(0, scale^2) entries, drawn in float32, in ``out`` if given (float32)."""
        a = torch.empty((count, self.n, self.n), dtype=torch.float32) if out is None else out
        return a.normal_(0.0, self.scale, generator=generator).to(self.dtype)

    def _source(self) -> torch.Generator | None:
        """The generator the reused matrices come from: the caller's on the first draw, then a replay."""
        if self._start is None:
            caller = self.generator if self.generator is not None else torch.default_generator
            self._start = caller.get_state()
            return self.generator
        replay = torch.Generator()
        replay.set_state(self._start)
        return replay

    @property
    def fixed(self) -> torch.Tensor | None:
        """The reused matrices, ``(trials, n, n)`` (drawn now if not yet), or ``None`` for ``reuse=False``."""
        if not self.reuse:
            return None
        if self._fixed is None:
            self._fixed = self._draw(self.trials, self._source())
        return self._fixed

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        fixed = self.fixed
        a = fixed if fixed is not None else self._draw(self.trials, self.generator)
        return _matvec(a, x.to(self.dtype))

    def blocks(self, size: int) -> Iterator[tuple[slice, _MatmulMap]]:
        """The chains in blocks of ``size``, each with the map restricted to them (``reuse=True`` only).

        Draws each block's matrices just before it is yielded, unless the matrices are already held or a
        chain's matrix does not hold a multiple of 16 numbers (then all are drawn first, see the class
        docstring). The drawn blocks share one buffer: a block's matrices are valid until the next block is
        drawn, which is how :func:`first_steps` and :func:`trajectory` use them. A fresh allocation of a few
        megabytes per block costs a page fault per 4 KB on its first write, which made drawing the matrices
        a quarter slower than the seed notebooks' loop, whose one-matrix allocations the C library reuses.
        """
        if not self.reuse:
            raise ValueError(
                "only a map with reused matrices (reuse=True) can be split into blocks"
            )
        per_chain = self.n * self.n
        lazy = self._fixed is None and per_chain % 16 == 0
        source = self._source() if lazy else None
        buffer = torch.empty((min(size, self.trials), self.n, self.n)) if lazy else None
        for start in range(0, self.trials, size):
            stop = min(start + size, self.trials)
            if lazy:
                # a leading slice of a contiguous buffer is contiguous: the same fill order, the same numbers
                a = self._draw(stop - start, source, cast(torch.Tensor, buffer)[: stop - start])
            else:
                a = cast(torch.Tensor, self.fixed)[start:stop]
            yield (
                slice(start, stop),
                _MatmulMap(self.n, self.scale, stop - start, True, self.dtype, None, a),
            )

    def block(self, start: int, stop: int) -> _MatmulMap:
        """The same map restricted to chains ``start:stop`` (reused matrices only: draws nothing new)."""
        if not self.reuse:
            raise ValueError(
                "only a map with reused matrices (reuse=True) can be split into blocks"
            )
        fixed = cast(torch.Tensor, self.fixed)[start:stop]
        return _MatmulMap(self.n, self.scale, len(fixed), True, self.dtype, None, fixed)

    def __repr__(self) -> str:
        return (
            f"matmul_map(n={self.n}, scale={self.scale}, trials={self.trials}, reuse={self.reuse}, "
            f"dtype={self.dtype})"
        )


def _block_size(step: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor) -> int | None:
    """How many chains of ``step`` to iterate together from ``x0``; ``None``: all at once.

    A :func:`matmul_map` with reused matrices applies the same matrices at every step. When they fill more
    than :data:`_BLOCK_BYTES` (100 chains of width 512 in float32 are 100 MB), iterating all chains together
    streams every matrix from main memory at every step; iterating a block of chains whose matrices fit in
    the CPU cache through all its steps, then the next block, touches each matrix once, as the seed
    notebooks' loop over chains does. The chains are independent and each chain's product is computed by
    the same kernel either way, so the result is the same, bit for bit (``tests/test_stats.py``). Fresh
    matrices (``reuse=False``) are drawn for all chains at every step, so that the random draws, and hence
    the results, do not depend on this choice; they, and any other ``step``, run all at once.
    """
    if not isinstance(step, _MatmulMap) or not step.reuse:
        return None
    if x0.dim() != 2 or x0.shape != (step.trials, step.n):
        return None
    element = torch.empty((), dtype=step.dtype).element_size()
    size = max(1, _BLOCK_BYTES // (step.n * step.n * element))
    return None if size >= step.trials else size


def _chain_blocks(step: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor) -> list[slice]:
    """The slices of chains :func:`first_steps` and :func:`trajectory` iterate together (see :func:`_block_size`)."""
    size = _block_size(step, x0)
    if size is None:
        return [slice(0, x0.shape[0] if x0.dim() else 0)]
    trials = x0.shape[0]
    return [slice(i, min(i + size, trials)) for i in range(0, trials, size)]


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
    tests: dict[object, Callable[[torch.Tensor], torch.Tensor]] = {}
    for condition in conditions:
        if callable(condition):
            tests[condition] = condition
        else:
            tests[condition] = _CONDITIONS[check_choice("condition", condition, _CONDITIONS)]
    if not tests:
        raise ValueError(f"conditions must name at least one condition, got {conditions!r}")

    size = _block_size(step, x0)
    if size is not None:  # a _MatmulMap with reused matrices that do not fit the cache together
        parts = [
            _first_steps(block, x0[chains], max_steps, tests)
            for chains, block in cast(_MatmulMap, step).blocks(size)
        ]
        return {key: torch.cat([part[key] for part in parts]) for key in tests}
    return _first_steps(step, x0, max_steps, tests)


def _states(
    step: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor
) -> Iterator[torch.Tensor]:
    """Yield ``step(x0)``, ``step(step(x0))``, ... without end.

    A :func:`matmul_map` with reused matrices in float32 or float64, given its own ``(trials, n)`` batch,
    is iterated as ``y = y @ a^T`` on ``(trials, 1, n)`` rows: the same kernel and the same numbers as
    :func:`_matvec`, with one tensor operation per step instead of four (at 4 chains of width 512 a step
    costs tens of microseconds, so Python's overhead per operation shows).
    """
    if (
        isinstance(step, _MatmulMap)
        and step.reuse
        and step.dtype in (torch.float32, torch.float64)
        and x0.shape == (step.trials, step.n)
    ):
        a_t = cast(torch.Tensor, step.fixed).transpose(-1, -2)
        y = x0.to(step.dtype).unsqueeze(-2)
        while True:
            y = torch.matmul(y, a_t)
            yield y.squeeze(-2)
    x = x0
    while True:
        x = step(x)
        yield x


def _first_steps(
    step: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    max_steps: int,
    tests: dict[Any, Callable[[torch.Tensor], torch.Tensor]],
) -> dict:
    # Record each condition's per-chain result at every step and find the first hits at the end (one
    # argmax per condition instead of a masked update per step and condition).
    shape = x0.shape[:-1]
    hits: dict[Any, list[torch.Tensor]] = {key: [] for key in tests}
    held = {key: torch.zeros(shape, dtype=torch.bool) for key in tests}
    states = _states(step, x0)
    x = x0
    for t in range(max_steps + 1):
        if t > 0:
            x = next(states)
        done = True
        for key, test in tests.items():
            hit = test(x)
            if hit.dtype != torch.bool or hit.shape != shape:
                hit = hit.to(torch.bool).reshape(shape)
            hits[key].append(hit)
            held[key] |= hit
            done = done and bool(held[key].all())
        if done:
            break
    found = {}
    for key in tests:
        table = torch.stack(hits[key])  # (steps run, *shape)
        first = table.to(torch.uint8).argmax(
            dim=0
        )  # the first True (argmax returns the first maximum)
        found[key] = torch.where(table.any(dim=0), first, -1).to(torch.int64)
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
        statistic: ``"rms"`` (:math:`\sqrt{\tfrac1n\sum_i x_i^2}`), ``"mean"``, ``"std"`` (Bessel-corrected,
            NaN for ``n = 1``) or ``"max_abs"``.

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
    size = _block_size(step, x0)
    if size is not None:  # a _MatmulMap with reused matrices that do not fit the cache together
        parts = [
            _trajectory(block, x0[chains], steps, measure)
            for chains, block in cast(_MatmulMap, step).blocks(size)
        ]
        return torch.cat(parts, dim=1)
    return _trajectory(step, x0, steps, measure)


def _trajectory(
    step: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    measure: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    # The statistic is computed for 16 states at once: one float64 conversion and one reduction per 16
    # steps instead of per step (the states are small: the chains of one block).
    rows = [measure(x0.double())]
    states = _states(step, x0)
    pending: list[torch.Tensor] = []
    for t in range(steps):
        pending.append(next(states))
        if len(pending) == 16 or t == steps - 1:
            rows.extend(measure(torch.stack(pending).double()).unbind(0))
            pending = []
    return torch.stack(rows)
