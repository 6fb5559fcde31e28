r"""Closed forms for normalization layers at initialization (the chapter "Normalization layers").

Batch normalization (BN) standardizes each feature over the batch, layer normalization (LN) each sample over
its features. Both divide by a standard deviation they measure, which makes the layer before them
*scale invariant*: multiplying its weights by :math:`\alpha > 0` changes nothing downstream (up to the
:math:`\epsilon` in the denominator). The functions here give what that implies for the forward pass, for one
SGD step, for deep BN networks without skip connections (Yang et al., 2019) and for residual stacks.
"""

from __future__ import annotations

import math

from .._validation import check_choice, check_int, check_real

__all__ = [
    "bn_gradient_growth",
    "bn_residual_stream_variance",
    "effective_learning_rate",
    "ln_gradient_profile",
    "normalized_second_moment",
    "scale_invariant_angle",
]


def normalized_second_moment(pre_variance: float, eps: float = 1e-5) -> float:
    r"""Mean square of a normalized feature, :math:`v/(v + \epsilon)`, given the variance :math:`v` it had.

    BN (over the batch) and LN (over the features) compute
    :math:`\hat s = (s - \bar s)/\sqrt{v + \epsilon}`, with :math:`v` the *biased* variance of :math:`s` over
    the set they normalize. The mean square of :math:`\hat s` over that set is exactly
    :math:`v/(v+\epsilon)`: 1 whatever the scale of :math:`s` as long as :math:`v \gg \epsilon`, and
    :math:`v/\epsilon \to 0` once the weights are so small that :math:`v \lesssim \epsilon`. Scaling the
    weights by :math:`\alpha` scales :math:`v` by :math:`\alpha^2`.

    Args:
        pre_variance: :math:`v \ge 0`, the variance of the feature before normalization.
        eps: :math:`\epsilon \ge 0` (PyTorch's default for ``BatchNorm1d`` and ``LayerNorm``: ``1e-5``).

    Raises:
        ValueError: a negative or non-finite argument, or ``pre_variance = eps = 0`` (0/0).

    Examples:
        >>> initbook.theory.normalized_second_moment(1.0, eps=0.0)
        1.0
        >>> round(initbook.theory.normalized_second_moment(1e-5), 6)  # v = eps: half the scale is lost
        0.5
    """
    v = check_real("pre_variance", pre_variance, nonnegative=True)
    eps = check_real("eps", eps, nonnegative=True)
    if v + eps == 0.0:
        raise ValueError(
            "pre_variance and eps are both 0: a constant feature has no normalized value"
        )
    return v / (v + eps)


def scale_invariant_angle(lr: float, grad_norm: float, weight_norm: float) -> float:
    r"""Angle (radians) by which one SGD step turns a weight vector that feeds a normalization.

    If the loss is invariant to the scale of :math:`w` (:math:`\mathcal L(\alpha w) = \mathcal L(w)` for
    :math:`\alpha > 0`), differentiating in :math:`\alpha` at :math:`\alpha = 1` gives
    :math:`w^\top \nabla \mathcal L(w) = 0`: the gradient is orthogonal to :math:`w`. The step
    :math:`w' = w - \eta\,g` therefore makes a right angle with :math:`w`, and

    .. math:: \tan\theta = \frac{\eta\,\lVert g\rVert}{\lVert w\rVert}, \qquad
        \lVert w'\rVert^2 = \lVert w\rVert^2 + \eta^2 \lVert g\rVert^2 .

    Both are exact (with :math:`\epsilon = 0`). For small steps :math:`\theta \approx \eta\lVert g\rVert /
    \lVert w\rVert`; see :func:`effective_learning_rate` for why this is :math:`\propto \eta/\lVert w\rVert^2`.

    Args:
        lr: the learning rate :math:`\eta > 0`.
        grad_norm: :math:`\lVert g\rVert \ge 0`.
        weight_norm: :math:`\lVert w\rVert > 0`.

    Examples:
        >>> round(initbook.theory.scale_invariant_angle(0.1, 1.0, 0.1), 6)  # tan(theta) = 1
        0.785398
    """
    lr = check_real("lr", lr, positive=True)
    g = check_real("grad_norm", grad_norm, nonnegative=True)
    w = check_real("weight_norm", weight_norm, positive=True)
    return math.atan(lr * g / w)


def effective_learning_rate(lr: float, weight_norm: float) -> float:
    r"""The learning rate :math:`\eta/\lVert w\rVert^2` that a scale-invariant weight actually feels.

    The gradient of a scale-invariant loss scales as :math:`\nabla\mathcal L(\alpha w) =
    \nabla\mathcal L(w)/\alpha` (differentiate :math:`\mathcal L(\alpha w) = \mathcal L(w)` in :math:`w`).
    Write :math:`w = \lVert w\rVert\,\hat w`; then :math:`\lVert g\rVert = \lVert \hat g\rVert/\lVert w\rVert`
    with :math:`\hat g` the gradient at the unit vector :math:`\hat w`, and the angular step of
    :func:`scale_invariant_angle` is :math:`\eta\,\lVert g\rVert/\lVert w\rVert = (\eta/\lVert w\rVert^2)
    \lVert\hat g\rVert`: SGD on :math:`w` with learning rate :math:`\eta` moves the direction :math:`\hat w`
    as SGD on the unit sphere with learning rate :math:`\eta/\lVert w\rVert^2` (van Laarhoven, 2017; Hoffer et
    al., 2018; Arora et al., 2019). An initialization 10 times too large is a learning rate 100 times too small.

    Args:
        lr: the learning rate :math:`\eta > 0`.
        weight_norm: :math:`\lVert w\rVert > 0`.

    Examples:
        >>> initbook.theory.effective_learning_rate(0.1, 10.0)
        0.001
    """
    lr = check_real("lr", lr, positive=True)
    w = check_real("weight_norm", weight_norm, positive=True)
    return lr / w**2


def bn_gradient_growth(batch_size: int | None, nonlinearity: str = "linear") -> float:
    r"""Per-layer growth of the squared gradient norm in a deep BN network without skips, at initialization.

    The network is :math:`x_{l+1} = \phi(\operatorname{BN}(W_l x_l))` with Gaussian :math:`W_l` of any
    scale (BN removes it), width :math:`n \to \infty` and batch size :math:`B`. Going down one layer
    multiplies :math:`\lVert \partial\mathcal L/\partial x_l\rVert^2` (and the squared norm of the gradient
    with respect to :math:`W_l`) by :math:`\lambda` (Yang, Pennington, Rao, Sohl-Dickstein and Schoenholz,
    2019, "A Mean Field Theory of Batch Normalization"):

    * ``"linear"`` (:math:`\phi(x) = x`), exact in :math:`B` for :math:`n \to \infty`:
      :math:`\lambda = (B-2)/(B-3)`, :math:`B \ge 4`. Derivation: the batch Gram matrix sits at its fixed point
      :math:`\tfrac{B}{B-1}(I - \tfrac1B \mathbf 1\mathbf 1^\top)`, so a feature's centered batch vector
      :math:`s` has :math:`\lVert s\rVert^2 \sim \sigma^2 \tfrac{B}{B-1}\chi^2_{B-1}`. BN's Jacobian is
      :math:`\tfrac{\sqrt B}{\lVert s\rVert}` times the projection that removes the mean and the direction
      of :math:`s`: it keeps :math:`\tfrac{B-2}{B-1}` of a backward signal and multiplies its square by
      :math:`B/\lVert s\rVert^2`, of mean :math:`\tfrac{B-1}{\sigma^2 (B-3)}` (:math:`\mathbb E[1/\chi^2_k]
      = 1/(k-2)`). :math:`W^\top` gives back :math:`\sigma^2`. Product: :math:`(B-2)/(B-3)`. Infinite for
      :math:`B = 3`, where :math:`\mathbb E[1/\chi^2_2]` diverges.
    * ``"relu"``, only the large-batch limit (``batch_size=None``): :math:`\lambda = \pi/(\pi-1)`. BN's
      Jacobian divides by the batch variance of :math:`W\operatorname{relu}(z)`, which is
      :math:`\sigma^2\operatorname{Var}[\operatorname{relu}(z)] = \sigma^2(\pi-1)/(2\pi)`; :math:`W^\top`
      multiplies by :math:`\sigma^2` and the ReLU's derivative keeps half. At finite :math:`B` the correction
      is :math:`O(1/B)` (about +2 % at :math:`B = 64`, measured); it has no closed form here.

    Args:
        batch_size: :math:`B` (an int :math:`\ge 4`), or ``None`` for the limit :math:`B \to \infty`.
        nonlinearity: ``"linear"`` or ``"relu"``.

    Raises:
        ValueError: an unknown nonlinearity, :math:`B < 4`, or a finite batch size with ``"relu"``.

    Examples:
        >>> initbook.theory.bn_gradient_growth(8)
        1.2
        >>> round(initbook.theory.bn_gradient_growth(None, "relu"), 4)
        1.4669
    """
    check_choice("nonlinearity", nonlinearity, {"linear", "relu"})
    if batch_size is None:
        return 1.0 if nonlinearity == "linear" else math.pi / (math.pi - 1.0)
    b = check_int("batch_size", batch_size, minimum=4)
    if nonlinearity == "relu":
        raise ValueError(
            f"batch_size={b!r}: for 'relu' only the large-batch limit is known in closed form; "
            "pass batch_size=None, or nonlinearity='linear' for the exact finite-batch rate"
        )
    return (b - 2) / (b - 3)


def bn_residual_stream_variance(depth: int, gamma: float = 1.0, q0: float = 1.0) -> float:
    r"""Second moment of a residual stream whose branches end in BN: :math:`q_L = q_0 + L\gamma^2`.

    A block :math:`x_{l+1} = x_l + \gamma\,\operatorname{BN}(\cdots)` adds a branch output whose every
    feature has batch mean 0 and batch mean square exactly :math:`\gamma^2` (with :math:`\epsilon = 0`),
    whatever the weights; its last layer's zero-mean weights make it uncorrelated with the stream. So each
    block adds :math:`\gamma^2`: linear growth, not the :math:`(1+\beta^2)^L` of an unnormalized stack, and
    :math:`\gamma = 0` in the last BN of every block (Goyal et al., 2017) makes every block the identity.

    Args:
        depth: number of blocks :math:`L \ge 0`.
        gamma: the scale :math:`\gamma` of the last BN of each branch.
        q0: second moment of the stream entering the first block.

    Examples:
        >>> initbook.theory.bn_residual_stream_variance(10)
        11.0
        >>> initbook.theory.bn_residual_stream_variance(10, gamma=0.0)
        1.0
    """
    check_int("depth", depth, minimum=0)
    gamma = check_real("gamma", gamma)
    q0 = check_real("q0", q0, nonnegative=True)
    return q0 + depth * gamma**2


def ln_gradient_profile(
    depth: int, placement: str = "pre", branch_gain2: float = 1.0
) -> list[float]:
    r"""Squared gradient norm of each block of an LN residual stack at init, relative to the last block.

    *Pre-LN*: :math:`x_{l+1} = x_l + F_l(\operatorname{LN}(x_l))` and a final LN before the read-out.
    *Post-LN*: :math:`x_{l+1} = \operatorname{LN}(x_l + F_l(x_l))`. :math:`F_l` is a branch with forward
    and backward second-moment gain ``branch_gain2`` :math:`= a` (1 for a He branch, as in
    :func:`relu_branch_gain2`); the width is large.

    Pre-LN: the stream grows as :math:`q_l = 1 + a\,l` (a unit input, each branch adds :math:`a`). Going
    back through block :math:`l` multiplies the stream gradient's square by :math:`1 + a/q_l` (identity
    path plus a branch seen through LN's :math:`1/\sqrt{q_l}`), which telescopes, and the final LN divides it
    by :math:`q_L`: the gradient reaching block :math:`l`'s output, and so the squared gradient of its
    weights, is :math:`\propto 1/q_{l+1}`. Relative to the last block, :math:`q_L/q_{l+1} =
    (1 + aL)/(1 + a(l+1))`: the first block's is :math:`(1+aL)/(1+a)` times the last's, a factor that grows
    linearly with depth, and the last block's shrinks as :math:`1/q_L` (Xiong et al., 2020).

    Post-LN: each block sums two terms of mean square 1 and :math:`a`, LN divides by :math:`1 + a`, and the
    way back multiplies by :math:`1 + a` again: the profile is flat, all ones, up to corrections of order
    (width)\ :sup:`-1` per block.

    Args:
        depth: number of blocks :math:`L \ge 1`.
        placement: ``"pre"`` or ``"post"``.
        branch_gain2: :math:`a > 0`.

    Returns:
        ``depth`` floats, block 0 (nearest the input) first; the last is 1.

    Examples:
        >>> initbook.theory.ln_gradient_profile(4)
        [2.5, 1.6666666666666667, 1.25, 1.0]
        >>> initbook.theory.ln_gradient_profile(3, "post")
        [1.0, 1.0, 1.0]
    """
    check_int("depth", depth, minimum=1)
    check_choice("placement", placement, {"pre", "post"})
    a = check_real("branch_gain2", branch_gain2, positive=True)
    if placement == "post":
        return [1.0] * depth
    q_last = 1.0 + a * depth
    return [q_last / (1.0 + a * (block + 1)) for block in range(depth)]
