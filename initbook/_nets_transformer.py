r"""A minimal decoder-only transformer, a task to train it on, and what the chapter measures on it.

Re-exported from :mod:`initbook.nets`. :class:`TinyDecoder` is token and position embeddings, ``n_layers``
:class:`DecoderBlock` (causal multi-head attention and a GELU MLP, each a residual branch) and a linear
head, in three normalization layouts:

* ``norm="pre"`` (GPT-2): :math:`x \leftarrow x + F(\operatorname{LN}(x))`, plus a final LayerNorm;
* ``norm="post"`` (the original transformer; with ``alpha != 1`` DeepNet's DeepNorm):
  :math:`x \leftarrow \operatorname{LN}(\alpha x + F(x))`;
* ``norm="none"`` (T-Fixup): :math:`x \leftarrow x + F(x)`.

Every module is a plain ``nn.Linear``/``nn.Embedding``/``nn.LayerNorm`` with PyTorch's default
initialization; the recipes of :mod:`initbook.init` (:func:`~initbook.init.gpt2_init_`,
:func:`~initbook.init.deepnet_init_`, :func:`~initbook.init.t_fixup_init_`) re-initialize them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ._validation import ArgumentTypeError, check_choice, check_int, check_real

__all__ = [
    "CausalSelfAttention",
    "DecoderBlock",
    "SequenceRun",
    "TinyDecoder",
    "attention_token_spread",
    "sorting_batch",
    "train_sequence_task",
]

_NORMS = ("none", "post", "pre")
_SCALES = ("mup", "none", "sqrt")


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention with separate query, key, value and output projections.

    .. math:: \operatorname{head}_h(X) = \operatorname{softmax}\bigl(c\,Q_h K_h^\top + \text{mask}\bigr) V_h,
        \qquad Q = X W_q^\top,\ K = X W_k^\top,\ V = X W_v^\top,

    concatenated over heads and multiplied by :math:`W_o`. The logit scale is :math:`c = 1/\sqrt{d_k}`
    (``scale="sqrt"``), :math:`1/d_k` (``"mup"``) or 1 (``"none"``), with :math:`d_k` = ``d_model // n_heads``.

    Args:
        d_model: width of the residual stream.
        n_heads: number of heads; must divide ``d_model``.
        scale: the logit scale, ``"sqrt"``, ``"mup"`` or ``"none"``.

    Examples:
        >>> attn = initbook.nets.CausalSelfAttention(16, 4)
        >>> attn(torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, d_model: int, n_heads: int, *, scale: str = "sqrt") -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, minimum=1)
        n_heads = check_int("n_heads", n_heads, minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        self.scale_name = check_choice("scale", scale, _SCALES)
        self.n_heads, self.d_k = n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    @property
    def logit_scale(self) -> float:
        """The factor :math:`c` on :math:`q \\cdot k`."""
        return {"sqrt": 1 / math.sqrt(self.d_k), "mup": 1 / self.d_k, "none": 1.0}[self.scale_name]

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_k).transpose(1, 2)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled, causally masked logits, shape ``(batch, heads, T, T)`` (``-inf`` above the diagonal)."""
        q, k = self._split(self.q_proj(x)), self._split(self.k_proj(x))
        t = x.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        return (q @ k.transpose(-1, -2) * self.logit_scale).masked_fill(mask, -math.inf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend: ``x`` of shape ``(batch, T, d_model)`` to the same shape."""
        probs = self.logits(x).softmax(dim=-1)
        out = (probs @ self._split(self.v_proj(x))).transpose(1, 2).reshape(x.shape)
        return self.out_proj(out)


class DecoderBlock(nn.Module):
    r"""One transformer block: causal attention and a GELU MLP, each a residual branch.

    Args:
        d_model: width of the residual stream.
        n_heads: number of attention heads.
        d_ff: hidden width of the MLP (default ``4 * d_model``).
        norm: ``"pre"``, ``"post"`` or ``"none"`` (see :mod:`initbook.nets`).
        alpha: DeepNorm's weight on the skip path, :math:`\operatorname{LN}(\alpha x + F(x))`; only
            ``norm="post"`` uses it (:func:`initbook.init.deepnet_init_` sets it).
        attn_scale: the logit scale of :class:`CausalSelfAttention`.

    Examples:
        >>> block = initbook.nets.DecoderBlock(16, 2, norm="post")
        >>> block(torch.zeros(1, 3, 16)).shape
        torch.Size([1, 3, 16])
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int | None = None,
        *,
        norm: Literal["pre", "post", "none"] = "pre",
        alpha: float = 1.0,
        attn_scale: str = "sqrt",
    ) -> None:
        super().__init__()
        self.norm = check_choice("norm", norm, _NORMS)
        self.alpha = check_real("alpha", alpha, positive=True)
        d_ff = 4 * d_model if d_ff is None else check_int("d_ff", d_ff, minimum=1)
        self.attn = CausalSelfAttention(d_model, n_heads, scale=attn_scale)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.ln1 = nn.LayerNorm(d_model) if self.norm != "none" else nn.Identity()
        self.ln2 = nn.LayerNorm(d_model) if self.norm != "none" else nn.Identity()

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, alpha={self.alpha:g}"

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP branch :math:`W_2\\,\\operatorname{gelu}(W_1 x)`."""
        return self.fc2(F.gelu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the attention and MLP branches to the stream ``x`` of shape ``(batch, T, d_model)``."""
        if self.norm == "pre":
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        if self.norm == "post":
            x = self.ln1(self.alpha * x + self.attn(x))
            return self.ln2(self.alpha * x + self.mlp(x))
        x = x + self.attn(x)
        return x + self.mlp(x)


class TinyDecoder(nn.Module):
    r"""A decoder-only transformer small enough to train on a CPU in seconds.

    Token and learned position embeddings (``nn.Embedding``, so :math:`\mathcal N(0, 1)` by default),
    ``n_layers`` :class:`DecoderBlock`, a final LayerNorm when ``norm="pre"``, and a linear head without bias,
    which with ``tie=True`` shares its weight with the token embedding.

    Args:
        vocab: vocabulary size.
        seq_len: the longest sequence (number of position embeddings).
        d_model: width of the residual stream.
        n_heads: attention heads per block.
        n_layers: number of blocks :math:`L`.
        norm: ``"pre"``, ``"post"`` or ``"none"``.
        tie: tie the head to the token embedding.
        attn_scale: the logit scale of every attention block.

    Examples:
        >>> model = initbook.nets.TinyDecoder(vocab=11, seq_len=8, d_model=16, n_heads=2, n_layers=3)
        >>> model(torch.zeros(4, 8, dtype=torch.long)).shape
        torch.Size([4, 8, 11])
        >>> len(model.streams(torch.zeros(1, 8, dtype=torch.long)))  # embedding + one per block
        4
    """

    def __init__(
        self,
        vocab: int,
        seq_len: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        *,
        norm: Literal["pre", "post", "none"] = "pre",
        tie: bool = False,
        attn_scale: str = "sqrt",
    ) -> None:
        super().__init__()
        vocab = check_int("vocab", vocab, minimum=2)
        seq_len = check_int("seq_len", seq_len, minimum=1)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        if not isinstance(tie, bool):
            raise ArgumentTypeError(f"tie must be a bool, got {tie!r}")
        self.norm = check_choice("norm", norm, _NORMS)
        self.tok_emb = nn.Embedding(vocab, d_model)
        self.pos_emb = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(
            DecoderBlock(d_model, n_heads, norm=norm, attn_scale=attn_scale)
            for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()
        self.head = nn.Linear(d_model, vocab, bias=False)
        if tie:
            self.head.weight = self.tok_emb.weight

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token plus position embedding, shape ``(batch, T, d_model)``."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.tok_emb(idx) + self.pos_emb(pos)

    def streams(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream after the embedding and after every block (``n_layers + 1`` tensors)."""
        x = self.embed(idx)
        out = [x]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, T, vocab)`` for token indices ``idx`` of shape ``(batch, T)``."""
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def sorting_batch(
    batch: int, length: int, vocab: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A batch of the sorting task: ``length`` random digits, a separator, then the same digits sorted.

    Digits are ``0 .. vocab - 2`` and the separator is ``vocab - 1``. The sequence
    :math:`(a_1..a_k, \text{SEP}, s_1..s_k)` is cut into the model's input (all but the last token, length
    :math:`2k`) and next-token targets; only the :math:`k` sorted digits are scored, the other targets are
    ``-100`` (ignored by :func:`torch.nn.functional.cross_entropy`).

    Returns:
        ``(inputs, targets)``, both of shape ``(batch, 2 * length)`` and dtype ``long``.

    Examples:
        >>> x, y = initbook.nets.sorting_batch(1, 3, 10, generator=torch.Generator().manual_seed(0))
        >>> x.tolist(), y.tolist()
        ([[8, 0, 2, 9, 0, 2]], [[-100, -100, -100, 0, 2, 8]])
    """
    batch = check_int("batch", batch, minimum=1)
    length = check_int("length", length, minimum=1)
    vocab = check_int("vocab", vocab, minimum=3)
    digits = torch.randint(0, vocab - 1, (batch, length), generator=generator)
    sep = torch.full((batch, 1), vocab - 1, dtype=torch.long)
    seq = torch.cat([digits, sep, digits.sort(dim=1).values], dim=1)
    inputs = seq[:, :-1]
    return inputs, _shift_scored(seq, length)


def _shift_scored(seq: torch.Tensor, length: int) -> torch.Tensor:
    """Targets: position ``t`` predicts ``seq[t + 1]``; only the sorted digits are scored."""
    targets = torch.full_like(seq[:, 1:], -100)
    targets[:, length:] = seq[:, length + 1 :]
    return targets


@dataclass
class SequenceRun:
    """The losses of one training run of :func:`train_sequence_task`.

    Attributes:
        loss: the training loss before each step (``steps`` values; ``loss[0]`` is the loss at
            initialization), ``nan`` once it has diverged.
        grad_norm: the global gradient norm at each step.
    """

    loss: torch.Tensor
    grad_norm: torch.Tensor


def train_sequence_task(
    model: TinyDecoder,
    *,
    steps: int = 150,
    batch: int = 32,
    length: int = 5,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
) -> SequenceRun:
    r"""Train ``model`` on :func:`sorting_batch` with Adam, a fresh batch per step, no warm-up.

    Adam with :math:`\beta = (0.9, 0.98)` (the transformer's), constant learning rate ``lr``. The loss is the
    cross-entropy of the sorted digits. Training stops early (the rest is ``nan``) at a non-finite loss.

    Args:
        model: a :class:`TinyDecoder` whose vocabulary is the task's and whose ``seq_len >= 2 * length``.
        steps: number of optimizer steps.
        batch: sequences per step.
        length: digits to sort, :math:`k`.
        lr: learning rate.
        generator: draws the batches.

    Examples:
        >>> model = initbook.nets.TinyDecoder(vocab=8, seq_len=6, d_model=16, n_heads=2, n_layers=1)
        >>> run = initbook.nets.train_sequence_task(model, steps=3, batch=4, length=3,
        ...                                         generator=torch.Generator().manual_seed(0))
        >>> run.loss.shape
        torch.Size([3])
    """
    if not isinstance(model, TinyDecoder):
        raise ArgumentTypeError(
            f"model must be an initbook.nets.TinyDecoder, got {type(model).__name__}"
        )
    steps = check_int("steps", steps, minimum=1)
    lr = check_real("lr", lr, positive=True)
    vocab = model.tok_emb.num_embeddings
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    losses = torch.full((steps,), math.nan)
    norms = torch.full((steps,), math.nan)
    for step in range(steps):
        x, y = sorting_batch(batch, length, vocab, generator=generator)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1), ignore_index=-100)
        if not torch.isfinite(loss):
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms[step] = torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
        )
        losses[step] = loss.detach()
        opt.step()
    return SequenceRun(losses, norms)


def attention_token_spread(
    depth: int,
    width: int,
    tokens: int,
    *,
    skip: bool,
    branch_scale: float = 1.0,
    trials: int = 16,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Relative distance of token representations from their mean through a stack of attention layers.

    Each layer is single-head self-attention without masking, MLP or normalization,

    .. math:: \operatorname{SA}(X) = \operatorname{softmax}\bigl(X W_q W_k^\top X^\top/\sqrt d\bigr)\, X W_v,

    with i.i.d. :math:`\mathcal N(0, 1/d)` weights, applied as :math:`X \leftarrow \operatorname{SA}(X)`
    (``skip=False``) or :math:`X \leftarrow X + \alpha\operatorname{SA}(X)` (``skip=True``,
    :math:`\alpha` = ``branch_scale``). The measured quantity is

    .. math:: r_l = \lVert X_l - \mathbf 1 \bar x_l^\top\rVert_F / \lVert X_l\rVert_F ,

    which is 0 when every token has the same representation (rank collapse, Dong et al. 2021). The input
    is :math:`T` i.i.d. standard normal tokens; ``trials`` independent networks run as batched products.

    Returns:
        ``(trials, depth + 1)``: :math:`r_l` per trial, from the input (:math:`l = 0`) to the last layer.

    Examples:
        >>> r = initbook.nets.attention_token_spread(4, 16, 8, skip=False, trials=2,
        ...                                          generator=torch.Generator().manual_seed(0))
        >>> r.shape, bool((r[:, -1] < r[:, 0]).all())
        (torch.Size([2, 5]), True)
    """
    depth = check_int("depth", depth, minimum=0)
    width = check_int("width", width, minimum=1)
    tokens = check_int("tokens", tokens, minimum=2)
    trials = check_int("trials", trials, minimum=1)
    branch_scale = check_real("branch_scale", branch_scale, nonnegative=True)
    if not isinstance(skip, bool):
        raise ArgumentTypeError(f"skip must be a bool, got {skip!r}")
    x = torch.randn(trials, tokens, width, generator=generator, dtype=torch.float64)

    def spread(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        return centred.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)

    out = [spread(x)]
    std = 1 / math.sqrt(width)
    for _ in range(depth):
        w = torch.randn(3, trials, width, width, generator=generator, dtype=torch.float64) * std
        q, k, v = x @ w[0], x @ w[1], x @ w[2]
        sa = (q @ k.transpose(1, 2) / math.sqrt(width)).softmax(dim=-1) @ v
        x = x + branch_scale * sa if skip else sa
        out.append(spread(x))
    return torch.stack(out, dim=1)
