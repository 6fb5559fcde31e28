"""Argument checks shared by the public API: every error names the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import torch


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a :class:`TypeError`, and a :class:`ValueError` too.

    :mod:`torch.nn.init` raises ``ValueError`` for many arguments of the wrong type (``calculate_gain(None)``,
    ``calculate_gain("leaky_relu", True)``, ``kaiming_uniform_(w, a="x")``), where initbook's checks raise
    ``TypeError``. This class is both, so code written against torch that catches ``ValueError`` catches
    initbook's errors too, and so does code that catches ``TypeError``.
    """


def check_choice(name: str, value: object, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid`` strings, else raise a ``ValueError``/``TypeError``."""
    if type(value) is str and value in valid:  # the common case, without sorting anything
        return value
    options = sorted(valid)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, one of {options}; got {value!r}")
    if value not in options:
        raise ValueError(f"{name}={value!r} is not one of {options}")
    return value


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int; reject bools, floats and values below ``minimum``."""
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ArgumentTypeError(
            f"{name} must be an int, got {value!r} of type {type(value).__name__}"
        )
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
    kind = type(value)
    if kind is not float and kind is not int:  # the common cases skip the isinstance checks
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArgumentTypeError(
                f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
            )
    try:
        value = float(cast("int | float", value))  # the checks above leave only these
    except OverflowError:  # an int beyond float64's range
        raise ValueError(f"{name}={value!r} is too large for a float") from None
    if not math.isfinite(value) and (math.isnan(value) or not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_dtype(
    name: str, dtype: object, allowed: Sequence[torch.dtype] = FLOAT_DTYPES
) -> torch.dtype:
    """Return ``dtype`` if it is one of the ``allowed`` floating dtypes (default: all four)."""
    if not isinstance(dtype, torch.dtype):
        raise ArgumentTypeError(f"{name} must be a torch.dtype, got {dtype!r}")
    if dtype not in allowed:
        valid = [str(d) for d in allowed]
        raise ValueError(f"{name}={dtype} is not a supported floating dtype; use one of {valid}")
    return dtype


def check_float_dtype(name: str, dtype: object) -> torch.dtype:
    """Return ``dtype`` if it is one of torch's real floating dtypes: :func:`check_dtype`'s default."""
    return check_dtype(name, dtype)


def check_float_tensor(name: str, tensor: object) -> torch.Tensor:
    """Return ``tensor`` if it is a real floating-point tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ArgumentTypeError(f"{name} must have a floating dtype, got {tensor.dtype}")
    return tensor


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is a :class:`torch.Generator` or ``None``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(
            f"{name} must be a torch.Generator or None, got {generator!r} of type "
            f"{type(generator).__name__}"
        )
    return generator


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool (not merely truthy: ``1`` and ``None`` are rejected)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a bool, got {value!r}")
    return value


T = TypeVar("T")


def check_each(
    name: str,
    values: object,
    check: Callable[..., T],
    *,
    nonempty: bool = True,
    **kwargs: Any,
) -> list[T]:
    """Apply ``check(f"{name}[{i}]", value, **kwargs)`` to every entry of a sequence; return the results.

    Errors name the entry (``lrs[2] must be > 0, got -1.0``). ``values`` must be a sequence other than a
    string, non-empty unless ``nonempty=False``.
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ArgumentTypeError(f"{name} must be a sequence, got {values!r}")
    if nonempty and len(values) == 0:
        raise ArgumentTypeError(f"{name} must be a non-empty sequence, got {values!r}")
    return [check(f"{name}[{i}]", value, **kwargs) for i, value in enumerate(values)]
