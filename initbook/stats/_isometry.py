r"""Simulators for dynamical isometry: Haar-orthogonal matrices, the singular values of the
input-output Jacobian of many independent random networks at once, and the learning time of deep
linear networks."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch

from .._activations import _NAMED
from .._validation import (
    check_choice,
    check_dtype,
    check_each,
    check_generator,
    check_int,
    check_real,
)
from ..init import _haar_from_gaussian
from ..theory import fixed_point_q

_JACOBIAN_PHIS = ("linear", "relu", "tanh")


def haar_orthogonal(
    batch: int,
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Draw ``batch`` independent Haar-distributed (uniformly random) orthogonal :math:`n\times n` matrices.

    The batched form of :func:`initbook.orthogonal_`: one batched QR factorization of Gaussian matrices,
    :math:`G = QR`, with the signs of :math:`R`'s diagonal moved into :math:`Q` (Mezzadri 2007), which
    makes :math:`Q` exactly Haar-distributed.

    Args:
        batch: number of matrices.
        n: their size.
        generator: the source of randomness.
        dtype: a floating dtype (float32 or float64).

    Returns:
        A tensor of shape ``(batch, n, n)`` with :math:`Q_b^\top Q_b = I` for every ``b``.

    Examples:
        >>> q = initbook.stats.haar_orthogonal(4, 8, generator=torch.Generator().manual_seed(0))
        >>> q.shape, torch.allclose(q.transpose(1, 2) @ q, torch.eye(8, dtype=q.dtype).expand(4, 8, 8))
        (torch.Size([4, 8, 8]), True)
    """
    check_int("batch", batch, minimum=0)
    check_int("n", n, minimum=1)
    check_dtype("dtype", dtype, allowed=(torch.float32, torch.float64))  # what QR supports
    check_generator(generator)
    return _haar_from_gaussian(torch.randn(batch, n, n, generator=generator, dtype=dtype))


def jacobian_singular_values(
    depth: int | Sequence[int],
    width: int,
    *,
    phi: Literal["linear", "relu", "tanh"] = "tanh",
    weights: Literal["gaussian", "orthogonal"] = "gaussian",
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    nets: int = 16,
    q0: float | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Singular values of the input–output Jacobian of ``nets`` independent random deep networks.

    Each network has ``depth`` square layers of width :math:`n`, :math:`h_\ell = W_\ell x_{\ell-1} + b_\ell`,
    :math:`x_\ell = \phi(h_\ell)`, with weights either Gaussian, :math:`\mathcal N(0, \sigma_w^2/n)`, or
    :math:`\sigma_w` times a Haar-orthogonal matrix (:func:`haar_orthogonal`), and biases
    :math:`\mathcal N(0, \sigma_b^2)`. Its Jacobian at the input :math:`x_0` is the product

    .. math:: J = \frac{\partial x_L}{\partial x_0} = D_L W_L \cdots D_1 W_1, \qquad
        D_\ell = \operatorname{diag}\bigl(\phi'(h_\ell)\bigr),

    which this function builds directly, one batched matrix product per layer for all networks at once
    (no autograd), then factorizes with :func:`torch.linalg.svdvals`. The input is
    :math:`x_0 = \phi(\sqrt{q_0}\, z)`, :math:`z \sim \mathcal N(0, I)`, so that with :math:`q_0 = q^*` every
    layer's pre-activations are at the fixed point of the length map (Pennington et al. 2017).

    Args:
        depth: the number of layers :math:`L`, or an increasing sequence of depths: the spectra of the
            first :math:`L` layers of the *same* networks, for each :math:`L` in it.
        width: the width :math:`n`.
        phi: the activation, ``"linear"``, ``"relu"`` or ``"tanh"``.
        weights: ``"gaussian"`` or ``"orthogonal"``.
        sigma_w2: :math:`\sigma_w^2`.
        sigma_b2: :math:`\sigma_b^2`.
        nets: the number of independent networks.
        q0: the variance :math:`q_0` of the input's pre-activations; ``None`` uses the fixed point
            :func:`initbook.theory.fixed_point_q` where it is finite (and, for ``"relu"`` and ``"linear"``,
            non-zero), else 1.
        generator: the source of randomness.
        dtype: float32 or float64 (the default: deep Gaussian products have singular values over many
            orders of magnitude).

    Returns:
        A tensor of shape ``(nets, width)`` (one depth) or ``(len(depth), nets, width)`` (a sequence), each
        row sorted in decreasing order.

    Examples:
        An orthogonal linear network is an isometry: every singular value is 1.

        >>> gen = torch.Generator().manual_seed(0)
        >>> s = initbook.stats.jacobian_singular_values(
        ...     10, 32, phi="linear", weights="orthogonal", nets=4, generator=gen)
        >>> s.shape, round(float((s - 1).abs().max()), 9)
        (torch.Size([4, 32]), 0.0)

        A ReLU layer zeroes about half of the directions, so about half the singular values are 0:

        >>> s = initbook.stats.jacobian_singular_values(
        ...     [1, 5], 128, phi="relu", weights="orthogonal", sigma_w2=2.0, nets=4, generator=gen)
        >>> s.shape, round(float((s < 1e-9).double().mean()), 1)
        (torch.Size([2, 4, 128]), 0.5)
    """
    if isinstance(depth, Sequence) and not isinstance(depth, str):
        depths = check_each("depth", depth, check_int, nonempty=False, minimum=0)
        if not depths or any(b <= a for a, b in itertools.pairwise(depths)):
            raise ValueError(f"depth must be a non-empty increasing sequence, got {depth!r}")
        single = False
    else:
        depths = [check_int("depth", depth, minimum=0)]
        single = True
    check_int("width", width, minimum=1)
    check_int("nets", nets, minimum=1)
    fn, dfn = _NAMED[check_choice("phi", phi, _JACOBIAN_PHIS)]
    check_choice("weights", weights, ("gaussian", "orthogonal"))
    sigma_w2 = check_real("sigma_w2", sigma_w2, nonnegative=True)
    sigma_b2 = check_real("sigma_b2", sigma_b2, nonnegative=True)
    check_dtype("dtype", dtype, allowed=(torch.float32, torch.float64))  # what svdvals supports
    check_generator(generator)
    if q0 is None:
        q0 = fixed_point_q(sigma_w2, sigma_b2, phi)
        if not math.isfinite(q0) or (q0 == 0.0 and phi != "tanh"):
            q0 = 1.0  # without a finite, non-zero fixed point, relu's and linear's D need only a scale
    else:
        q0 = check_real("q0", q0, nonnegative=True)

    n = width
    x = fn(math.sqrt(q0) * torch.randn(nets, n, 1, generator=generator, dtype=dtype))
    jac = torch.eye(n, dtype=dtype).expand(nets, n, n)
    sigma_w, sigma_b = math.sqrt(sigma_w2), math.sqrt(sigma_b2)
    out = []
    for layer in range(1, depths[-1] + 1):
        if weights == "gaussian":
            w = torch.randn(nets, n, n, generator=generator, dtype=dtype) * (sigma_w / math.sqrt(n))
        else:
            w = haar_orthogonal(nets, n, generator=generator, dtype=dtype) * sigma_w
        h = torch.bmm(w, x)
        if sigma_b2 > 0.0:
            h = h + sigma_b * torch.randn(nets, n, 1, generator=generator, dtype=dtype)
        jac = dfn(h) * torch.bmm(w, jac)
        x = fn(h)
        if layer in depths:
            out.append(torch.linalg.svdvals(jac))
    if depths[0] == 0:
        out.insert(0, torch.ones(nets, n, dtype=dtype))
    return out[0] if single else torch.stack(out)


def deep_linear_learning_steps(
    depth: int,
    width: int,
    *,
    weights: Literal["gaussian", "orthogonal"] = "orthogonal",
    lr: float = 0.5,
    threshold: float = 0.05,
    max_steps: int = 200,
    nets: int = 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Steps of gradient descent a deep linear network needs to learn a random linear teacher.

    The setting of "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks",
    Saxe, A. et al. (2014), with whitened inputs: ``nets`` independent networks
    :math:`x \mapsto W_L\cdots W_1 x` of width :math:`n` learn teachers :math:`T` with i.i.d.
    :math:`\mathcal N(0, 1/n)` entries, minimizing

    .. math:: \ell = \tfrac12\,\lVert W_L \cdots W_1 - T \rVert_F^2

    (the expected squared error for inputs with identity covariance) by full-batch gradient descent with
    step :math:`\eta/L` per layer; the :math:`1/L` keeps the step of the end-to-end map comparable across
    depths, since all :math:`L` layers move it at once. Weights start either Gaussian,
    :math:`\mathcal N(0, 1/n)`, or Haar-orthogonal (:func:`haar_orthogonal`), both with mean squared
    singular value 1. The gradient is computed directly (prefix products forward, one batched product
    per layer backward), for all networks at once.

    Args:
        depth: the number of layers :math:`L`.
        width: the width :math:`n` (input, hidden and output).
        weights: ``"gaussian"`` or ``"orthogonal"``.
        lr: :math:`\eta`.
        threshold: stop when :math:`\ell \le \text{threshold}\cdot\tfrac12\lVert T\rVert_F^2`, a fraction of
            the loss of the zero map.
        max_steps: the most steps taken.
        nets: the number of independent (network, teacher) pairs. The teachers are drawn first from
            ``generator``, so two calls with equally seeded generators train on the same teachers.
        generator: the source of randomness.

    Returns:
        An int64 tensor of shape ``(nets,)``: the first step at which the loss was below the threshold,
        or ``max_steps`` where it never was.

    Examples:
        >>> steps = initbook.stats.deep_linear_learning_steps(
        ...     1, 8, lr=1.0, nets=4, generator=torch.Generator().manual_seed(0))
        >>> steps.tolist()  # one layer, step size 1: solved in one step
        [1, 1, 1, 1]
    """
    check_int("depth", depth, minimum=1)
    n = check_int("width", width, minimum=1)
    check_choice("weights", weights, ("gaussian", "orthogonal"))
    lr = check_real("lr", lr, positive=True)
    threshold = check_real("threshold", threshold, positive=True)
    check_int("max_steps", max_steps, minimum=1)
    check_int("nets", nets, minimum=1)
    check_generator(generator)
    teacher = torch.randn(nets, n, n, generator=generator) / math.sqrt(n)
    if weights == "orthogonal":
        w = haar_orthogonal(depth * nets, n, generator=generator, dtype=torch.float32)
    else:
        w = torch.randn(depth * nets, n, n, generator=generator) / math.sqrt(n)
    w = w.reshape(depth, nets, n, n)  # layer-major: w[l] is contiguous
    target = threshold * 0.5 * teacher.square().sum(dim=(1, 2))
    steps = torch.full((nets,), max_steps, dtype=torch.int64)
    grad = torch.empty_like(w)
    eye = torch.eye(n).expand(nets, n, n)
    step = lr / depth
    with torch.no_grad():
        for t in range(max_steps):
            prefix = [eye]
            for layer in range(depth):
                prefix.append(torch.bmm(w[layer], prefix[-1]))
            err = prefix[-1] - teacher
            loss = 0.5 * err.square().sum(dim=(1, 2))
            steps[(loss <= target) & (steps == max_steps)] = t
            if bool((steps < max_steps).all()):
                break
            back = err  # d loss / d (W_L ... W_{l+1} ... ) propagated down from the output
            for layer in range(depth - 1, -1, -1):
                torch.bmm(back, prefix[layer].transpose(1, 2), out=grad[layer])
                back = torch.bmm(w[layer].transpose(1, 2), back)
            w.sub_(grad, alpha=step)
    return steps
