"""Argument checks shared by the public API: every error names the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def check_choice(name: str, value: object, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid`` strings, else raise a ``ValueError``/``TypeError``."""
    options = sorted(valid)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {options}; got {value!r}")
    if value not in options:
        raise ValueError(f"{name}={value!r} is not one of {options}")
    return value


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int; reject bools, floats and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_real(
    name: str,
    value: object,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a finite float; reject bools, non-numbers, non-finite and out-of-range values.

    With ``allow_inf=True``, ``+inf`` and ``-inf`` are accepted too (NaN never is).
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_float_dtype(name: str, dtype: object) -> torch.dtype:
    """Return ``dtype`` if it is one of torch's real floating dtypes."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype, got {dtype!r}")
    if dtype not in FLOAT_DTYPES:
        valid = [str(d) for d in FLOAT_DTYPES]
        raise ValueError(f"{name}={dtype} is not a supported floating dtype; use one of {valid}")
    return dtype


def check_float_tensor(name: str, tensor: object) -> torch.Tensor:
    """Return ``tensor`` if it is a real floating-point tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {tensor.dtype}")
    return tensor
