r"""Depth-aware initializations of transformers: GPT-2, DeepNet and T-Fixup.

Re-exported from :mod:`initbook.init`. Each recipe walks a model, finds its attention and MLP weights by
module type, and fills them in place. Recognized modules:

* attention: :class:`torch.nn.MultiheadAttention` (packed ``in_proj_weight`` or separate
  ``q/k/v_proj_weight``) and :class:`initbook.nets.CausalSelfAttention`, giving the roles *query*, *key*,
  *value* (input projections) and *attention output* (the residual output projection);
* MLP: the ``linear1``/``linear2`` of :class:`torch.nn.TransformerEncoderLayer` and
  :class:`torch.nn.TransformerDecoderLayer`, and the ``fc1``/``fc2`` of :class:`initbook.nets.DecoderBlock`
  (roles *MLP input* and *MLP output*, the latter a residual output projection);
* :class:`torch.nn.Embedding` (role *embedding*), :class:`torch.nn.LayerNorm` (weight 1, bias 0), any other
  :class:`torch.nn.Linear` (role *other*, e.g. an untied output head).

Biases of recognized layers are set to zero. A parameter shared by two modules (a tied head) is filled
once, by its first owner in ``model.modules()`` order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ._nets_transformer import CausalSelfAttention, DecoderBlock
from ._validation import ArgumentTypeError, check_choice, check_generator, check_int, check_real
from .theory._attention import (
    DeepNetArchitecture,
    deepnet_constants,
    gpt2_residual_std,
    t_fixup_scale,
)

__all__ = ["deepnet_init_", "gpt2_init_", "t_fixup_init_", "transformer_roles"]

_ROLES = ("query", "key", "value", "attn_out", "mlp_in", "mlp_out", "embedding", "other")
_SUPPORTED = (
    "torch.nn.MultiheadAttention (alone or in nn.TransformerEncoderLayer/nn.TransformerDecoderLayer), "
    "initbook.nets.CausalSelfAttention (alone or in initbook.nets.DecoderBlock/TinyDecoder)"
)


@dataclass
class _Slot:
    name: str
    role: str
    weight: torch.Tensor  # a parameter or a view of one (packed q/k/v)
    bias: torch.Tensor | None


def _mha_slots(prefix: str, m: nn.MultiheadAttention) -> Iterator[_Slot]:
    e = m.embed_dim
    bias = m.in_proj_bias
    if m._qkv_same_embed_dim:
        w = m.in_proj_weight
        for i, role in enumerate(("query", "key", "value")):
            b = None if bias is None else bias[i * e : (i + 1) * e]
            yield _Slot(f"{prefix}in_proj_weight[{role}]", role, w[i * e : (i + 1) * e], b)
    else:
        for i, (role, w) in enumerate(
            (("query", m.q_proj_weight), ("key", m.k_proj_weight), ("value", m.v_proj_weight))
        ):
            b = None if bias is None else bias[i * e : (i + 1) * e]
            yield _Slot(f"{prefix}{role[0]}_proj_weight", role, w, b)
    yield _Slot(f"{prefix}out_proj.weight", "attn_out", m.out_proj.weight, m.out_proj.bias)


def _slots(model: nn.Module) -> list[_Slot]:
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    slots: list[_Slot] = []
    claimed: set[int] = set()
    n_attention = 0

    filled: set[tuple[int, int]] = set()  # (id of the parameter, offset of the slice)

    def add(slot: _Slot, *owners: nn.Module) -> None:
        base = slot.weight if slot.weight._base is None else slot.weight._base
        key = (id(base), int(slot.weight.storage_offset()))
        if key not in filled:
            filled.add(key)
            slots.append(slot)
        claimed.update(id(o) for o in owners)

    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.MultiheadAttention):
            n_attention += 1
            for slot in _mha_slots(prefix, m):
                add(slot)
            claimed.add(id(m.out_proj))
        elif isinstance(m, CausalSelfAttention):
            n_attention += 1
            for role, lin in (
                ("query", m.q_proj),
                ("key", m.k_proj),
                ("value", m.v_proj),
                ("attn_out", m.out_proj),
            ):
                short = {
                    "query": "q_proj",
                    "key": "k_proj",
                    "value": "v_proj",
                    "attn_out": "out_proj",
                }[role]
                add(_Slot(f"{prefix}{short}.weight", role, lin.weight, lin.bias), lin)
        elif isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            add(
                _Slot(f"{prefix}linear1.weight", "mlp_in", m.linear1.weight, m.linear1.bias),
                m.linear1,
            )
            add(
                _Slot(f"{prefix}linear2.weight", "mlp_out", m.linear2.weight, m.linear2.bias),
                m.linear2,
            )
        elif isinstance(m, DecoderBlock):
            add(_Slot(f"{prefix}fc1.weight", "mlp_in", m.fc1.weight, m.fc1.bias), m.fc1)
            add(_Slot(f"{prefix}fc2.weight", "mlp_out", m.fc2.weight, m.fc2.bias), m.fc2)
        elif isinstance(m, nn.Embedding) and id(m) not in claimed:
            add(_Slot(f"{prefix}weight", "embedding", m.weight, None), m)
        elif isinstance(m, nn.Linear) and id(m) not in claimed:
            add(_Slot(f"{prefix}weight", "other", m.weight, m.bias), m)
    if n_attention == 0:
        raise ValueError(
            f"found no attention module in {type(model).__name__}; the transformer recipes support {_SUPPORTED}"
        )
    return slots


def transformer_roles(model: nn.Module) -> dict[str, str]:
    """The role each weight of ``model`` plays for the transformer recipes, by parameter name.

    Roles: ``"query"``, ``"key"``, ``"value"``, ``"attn_out"``, ``"mlp_in"``, ``"mlp_out"``, ``"embedding"``,
    ``"other"``. Packed projections are named ``in_proj_weight[query]`` etc.

    Raises:
        TypeError: ``model`` is not an :class:`~torch.nn.Module`.
        ValueError: the model contains no recognized attention module.

    Examples:
        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
        >>> initbook.init.transformer_roles(layer)["linear2.weight"]
        'mlp_out'
    """
    return {s.name: s.role for s in _slots(model)}


def _fill_normal(t: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        t.normal_(0.0, std, generator=generator)


def _xavier_std(t: torch.Tensor, gain: float) -> float:
    fan_out, fan_in = t.shape[0], t.shape[1]
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def _zero_biases_and_norms(model: nn.Module, slots: list[_Slot]) -> None:
    with torch.no_grad():
        for s in slots:
            if s.bias is not None:
                s.bias.zero_()
        for m in model.modules():
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()


def gpt2_init_(
    model: nn.Module, n_layers: int, *, std: float = 0.02, generator: torch.Generator | None = None
) -> nn.Module:
    r"""GPT-2's initialization: :math:`\mathcal N(0, 0.02^2)` everywhere, :math:`0.02/\sqrt{2L}` on residual outputs.

    The scaling described in "Language Models are Unsupervised Multitask Learners", Radford et al. (2019), in
    the form of its common reimplementations (Hugging Face's ``GPT2Model``, nanoGPT): every linear and embedding
    weight from :math:`\mathcal N(0, \sigma^2)` with :math:`\sigma = 0.02`, except the two residual output
    projections of every block (attention output and MLP output), which get :math:`\sigma/\sqrt{2L}`
    (:func:`initbook.theory.gpt2_residual_std`); biases 0, LayerNorm weights 1. (OpenAI's released GPT-2 code
    draws its position embeddings with standard deviation 0.01 and does not apply the :math:`1/\sqrt{2L}`.)
    The :math:`2L` counts two residual branches per block; an ``nn.TransformerDecoderLayer``'s cross-attention
    output is scaled by the same factor, so a stack of those has :math:`3L` branches scaled as if it had
    :math:`2L`.

    Args:
        model: a model containing recognized attention modules (see :mod:`initbook.init`).
        n_layers: the number of blocks :math:`L` (the residual path has :math:`2L` branches).
        std: :math:`\sigma`.
        generator: for the draws.

    Returns:
        ``model``, initialized in place.

    Raises:
        TypeError: ``model`` is not a module, or a bad ``generator``.
        ValueError: ``n_layers < 1``, a negative ``std``, or no recognized attention module.

    Examples:
        >>> layer = torch.nn.TransformerEncoderLayer(64, 4, dim_feedforward=256)
        >>> _ = initbook.init.gpt2_init_(layer, n_layers=8, generator=torch.Generator().manual_seed(0))
        >>> round(layer.linear2.weight.std().item(), 3), round(layer.linear1.weight.std().item(), 3)
        (0.005, 0.02)
    """
    n_layers = check_int("n_layers", n_layers, minimum=1)
    std = check_real("std", std, nonnegative=True)
    check_generator(generator)
    slots = _slots(model)
    resid = gpt2_residual_std(n_layers, std)
    for s in slots:
        _fill_normal(s.weight, resid if s.role in ("attn_out", "mlp_out") else std, generator)
    _zero_biases_and_norms(model, slots)
    return model


def deepnet_init_(
    model: nn.Module,
    n_layers: int,
    *,
    architecture: DeepNetArchitecture = "decoder",
    n_other_layers: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    r"""DeepNet's initialization (Wang et al. 2022): Xavier-normal, gain :math:`\beta` on values, outputs, MLP.

    The value and output projections of attention and both MLP weights are Xavier-normal with gain
    :math:`\beta`, the query and key projections with gain 1, biases 0 (the fans of a packed projection
    are those of its :math:`d\times d` slice). :math:`(\alpha, \beta)` come from
    :func:`initbook.theory.deepnet_constants` for ``architecture``. DeepNorm also needs the post-LN
    residual :math:`\operatorname{LN}(\alpha x + G(x))`: every :class:`initbook.nets.DecoderBlock` in the
    model gets ``alpha`` set (they must have ``norm="post"``). PyTorch's layers have no :math:`\alpha`; on
    them only the weights are set. Embeddings and other layers are left as they are.

    Args:
        model: a model containing recognized attention modules.
        n_layers: the number of layers of this stack (:math:`N` or :math:`M`).
        architecture: ``"encoder"``, ``"decoder"``, ``"encoder-decoder:encoder"`` or
            ``"encoder-decoder:decoder"``.
        n_other_layers: the decoder's :math:`M`, for ``"encoder-decoder:encoder"`` only.
        generator: for the draws.

    Returns:
        ``model``, initialized in place.

    Raises:
        ValueError: a bad ``architecture`` or layer count, no recognized attention module, or a
            :class:`~initbook.nets.DecoderBlock` whose ``norm`` is not ``"post"``.

    Examples:
        >>> model = initbook.nets.TinyDecoder(10, 8, d_model=32, n_heads=2, n_layers=6, norm="post")
        >>> _ = initbook.init.deepnet_init_(model, 6, generator=torch.Generator().manual_seed(0))
        >>> round(model.blocks[0].alpha, 4)  # (2 * 6) ** (1/4)
        1.8612
    """
    alpha, beta = deepnet_constants(architecture, n_layers, n_other_layers)
    check_generator(generator)
    blocks = (
        [m for m in model.modules() if isinstance(m, DecoderBlock)]
        if isinstance(model, nn.Module)
        else []
    )
    bad = [b.norm for b in blocks if b.norm != "post"]
    if bad:
        raise ValueError(
            f"DeepNorm is a post-LN residual; found DecoderBlock(norm={bad[0]!r}), valid: norm='post'"
        )
    slots = _slots(model)
    for s in slots:
        if s.role in ("query", "key"):
            _fill_normal(s.weight, _xavier_std(s.weight, 1.0), generator)
        elif s.role in ("value", "attn_out", "mlp_in", "mlp_out"):
            _fill_normal(s.weight, _xavier_std(s.weight, beta), generator)
    with torch.no_grad():
        for s in slots:
            if s.bias is not None and s.role != "other":
                s.bias.zero_()
    for b in blocks:
        b.alpha = alpha
    return model


def t_fixup_init_(
    model: nn.Module,
    n_layers: int,
    *,
    side: str = "decoder",
    allow_layer_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Module:
    r"""T-Fixup (Huang, Perez, Ba and Volkovs 2020) for a transformer without layer normalization.

    1. Every weight Xavier-uniform, except the embeddings: :math:`\mathcal N(0, d^{-1/2})` (standard
       deviation :math:`d^{-1/2}`, :math:`d` the embedding width). Biases 0.
    2. The value and output projections of attention, the MLP weights and the embeddings times
       :math:`s` = :func:`initbook.theory.t_fixup_scale`: :math:`(9N)^{-1/4}` (``side="decoder"``;
       :math:`0.67\,N^{-1/4}` for ``"encoder"``, whose embeddings keep the :math:`(9N)^{-1/4}`).

    The paper removes every LayerNorm (and the learning-rate warm-up). A model that still has one raises,
    unless ``allow_layer_norm=True``.

    Args:
        model: a model containing recognized attention modules.
        n_layers: :math:`N`.
        side: ``"decoder"`` or ``"encoder"``.
        allow_layer_norm: apply the recipe to a model with LayerNorm anyway.
        generator: for the draws.

    Returns:
        ``model``, initialized in place.

    Raises:
        ValueError: bad ``n_layers`` or ``side``, no recognized attention module, or a LayerNorm.

    Examples:
        >>> model = initbook.nets.TinyDecoder(10, 8, d_model=64, n_heads=4, n_layers=4, norm="none")
        >>> _ = initbook.init.t_fixup_init_(model, 4, generator=torch.Generator().manual_seed(0))
        >>> round(model.tok_emb.weight.std().item() * 64**0.5 * 36**0.25, 1)
        1.0
    """
    scale = t_fixup_scale(n_layers, side)  # type: ignore[arg-type]
    emb_scale = t_fixup_scale(n_layers, "decoder")
    check_generator(generator)
    if not isinstance(allow_layer_norm, bool):
        raise ArgumentTypeError(f"allow_layer_norm must be a bool, got {allow_layer_norm!r}")
    if isinstance(model, nn.Module) and not allow_layer_norm:
        norms = [n for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
        if norms:
            raise ValueError(
                f"T-Fixup is for transformers without layer normalization, but {norms[0]!r} is a LayerNorm; "
                "remove it (e.g. norm='none' in initbook.nets) or pass allow_layer_norm=True"
            )
    slots = _slots(model)
    with torch.no_grad():
        for s in slots:
            if s.role == "embedding":
                _fill_normal(s.weight, s.weight.shape[1] ** -0.5 * emb_scale, generator)
                continue
            bound = math.sqrt(3.0) * _xavier_std(s.weight, 1.0)
            s.weight.uniform_(-bound, bound, generator=generator)
            if s.role in ("value", "attn_out", "mlp_in", "mlp_out"):
                s.weight.mul_(scale)
            if s.bias is not None:
                s.bias.zero_()
    check_choice("side", side, ("decoder", "encoder"))
    return model
