r"""Delta-orthogonal initialization of convolution kernels (re-exported by :mod:`initbook.init`)."""

from __future__ import annotations

import torch

from . import init as _init
from ._validation import check_float_tensor, check_generator, check_real

__all__ = ["delta_orthogonal_"]


def delta_orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill a convolution kernel with zeros except at its spatial centre, which is an orthogonal matrix.

    The method is described in "Dynamical isometry and a mean field theory of CNNs: How to train
    10,000-layer vanilla convolutional neural networks", Xiao, L. et al. (2018). For a kernel of layout
    ``(out, in, *kernel)`` with odd kernel sizes and centre :math:`c = (k_1 // 2, k_2 // 2, \dots)`,

    .. math:: W[:, :, c] = \text{gain}\cdot H, \qquad W[:, :, t] = 0 \ (t \ne c), \qquad
        H^\top H = I_\text{in},

    with :math:`H` an ``(out, in)`` matrix with orthonormal columns, Haar-distributed, drawn by
    :func:`orthogonal_` (with the same generator, ``H`` is exactly what ``orthogonal_`` gives an
    ``(out, in)`` tensor). A convolution with this kernel applies :math:`\text{gain}\cdot H` to every
    pixel's channel vector and mixes nothing across pixels, so it preserves the norm of every input
    exactly when ``gain = 1`` and the padding does not remove pixels (circular padding, or any padding
    whose output keeps every input pixel at the centre tap).

    The paper (and JAX's ``delta_orthogonal``) require ``out >= in``: then :math:`H^\top H = I` and no
    input direction is lost. For ``out < in`` no linear map preserves every input's norm, so this raises
    a ``ValueError`` instead of returning a semi-orthogonal kernel that silently drops directions.

    Args:
        tensor: a floating tensor ``(out, in, *kernel)`` with at least one kernel dimension, every kernel
            size odd, and ``out >= in``.
        gain: a scaling factor, finite and ``>= 0``.
        generator: the source of randomness.

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 3 dimensions, an even kernel size, ``out < in``, or a negative or
            non-finite ``gain``.
        TypeError: ``tensor`` is not a floating tensor, or ``generator`` is not a ``torch.Generator``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3), generator=g)
        >>> x = torch.randn(1, 8, 5, 5, generator=g)
        >>> y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), "circular"), w)
        >>> round(float(y.norm() / x.norm()), 5), int((w[:, :, 1, 1] == 0).sum()), int(w.count_nonzero())
        (1.0, 0, 64)
        >>> initbook.delta_orthogonal_(torch.empty(8, 8, 2, 2))
        Traceback (most recent call last):
        ...
        ValueError: delta_orthogonal_ needs odd kernel sizes (a centre tap), got kernel (2, 2) in shape (8, 8, 2, 2)
    """
    check_float_tensor("tensor", tensor)
    gain = check_real("gain", gain, nonnegative=True)
    check_generator(generator)
    _init._check_min_dims(tensor, 3, "delta_orthogonal_")
    out, inp, *kernel = tensor.shape
    if any(size % 2 == 0 for size in kernel):
        raise ValueError(
            f"delta_orthogonal_ needs odd kernel sizes (a centre tap), got kernel {tuple(kernel)} "
            f"in shape {tuple(tensor.shape)}"
        )
    if out < inp:
        raise ValueError(
            f"delta_orthogonal_ needs out >= in (an isometry on the input channels), got out={out}, "
            f"in={inp} in shape {tuple(tensor.shape)}"
        )
    if _init._is_noop(tensor) or tensor.is_meta:
        return tensor
    centre = torch.empty(out, inp, dtype=tensor.dtype, device=tensor.device)
    _init.orthogonal_(centre, gain, generator=generator)
    with torch.no_grad():
        tensor.zero_()
        index: tuple[slice | int, ...] = (slice(None), slice(None), *(k // 2 for k in kernel))
        tensor[index] = centre
    return tensor
