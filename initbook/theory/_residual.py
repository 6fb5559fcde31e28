r"""Residual networks without normalization: the branch gain, the variance of the stream, Fixup's scale."""

from __future__ import annotations

import math

from .._validation import check_int, check_real


def relu_branch_gain2(layers: int = 2, inner_gain2: float = 2.0, last_gain2: float = 1.0) -> float:
    r"""The factor :math:`\alpha^2 = \mathbb E\lVert F(x)\rVert^2 / \lVert x\rVert^2` of a ReLU branch at initialization.

    The branch :math:`F(x) = W_m \operatorname{relu}(W_{m-1}\cdots\operatorname{relu}(W_1 x))` has i.i.d.
    zero-mean weights, :math:`\operatorname{Var}[W_j] = g_j^2/n`, with :math:`g_j^2 = ` ``inner_gain2`` for
    the :math:`m-1` inner layers and ``last_gain2`` for the last. Given its input, a Gaussian layer's output
    is exactly :math:`\mathcal N(0, g^2\lVert h\rVert^2/n)` per entry, and a ReLU keeps exactly half of its
    second moment, so for any fixed :math:`x`

    .. math:: \mathbb E\,\lVert F(x)\rVert^2 = \Bigl(\frac{g_\text{inner}^2}{2}\Bigr)^{m-1} g_\text{last}^2\,\lVert x\rVert^2 .

    He's gain :math:`g^2 = 2` on the inner layers and :math:`1` on the last gives :math:`\alpha^2 = 1`.

    Examples:
        >>> initbook.theory.relu_branch_gain2()  # He inner layers, gain-1 last layer
        1.0
        >>> initbook.theory.relu_branch_gain2(last_gain2=2.0)  # kaiming_normal_(relu) everywhere
        2.0
        >>> initbook.theory.relu_branch_gain2(3, inner_gain2=2.0 / 8)  # Fixup's scaling with L = 64
        0.015625
    """
    check_int("layers", layers, minimum=1)
    inner_gain2 = check_real("inner_gain2", inner_gain2, nonnegative=True)
    last_gain2 = check_real("last_gain2", last_gain2, nonnegative=True)
    return (inner_gain2 / 2.0) ** (layers - 1) * last_gain2


def residual_variance(depth: int, branch_gain2: float, q0: float = 1.0) -> float:
    r"""Second moment of the residual stream after ``depth`` blocks :math:`x_{l+1} = x_l + F_l(x_l)`.

    If the last layer of each branch has zero-mean weights drawn independently of everything before it,
    the stream and the branch are uncorrelated, :math:`\mathbb E[x_l^\top F_l(x_l)] = 0`, and with the
    branch gain :math:`\alpha^2` (:func:`relu_branch_gain2`)

    .. math:: q_{l+1} = q_l + \alpha^2 q_l = (1 + \alpha^2)\, q_l
        \quad\Longrightarrow\quad q_L = (1 + \alpha^2)^L\, q_0 ,

    where :math:`q_l = \mathbb E\lVert x_l\rVert^2 / n`. He-initialised branches (:math:`\alpha^2 = 1`)
    double it per block; :math:`\alpha^2 = 1/L` keeps it below :math:`e\,q_0` at any depth.

    Args:
        depth: number of blocks :math:`L`.
        branch_gain2: :math:`\alpha^2`, the branch's second-moment gain.
        q0: second moment of the stream entering the first block.

    Examples:
        >>> initbook.theory.residual_variance(10, 1.0)
        1024.0
        >>> round(initbook.theory.residual_variance(100, 1 / 100), 4)  # (1 + 1/L)^L -> e
        2.7048
    """
    check_int("depth", depth, minimum=0)
    branch_gain2 = check_real("branch_gain2", branch_gain2, nonnegative=True)
    q0 = check_real("q0", q0, nonnegative=True)
    if q0 == 0.0:
        return 0.0
    try:
        growth = (1.0 + branch_gain2) ** depth
    except OverflowError:  # beyond float64's range: the exact answer is too
        growth = math.inf
    return q0 * growth


def fixup_scale(blocks: int, layers_per_branch: int) -> float:
    r"""Fixup's factor :math:`L^{-1/(2m-2)}` on the inner layers of each residual branch.

    From "Fixup Initialization: Residual Learning Without Normalization", Zhang, Dauphin and Ma (2019). A
    branch of :math:`m` scalar weights all equal to :math:`c` computes :math:`F = c^m x`; one gradient step
    of size :math:`\eta` changes :math:`F` by about :math:`\eta\sum_i \prod_{j\ne i} c^2 = \eta\, m\,
    c^{2m-2}`. For the :math:`L` branches together to change the output by :math:`O(\eta)`, independent of
    depth, each must contribute :math:`O(\eta/L)`: :math:`c^{2m-2} = 1/L`.

    Args:
        blocks: number of residual blocks :math:`L`.
        layers_per_branch: layers per branch :math:`m \ge 2`.

    Examples:
        >>> initbook.theory.fixup_scale(100, 2)  # 100 ** (-1/2)
        0.1
        >>> round(initbook.theory.fixup_scale(64, 3), 6)  # 64 ** (-1/4)
        0.353553
    """
    check_int("blocks", blocks, minimum=1)
    check_int("layers_per_branch", layers_per_branch, minimum=1)
    if layers_per_branch < 2:
        raise ValueError(
            f"layers_per_branch={layers_per_branch!r}: Fixup's scale L**(-1/(2m-2)) needs m >= 2 "
            "layers per branch"
        )
    return blocks ** (-1.0 / (2 * layers_per_branch - 2))
