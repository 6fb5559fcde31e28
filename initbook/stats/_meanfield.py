r"""The mean-field simulation (order and chaos): two inputs and a tangent vector through many random
networks at once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from .._activations import _activation
from .._validation import check_choice, check_dtype, check_generator, check_int, check_real

# weights drawn at once (32 MiB in float32): configurations are chunked
_MAX_WEIGHT_ENTRIES = 1 << 23


@dataclass(frozen=True)
class MeanFieldRun:
    r"""What :func:`mean_field_network` measured, per configuration and layer (index 0: the input layer)."""

    q: torch.Tensor
    """Mean square of the pre-activations (both inputs), float64 ``(configs, depth + 1)``."""
    c: torch.Tensor
    """Correlation :math:`h_a\\cdot h_b / (\\lVert h_a\\rVert\\lVert h_b\\rVert)`, float64 ``(configs, depth + 1)``."""
    one_minus_c: torch.Tensor
    """:math:`1 - c` computed as :math:`\\tfrac12\\lVert \\hat h_a - \\hat h_b\\rVert^2` (precise near
    :math:`c = 1`), float64 ``(configs, depth + 1)``."""
    chi1: torch.Tensor
    """Per-layer ratio :math:`\\lVert u^\\ell\\rVert^2 / \\lVert u^{\\ell-1}\\rVert^2` of a tangent vector,
    float64 ``(configs, depth)``: an estimate of :math:`\\chi_1` at that layer's variance."""


def _as_config_vector(name: str, value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.dim() > 1:
            raise ValueError(
                f"{name} must be a number or a 1-D tensor, got shape {tuple(value.shape)}"
            )
        if value.is_complex() or not (
            value.is_floating_point() or value.dtype in (torch.int32, torch.int64)
        ):
            raise TypeError(f"{name} must be a real tensor, got dtype {value.dtype}")
        out = value.detach().to(torch.float64).reshape(-1)
        if not torch.isfinite(out).all() or (out < 0).any():
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        return out
    return torch.tensor([check_real(name, value, nonnegative=True)], dtype=torch.float64)


def mean_field_network(
    sigma_w2: float | torch.Tensor,
    sigma_b2: float | torch.Tensor,
    *,
    width: int,
    depth: int,
    q0: float | torch.Tensor = 1.0,
    c0: float = 0.5,
    phi: str | Callable[[torch.Tensor], torch.Tensor] = "tanh",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    method: Literal["matrix", "gram"] = "matrix",
) -> MeanFieldRun:
    r"""Propagate two inputs and a tangent vector through random networks, many configurations at once.

    The simulation behind the mean-field theory of Poole et al. (2016) and Schoenholz et al. (2017): one
    random MLP of width :math:`n` per configuration :math:`k`, with fresh weights and biases at every layer,

    .. math::
        h^\ell = W^\ell \phi(h^{\ell-1}) + b^\ell, \qquad
        W^\ell_{ij} \sim \mathcal N\!\left(0, \tfrac{\sigma_{w,k}^2}{n}\right), \quad
        b^\ell_i \sim \mathcal N(0, \sigma_{b,k}^2),

    applied to two inputs :math:`a, b` (the *same* weights and biases) whose starting pre-activations are
    i.i.d. over units with variance :math:`q^0` and correlation :math:`c^0`, and to a tangent vector
    :math:`u^\ell = W^\ell\,(\phi'(h_a^{\ell-1}) \odot u^{\ell-1})`: the change of :math:`h_a` caused by an
    infinitesimal perturbation :math:`u^0` (i.i.d. standard normal). Its squared-norm ratio per layer has
    expectation :math:`\sigma_w^2\,\overline{\phi'(h_a)^2 u^2}/\overline{u^2} \approx \chi_1` (:func:`initbook.theory.chi1`).

    All configurations move together: the weights of one layer are a ``(configs, n, n)`` tensor and the
    layer is one :func:`torch.bmm` (configurations are processed in chunks of at most
    :math:`2^{23}` weight entries, so memory stays bounded). To estimate averages over independent networks,
    repeat each configuration (e.g. ``sigma_w2.repeat(trials)``).

    ``method="gram"`` draws the same distribution without the :math:`n \times n` matrices. The rows
    :math:`w_i` of a fresh Gaussian :math:`W` are i.i.d. :math:`\mathcal N(0, \tfrac{\sigma_w^2}{n} I)`,
    so for the :math:`n \times 3` matrix :math:`X` of the layer's three input vectors and any :math:`R`
    with :math:`R^\top R = X^\top X` (the Cholesky factor of the Gram matrix, or thin QR :math:`X = QR`),
    :math:`W X` has exactly the distribution of :math:`\tfrac{\sigma_w}{\sqrt n} Z R` with :math:`Z` an
    :math:`n \times 3` standard normal matrix: :math:`O(n)` work per layer instead of :math:`O(n^2)`, finite-width
    fluctuations included. Use it for large widths or many configurations; the default draws every weight.

    Args:
        sigma_w2: :math:`\sigma_w^2`, a number or a 1-D tensor with one entry per configuration.
        sigma_b2: :math:`\sigma_b^2`, a number or a 1-D tensor (broadcast against ``sigma_w2``).
        width: :math:`n`.
        depth: number of layers :math:`L`.
        q0: variance of the starting pre-activations, a number or a 1-D tensor (e.g. each
            configuration's own fixed point :math:`q^*`).
        c0: correlation of the two inputs' starting pre-activations, in :math:`[-1, 1]`.
        phi: ``"tanh"``, ``"relu"``, ``"erf"``, ``"linear"`` or a callable (derivative by autograd).
        generator: the source of every random draw.
        dtype: float32 (default) or float64 for the network; statistics are computed in float64.
        method: ``"matrix"`` (explicit weights, one :func:`torch.bmm` per layer) or ``"gram"`` (the same
            distribution from a QR factorisation, see above).

    Returns:
        A :class:`MeanFieldRun` ``(q, c, one_minus_c, chi1)``.

    Examples:
        Three configurations in one batched run: ordered, near critical and chaotic (:math:`\sigma_b^2 = 0.05`).

        >>> gen = torch.Generator().manual_seed(0)
        >>> sigma_w2 = torch.tensor([1.0, 1.76, 3.0]).repeat(16)  # 16 networks each
        >>> run = initbook.stats.mean_field_network(sigma_w2, 0.05, width=400, depth=30, c0=0.5,
        ...                                         generator=gen, method="gram")
        >>> run.c.shape, run.chi1.shape
        (torch.Size([48, 31]), torch.Size([48, 30]))
        >>> [round(v, 2) for v in run.c[:, -1].reshape(16, 3).mean(0).tolist()]  # ordered: c -> 1
        [1.0, 0.83, 0.31]
        >>> [round(initbook.theory.iterate_maps(1.0, 0.5, s, 0.05, 30).c[-1].item(), 2) for s in (1.0, 1.76, 3.0)]
        [1.0, 0.83, 0.31]
    """
    sw = _as_config_vector("sigma_w2", sigma_w2)
    sb = _as_config_vector("sigma_b2", sigma_b2)
    q_start = _as_config_vector("q0", q0)
    try:
        sw, sb, q_start = torch.broadcast_tensors(sw, sb, q_start)
    except RuntimeError:
        raise ValueError(
            f"sigma_w2 ({sw.numel()} entries), sigma_b2 ({sb.numel()} entries) and q0 "
            f"({q_start.numel()} entries) do not broadcast"
        ) from None
    if not bool((q_start > 0).all()):
        raise ValueError(f"q0 must be > 0, got {q0!r}")
    n = check_int("width", width, minimum=1)
    check_int("depth", depth, minimum=0)
    c0 = check_real("c0", c0)
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0!r}")
    check_dtype("dtype", dtype, allowed=(torch.float32, torch.float64))
    check_generator(generator)
    check_choice("method", method, ("matrix", "gram"))
    act = _activation(phi)

    configs = sw.numel()
    chunk = max(1, _MAX_WEIGHT_ENTRIES // (n * n)) if method == "matrix" else configs
    parts = []
    for start in range(0, configs, chunk):
        k = min(chunk, configs - start)
        w_scale = (sw[start : start + k] / n).sqrt().to(dtype)[:, None, None]
        b_scale = sb[start : start + k].sqrt().to(dtype)[:, None, None]
        z = torch.randn(k, n, 3, generator=generator, dtype=dtype)
        h = q_start[start : start + k].sqrt().to(dtype)[:, None, None] * torch.stack(
            [z[..., 0], c0 * z[..., 0] + math.sqrt(max(0.0, 1.0 - c0 * c0)) * z[..., 1]], dim=-1
        )
        u = z[..., 2:]
        rows = [_mean_field_stats(h)]
        ratios = []
        for _ in range(depth):
            x = torch.cat([act.fn(h), act.dfn(h[..., :1]) * u], dim=-1)  # (k, n, 3)
            if method == "matrix":
                w = torch.randn(k, n, n, generator=generator, dtype=dtype).mul_(w_scale)
                y = torch.bmm(w, x)
            else:
                y = torch.bmm(torch.randn(k, n, 3, generator=generator, dtype=dtype), _gram_root(x))
                y = y * w_scale
            bias = torch.randn(k, n, 1, generator=generator, dtype=dtype) * b_scale
            h = y[..., :2] + bias
            u_new = y[..., 2:]
            u_sq = u.double().square().sum(dim=(1, 2))
            ratios.append(u_new.double().square().sum(dim=(1, 2)) / u_sq)
            # renormalise, so that the tangent never overflows or underflows
            u = u_new / u_new.square().mean(dim=(1, 2), keepdim=True).sqrt()
            rows.append(_mean_field_stats(h))
        stacked = torch.stack(rows, dim=1)  # (k, depth + 1, 3)
        ratio = torch.stack(ratios, dim=1) if ratios else torch.empty(k, 0, dtype=torch.float64)
        parts.append((stacked, ratio))
    stats_all = torch.cat([p[0] for p in parts])
    return MeanFieldRun(
        q=stats_all[..., 0],
        c=stats_all[..., 1],
        one_minus_c=stats_all[..., 2],
        chi1=torch.cat([p[1] for p in parts]),
    )


def _gram_root(x: torch.Tensor) -> torch.Tensor:
    """An upper-triangular ``R`` with ``R^T R = x^T x`` per batch entry (Cholesky, QR where it fails)."""
    xd = x.double()
    lower, info = torch.linalg.cholesky_ex(xd.mT @ xd)
    r = lower.mT
    bad = info != 0
    if (
        bad.any()
    ):  # (numerically) collinear columns: fall back to the slower, rank-revealing-safe QR
        r[bad] = torch.linalg.qr(xd[bad], mode="r").R
    return r.to(x.dtype)


def _mean_field_stats(h: torch.Tensor) -> torch.Tensor:
    """``(q, c, 1 - c)`` per configuration for pre-activations ``h`` of shape ``(k, n, 2)``."""
    hd = h.double()
    norms = hd.norm(dim=1)  # (k, 2)
    q = hd.square().mean(dim=(1, 2))
    c = (hd[..., 0] * hd[..., 1]).sum(dim=1) / (norms[:, 0] * norms[:, 1])
    e = hd / norms[:, None, :]
    one_minus_c = 0.5 * (e[..., 0] - e[..., 1]).square().sum(dim=1)
    return torch.stack([q, c, one_minus_c], dim=1)
