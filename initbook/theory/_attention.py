r"""Closed forms for transformers at initialization: attention logits, softmax entropy, the loss at step 0,
and the depth-aware constants of GPT-2, DeepNet and T-Fixup.

Re-exported from :mod:`initbook.theory`; derived in the chapter "Transformers".
"""

from __future__ import annotations

import math
from typing import Literal

from .._validation import check_choice, check_int, check_real

__all__ = [
    "AttentionScale",
    "DeepNetArchitecture",
    "attention_logit_variance",
    "deepnet_constants",
    "gpt2_residual_std",
    "initial_cross_entropy",
    "pre_ln_stream_second_moment",
    "softmax_entropy_small_logit",
    "t_fixup_scale",
]

AttentionScale = Literal["sqrt", "mup", "none"]
DeepNetArchitecture = Literal[
    "encoder", "decoder", "encoder-decoder:encoder", "encoder-decoder:decoder"
]

_SCALES = ("sqrt", "mup", "none")
_DEEPNET = ("encoder", "decoder", "encoder-decoder:encoder", "encoder-decoder:decoder")


def attention_logit_variance(
    d_k: int, var_q: float = 1.0, var_k: float = 1.0, *, scale: AttentionScale = "sqrt"
) -> float:
    r"""Variance of one attention logit :math:`c\,q\cdot k` at initialization.

    If the :math:`d_k` entries of the query :math:`q` are uncorrelated with second moment
    :math:`\operatorname{Var}[q]`, those of the key :math:`k` likewise, and :math:`q` is independent of
    :math:`k`, then the :math:`d_k` products :math:`q_i k_i` are uncorrelated with zero mean and

    .. math:: \operatorname{Var}[q\cdot k] = d_k \operatorname{Var}[q]\operatorname{Var}[k] .

    For projections :math:`q = W_q x`, :math:`k = W_k x'` of token vectors :math:`x, x'` of width
    :math:`d` with i.i.d. zero-mean weights of variance :math:`\sigma_q^2, \sigma_k^2`, this holds exactly
    for every fixed pair of inputs with :math:`\operatorname{Var}[q] = \sigma_q^2\lVert x\rVert^2` and
    :math:`\operatorname{Var}[k] = \sigma_k^2\lVert x'\rVert^2` (rows of :math:`W_q` are independent, and
    :math:`W_q` is independent of :math:`W_k`, also when :math:`x = x'`). The logit is multiplied by
    :math:`c = 1/\sqrt{d_k}` ("sqrt", Vaswani et al. 2017), which makes the variance independent of
    :math:`d_k`; by :math:`c = 1/d_k` ("mup", the maximal-update parameterization), which makes it shrink
    like :math:`1/d_k`; or by :math:`c = 1` ("none").

    Args:
        d_k: the dimension of a query/key head, at least 1.
        var_q: second moment of one query entry.
        var_k: second moment of one key entry.
        scale: ``"sqrt"``, ``"mup"`` or ``"none"``.

    Returns:
        :math:`c^2\, d_k \operatorname{Var}[q]\operatorname{Var}[k]`.

    Raises:
        ValueError: ``d_k < 1``, a negative or non-finite variance, or an unknown ``scale``.

    Examples:
        >>> initbook.theory.attention_logit_variance(64, 1.0, 1.0, scale="none")
        64.0
        >>> initbook.theory.attention_logit_variance(64, 1.0, 1.0)
        1.0
        >>> initbook.theory.attention_logit_variance(64, 1.0, 1.0, scale="mup")
        0.015625
    """
    d_k = check_int("d_k", d_k, minimum=1)
    var_q = check_real("var_q", var_q, nonnegative=True)
    var_k = check_real("var_k", var_k, nonnegative=True)
    scale = check_choice("scale", scale, _SCALES)  # type: ignore[assignment]
    c2 = {"sqrt": 1.0 / d_k, "mup": 1.0 / d_k**2, "none": 1.0}[scale]
    return c2 * d_k * var_q * var_k


def softmax_entropy_small_logit(tokens: int, logit_var: float) -> float:
    r"""Expected entropy of :math:`\operatorname{softmax}(z)` over ``tokens`` i.i.d. logits of small variance.

    Write :math:`z_j = \bar z + \delta_j` and :math:`p_j = e^{z_j}/\sum_i e^{z_i}`. To second order in
    :math:`\delta`, :math:`p_j = (1 + \delta_j)/T` and the entropy is :math:`\ln T` minus half the
    :math:`\chi^2` distance to the uniform distribution,

    .. math:: H = \ln T - \frac{T}{2}\sum_j \Bigl(p_j - \frac1T\Bigr)^2 + O(\delta^3)
        = \ln T - \frac1{2T}\sum_j (z_j - \bar z)^2 + O(\delta^3).

    For i.i.d. logits of variance :math:`s^2` the expected empirical variance is :math:`s^2 (T-1)/T`, and
    the odd third-order terms have zero mean for symmetric logits, so

    .. math:: \mathbb E[H] = \ln T - \frac{s^2}{2}\,\frac{T - 1}{T} + O(s^4).

    The same :math:`\ln T - s^2/2` is also the limit for many tokens at a fixed :math:`s^2`
    (:math:`\sum_j e^{z_j} \approx T e^{s^2/2}` and :math:`\sum_j p_j z_j \approx s^2`), as long as
    :math:`T \gg e^{s^2}`. For large logits the attention collapses on the largest one and the entropy goes
    to zero; this formula then no longer applies (it can even go negative).

    Args:
        tokens: the number :math:`T` of positions attended over, at least 1.
        logit_var: the variance :math:`s^2` of one logit.

    Examples:
        >>> round(initbook.theory.softmax_entropy_small_logit(16, 0.0), 6) == round(math.log(16), 6)
        True
        >>> round(initbook.theory.softmax_entropy_small_logit(2, 0.1), 6)
        0.668147
    """
    tokens = check_int("tokens", tokens, minimum=1)
    logit_var = check_real("logit_var", logit_var, nonnegative=True)
    return math.log(tokens) - 0.5 * logit_var * (tokens - 1) / tokens


def initial_cross_entropy(vocab: int, logit_var: float) -> float:
    r"""Expected cross-entropy at initialization for :math:`V` i.i.d. logits of variance :math:`s^2`.

    The loss of a target :math:`y` is :math:`\ln\sum_v e^{z_v} - z_y`. If the target carries no
    information about the logits at initialization, :math:`\mathbb E[z_y] = 0`, and the loss exceeds
    :math:`\ln V` by :math:`\mathbb E\ln \bar Y` with :math:`\bar Y = \frac1V\sum_v e^{z_v}`. For Gaussian
    logits :math:`\mathbb E[e^z] = e^{s^2/2}` and :math:`\operatorname{Var}[e^z] = e^{2s^2} - e^{s^2}`, and
    the second-order expansion of the logarithm around the mean gives

    .. math:: \mathbb E[\ell] \approx \ln V + \frac{s^2}{2} - \frac{e^{s^2} - 1}{2V},

    with an error of order :math:`(e^{s^2} - 1)^2 (e^{s^2}+2) / V^2`. The formula needs
    :math:`e^{s^2} \ll V`: logits whose spread is comparable to :math:`\ln V` make the loss grow like
    :math:`s\sqrt{2\ln V}` (the largest logit) instead.

    Args:
        vocab: the vocabulary size :math:`V`, at least 1.
        logit_var: the variance :math:`s^2` of one logit.

    Raises:
        ValueError: :math:`e^{s^2} \ge V` with :math:`s^2 > 0`, where the expansion does not hold (it would
            even go negative): the loss there is set by the largest logit, not by this formula. At
            :math:`s^2 = 0` every logit is 0 and the loss is :math:`\ln V` exactly, for every :math:`V`.

    Examples:
        >>> initbook.theory.initial_cross_entropy(50257, 0.0) == math.log(50257)
        True
        >>> round(initbook.theory.initial_cross_entropy(64, 1.0) - math.log(64), 4)
        0.4866
    """
    vocab = check_int("vocab", vocab, minimum=1)
    logit_var = check_real("logit_var", logit_var, nonnegative=True)
    if logit_var == 0.0:
        return math.log(vocab)
    if logit_var >= math.log(vocab):
        raise ValueError(
            f"initial_cross_entropy(vocab={vocab}, logit_var={logit_var!r}): the expansion needs "
            f"e^logit_var < vocab, i.e. logit_var < ln(vocab) = {math.log(vocab):.4g}; beyond it the "
            "loss grows like the largest logit, s * sqrt(2 ln V)"
        )
    return math.log(vocab) + 0.5 * logit_var - math.expm1(logit_var) / (2 * vocab)


def pre_ln_stream_second_moment(q0: float, branch_second_moment: float, branches: int) -> float:
    r"""Second moment of a pre-LN residual stream after ``branches`` branches: :math:`q_0 + N v`.

    A pre-LN branch reads :math:`\operatorname{LN}(x_l)`, whose size does not depend on :math:`x_l`, so its
    output has a second moment :math:`v` fixed by its own weights, not proportional to the stream's. If its
    last weight matrix has zero-mean entries independent of the stream, the cross term vanishes and every
    branch *adds* :math:`v`:

    .. math:: q_{l+1} = q_l + v \quad\Longrightarrow\quad q_N = q_0 + N v .

    This replaces the multiplicative :math:`(1 + \beta^2)` per block of an unnormalized residual network
    (:func:`residual_variance`). GPT-2's :math:`\sigma/\sqrt{2L}` on the output projections of its
    :math:`N = 2L` branches divides :math:`v` by :math:`2L`, so that :math:`q_N - q_0` no longer grows with
    depth.

    Args:
        q0: second moment of the stream entering the first branch.
        branch_second_moment: :math:`v`.
        branches: :math:`N`, two per transformer block (attention and MLP).

    Examples:
        >>> initbook.theory.pre_ln_stream_second_moment(1.0, 0.5, 24)
        13.0
    """
    q0 = check_real("q0", q0, nonnegative=True)
    v = check_real("branch_second_moment", branch_second_moment, nonnegative=True)
    branches = check_int("branches", branches, minimum=0)
    return q0 + branches * v


def gpt2_residual_std(n_layers: int, std: float = 0.02) -> float:
    r"""GPT-2's standard deviation :math:`\sigma/\sqrt{2L}` for the residual output projections.

    "A modified initialization which accounts for the accumulation on the residual path with model depth is
    used. We scale the weights of residual layers at initialization by a factor of :math:`1/\sqrt N` where
    :math:`N` is the number of residual layers" (Radford et al. 2019); a block has two residual layers
    (attention and MLP), so :math:`N = 2L`, with :math:`\sigma = 0.02` for every other weight.

    Args:
        n_layers: the number :math:`L` of transformer blocks, at least 1.
        std: :math:`\sigma`, the standard deviation of the other weights.

    Examples:
        >>> initbook.theory.gpt2_residual_std(12)  # 0.02 / sqrt(24)
        0.004082482904638631
    """
    n_layers = check_int("n_layers", n_layers, minimum=1)
    std = check_real("std", std, nonnegative=True)
    return std / math.sqrt(2 * n_layers)


def deepnet_constants(
    architecture: DeepNetArchitecture, n_layers: int, n_other_layers: int | None = None
) -> tuple[float, float]:
    r"""DeepNet's :math:`(\alpha, \beta)`: residual weight of DeepNorm and gain of the scaled weights.

    From "DeepNet: Scaling Transformers to 1,000 Layers", Wang et al. (2022). DeepNorm is a post-LN
    residual connection :math:`x_{l+1} = \operatorname{LN}(\alpha x_l + G_l(x_l))`; the feed-forward
    weights and the value and output projections of attention are Xavier-normal with gain :math:`\beta`,
    the query and key projections with gain 1. With :math:`N` encoder and :math:`M` decoder layers:

    ============================== ================================== ===================================
    ``architecture``               :math:`\alpha`                     :math:`\beta`
    ============================== ================================== ===================================
    ``"encoder"`` (e.g. BERT)      :math:`(2N)^{1/4}`                 :math:`(8N)^{-1/4}`
    ``"decoder"`` (e.g. GPT)       :math:`(2M)^{1/4}`                 :math:`(8M)^{-1/4}`
    ``"encoder-decoder:encoder"``  :math:`0.81\,(N^4 M)^{1/16}`       :math:`0.87\,(N^4 M)^{-1/16}`
    ``"encoder-decoder:decoder"``  :math:`(3M)^{1/4}`                 :math:`(12M)^{-1/4}`
    ============================== ================================== ===================================

    Encoder-only and decoder-only models use the same formula in their own number of layers; only the
    two halves of an encoder-decoder differ.

    Args:
        architecture: one of the four rows above.
        n_layers: :math:`N` for ``"encoder"`` and ``"encoder-decoder:encoder"``, :math:`M` otherwise.
        n_other_layers: :math:`M` for ``"encoder-decoder:encoder"`` (required there, refused elsewhere).

    Examples:
        >>> [round(c, 4) for c in initbook.theory.deepnet_constants("decoder", 12)]
        [2.2134, 0.3195]
        >>> [round(c, 4) for c in initbook.theory.deepnet_constants("encoder-decoder:encoder", 6, 6)]
        [1.4179, 0.497]
    """
    architecture = check_choice("architecture", architecture, _DEEPNET)  # type: ignore[assignment]
    n = check_int("n_layers", n_layers, minimum=1)
    if architecture == "encoder-decoder:encoder":
        if n_other_layers is None:
            raise ValueError(
                "n_other_layers (the number of decoder layers M) is required for "
                "architecture='encoder-decoder:encoder'"
            )
        m = check_int("n_other_layers", n_other_layers, minimum=1)
        return 0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)
    if n_other_layers is not None:
        raise ValueError(
            f"n_other_layers={n_other_layers!r} is only used with architecture='encoder-decoder:encoder'"
        )
    if architecture == "encoder-decoder:decoder":
        return (3 * n) ** 0.25, (12 * n) ** -0.25
    return (2 * n) ** 0.25, (8 * n) ** -0.25


def t_fixup_scale(n_layers: int, side: Literal["decoder", "encoder"] = "decoder") -> float:
    r"""T-Fixup's factor on the value/output projections, the MLP weights (and the embeddings).

    From "Improving Transformer Optimization Through Better Initialization", Huang, Perez, Ba and Volkovs
    (2020), for a transformer *without* layer normalization and :math:`N` layers: start from Xavier
    initialization (the input embeddings from :math:`\mathcal N(0, d^{-1/2})`), then multiply the value and
    output projections of every attention block and the weights of every MLP block by

    .. math:: (9N)^{-1/4} \ \text{in the decoder (and the input embeddings)}, \qquad
        0.67\,N^{-1/4} \ \text{in the encoder}.

    Args:
        n_layers: :math:`N`, at least 1.
        side: ``"decoder"`` or ``"encoder"``.

    Examples:
        >>> round(initbook.theory.t_fixup_scale(12), 4)
        0.3102
        >>> round(initbook.theory.t_fixup_scale(12, "encoder"), 4)
        0.36
    """
    n = check_int("n_layers", n_layers, minimum=1)
    side = check_choice("side", side, ("decoder", "encoder"))  # type: ignore[assignment]
    return (9 * n) ** -0.25 if side == "decoder" else 0.67 * n**-0.25
