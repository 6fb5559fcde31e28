r"""Diagnose the initialization of any model: one call, a report per layer, and findings with their fixes.

:func:`diagnose` runs a model once forward and backward on the inputs it is given (through
:func:`initbook.stats.trace`) and reads the state a network starts training from, layer by layer:

* the **fans** of each weighted layer from the layer itself (:func:`initbook.fans_of`, right for grouped and
  transposed convolutions), next to torch's (from the weight's shape);
* the **weight scale** against He, LeCun and Xavier for the nonlinearity that follows the layer (found from
  the modules called after it, or given by the caller);
* **forward and backward statistics** (RMS of the output, of the gradient reaching it, the fraction of zeros
  and of saturated units) and the **growth factor** per layer;
* for classifiers the **initial loss** against :math:`\ln C`;
* with an ``optimizer``, one step on a **copy** of the parameters: the **update-to-weight ratio** per layer
  and the relative change of the output that one step causes.

The report's :class:`Finding` s each carry a severity, the layers concerned, a sentence with the book's
theory, the page that explains more, and the ``initbook`` call that fixes it.

The model is left exactly as it was: parameters, buffers and ``.grad`` bit-identical, every module's
train/eval mode restored, every hook removed, the global random state unchanged, also when the model raises.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from . import theory
from ._activations import _MEAN_FIELD_NAMES
from ._validation import check_choice
from .init import calculate_gain, compute_fans, fans_of
from .stats import trace
from .stats._trace import _first_tensor

if TYPE_CHECKING:
    import matplotlib.figure

__all__ = [
    "FINDINGS",
    "Finding",
    "LayerReport",
    "Report",
    "Severity",
    "diagnose",
]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")

#: Every finding :func:`diagnose` can report: code -> (the page that explains it, what it means).
FINDINGS: dict[str, tuple[str, str]] = {
    "nonfinite": ("beyond/low-precision", "inf or NaN in an activation, a gradient or the loss"),
    "overflow_risk": (
        "beyond/low-precision",
        "activations within 16x of the dtype's largest value",
    ),
    "vanishing_activations": (
        "foundations/relu-and-kaiming",
        "the forward signal shrinks with depth",
    ),
    "exploding_activations": (
        "foundations/relu-and-kaiming",
        "the forward signal grows with depth",
    ),
    "vanishing_gradients": (
        "beyond/order-and-chaos",
        "the gradient shrinks going back through depth",
    ),
    "exploding_gradients": (
        "beyond/order-and-chaos",
        "the gradient grows going back through depth",
    ),
    "symmetry": ("foundations/pitfalls", "all units of a layer start identical and stay identical"),
    "dead_units": ("foundations/relu-and-kaiming", "most ReLU outputs are zero"),
    "saturated_units": (
        "foundations/xavier-glorot",
        "most tanh/sigmoid outputs sit in the flat tails",
    ),
    "overconfident_logits": ("foundations/pitfalls", "initial loss far above ln(classes)"),
    "torch_fans": ("foundations/pytorch-defaults", "weights scaled with torch's wrong conv fans"),
    "scale_mismatch": (
        "foundations/relu-and-kaiming",
        "a weight scale far from the one its layer needs",
    ),
    "large_step": (
        "beyond/residual-networks",
        "one optimizer step changes the output by its own size",
    ),
}

# Thresholds (reasons in the docstring of `diagnose`).
DRIFT_WARNING = 10.0  # RMS ratio across a chain of repeated layers: an order of magnitude
DRIFT_ERROR = 1000.0  # three orders: the signal is gone (or overflows) for all practical purposes
DEAD_WARNING, DEAD_ERROR = 0.9, 0.99  # fraction of exact zeros after a ReLU (1/2 at a healthy init)
SATURATED_WARNING = (
    0.5  # fraction of tanh/sigmoid outputs in the tails, where the derivative < 0.02
)
LOGIT_STD_WARNING = 2.0  # logits of std s cost about s^2 (1 - 1/C) / 2 nats above ln C
OVERFLOW_HEADROOM = 16.0  # warn when max |activation| is within this factor of the dtype's max
SCALE_RATIO = (
    2.0  # info when the weight std is off by more than this factor from the recommended one
)
STEP_WARNING, STEP_ERROR = 0.5, 2.0  # relative output change of one optimizer step
FANS_MATCH = 0.1  # relative std tolerance for "this layer was initialized with torch's fans"

_ACTIVATIONS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"),
    (nn.ReLU6, "relu"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.PReLU, "leaky_relu"),
    (nn.Tanh, "tanh"),
    (nn.Sigmoid, "sigmoid"),
    (nn.SELU, "selu"),
    (nn.GELU, "gelu"),
    (nn.SiLU, "silu"),
    (nn.Mish, "silu"),
    (nn.ELU, "elu"),
    (nn.CELU, "elu"),
    (nn.Softplus, "softplus"),
    (nn.Hardtanh, "tanh"),
)
_RELU_LIKE = ("relu", "leaky_relu")
_NORMS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)
# The gain the book recommends for a nonlinearity (std = gain / sqrt(fan_in)). For tanh it is the critical
# point sigma_w^2 = 1 (order-and-chaos), not torch's 5/3; for ReLU-like smooth functions He's sqrt(2).
_RECOMMENDED_GAIN = {
    "relu": math.sqrt(2.0),
    "leaky_relu": math.sqrt(2.0),
    "gelu": math.sqrt(2.0),
    "silu": math.sqrt(2.0),
    "elu": math.sqrt(2.0),
    "softplus": math.sqrt(2.0),
    "tanh": 1.0,
    "sigmoid": 1.0,
    "selu": 1.0,
    "linear": 1.0,
}
_NONLINEARITIES = (*_RECOMMENDED_GAIN, "norm")


@dataclass(frozen=True)
class Finding:
    """One problem (or note) found by :func:`diagnose`.

    Attributes:
        code: a key of :data:`FINDINGS`, e.g. ``"vanishing_activations"``.
        severity: ``"info"``, ``"warning"`` or ``"error"``.
        layers: the qualified names of the layers concerned.
        message: what was measured, and why it matters, in the book's terms.
        page: the book page that explains more (a Sphinx document name, e.g. ``"beyond/order-and-chaos"``).
        fix: the ``initbook`` call that fixes it.
    """

    code: str
    severity: Severity
    layers: tuple[str, ...]
    message: str
    page: str
    fix: str

    def __str__(self) -> str:
        where = ", ".join(self.layers[:4]) + (", ..." if len(self.layers) > 4 else "")
        return (
            f"[{self.severity.upper()}] {self.code} ({where}): {self.message}\n"
            f"    fix: {self.fix}\n    read: {self.page}"
        )


@dataclass(frozen=True)
class LayerReport:
    r"""One weighted layer (a module with a weight of at least 2 dimensions) in a :class:`Report`.

    Attributes:
        name: qualified module name (``name#k`` for the ``k``-th call of a module called more than once).
        layer_type: the module's class name.
        fan_in, fan_out: the layer's true fans (:func:`initbook.fans_of`).
        torch_fan_in, torch_fan_out: the fans torch computes from the weight's shape.
        nonlinearity: what follows the layer: an activation name, ``"norm"`` (a normalization layer comes
            first, so the scale does not matter forward), or ``"linear"`` (nothing found).
        weight_std: the weight's standard deviation.
        he_std, lecun_std, xavier_std: the three schemes' std for this layer (Xavier with the gain of the
            nonlinearity, :func:`initbook.calculate_gain`).
        recommended_std: :math:`g/\sqrt{n_\text{in}}` with the book's gain for the nonlinearity
            (:math:`\sqrt 2` for ReLU-like, 1 for tanh at the edge of chaos, sigmoid and linear); NaN after
            a norm.
        scale_ratio: ``weight_std / recommended_std``.
        bias_mean: mean of the bias (NaN without one).
        act_rms: RMS of the layer's output.
        grad_rms: RMS of the gradient of the loss w.r.t. that output.
        forward_growth: ``act_rms`` over that of the previous weighted layer (over the input's, for the first).
        backward_growth: ``grad_rms`` of the previous weighted layer over this one's: the factor by which
            the gradient grows going back through this layer (NaN for the first).
        update_ratio: ``||ΔW|| / ||W||`` after one optimizer step on a copy (NaN without an optimizer).
    """

    name: str
    layer_type: str
    fan_in: int
    fan_out: int
    torch_fan_in: int
    torch_fan_out: int
    nonlinearity: str
    weight_std: float
    he_std: float
    lecun_std: float
    xavier_std: float
    recommended_std: float
    scale_ratio: float
    bias_mean: float
    act_rms: float
    grad_rms: float
    forward_growth: float
    backward_growth: float
    update_ratio: float


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}"


@dataclass(frozen=True)
class Report:
    """The result of :func:`diagnose`: a table of :class:`LayerReport` rows and a list of :class:`Finding` s.

    ``print(report)`` shows a text table; in a notebook it renders as HTML; :meth:`plot` draws it;
    :meth:`to_json` serializes it.

    Attributes:
        layers: one row per weighted layer call, in call order.
        findings: the findings, most severe first.
        loss: the initial loss (NaN when no target was given).
        classes: the number of classes for a classifier (cross-entropy on integer targets), else ``None``.
        output_change: ``||f(θ') - f(θ)|| / ||f(θ)||`` after one optimizer step (NaN without an optimizer).
        dtype: the dtype of the model's parameters.
    """

    layers: tuple[LayerReport, ...]
    findings: tuple[Finding, ...]
    loss: float
    classes: int | None
    output_change: float
    dtype: str
    _trace: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """``True`` when there is no finding of severity ``"warning"`` or ``"error"``."""
        return not any(f.severity in ("warning", "error") for f in self.findings)

    @property
    def worst(self) -> str:
        """The highest severity among the findings (``"none"`` without findings)."""
        if not self.findings:
            return "none"
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    def codes(self, severity: str = "info") -> set[str]:
        """The codes of the findings at ``severity`` or above."""
        level = SEVERITIES.index(check_choice("severity", severity, SEVERITIES))
        return {f.code for f in self.findings if SEVERITIES.index(f.severity) >= level}

    def __getitem__(self, name: str) -> LayerReport:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(f"no weighted layer named {name!r}; names: {[r.name for r in self.layers]}")

    # -- views --------------------------------------------------------------------------------------------

    _HEADER = (
        "layer",
        "type",
        "fan_in",
        "fan_out",
        "after",
        "w std",
        "x rec",
        "act rms",
        "grad rms",
        "fwd x",
        "bwd x",
        "upd/w",
    )

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                r.name,
                r.layer_type,
                str(r.fan_in) + ("*" if r.fan_in != r.torch_fan_in else ""),
                str(r.fan_out) + ("*" if r.fan_out != r.torch_fan_out else ""),
                r.nonlinearity,
                _num(r.weight_std),
                _num(r.scale_ratio, 2),
                _num(r.act_rms),
                _num(r.grad_rms),
                _num(r.forward_growth, 2),
                _num(r.backward_growth, 2),
                _num(r.update_ratio, 2),
            )
            for r in self.layers
        ]

    def _summary(self) -> str:
        parts = [f"{len(self.layers)} weighted layer(s), dtype {self.dtype}"]
        if not math.isnan(self.loss):
            parts.append(f"initial loss {self.loss:.4g}")
            if self.classes is not None:
                parts.append(f"ln(C={self.classes}) = {math.log(self.classes):.4g}")
        if not math.isnan(self.output_change):
            parts.append(f"output change after one step {self.output_change:.3g}")
        return "; ".join(parts)

    def table(self) -> str:
        """The text report: a summary line, the per-layer table and the findings."""
        body = self._rows()
        widths = [max(len(x[j]) for x in [self._HEADER, *body]) for j in range(len(self._HEADER))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if j in (0, 1, 4) else c.rjust(w)
                for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [f"initbook.diagnose: {self._summary()}", line(self._HEADER)]
        out += [line(b) for b in body]
        out.append("(* fan differs from torch's; x rec = w std / recommended std)")
        if self.findings:
            out.append(f"{len(self.findings)} finding(s):")
            out += [str(f) for f in self.findings]
        else:
            out.append("no findings")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {"error": "#b00020", "warning": "#a15c00", "info": "#555"}
        head = "".join(f"<th>{esc(h)}</th>" for h in self._HEADER)
        rows = "".join(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self._rows()
        )
        items = "".join(
            f'<li><b style="color:{colour[f.severity]}">{esc(f.severity)}</b> '
            f"<code>{esc(f.code)}</code> ({esc(', '.join(f.layers))}): {esc(f.message)}<br>"
            f"fix: <code>{esc(f.fix)}</code>; read: <i>{esc(f.page)}</i></li>"
            for f in self.findings
        )
        findings = f"<ul>{items}</ul>" if self.findings else "<p>no findings</p>"
        return (
            f'<div class="initbook-diagnose"><p>{esc(self._summary())}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{findings}</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python data (NaN becomes ``None``)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return clean(
            {
                "dtype": self.dtype,
                "loss": self.loss,
                "classes": self.classes,
                "output_change": self.output_change,
                "ok": self.ok,
                "worst": self.worst,
                "layers": [asdict(r) for r in self.layers],
                "findings": [asdict(f) for f in self.findings],
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """The report as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    def plot(self) -> matplotlib.figure.Figure:
        """Draw the report: per layer, activation and gradient RMS (log scale) and the weight scale ratio.

        Layers with findings are marked with a red cross.
        """
        import matplotlib.pyplot as plt

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, layout="constrained")
        index = list(range(len(self.layers)))

        def finite(values: list[float]) -> list[float]:
            return [v if math.isfinite(v) and v > 0 else math.nan for v in values]

        top.plot(index, finite([r.act_rms for r in self.layers]), "o-", label="activation RMS")
        top.plot(index, finite([r.grad_rms for r in self.layers]), "s-", label="gradient RMS")
        flagged = {n for f in self.findings if f.severity != "info" for n in f.layers}
        marks = [i for i, r in enumerate(self.layers) if r.name in flagged]
        for i in marks:
            top.axvline(i, color="tab:red", alpha=0.15, linewidth=6)
        if any(math.isfinite(v) for v in finite([r.act_rms for r in self.layers])):
            top.set_yscale("log")
        top.set(ylabel="RMS", title=f"initbook.diagnose: {self.worst}")
        top.legend(fontsize="small")
        bottom.axhline(1.0, color="0.6", linewidth=1)
        bottom.plot(
            index, finite([r.scale_ratio for r in self.layers]), "o", label="w std / recommended"
        )
        bottom.set_yscale("log")
        bottom.set(xlabel="weighted layer (call order)", ylabel="scale ratio")
        bottom.set_xticks(index, [r.name for r in self.layers], rotation=90, fontsize="x-small")
        return fig


# --------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------


def _model_dtype(model: nn.Module) -> torch.dtype | None:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _check_tensor_finite(name: str, t: torch.Tensor) -> None:
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            n_nan = int(torch.isnan(t).sum())
            raise ValueError(
                f"{name} contains {n_nan} NaN and {int(bad.sum()) - n_nan} inf value(s) "
                f"(shape {tuple(t.shape)}); diagnose needs finite inputs"
            )


def _check_inputs(model: nn.Module, inputs: tuple[Any, ...]) -> torch.dtype | None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not inputs:
        raise TypeError("diagnose needs at least one input: diagnose(model, x)")
    dtype = _model_dtype(model)
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor):
            continue  # non-tensor arguments go to the model as they are
        _check_tensor_finite(f"input {i}", x)
        if x.is_floating_point() and dtype is not None and x.dtype != dtype:
            raise TypeError(
                f"input {i} has dtype {x.dtype} but the model's parameters are {dtype}; "
                f"pass x.to({dtype})"
            )
        if x.ndim == 0:
            raise ValueError(f"input {i} is a 0-dimensional tensor; it needs a batch dimension")
    if not any(isinstance(x, torch.Tensor) for x in inputs):
        raise TypeError(
            f"diagnose needs a tensor among the inputs, got {[type(x).__name__ for x in inputs]}"
        )
    return dtype


def _shapes(inputs: tuple[Any, ...]) -> str:
    return ", ".join(
        f"{tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}"
        if isinstance(x, torch.Tensor)
        else type(x).__name__
        for x in inputs
    )


# --------------------------------------------------------------------------------------------------------
# The model is left as it was
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _untouched(model: nn.Module, devices: list[int]):
    """Restore modes, parameters and buffers that changed, and the random state, whatever happens inside."""
    modes = [(m, m.training) for m in model.modules()]
    tensors = list(model.parameters()) + [b for b in model.buffers() if b is not None]
    saved = [(t, t._version, t.detach().clone()) for t in tensors]
    grads = [(p, p.grad) for p in model.parameters()]
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training
            with torch.no_grad():
                for t, version, value in saved:
                    # batch norm updates its running statistics without bumping _version
                    if t._version != version or not torch.equal(t, value):
                        t.copy_(value)
            for p, g in grads:
                if p.grad is not g:
                    p.grad = g


# --------------------------------------------------------------------------------------------------------
# The layers
# --------------------------------------------------------------------------------------------------------


def _weight(module: nn.Module) -> torch.Tensor | None:
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor) and w.ndim >= 2 and not isinstance(module, nn.Embedding):
        return w
    return None


def _activation_name(module: nn.Module) -> str | None:
    for cls, name in _ACTIVATIONS:
        if isinstance(module, cls):
            return name
    return None


def _chain_key(name: str) -> str:
    """``layers.3.linear1#2`` -> ``layers.#.linear1``: repeated blocks share a key."""
    return re.sub(r"\d+", "#", name.split("#")[0])


def _rms(mean_sq: float | None) -> float:
    if mean_sq is None or not math.isfinite(mean_sq):
        return math.inf if mean_sq == math.inf else math.nan
    return math.sqrt(max(mean_sq, 0.0))


def _nonlinearity_after(rows: list, i: int, weighted: set[int], override: Any, name: str) -> str:
    if isinstance(override, str):
        return override
    if isinstance(override, Mapping) and name.split("#")[0] in override:
        return override[name.split("#")[0]]
    for row_index in range(i + 1, len(rows)):
        if row_index in weighted:
            break
        module = rows[row_index][1]
        if isinstance(module, _NORMS):
            return "norm"
        act = _activation_name(module)
        if act is not None:
            return act
    return "linear"


def _default_loss(target: torch.Tensor | None, user: Callable | None, box: dict) -> Callable:
    def loss_fn(output: Any) -> torch.Tensor:
        y = _first_tensor(output)
        box["output"] = y.detach() if isinstance(y, torch.Tensor) else None
        if user is not None:
            loss = user(output) if target is None else user(output, target)
        elif y is None or not y.is_floating_point():
            raise TypeError("the model's output is not a floating tensor; pass loss_fn")
        elif target is None:
            gen = torch.Generator(device=y.device).manual_seed(0)
            r = torch.randn(y.shape, generator=gen, device=y.device, dtype=torch.float32)
            loss = (y * r.to(y.dtype)).sum()
        elif target.is_floating_point():
            if target.shape != y.shape:
                raise ValueError(
                    f"target has shape {tuple(target.shape)} but the output has shape "
                    f"{tuple(y.shape)}; a float target is compared with mse_loss"
                )
            loss = F.mse_loss(y.float(), target.float())
        else:
            if y.ndim < 2 or target.shape != y.shape[:1] + y.shape[2:]:
                raise ValueError(
                    f"integer target of shape {tuple(target.shape)} does not fit an output of shape "
                    f"{tuple(y.shape)}: cross-entropy needs output (N, C, ...) and target (N, ...)"
                )
            if int(target.min()) < 0 or int(target.max()) >= y.shape[1]:
                raise ValueError(
                    f"target has class labels in [{int(target.min())}, {int(target.max())}], "
                    f"outside [0, {y.shape[1] - 1}] for an output with {y.shape[1]} classes"
                )
            box["classes"] = int(y.shape[1])
            loss = F.cross_entropy(y.float(), target)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar tensor, got {loss!r}")
        box["raw_loss"] = float(loss.detach())
        if user is not None or target is not None:
            box["loss"] = box["raw_loss"]
        return loss

    return loss_fn


def _clone_optimizer(
    optimizer: torch.optim.Optimizer, model: nn.Module, grads: dict[int, torch.Tensor]
) -> dict[int, torch.Tensor]:
    """One step of a fresh optimizer of the same kind and hyperparameters on copies; returns the updates."""
    ids = {id(p) for p in model.parameters()}
    copies: dict[int, torch.Tensor] = {}
    groups = []
    for group in optimizer.param_groups:
        params = []
        for p in group["params"]:
            if id(p) not in ids:
                raise ValueError("optimizer holds a parameter that is not one of the model's")
            c = p.detach().clone().requires_grad_(True)
            g = grads.get(id(p))
            c.grad = None if g is None else g.detach().clone()
            copies[id(p)] = c
            params.append(c)
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    clone = type(optimizer)(groups, **optimizer.defaults)
    originals = {id(p): p for group in optimizer.param_groups for p in group["params"]}
    clone.step()
    return {k: (c.detach() - originals[k].detach()) for k, c in copies.items()}


# --------------------------------------------------------------------------------------------------------
# diagnose
# --------------------------------------------------------------------------------------------------------


def diagnose(
    model: nn.Module,
    *inputs: Any,
    target: torch.Tensor | None = None,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    nonlinearity: str | Mapping[str, str] | None = None,
) -> Report:
    r"""Diagnose the initialization of ``model`` on ``inputs``: per-layer statistics and findings.

    The model runs once forward and backward in training mode (what the first step of training sees:
    batch statistics in batch norm, dropout on) through :func:`initbook.stats.trace`, under a fixed random
    seed. The loss is ``loss_fn(output, target)`` (``loss_fn(output)`` without a target); without
    ``loss_fn``, cross-entropy for an integer ``target`` (a classifier: the initial loss is compared with
    :math:`\ln C`), mean squared error for a float ``target``, and without a target a fixed random projection
    of the output (:func:`initbook.stats.trace`'s default, the backward assumption of He et al. 2015). The
    gradients are computed with :func:`torch.autograd.grad`, so no ``.grad`` is touched. With an
    ``optimizer``, a fresh optimizer of the same class and hyperparameters takes one step on copies of the
    parameters, and the model's output is recomputed with them (:func:`torch.func.functional_call`).

    **Findings and their thresholds.** A *chain* is a set of weighted layers that differ only in the
    numbers of their names (``layers.0.linear1``, ``layers.1.linear1``, ...; the layers of a
    ``Sequential`` MLP): the depth direction. The theory (relu-and-kaiming, order-and-chaos) says the
    squared signal changes by a factor :math:`\chi` per layer, forward :math:`\sigma_w^2\,
    \mathbb E[\phi(h)^2]/q` and backward :math:`\chi_1 = \sigma_w^2 \mathbb E[\phi'(h)^2]`
    (:func:`initbook.theory.chi1`). At a critical initialization both are 1 and what remains are
    finite-width fluctuations of :math:`\ln` RMS of order :math:`\sqrt{L/n}`, well under
    :math:`\ln 10` for the widths and depths where the test models live.

    * ``vanishing_``/``exploding_activations``, ``vanishing_``/``exploding_gradients``: the RMS of the
      outputs (of the gradients reaching them) changes by more than a factor ``DRIFT_WARNING`` = 10 from
      the first to the last layer of a chain of at least 3: a per-layer factor off 1 by
      :math:`\ln 10 / L`. Error at ``DRIFT_ERROR`` = 1000. The message gives :math:`\chi_1` where the
      nonlinearity is ReLU, tanh or linear.
    * ``nonfinite`` (error): inf or NaN in an output, a gradient or the loss. ``overflow_risk`` (warning):
      a largest output within ``OVERFLOW_HEADROOM`` = 16 of the dtype's largest finite value (4 more
      doublings overflow).
    * ``symmetry`` (error): all output units of a hidden layer have identical incoming weights (a constant
      fill): their gradients are identical too, so they never differ. All-zero weights followed by no
      nonlinearity (a zero-initialized residual branch or head) are fine and not reported.
    * ``dead_units``: at least ``DEAD_WARNING`` = 90 % exact zeros after a ReLU (error at 99 %); a
      symmetric pre-activation gives 50 %.
    * ``saturated_units`` (warning): more than half of a tanh's or sigmoid's outputs in the tails where the
      derivative is below 0.02.
    * ``overconfident_logits`` (warning; error when the loss exceeds :math:`2\ln C`): initial
      cross-entropy more than :math:`2(1 - 1/C)` nats above :math:`\ln C`. For i.i.d. logits of std
      :math:`s` the excess is about :math:`\tfrac{s^2}{2}(1 - 1/C)`, so this means logits of std above
      ``LOGIT_STD_WARNING`` = 2, twice what a LeCun head gives features of unit second moment. (Over 80
      seeds of the healthy residual CNN in the tests the excess was 0.27 +- 0.21 nats, at most 1.12.)
    * ``torch_fans`` (warning): a grouped or transposed convolution whose weight std matches
      :math:`g/\sqrt{\text{fan}}` with *torch's* fan (within 10 %) and not with the true one
      (:func:`initbook.fans_of`).
    * ``scale_mismatch`` (info): the weight std differs from the recommended one by more than a factor 2
      (not reported for layers followed by a normalization).
    * ``large_step`` (with an optimizer; warning at 0.5, error at 2): one step changes the output by that
      fraction of its own norm. A step that large replaces the function instead of adjusting it; in a deep
      post-LN transformer this is the amplification that warm-up exists to tame (Xiong et al. 2020).
      These two thresholds are empirical, not derived: with Adam at lr 2e-3, 12 layers of width 32 and 12
      seeds, pre-LN transformers with GPT-2 scaling moved their output by 0.23-0.35 and post-LN ones with
      torch's init by 0.74-1.77. The margin shrinks with depth and learning rate: at lr 1e-3 and width 64,
      12 layers gave 0.36-0.39 against 0.70-2.05, and 24 pre-LN layers reached 0.61-0.82 (their learning
      rate should shrink with depth too).

    Args:
        model: any :class:`~torch.nn.Module`; left exactly as it was.
        *inputs: the model's inputs, passed as ``model(*inputs)``; floating inputs must have the model's
            dtype and be finite.
        target: labels (integer, for cross-entropy) or regression targets (float).
        loss_fn: ``loss_fn(output, target)`` (or ``loss_fn(output)`` without a target), a scalar.
        optimizer: an optimizer over the model's parameters; it is not stepped, a copy is.
        nonlinearity: what follows each weighted layer, when the model applies it functionally (invisible
            to module hooks): one name for all, or ``{layer name: name}``. Names: ``"relu"``,
            ``"leaky_relu"``, ``"gelu"``, ``"silu"``, ``"elu"``, ``"softplus"``, ``"tanh"``,
            ``"sigmoid"``, ``"selu"``, ``"linear"``, ``"norm"``.

    Returns:
        A :class:`Report`.

    Raises:
        TypeError: ``model`` is not a module; no tensor input; a floating input whose dtype differs from
            the model's; a bad ``target``, ``loss_fn``, ``optimizer`` or ``nonlinearity`` type.
        ValueError: NaN or inf in an input or target; the model fails on the inputs (the message names the
            input shapes, the module that failed and torch's error); a target that does not fit the output.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> mlp = torch.nn.Sequential(*[m for _ in range(8) for m in (torch.nn.Linear(64, 64), torch.nn.ReLU())])
        >>> report = initbook.diagnose(mlp, torch.randn(256, 64, generator=g))  # torch's default init
        >>> sorted(report.codes("warning"))  # forward, the biases hold the signal at their level
        ['vanishing_gradients']
        >>> _ = initbook.init_model(mlp, "kaiming_normal", nonlinearity="relu", generator=g)
        >>> initbook.diagnose(mlp, torch.randn(256, 64, generator=g)).ok
        True
    """
    dtype = _check_inputs(model, inputs)
    if target is not None:
        if not isinstance(target, torch.Tensor):
            raise TypeError(f"target must be a tensor or None, got {type(target).__name__}")
        _check_tensor_finite("target", target)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable or None, got {loss_fn!r}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {optimizer!r}")
    if nonlinearity is not None:
        values = [nonlinearity] if isinstance(nonlinearity, str) else None
        if values is None:
            if not isinstance(nonlinearity, Mapping):
                raise TypeError(
                    f"nonlinearity must be None, a name or a {{layer: name}} mapping, got {nonlinearity!r}"
                )
            names = {n for n, _ in model.named_modules()}
            unknown = sorted(set(nonlinearity) - names)
            if unknown:
                raise ValueError(f"nonlinearity names unknown layer(s) {unknown}")
            values = list(nonlinearity.values())
        for v in values:
            check_choice("nonlinearity", v, _NONLINEARITIES)
    if optimizer is not None:
        ids = {id(p) for p in model.parameters()}
        if not all(id(p) in ids for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("optimizer holds parameters that are not the model's")

    params = list(model.parameters())
    devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    box: dict[str, Any] = {}
    param_grads: dict[int, torch.Tensor] = {}
    entered: list[str] = []
    handles: list[Any] = []
    selected = [
        n
        for n, m in model.named_modules()
        if next(m.children(), None) is None or isinstance(m, nn.MultiheadAttention)
    ]
    with _untouched(model, devices):
        model.train()
        torch.manual_seed(0)
        try:
            for p in params if optimizer is not None else ():  # the gradients are kept for the step
                if p.requires_grad:
                    handles.append(p.register_hook(_grad_saver(param_grads, id(p))))
            for n, m in model.named_modules():
                if next(m.children(), None) is None:
                    handles.append(m.register_forward_pre_hook(_enter_hook(entered, n)))
            try:
                tr = trace(
                    model,
                    tuple(inputs),
                    backward=True,
                    loss_fn=_default_loss(target, loss_fn, box),
                    layers=selected or None,
                    bins=0,
                )
            except (TypeError, ValueError) as err:
                if "loss" in box or "output" in box:
                    raise  # the loss, not the model
                raise ValueError(_failure(inputs, entered, err)) from err
            except RuntimeError as err:
                if "output" in box:
                    raise
                raise ValueError(_failure(inputs, entered, err)) from err
        finally:
            for h in handles:
                h.remove()
        updates: dict[int, torch.Tensor] = {}
        output_change = math.nan
        if optimizer is not None:
            updates = _clone_optimizer(optimizer, model, param_grads)
            output_change = _output_change(model, inputs, updates, box.get("output"))
    return _build_report(model, tr, box, dtype, updates, output_change, nonlinearity)


def _grad_saver(store: dict[int, torch.Tensor], key: int) -> Callable:
    def hook(grad: torch.Tensor) -> None:
        store[key] = grad.detach()

    return hook


def _enter_hook(entered: list[str], name: str) -> Callable:
    def hook(_module: nn.Module, _args: Any) -> None:
        entered.append(name)
        if len(entered) > 1:
            del entered[0]

    return hook


def _failure(inputs: tuple[Any, ...], entered: list[str], err: Exception) -> str:
    where = f" in module {entered[-1]!r}" if entered else ""
    return (
        f"the model failed{where} on inputs of shape/dtype [{_shapes(inputs)}]: "
        f"{type(err).__name__}: {err}"
    )


def _output_change(
    model: nn.Module, inputs: tuple[Any, ...], updates: dict[int, torch.Tensor], before: Any
) -> float:
    if not isinstance(before, torch.Tensor):
        return math.nan
    state = {}
    for n, p in model.named_parameters():
        state[n] = p.detach() + updates[id(p)] if id(p) in updates else p.detach()
    for n, b in model.named_buffers():
        state[n] = b.detach().clone()
    torch.manual_seed(0)  # the same dropout masks as the traced pass
    with torch.no_grad():
        after = _first_tensor(torch.func.functional_call(model, state, tuple(inputs)))
    if after is None:
        return math.nan
    base = float(torch.linalg.vector_norm(before.double()))
    if base == 0:
        return math.inf if bool((after != before).any()) else 0.0
    return float(torch.linalg.vector_norm((after - before).double())) / base


def _build_report(
    model: nn.Module,
    tr: Any,
    box: dict[str, Any],
    dtype: torch.dtype | None,
    updates: dict[int, torch.Tensor],
    output_change: float,
    override: Any,
) -> Report:
    modules = dict(model.named_modules())
    found = [
        (r, modules.get(r.name.split("#")[0], model if r.name == "(model)" else None)) for r in tr
    ]
    rows: list[tuple[Any, nn.Module]] = [(r, m) for r, m in found if m is not None]
    weighted = {
        i
        for i, (_, m) in enumerate(rows)
        if _weight(m) is not None or isinstance(m, nn.MultiheadAttention | nn.RNNBase)
    }
    layers: list[LayerReport] = []
    previous: LayerReport | None = None
    for i, (r, m) in enumerate(rows):
        if i not in weighted:
            continue
        if isinstance(m, nn.RNNBase):  # the recurrent matrix of the first layer, reused every step
            w, b = cast(torch.Tensor, m.weight_hh_l0), getattr(m, "bias_hh_l0", None)
            fan_in, fan_out = m.hidden_size, w.shape[0]
            t_in, t_out = compute_fans(w)
        elif isinstance(m, nn.MultiheadAttention):
            w = cast(
                torch.Tensor, m.in_proj_weight if m.in_proj_weight is not None else m.q_proj_weight
            )
            b = m.in_proj_bias
            fan_in, fan_out = compute_fans(w)
            t_in, t_out = fan_in, fan_out
        else:
            w, b = cast(torch.Tensor, m.weight), getattr(m, "bias", None)
            fan_in, fan_out = fans_of(m)
            t_in, t_out = compute_fans(w)
        nl = _nonlinearity_after(rows, i, weighted, override, r.name)
        if isinstance(m, nn.RNNBase) and not isinstance(override, str | Mapping):
            nl = "relu" if getattr(m, "nonlinearity", "tanh") == "relu" else "tanh"

        wd = w.detach().double()
        w_std = float(wd.std(unbiased=False)) if w.numel() > 1 else 0.0
        gain = calculate_gain("tanh" if nl == "tanh" else "relu" if nl in _RELU_LIKE else "linear")
        rec = _RECOMMENDED_GAIN.get(nl)
        rec_std = math.nan if rec is None else rec / math.sqrt(fan_in)
        act_rms = _rms(r.act_mean_sq)
        grad_rms = _rms(r.grad_mean_sq)
        upd = updates.get(id(w))
        update_ratio = math.nan
        if upd is not None:
            norm = float(torch.linalg.vector_norm(wd))
            update_ratio = (
                float(torch.linalg.vector_norm(upd.double())) / norm if norm else math.inf
            )
        if previous is None:
            forward_growth, backward_growth = math.nan, math.nan
        else:
            forward_growth = act_rms / previous.act_rms if previous.act_rms else math.nan
            backward_growth = previous.grad_rms / grad_rms if grad_rms else math.nan
        row = LayerReport(
            name=r.name,
            layer_type=r.type,
            fan_in=fan_in,
            fan_out=fan_out,
            torch_fan_in=t_in,
            torch_fan_out=t_out,
            nonlinearity=nl,
            weight_std=w_std,
            he_std=theory.kaiming_std(fan_in, nonlinearity="relu"),
            lecun_std=theory.lecun_std(fan_in),
            xavier_std=theory.xavier_std(fan_in, fan_out, gain),
            recommended_std=rec_std,
            scale_ratio=w_std / rec_std if math.isfinite(rec_std) else math.nan,
            bias_mean=float(b.detach().double().mean())
            if isinstance(b, torch.Tensor)
            else math.nan,
            act_rms=act_rms,
            grad_rms=grad_rms,
            forward_growth=forward_growth,
            backward_growth=backward_growth,
            update_ratio=update_ratio,
        )
        layers.append(row)
        previous = row
    findings = _findings(model, tr, rows, layers, box, dtype, output_change)
    order = sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))
    return Report(
        layers=tuple(layers),
        findings=tuple(order),
        loss=box.get("loss", math.nan),
        classes=box.get("classes"),
        output_change=output_change,
        dtype=str(dtype).removeprefix("torch.") if dtype is not None else "none",
        _trace=tr,
    )


def _finding(
    code: str, severity: Severity, layers: Sequence[str], message: str, fix: str
) -> Finding:
    return Finding(code, severity, tuple(layers), message, FINDINGS[code][0], fix)


def _chains(layers: list[LayerReport]) -> list[list[LayerReport]]:
    groups: dict[str, list[LayerReport]] = {}
    for row in layers:
        groups.setdefault(_chain_key(row.name), []).append(row)
    return [g for g in groups.values() if len(g) >= 3]


def _chi1_text(chain: list[LayerReport]) -> str:
    """The mean-field χ1 of the chain's hidden layers, as a sentence (empty when not computable)."""
    body = [r for r in chain[:-1] if r.nonlinearity in _MEAN_FIELD_NAMES]
    if not body or len({r.nonlinearity for r in body}) != 1:
        return ""
    phi = body[0].nonlinearity
    sigma_w2 = sum(r.weight_std**2 * r.fan_in for r in body) / len(body)
    try:
        chi = theory.chi1(sigma_w2, 0.0, phi)
    except (ValueError, ArithmeticError):
        return ""
    phase = "ordered" if chi < 1 else "chaotic" if chi > 1 else "critical"
    return (
        f" Mean-field theory: sigma_w^2 = fan_in Var[W] = {sigma_w2:.3g} with {phi} gives "
        f"chi_1 = {chi:.3g} per layer, the {phase} phase (chi_1 = 1 is critical), so gradients "
        f"scale like chi_1^(L/2) = {chi ** (len(chain) / 2):.3g} over these {len(chain)} layers."
    )


def _init_call(chain: list[LayerReport]) -> str:
    nls = {r.nonlinearity for r in chain[:-1]}
    if nls == {"tanh"}:
        return 'initbook.init_model(model, "lecun_normal")  # sigma_w^2 = 1: tanh\'s critical point'
    if nls & set(_RELU_LIKE) or nls & {"gelu", "silu", "elu", "softplus"}:
        return 'initbook.init_model(model, "kaiming_normal", nonlinearity="relu")'
    return 'initbook.init_model(model, "lecun_normal")'


def _findings(
    model: nn.Module,
    tr: Any,
    rows: list,
    layers: list[LayerReport],
    box: dict[str, Any],
    dtype: torch.dtype | None,
    output_change: float,
) -> list[Finding]:
    out: list[Finding] = []
    loss = box.get("loss", math.nan)
    raw_loss = box.get("raw_loss", math.nan)

    # non-finite values and overflow
    bad = [
        r.name
        for r, _ in rows
        if not math.isfinite(r.act_mean_sq) or not math.isfinite(r.act_max_abs)
    ]
    bad_grad = [
        r.name
        for r, _ in rows
        if r.grad_mean_sq is not None
        and not math.isnan(r.grad_mean_sq)
        and not math.isfinite(r.grad_mean_sq)
    ]
    low = dtype in (torch.float16, torch.bfloat16)
    fix_precision = (
        'initbook.init_model(model, "kaiming_normal", nonlinearity="relu"), and compute in float32 '
        "(torch.autocast keeps the weights' float32 copy)"
    )
    if bad or bad_grad or not math.isfinite(raw_loss):
        where = bad[:1] or bad_grad[-1:]
        what = f"first in layer {where[0]!r}" if where else "in the loss"
        out.append(
            _finding(
                "nonfinite",
                "error",
                bad or bad_grad or ["(loss)"],
                f"inf or NaN {what} ({dtype}). "
                + (
                    f"{dtype} overflows above {torch.finfo(dtype).max:.3g}: a scale that grows by a "
                    "factor per layer reaches it after log(max)/log(factor) layers."
                    if low and dtype is not None
                    else "An initialization that multiplies the signal per layer overflows with depth."
                ),
                fix_precision,
            )
        )
    elif dtype is not None and dtype.is_floating_point:
        big = torch.finfo(dtype).max / OVERFLOW_HEADROOM
        near = [r.name for r, _ in rows if r.act_max_abs > big]
        if near:
            out.append(
                _finding(
                    "overflow_risk",
                    "warning",
                    near,
                    f"outputs reach within a factor {OVERFLOW_HEADROOM:g} of the largest {dtype} "
                    f"({torch.finfo(dtype).max:.3g}): a slightly larger input or one more layer overflows.",
                    fix_precision,
                )
            )

    # drift along chains
    for chain in _chains(layers):
        names = [r.name for r in chain]
        # a head (a last layer of another width) is compared with nothing: its scale is its own choice
        body = chain[:-1] if chain[-1].fan_out != chain[-2].fan_out else chain
        for kind, attr in (("activations", "act_rms"), ("gradients", "grad_rms")):
            first, last = getattr(chain[0], attr), getattr(body[-1], attr)
            if not (math.isfinite(first) and math.isfinite(last)) or first == last == 0:
                continue  # no gradient reaches the chain at all (a zero head): nothing to compare
            ratio = last / first if first > 0 else math.inf
            if kind == "gradients":
                ratio = 1 / ratio if ratio > 0 else math.inf  # growth going backwards
            if not ratio > 0:
                ratio = 0.0
            if 1 / DRIFT_WARNING <= ratio <= DRIFT_WARNING:
                continue
            grows = ratio > 1
            size = ratio if grows else (1 / ratio if ratio > 0 else math.inf)
            severity: Severity = "error" if size >= DRIFT_ERROR else "warning"
            direction = "forward" if kind == "activations" else "backward"
            msg = (
                f"the {kind[:-1]} RMS {'grows' if grows else 'shrinks'} by a factor {size:.3g} "
                f"{direction} through {len(chain)} layers ({names[0]} ... {names[-1]}): "
                f"{size ** (1 / max(len(body) - 1, 1)):.3g} per layer instead of 1."
            )
            if kind == "gradients" or not grows:
                msg += _chi1_text(chain)
            ratios = [r.scale_ratio for r in chain[:-1] if math.isfinite(r.scale_ratio)]
            if ratios:
                mean_ratio = math.exp(sum(math.log(max(x, 1e-300)) for x in ratios) / len(ratios))
                msg += (
                    f" The weights are {mean_ratio:.3g}x the std their nonlinearity needs "
                    f"(gain/sqrt(fan_in))."
                )
            if box.get("classes") and not grows and abs(loss - math.log(box["classes"])) < 1e-2:
                msg += (
                    f" The loss {loss:.4g} is ln(C) = {math.log(box['classes']):.4g}: the output "
                    "carries no signal, and the gradient that would change that is vanishing too."
                )
            code = f"{'exploding' if grows else 'vanishing'}_{kind}"
            out.append(_finding(code, severity, names, msg, _init_call(chain)))

    # symmetry
    modules = dict(model.named_modules())
    for row in layers:
        m = modules.get(row.name.split("#")[0])
        w = _weight(m) if m is not None else None
        if w is None or w.shape[0] < 2 or "#" in row.name:
            continue
        first = w.detach()[:1]
        if not bool((w.detach() == first).all()):
            continue
        value = float(first.flatten()[0]) if first.numel() else 0.0
        if value == 0.0 and row.nonlinearity in ("linear", "norm"):
            continue  # a zero-initialized branch end or head: the gradient breaks the tie
        out.append(
            _finding(
                "symmetry",
                "error",
                [row.name],
                f"all {w.shape[0]} output units of {row.name} have identical incoming weights "
                f"({'all equal to ' + format(value, '.3g') if (w.detach() == value).all() else 'equal rows'}): "
                "they compute the same function, receive the same gradient, and stay clones forever.",
                f'initbook.kaiming_normal_(model.get_submodule({row.name!r}).weight, nonlinearity="relu")',
            )
        )

    # dead and saturated units
    weighted_rows = [i for i, (r, m) in enumerate(rows) if r.name in {x.name for x in layers}]
    for i, (r, m) in enumerate(rows):
        act = _activation_name(m)
        if act == "relu" and isinstance(m, nn.ReLU | nn.ReLU6) and r.act_zero_frac >= DEAD_WARNING:
            before = [j for j in weighted_rows if j < i]
            src = rows[before[-1]][0].name if before else None
            cause = ""
            fix = 'initbook.init_model(model, "kaiming_normal", nonlinearity="relu")  # zero biases'
            if src is not None and src in {x.name for x in layers}:
                lr = next(x for x in layers if x.name == src)
                if math.isfinite(lr.bias_mean) and lr.bias_mean < 0:
                    cause = (
                        f" The layer before it, {src}, has a mean bias of {lr.bias_mean:.3g} against "
                        f"weights of std {lr.weight_std:.3g}: the pre-activations are mostly negative."
                    )
                    fix = f"initbook.zeros_(model.get_submodule({src!r}).bias)"
            out.append(
                _finding(
                    "dead_units",
                    "error" if r.act_zero_frac >= DEAD_ERROR else "warning",
                    [r.name],
                    f"{100 * r.act_zero_frac:.1f} % of {r.name}'s outputs are exactly zero (a ReLU of "
                    "a symmetric pre-activation gives 50 %): those units pass no gradient, and a unit "
                    "that is zero for every input never learns." + cause,
                    fix,
                )
            )
        if (
            act in ("tanh", "sigmoid")
            and math.isfinite(r.act_sat_frac)
            and r.act_sat_frac > SATURATED_WARNING
        ):
            out.append(
                _finding(
                    "saturated_units",
                    "warning",
                    [r.name],
                    f"{100 * r.act_sat_frac:.1f} % of {r.name}'s outputs are saturated, where the "
                    "derivative is below 0.02: the gradient through them is nearly zero.",
                    'initbook.init_model(model, "xavier_normal")',
                )
            )

    # the initial loss of a classifier
    classes = box.get("classes")
    if classes and math.isfinite(loss):
        ln_c = math.log(classes)
        excess = loss - ln_c
        if excess > LOGIT_STD_WARNING**2 / 2 * (1 - 1 / classes):
            head = layers[-1].name if layers else "(output)"
            out.append(
                _finding(
                    "overconfident_logits",
                    "error" if loss > 2 * ln_c else "warning",
                    [head],
                    f"the initial loss {loss:.4g} is {excess:.3g} nats above ln(C) = {ln_c:.4g}, the loss "
                    "of a uniform guess: the logits are large and confidently wrong. For logits of std s "
                    "the excess is about s^2 (1 - 1/C) / 2; the first steps are spent shrinking them.",
                    f"initbook.zeros_(model.get_submodule({head!r}).weight)  # or a small normal_",
                )
            )

    # torch's fans on grouped or transposed convolutions (a stride alone thins only the fan-out of a
    # convolution, by s**d; torchvision's fan_out init of strided convs is not flagged)
    for row in layers:
        m = modules.get(row.name.split("#")[0])
        if (row.fan_in, row.fan_out) == (
            row.torch_fan_in,
            row.torch_fan_out,
        ) or row.weight_std == 0:
            continue
        if not isinstance(m, nn.modules.conv._ConvTransposeNd) and getattr(m, "groups", 1) == 1:
            continue
        gains = {calculate_gain("relu"), 1.0, 1.0 / math.sqrt(3.0), 5.0 / 3}
        if row.nonlinearity in _RECOMMENDED_GAIN:
            gains.add(_RECOMMENDED_GAIN[row.nonlinearity])

        def matches(fan: int, gains: set[float] = gains, std: float = row.weight_std) -> bool:
            return any(abs(std * math.sqrt(fan) / g - 1) < FANS_MATCH for g in gains)

        torch_fans = {row.torch_fan_in, row.torch_fan_out}
        true_fans = {row.fan_in, row.fan_out}
        wrong = [f for f in torch_fans - true_fans if matches(f)]
        transposed = isinstance(m, nn.modules.conv._ConvTransposeNd)
        # torch's default reset_parameters: U(+-1/sqrt(torch fan_in)), std 1/sqrt(3 fan_in). On a transposed
        # convolution torch's fan_in is the true fan_out, so only the gain 1/sqrt(3) gives it away.
        default = transposed and row.torch_fan_in != row.fan_in
        default = default and matches(row.torch_fan_in, {1.0 / math.sqrt(3.0)})
        if default or (wrong and not any(matches(f) for f in true_fans)):
            wrong = wrong or [row.torch_fan_in]
            kind = "transposed" if transposed else "grouped"
            out.append(
                _finding(
                    "torch_fans",
                    "warning",
                    [row.name],
                    f"{row.name} ({kind} convolution) has weight std {row.weight_std:.3g}, which matches "
                    f"gain/sqrt({wrong[0]}) with torch's fans ({row.torch_fan_in}, {row.torch_fan_out}) "
                    f"read from the weight's shape, not its true fans ({row.fan_in}, {row.fan_out}).",
                    f'initbook.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu", '
                    f"fans=initbook.fans_of(conv))  # conv = model.get_submodule({row.name!r})",
                )
            )

    # scale against the recommended one (info)
    off = [
        r.name
        for r in layers
        if math.isfinite(r.scale_ratio)
        and r.scale_ratio > 0
        and abs(math.log(r.scale_ratio)) > math.log(SCALE_RATIO)
    ]
    if off:
        out.append(
            _finding(
                "scale_mismatch",
                "info",
                off,
                f"{len(off)} layer(s) have a weight std more than {SCALE_RATIO:g}x away from "
                "gain/sqrt(fan_in) for the nonlinearity that follows (see the 'x rec' column). Deliberate "
                "choices (a small head, scaled residual branches) land here too; it matters when the "
                "signal drifts.",
                'initbook.init_model(model, "kaiming_normal", nonlinearity="relu")',
            )
        )

    # one optimizer step
    if output_change > STEP_WARNING:  # NaN (no optimizer) compares False
        out.append(
            _finding(
                "large_step",
                "error" if output_change > STEP_ERROR else "warning",
                [r.name for r in layers if math.isfinite(r.update_ratio)][-3:] or ["(model)"],
                f"one optimizer step changes the output by {output_change:.3g} times its own norm: the "
                "step replaces the function instead of adjusting it. The output's sensitivity to an "
                "update grows with depth, fastest in post-LN transformers (Xiong et al. 2020): lower the "
                "learning rate or warm it up, use pre-LN, and scale residual branch outputs by "
                "1/sqrt(2 L) as GPT-2 does.",
                "initbook.normal_(block.linear2.weight, std=0.02 / math.sqrt(2 * n_layers))  "
                "# and norm_first=True, a smaller lr or warm-up",
            )
        )
    return out
