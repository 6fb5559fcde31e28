r"""The one table of named activations and their derivatives, and the Gaussian expectations of an
activation that the mean-field recursions need (shared by :mod:`initbook.theory` and the simulators
of :mod:`initbook.stats`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch

from ._validation import check_choice

_Z_MAX = 12.0  # the standard normal density is below 1e-31 beyond |z| = 12
_MAX_NODES_1D = 20_000  # the step reaches its floor at q ~ 1e4
_MAX_NODES_2D = 1_200  # per dimension (1.4 million points): the step reaches its floor at q ~ 150


def _gaussian_grid(q: float, max_nodes: int = _MAX_NODES_1D) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes and weights of a midpoint rule for :math:`\mathbb E[f(\sqrt q\, z)]`, :math:`z \sim \mathcal N(0,1)`.

    Equally spaced nodes :math:`\pm h/2, \pm 3h/2, \dots` on :math:`[-12, 12]` with step
    :math:`h = 0.25/\sqrt{\max(q, 1)}` (at most ``max_nodes`` of them) and weights :math:`\propto
    e^{-z^2/2}`. For integrands analytic in a strip (tanh: poles at :math:`\pm i\pi/(2\sqrt q)` in
    :math:`z`) such rules converge geometrically in :math:`1/h` (Trefethen and Weideman, SIAM Review 2014),
    so scaling :math:`h` with :math:`1/\sqrt q` keeps the error near :math:`10^{-13}` for every :math:`q`
    up to the node limit. A fixed Gauss–Hermite rule does not: with 101 nodes,
    :math:`\mathbb E[\operatorname{sech}^4(\sqrt q z)]` is off by :math:`2\times10^{-3}` at :math:`q = 8`,
    and numpy's nodes overflow beyond about 400 points. The nodes avoid :math:`z = 0` and are symmetric,
    so a kink at 0 (ReLU) gets no node of its own and :math:`\mathbb E[\operatorname{relu}(\sqrt q z)^2] =
    q/2` and :math:`\mathbb E[\mathbf 1(z > 0)] = 1/2` come out exactly.
    """
    m = min(math.ceil(_Z_MAX * math.sqrt(max(q, 1.0)) / 0.25), max_nodes // 2)
    h = _Z_MAX / m
    z = (torch.arange(-m, m, dtype=torch.float64) + 0.5) * h
    w = torch.exp(-0.5 * z.square())
    return z, w / w.sum()


def _relu_kernel(q: float, c: float) -> float:
    r""":math:`\mathbb E[\operatorname{relu}(u_1)\operatorname{relu}(u_2)]`, :math:`u` with variances q and correlation c."""
    theta = math.acos(c)
    return q / (2.0 * math.pi) * (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - theta) * c)


def _autograd_derivative(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    def dfn(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            xx = x.detach().clone().requires_grad_(True)
            y = fn(xx)
            if not y.requires_grad:  # e.g. a constant function
                return torch.zeros_like(x)
            (grad,) = torch.autograd.grad(y.sum(), xx, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad

    return dfn


@dataclass(frozen=True)
class _Activation:
    """An activation with the four Gaussian expectations the mean-field recursions need."""

    name: str | None
    fn: Callable[[torch.Tensor], torch.Tensor]
    dfn: Callable[[torch.Tensor], torch.Tensor]
    slope: float = 0.0

    def _e1(self, f: Callable, q: float) -> float:
        z, w = _gaussian_grid(q)
        return float((w * f(math.sqrt(q) * z).to(torch.float64).square()).sum())

    def _e2(self, f: Callable, q: float, c: float) -> float:
        z, w = _gaussian_grid(q, _MAX_NODES_2D)
        z1, z2 = z[:, None], z[None, :]
        u1 = (math.sqrt(q) * z1).expand(len(z), len(z))
        u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(0.0, 1.0 - c * c)) * z2)
        vals = f(u1).to(torch.float64) * f(u2).to(torch.float64)
        return float((w[:, None] * w[None, :] * vals).sum())

    def mean_sq(self, q: float) -> float:
        r""":math:`\mathbb E[\phi(\sqrt q z)^2]`."""
        if self.name == "linear":
            return q
        if self.name in ("relu", "leaky_relu"):
            return (1.0 + self.slope**2) / 2.0 * q
        if self.name == "erf":
            return 2.0 / math.pi * math.asin(2.0 * q / (1.0 + 2.0 * q))
        return self._e1(self.fn, q)

    def dmean_sq(self, q: float) -> float:
        r""":math:`\mathbb E[\phi'(\sqrt q z)^2]`."""
        if self.name == "linear":
            return 1.0
        if self.name in ("relu", "leaky_relu"):
            return (1.0 + self.slope**2) / 2.0
        if self.name == "erf":
            return 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q)
        return self._e1(self.dfn, q)

    def cross(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi(u_1)\phi(u_2)]` for :math:`u` with variances :math:`q` and correlation :math:`c`."""
        if self.name == "linear":
            return c * q
        if self.name in ("relu", "leaky_relu"):
            a = self.slope
            return (1.0 + a * a) * _relu_kernel(q, c) - 2.0 * a * _relu_kernel(q, -c)
        if self.name == "erf":
            return 2.0 / math.pi * math.asin(2.0 * c * q / (1.0 + 2.0 * q))
        return self._e2(self.fn, q, c)

    def dcross(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi'(u_1)\phi'(u_2)]`."""
        if self.name == "linear":
            return 1.0
        if self.name in ("relu", "leaky_relu"):
            a, theta = self.slope, math.acos(c)
            return ((1.0 + a * a) * (math.pi - theta) + 2.0 * a * theta) / (2.0 * math.pi)
        if self.name == "erf":
            return 4.0 / math.pi / math.sqrt((1.0 + 2.0 * q) ** 2 - (2.0 * c * q) ** 2)
        return self._e2(self.dfn, q, c)


_NAMED: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda x: x, torch.ones_like),
    "relu": (torch.relu, lambda x: (x > 0).to(x.dtype)),
    "tanh": (torch.tanh, lambda x: 1.0 - torch.tanh(x).square()),
    "erf": (torch.erf, lambda x: 2.0 / math.sqrt(math.pi) * torch.exp(-x.square())),
}
_MEAN_FIELD_NAMES = ("erf", "linear", "relu", "tanh")
_KNOWN_CALLABLES = {
    torch.tanh: "tanh",
    torch.relu: "relu",
    torch.erf: "erf",
    torch.special.erf: "erf",
    torch.nn.functional.relu: "relu",
}


def _activation(
    phi: object,
    dphi: object = None,
    *,
    arg: str = "phi",
    names: Sequence[str] = _MEAN_FIELD_NAMES,
    slope: float = 0.0,
) -> _Activation:
    """Resolve an activation given by name or as a callable (with an optional derivative)."""
    if isinstance(phi, _Activation):
        return phi
    if dphi is not None and not callable(dphi):
        raise TypeError(f"dphi must be a callable or None, got {dphi!r}")
    if isinstance(phi, str):
        name: str | None = check_choice(arg, phi, names)
    elif callable(phi):
        try:
            name = _KNOWN_CALLABLES.get(phi)
        except TypeError:  # unhashable callable
            name = None
    else:
        raise TypeError(f"{arg} must be one of {sorted(names)} or a callable, got {phi!r}")
    if name == "leaky_relu":
        return _Activation(
            name,
            lambda x: torch.nn.functional.leaky_relu(x, slope),
            lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope)),
            slope,
        )
    if name is not None and dphi is None:
        fn, dfn = _NAMED[name]
        return _Activation(name, fn, dfn)
    fn = (
        _NAMED[name][0] if name is not None else cast("Callable[[torch.Tensor], torch.Tensor]", phi)
    )
    return _Activation(None, fn, dphi if dphi is not None else _autograd_derivative(fn))
