r"""Experiments on random networks that a chapter and its gallery example share.

Each function here runs one experiment of Part III of the book, seeded by the caller, so that a page and a
gallery script that show the same measurement call the same code (with their own sizes) instead of two
copies of it:

* :func:`chi1_grid`: the per-layer growth :math:`\ln\chi_1` of a small perturbation, measured in one random
  tanh network per cell of a :math:`(\sigma_w^2, \sigma_b^2)` grid (the simulated phase diagram of
  Poole et al. 2016 and Schoenholz et al. 2017);
* :func:`correlation_runs`: the correlation of two inputs, layer by layer, in many random networks per weight
  variance (the approach to the fixed point :math:`c^*` over the depth scale :math:`\xi_c`);
* :func:`tanh_gradient_profile` and :func:`tanh_gradient_theory`: the squared gradient reaching each layer of
  a deep tanh MLP, measured with :func:`initbook.stats.trace` and predicted by the product of
  :math:`\chi_1(q^\ell)` along the iterated length map.

All three simulations are built on :func:`initbook.stats.mean_field_network` and
:func:`initbook.stats.trace`; the closed forms they are compared with are in :mod:`initbook.theory`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validation import ArgumentTypeError, check_int, check_real
from .stats import mean_field_network, trace
from .theory import chi1, fixed_point_q, iterate_maps

__all__ = [
    "chi1_grid",
    "correlation_runs",
    "tanh_gradient_profile",
    "tanh_gradient_theory",
]


def _axis(name: str, values: object) -> torch.Tensor:
    """``values`` as a non-empty 1-D float64 tensor of finite non-negative numbers."""
    try:
        axis = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ArgumentTypeError(
            f"{name} must be a 1-D sequence or tensor of numbers, got {values!r}"
        ) from None
    if axis.dim() != 1 or axis.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {tuple(axis.shape)}")
    if not bool(torch.isfinite(axis).all()) or bool((axis < 0).any()):
        raise ValueError(f"{name} must hold finite numbers >= 0, got {axis.tolist()}")
    return axis


def _generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got {generator!r}"
        )
    return generator


def chi1_grid(
    sigma_w2: torch.Tensor | list[float],
    sigma_b2: torch.Tensor | list[float],
    *,
    width: int,
    depth: int,
    generator: torch.Generator,
    skip: int = 4,
) -> torch.Tensor:
    r"""Measure :math:`\ln\chi_1` in one random tanh network per cell of a :math:`(\sigma_w^2, \sigma_b^2)` grid.

    All ``len(sigma_w2) * len(sigma_b2)`` networks run in one batched
    :func:`~initbook.stats.mean_field_network` call (explicit weights), each starting at its own length fixed
    point :math:`q^*` (:func:`initbook.theory.fixed_point_q`, at least ``1e-3``). A tangent vector goes through
    each network with its inputs; the ratio of its squared norms from one layer to the next estimates
    :math:`\chi_1`. The ratios of layers ``skip + 1`` to ``depth`` are averaged first and the logarithm taken
    last: the mean of the logarithms would be biased low by half their variance (Jensen's inequality), which
    near the critical line is comparable to :math:`\ln\chi_1` itself.

    Args:
        sigma_w2: the weight variances :math:`\sigma_w^2` (rows of the grid), a 1-D sequence.
        sigma_b2: the bias variances :math:`\sigma_b^2` (columns of the grid), a 1-D sequence.
        width: the width :math:`n` of every layer.
        depth: the number of layers, more than ``skip``.
        generator: the source of every random draw.
        skip: the first layers left out of the average (the length settling from the start).

    Returns:
        The estimated :math:`\ln\chi_1`, float64 of shape ``(len(sigma_w2), len(sigma_b2))``: negative in the
        ordered phase, positive in the chaotic one.

    Examples:
        >>> import math
        >>> import torch
        >>> from initbook import simulate, theory
        >>> grid = simulate.chi1_grid([1.2, 2.5], [0.05], width=256, depth=20,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> grid.shape
        torch.Size([2, 1])
        >>> [round(v, 1) for v in grid[:, 0].tolist()]  # ordered, chaotic
        [-0.2, 0.1]
        >>> [round(math.log(theory.chi1(s, 0.05)), 1) for s in (1.2, 2.5)]
        [-0.2, 0.1]
    """
    sw_axis, sb_axis = _axis("sigma_w2", sigma_w2), _axis("sigma_b2", sigma_b2)
    skip = check_int("skip", skip, minimum=0)
    depth = check_int("depth", depth, minimum=1)
    if depth <= skip:
        raise ValueError(
            f"depth must be > skip={skip} (layers averaged: skip + 1 ... depth), got {depth}"
        )
    w2, b2 = torch.meshgrid(sw_axis, sb_axis, indexing="ij")
    q_star = torch.tensor(
        [
            fixed_point_q(w, b)
            for w, b in zip(w2.flatten().tolist(), b2.flatten().tolist(), strict=True)
        ]
    )
    run = mean_field_network(
        w2.flatten(),
        b2.flatten(),
        width=width,
        depth=depth,
        q0=q_star.clamp_min(1e-3),
        generator=_generator(generator),
    )
    return run.chi1[:, skip:].mean(dim=1).log().reshape(w2.shape)


def correlation_runs(
    sigma_w2: torch.Tensor | list[float],
    sigma_b2: float,
    *,
    nets: int,
    width: int,
    depth: int,
    generator: torch.Generator,
    c0: float = 0.5,
) -> torch.Tensor:
    r"""The correlation of two inputs, layer by layer, in ``nets`` random tanh networks per weight variance.

    One batched :func:`~initbook.stats.mean_field_network` call with ``method="gram"`` (the exact distribution
    of a layer with fresh Gaussian weights, drawn from the Gram matrix of its inputs at :math:`O(n)` cost, so
    wide networks are cheap): networks ``k * nets`` to ``(k + 1) * nets - 1`` have weight variance
    ``sigma_w2[k]``; every one starts from unit length and correlation ``c0``.

    Args:
        sigma_w2: the weight variances :math:`\sigma_w^2`, a 1-D sequence.
        sigma_b2: the bias variance :math:`\sigma_b^2`, one number for all networks.
        nets: independent networks per weight variance.
        width: the width :math:`n` of every layer.
        depth: the number of layers.
        generator: the source of every random draw.
        c0: the starting correlation, in :math:`[-1, 1]`.

    Returns:
        The correlations :math:`c^\ell`, float64 of shape ``(len(sigma_w2), nets, depth + 1)`` (layer 0: the
        start), to average over ``dim=1`` and compare with :func:`initbook.theory.iterate_maps`.

    Examples:
        >>> import torch
        >>> from initbook import simulate, theory
        >>> c = simulate.correlation_runs([1.2, 2.5], 0.05, nets=16, width=1000, depth=10,
        ...                               generator=torch.Generator().manual_seed(0))
        >>> c.shape
        torch.Size([2, 16, 11])
        >>> theory_c = [float(theory.iterate_maps(1.0, 0.5, s, 0.05, 10).c[-1]) for s in (1.2, 2.5)]
        >>> [round(v, 2) for v in theory_c]  # ordered: towards 1; chaotic: towards c* = 0.45
        [0.89, 0.47]
        >>> bool((c[:, :, -1].mean(dim=1) - torch.tensor(theory_c)).abs().max() < 0.05)
        True
    """
    sw_axis = _axis("sigma_w2", sigma_w2)
    sb = check_real("sigma_b2", sigma_b2, nonnegative=True)
    nets = check_int("nets", nets, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    run = mean_field_network(
        sw_axis.repeat_interleave(nets),
        sb,
        width=width,
        depth=depth,
        c0=c0,
        generator=_generator(generator),
        method="gram",
    )
    return run.c.reshape(len(sw_axis), nets, depth + 1)


def _tanh_stack(
    sigma_w2: float, sigma_b2: float, depth: int, width: int, seed: int
) -> nn.Sequential:
    """``depth`` square tanh layers, weights N(0, sigma_w2 / width), biases N(0, sigma_b2), from one seed."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        with torch.no_grad():
            linear.weight.normal_(0.0, math.sqrt(sigma_w2 / width), generator=gen)
            if sigma_b2 > 0:
                linear.bias.normal_(0.0, math.sqrt(sigma_b2), generator=gen)
            else:
                linear.bias.zero_()
        layers += [linear, nn.Tanh()]
    return nn.Sequential(*layers)


def tanh_gradient_profile(
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    depth: int,
    width: int,
    batch: int,
    seed: int,
) -> torch.Tensor:
    r"""Measure the squared gradient reaching each layer of a random square tanh MLP, relative to the last.

    The network has ``depth`` layers :math:`h^\ell = W^\ell \tanh(h^{\ell-1}) + b^\ell` of width :math:`n`
    with :math:`W_{ij} \sim \mathcal N(0, \sigma_w^2/n)` and :math:`b_i \sim \mathcal N(0, \sigma_b^2)`
    (zero biases, drawing nothing, when :math:`\sigma_b^2 = 0`), applied to ``batch`` standard normal
    inputs. :func:`initbook.stats.trace` back-propagates its default loss, a random projection of the output,
    so the gradient arriving at the top is i.i.d. standard normal, and records the mean squared gradient at
    every layer's pre-activations. The weights come from ``seed``, the inputs from ``100 + seed`` and the
    projection from ``200 + seed``.

    Args:
        sigma_w2: the weight variance :math:`\sigma_w^2` (``25 / 9`` for PyTorch's tanh gain 5/3).
        sigma_b2: the bias variance :math:`\sigma_b^2`.
        depth: the number of layers :math:`L`.
        width: the width :math:`n`.
        batch: the number of inputs.
        seed: selects the network, its inputs and the loss.

    Returns:
        :math:`\overline{g_\ell^2}/\overline{g_L^2}` for :math:`\ell = 1, \dots, L`, float64 of shape
        ``(depth,)`` (the last entry is 1); compare with :func:`tanh_gradient_theory`.

    Examples:
        >>> from initbook import simulate
        >>> g = simulate.tanh_gradient_profile(25 / 9, depth=10, width=128, batch=64, seed=0)
        >>> g.shape, float(g[-1])
        (torch.Size([10]), 1.0)
        >>> round(float(g[0]), 0), round(float(simulate.tanh_gradient_theory(25 / 9, depth=10)[0]), 0)
        (3.0, 3.0)
    """
    sw = check_real("sigma_w2", sigma_w2, positive=True)
    sb = check_real("sigma_b2", sigma_b2, nonnegative=True)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(100 + seed))
    rows = trace(
        _tanh_stack(sw, sb, depth, width, seed),
        x,
        layers=[nn.Linear],
        bins=0,
        generator=torch.Generator().manual_seed(200 + seed),
    )
    g = torch.tensor([row.grad_mean_sq for row in rows], dtype=torch.float64)
    return g / g[-1]


def tanh_gradient_theory(sigma_w2: float, sigma_b2: float = 0.0, *, depth: int) -> torch.Tensor:
    r"""The mean-field prediction for :func:`tanh_gradient_profile`: :math:`\prod_{k=\ell}^{L-1}\chi_1(q^k)`.

    With unit-variance inputs the first layer's pre-activations have :math:`q^1 = \sigma_w^2 + \sigma_b^2`;
    :func:`initbook.theory.iterate_maps` gives :math:`q^2, \dots, q^{L-1}`, and a squared gradient shrinks or
    grows by :math:`\chi_1(q^k)` (:func:`initbook.theory.chi1` at that variance) per layer on its way down,
    without assuming that the length has settled at its fixed point.

    Args:
        sigma_w2: the weight variance :math:`\sigma_w^2`.
        sigma_b2: the bias variance :math:`\sigma_b^2`.
        depth: the number of layers :math:`L`.

    Returns:
        The predicted :math:`\overline{g_\ell^2}/\overline{g_L^2}` for :math:`\ell = 1, \dots, L`, float64 of
        shape ``(depth,)``.

    Examples:
        >>> from initbook import simulate, theory
        >>> p = simulate.tanh_gradient_theory(25 / 9, depth=30)
        >>> round(float(p[0]), 0)  # gain 5/3: exploding towards the input
        141.0
        >>> round(theory.chi1(25 / 9, 0.0) ** 29, 0)  # with q^k = q* at every layer instead
        251.0
    """
    sw = check_real("sigma_w2", sigma_w2, positive=True)
    sb = check_real("sigma_b2", sigma_b2, nonnegative=True)
    depth = check_int("depth", depth, minimum=1)
    q = iterate_maps(sw * 1.0 + sb, 0.5, sw, sb, depth - 1).q
    factors = torch.tensor([chi1(sw, sb, q=float(qk)) for qk in q[:-1]], dtype=torch.float64)
    tail = torch.cumprod(factors.flip(0), 0).flip(0)
    return torch.cat([tail, torch.ones(1, dtype=torch.float64)])
