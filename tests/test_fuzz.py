"""Fuzzing the public API with hypothesis: a correct result or a documented, named error, never anything else.

Every public function of :mod:`initbook.init`, :mod:`initbook.stats`, :mod:`initbook.theory`,
:mod:`initbook.nets` and :mod:`initbook.mup` is called with random shapes (0-size dimensions, 0-D to
5-D), dtypes (the four float dtypes and int/bool/complex), modes, nonlinearities and bad values (NaN,
+-inf, negatives, wrong types, ``True`` where an int is expected). The only acceptable outcomes are

* a result that is finite (no NaN/inf) whenever the inputs were finite, of the right shape and dtype;
* a ``ValueError``/``TypeError`` (the documented ones) whose message names the bad value (its ``repr``);
* for a zero-element tensor, the documented ``UserWarning`` ("zero-element tensors is a no-op").

Any other exception, a hang, or a silent non-finite output is a failure. The runs are derandomized
(``derandomize=True``): hypothesis derives its examples from each test's source, so CI sees the same
examples on every run; ``INITBOOK_FUZZ_EXPLORE=1`` draws fresh random examples (ten times as many).
Bugs found this way are fixed in the library and kept as ``@example`` regressions. The whole file
takes about 10 s on one thread (the training experiments of :mod:`initbook.mup` run a few tiny cases).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import os
import re
import warnings

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from initbook import init, mup, nets, stats, theory

# INITBOOK_FUZZ_EXPLORE=1: fresh random examples, ten times as many (CI: derandomized, the same every run)
EXPLORE = bool(os.environ.get("INITBOOK_FUZZ_EXPLORE"))
FUZZ = settings(
    deadline=None,
    max_examples=400 if EXPLORE else 40,
    derandomize=not EXPLORE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
FEW = settings(FUZZ, max_examples=150 if EXPLORE else 15)

FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
BAD_DTYPES = (torch.int64, torch.int8, torch.bool, torch.complex64)
NONLINEARITIES = init._NONLINEARITIES  # the valid names (test_init checks them against torch's)

# Values that are wrong for a real-number parameter, and their kind of error.
NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
WRONG_TYPE = st.sampled_from([True, False, "1.0", None, [1.0], (1.0,), 1 + 2j, object])
shapes = st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple)
good_dtypes = st.sampled_from(FLOAT_DTYPES)
any_dtypes = st.sampled_from(FLOAT_DTYPES + BAD_DTYPES)


# ---------------------------------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------------------------------
def _has_token(message: str, token: str) -> bool:
    """Is ``token`` in ``message`` as a whole token, not as part of a longer word or number?

    ``1`` is not named by "float16" or "0.15", ``0`` not by "0.5", ``inf`` not by "info".
    """
    if not token:
        return False
    pattern = rf"(?<![\w.]){re.escape(token)}(?!\w|\.\d)"
    return re.search(pattern, message) is not None


def _names(message: str, value: object) -> bool:
    """Does an error message name ``value`` (its ``repr`` or ``str``, as a whole token)?"""
    if isinstance(value, torch.dtype):
        return str(value) in message or _has_token(message, str(value).removeprefix("torch."))
    if isinstance(value, type):
        return _has_token(message, value.__name__) or repr(value) in message
    if isinstance(value, bool | int | float | str | list | tuple | complex) or value is None:
        return _has_token(message, repr(value)) or _has_token(message, str(value))
    return _has_token(message, type(value).__name__)


def call(fn, *args, bad: tuple = (), may_raise: bool = False, **kwargs):
    """Call ``fn``; return ``("ok", result)`` or ``("error", exception)``, checking the contract.

    ``bad`` lists the deliberately bad values passed: then the call must raise a ValueError/TypeError
    that names one of them. With no bad value the call must succeed: a ValueError/TypeError fails the
    test, unless ``may_raise`` says that the caller judges the error itself (a documented error for
    valid-looking input, e.g. a truncation interval with no probability mass; the caller must assert
    on it). Warnings other than the documented zero-element one fail the test.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(*args, **kwargs)
        except (ValueError, TypeError) as error:
            if bad:
                assert any(_names(str(error), value) for value in bad), (  # noqa: PT017
                    f"{fn.__name__}: {type(error).__name__}({error}) does not name any of {bad!r}"
                )
            elif not may_raise:
                pytest.fail(
                    f"{fn.__name__}: a valid call (args {args!r}, kwargs {kwargs!r}) raised "
                    f"{type(error).__name__}({error})"
                )
            return "error", error
    for warning in caught:
        assert issubclass(warning.category, UserWarning), warning
        assert "zero-element" in str(warning.message), f"{fn.__name__}: undocumented {warning}"
    if bad:
        pytest.fail(f"{fn.__name__} accepted bad value(s) {bad!r} and returned {result!r}")
    return "ok", result


def assert_finite(name: str, value: object) -> None:
    """No NaN or inf anywhere in a result (numbers, tensors, tuples, dataclasses)."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and value.numel():
            assert bool(torch.isfinite(value).all()), f"{name}: non-finite values in {value}"
    elif isinstance(value, float):
        assert math.isfinite(value), f"{name}: returned {value}"
    elif isinstance(value, tuple | list):
        for item in value:
            assert_finite(name, item)
    elif hasattr(value, "__dataclass_fields__"):
        for field in value.__dataclass_fields__:
            assert_finite(f"{name}.{field}", getattr(value, field))


def real_or_bad(valid: st.SearchStrategy, *, negative_ok: bool = True):
    """``(value, is_bad)``: a valid real, or a non-finite / wrong-type (/ negative) one."""
    bad = [NONFINITE, WRONG_TYPE]
    if not negative_ok:
        bad.append(st.floats(-1e6, -1e-6))
    return st.one_of(valid.map(lambda v: (v, False)), st.one_of(*bad).map(lambda v: (v, True)))


def int_or_bad(valid: st.SearchStrategy, minimum: int):
    """``(value, is_bad)``: a valid int, one below ``minimum``, a bool, a float or a wrong type."""
    return st.one_of(
        valid.map(lambda v: (v, False)),
        st.integers(minimum - 50, minimum - 1).map(lambda v: (v, True)),
        st.sampled_from([True, False, 2.0, math.nan, "3", None]).map(lambda v: (v, True)),
    )


def tensor(shape: tuple, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    if dtype.is_complex:
        return torch.zeros(shape, dtype=dtype)
    return torch.zeros(shape, dtype=dtype)


# ---------------------------------------------------------------------------------------------------
# initbook.init: every initializer on random tensors
# ---------------------------------------------------------------------------------------------------
# name -> (function, keyword arguments, allowed numbers of dimensions: (minimum, maximum))
RANDOM_INITS = {
    "variance_scaling_": (init.variance_scaling_, {}, (2, 9)),
    "kaiming_normal_": (init.kaiming_normal_, {"nonlinearity": "relu"}, (2, 9)),
    "kaiming_uniform_": (init.kaiming_uniform_, {"a": math.sqrt(5)}, (2, 9)),
    "he_normal_": (init.he_normal_, {}, (2, 9)),
    "he_uniform_": (init.he_uniform_, {}, (2, 9)),
    "xavier_normal_": (init.xavier_normal_, {"gain": 2.0}, (2, 9)),
    "xavier_uniform_": (init.xavier_uniform_, {}, (2, 9)),
    "glorot_normal_": (init.glorot_normal_, {}, (2, 9)),
    "glorot_uniform_": (init.glorot_uniform_, {}, (2, 9)),
    "lecun_normal_": (init.lecun_normal_, {}, (2, 9)),
    "lecun_uniform_": (init.lecun_uniform_, {}, (2, 9)),
    "torch_default_": (init.torch_default_, {}, (2, 9)),
    "orthogonal_": (init.orthogonal_, {"gain": 1.5}, (2, 9)),
    "sparse_": (init.sparse_, {"sparsity": 0.5}, (2, 2)),
    "spectral_normalize_": (init.spectral_normalize_, {"target": 0.9, "n_iter": 5}, (2, 9)),
    "trunc_normal_": (init.trunc_normal_, {"std": 0.5, "a": -1.0, "b": 1.0}, (0, 9)),
    "uniform_": (init.uniform_, {"a": -2.0, "b": 3.0}, (0, 9)),
    "normal_": (init.normal_, {"mean": 1.0, "std": 2.0}, (0, 9)),
    "constant_": (init.constant_, {"val": -0.25}, (0, 9)),
    "zeros_": (init.zeros_, {}, (0, 9)),
    "ones_": (init.ones_, {}, (0, 9)),
    "eye_": (init.eye_, {}, (2, 2)),
    "dirac_": (init.dirac_, {}, (3, 5)),
}
SEEDED = {
    name for name, (fn, _, _) in RANDOM_INITS.items() if "generator" in fn.__code__.co_varnames
}


@FUZZ
@given(name=st.sampled_from(sorted(RANDOM_INITS)), shape=shapes, dtype=any_dtypes)
@example(name="dirac_", shape=(0, 2, 3), dtype=torch.float32)
@example(name="dirac_", shape=(1, 1, 0), dtype=torch.float64)  # was an IndexError
@example(name="spectral_normalize_", shape=(), dtype=torch.bool)
def test_initializers_on_random_tensors(name, shape, dtype):
    fn, kwargs, (lo, hi) = RANDOM_INITS[name]
    w = tensor(shape, dtype)
    if name == "spectral_normalize_" and dtype.is_floating_point:
        w = w + 1  # an all-zero tensor is a documented error (bool + 1 would be int64)
    if name in SEEDED:
        kwargs = {**kwargs, "generator": torch.Generator().manual_seed(1)}
    bad_dtype = () if dtype.is_floating_point else (dtype,)
    bad_shape = not lo <= len(shape) <= hi  # judged below: the error names the dimension count
    status, out = call(fn, w, bad=bad_dtype, may_raise=bad_shape, **kwargs)
    if not dtype.is_floating_point:
        assert status == "error", f"{name} accepted dtype {dtype}"
        assert isinstance(out, TypeError), out
        assert _names(str(out), dtype), out
        return
    if bad_shape:
        assert status == "error", f"{name} accepted shape {shape}"
        assert isinstance(out, ValueError), out
        assert "dimension" in str(out), out
        return
    assert status == "ok", f"{name}{shape} {dtype}: {out!r}"
    assert out is w
    assert out.shape == shape
    assert out.dtype == dtype
    assert_finite(name, out)


@FUZZ
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple),
    dtype=good_dtypes,
    scale=real_or_bad(st.floats(0, 100), negative_ok=False),
    mode=st.sampled_from(["fan_in", "fan_out", "fan_avg", "FAN_IN", "fan", "", 1, None]),
    distribution=st.sampled_from(["normal", "uniform", "truncated_normal", "gaussian", 0]),
    fans=st.sampled_from([None, (3, 4), (1, 1), (0, 4), (3, -1), (True, 2), (2.0, 3), "34", (1,)]),
)
def test_variance_scaling_arguments(shape, dtype, scale, mode, distribution, fans):
    scale, scale_bad = scale
    bad = [scale] if scale_bad else []
    if not (isinstance(mode, str) and mode.lower() in ("fan_in", "fan_out", "fan_avg")):
        bad.append(mode)
    if distribution not in ("normal", "uniform", "truncated_normal"):
        bad.append(distribution)
    fans_bad = fans is not None and (
        isinstance(fans, str)
        or len(fans) != 2
        or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in fans)
    )
    if fans_bad:
        bad.extend([fans, *fans] if not isinstance(fans, str) else [fans])
    w = tensor(shape, dtype)
    g = torch.Generator().manual_seed(0)
    status, out = call(
        init.variance_scaling_,
        w,
        scale,
        mode,
        distribution,
        fans=fans,
        generator=g,
        bad=tuple(bad),
    )
    if status == "ok":
        assert_finite("variance_scaling_", out)
        fan_in, fan_out = fans if fans is not None else init.compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode.lower()]
        if distribution != "normal":  # bounded: sqrt(3) sigma, or 2 sigma / 0.8796
            limit = {"uniform": math.sqrt(3), "truncated_normal": 2.2737}[distribution]
            limit *= math.sqrt(scale / n)
            assert float(out.double().abs().max()) <= limit * (1 + 1e-2) + 1e-30


@FUZZ
@given(
    nonlinearity=st.sampled_from([*NONLINEARITIES, "gelu", "ReLU", "", 3, None]),
    param=st.one_of(st.none(), real_or_bad(st.floats(-10, 10) | st.floats(-1e300, 1e300))),
)
@example(nonlinearity="leaky_relu", param=(1e200, False))  # was an OverflowError (slope**2)
@example(nonlinearity="leaky_relu", param=(-1.0, False))
@example(nonlinearity="selu", param=(math.nan, True))
def test_calculate_gain(nonlinearity, param):
    if param is None:
        args, bad = (), []
        param_value = None
    else:
        param_value, param_bad = param
        param_bad = param_bad and param_value is not None  # None: the default, valid
        args, bad = (param_value,), ([param_value] if param_bad else [])
    if nonlinearity not in NONLINEARITIES:
        bad.append(nonlinearity)
    if nonlinearity != "leaky_relu" and not bad and param_value is not None:
        # torch ignores the parameter of a parameter-free nonlinearity; so does initbook
        pass
    status, out = call(init.calculate_gain, nonlinearity, *args, bad=tuple(bad))
    if status == "ok":
        assert isinstance(out, float)
        assert_finite("calculate_gain", out)
        assert out >= 0
        small = param is None or (isinstance(param_value, int | float) and abs(param_value) < 1e100)
        if nonlinearity in NONLINEARITIES and small:  # (torch's own raises OverflowError beyond)
            assert out == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param_value))


@FUZZ
@given(
    shape=st.lists(
        st.one_of(st.integers(-3, 6), st.sampled_from([True, 2.0, "3", None])),
        min_size=0,
        max_size=5,
    ),
    as_tensor=st.booleans(),
)
def test_compute_fans(shape, as_tensor):
    bad_items = [s for s in shape if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    arg = torch.empty(shape) if as_tensor and not bad_items else tuple(shape)
    too_short = len(shape) < 2
    status, out = call(init.compute_fans, arg, may_raise=bool(bad_items) or too_short)
    if bad_items or too_short:
        assert status == "error", f"compute_fans({arg!r}) returned {out}"
        assert bad_items == [] or any(_names(str(out), b) for b in bad_items) or too_short, out
        if too_short and not bad_items:
            assert isinstance(out, ValueError), out
            assert "dimension" in str(out), out
        return
    assert status == "ok", out
    receptive = math.prod(shape[2:])
    assert out == (shape[1] * receptive, shape[0] * receptive)


@FEW
@given(
    kind=st.sampled_from(["linear", "conv1d", "conv2d", "conv3d", "convt1d", "convt2d", "bad"]),
    channels=st.integers(1, 4),
    groups=st.integers(1, 2),
    kernel=st.integers(1, 3),
)
def test_fans_of(kind, channels, groups, kernel):
    if kind in ("linear", "bad"):
        groups = 1
    c_in, c_out = channels * groups, 2 * channels * groups
    make = {
        "linear": lambda: nn.Linear(c_in, c_out),
        "conv1d": lambda: nn.Conv1d(c_in, c_out, kernel, groups=groups),
        "conv2d": lambda: nn.Conv2d(c_in, c_out, kernel, groups=groups),
        "conv3d": lambda: nn.Conv3d(c_in, c_out, kernel, groups=groups),
        "convt1d": lambda: nn.ConvTranspose1d(c_in, c_out, kernel, groups=groups),
        "convt2d": lambda: nn.ConvTranspose2d(c_in, c_out, kernel, groups=groups),
        "bad": lambda: nn.ReLU(),
    }
    module = make[kind]()
    status, out = call(init.fans_of, module, bad=(module,) if kind == "bad" else ())
    if kind == "bad":
        assert status == "error", out
        assert isinstance(out, TypeError), out
        assert "ReLU" in str(out), out
        return
    assert status == "ok", out
    fan_in, fan_out = out
    assert min(fan_in, fan_out) >= 1
    # the fan is what a unit of the forward (fan_in) or the backward (fan_out) pass sums over
    d = {"linear": 0, "conv1d": 1, "conv2d": 2, "conv3d": 3, "convt1d": 1, "convt2d": 2}[kind]
    k = kernel**d
    assert (fan_in, fan_out) == (c_in // groups * k, c_out // groups * k)


@FUZZ
@given(
    mean=real_or_bad(st.floats(-5, 5)),
    std=real_or_bad(st.floats(1e-3, 10), negative_ok=False),
    a=real_or_bad(st.floats(-40, 40)),
    width=st.floats(1e-3, 40),
    dtype=good_dtypes,
)
@example(mean=(0.0, False), std=(1.0, False), a=(38.0, False), width=2.0, dtype=torch.float32)
@example(mean=(0.0, False), std=(1.0, False), a=(-40.0, False), width=1.0, dtype=torch.float64)
@example(mean=(0.0, False), std=(1.0, False), a=(-math.inf, True), width=1.0, dtype=torch.float64)
def test_trunc_normal_bounds(mean, std, a, width, dtype):
    (mean, mean_bad), (std, std_bad), (a, a_bad) = mean, std, a
    if a == -math.inf:
        a_bad = False  # documented: a = -inf is no cut below
    b = 1.0 if a_bad or a == -math.inf else a + width
    bad = [v for v, is_bad in ((mean, mean_bad), (std, std_bad), (a, a_bad)) if is_bad]
    w = torch.empty(200, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    status, out = call(
        init.trunc_normal_, w, mean, std, a, b, generator=g, bad=tuple(bad), may_raise=True
    )
    if status == "error" and bad:
        return
    if status == "error":
        # without bad arguments, the only documented error is an interval with no mass in float64
        assert "mass" in str(out), out
        assert _names(str(out), a) or _names(str(out), b), out
        return
    assert_finite("trunc_normal_", out)
    values = out.double()
    # bounds are rounded to the tensor's dtype, so allow one rounding step at the ends
    eps = torch.finfo(dtype).eps * max(abs(a), abs(b), 1.0) * 2
    assert float(values.min()) >= a - eps, (a, b, values)
    assert float(values.max()) <= b + eps, (a, b, values)


@FUZZ
@given(
    low=real_or_bad(st.floats(-1e3, 1e3)),
    span=st.floats(0, 1e3),
    mean=real_or_bad(st.floats(-1e3, 1e3)),
    std=real_or_bad(st.floats(0, 1e3), negative_ok=False),
    val=real_or_bad(st.floats(-1e3, 1e3)),
    dtype=good_dtypes,
)
def test_elementwise_fills(low, span, mean, std, val, dtype):
    g = torch.Generator().manual_seed(0)
    (low, low_bad) = low
    high = low + span if not low_bad else 1.0
    status, out = call(
        init.uniform_, torch.empty(50, dtype=dtype), low, high, generator=g, bad=(low,) * low_bad
    )
    if status == "ok":
        assert_finite("uniform_", out)
    (mean, mean_bad), (std, std_bad) = mean, std
    bad = tuple(v for v, b in ((mean, mean_bad), (std, std_bad)) if b)
    status, out = call(init.normal_, torch.empty(50, dtype=dtype), mean, std, generator=g, bad=bad)
    if status == "ok":
        assert_finite("normal_", out)
    (val, val_bad) = val
    if isinstance(val, float) and math.isinf(val):
        val_bad = False  # constant_ documents that +-inf are allowed (as in torch)
    status, out = call(init.constant_, torch.empty(5, dtype=dtype), val, bad=(val,) * val_bad)
    if status == "ok":
        assert bool((out == torch.tensor(val, dtype=dtype)).all())


@FUZZ
@given(
    fn=st.sampled_from(
        ["variance_scaling_", "normal_", "uniform_", "trunc_normal_", "xavier_normal_"]
    ),
    log10_scale=st.floats(-3, 310),
    dtype=good_dtypes,
    distribution=st.sampled_from(["normal", "uniform", "truncated_normal"]),
)
@example(fn="variance_scaling_", log10_scale=12.0, dtype=torch.float16, distribution="uniform")
@example(fn="uniform_", log10_scale=300.0, dtype=torch.float32, distribution="uniform")
@example(
    fn="uniform_", log10_scale=308.0, dtype=torch.float64, distribution="uniform"
)  # b - a = inf
@example(fn="normal_", log10_scale=309.0, dtype=torch.float64, distribution="normal")
def test_huge_scales_overflow_loudly(fn, log10_scale, dtype, distribution):
    """Finite but huge scales: a finite result or a ValueError that says the values overflow.

    Found by hand next to this file: a float16 tensor filled with inf by ``variance_scaling_(w, 1e12)``, and
    a RuntimeError from torch for ``uniform_(float32 tensor, -1e300, 1e300)``.
    """
    big = 10.0 ** min(log10_scale, 308.0)  # 10.0**309 is an OverflowError in Python itself
    w = torch.empty(8, 8, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    calls = {
        "variance_scaling_": lambda: init.variance_scaling_(
            w, min(big, 1e308), "fan_in", distribution, generator=g
        ),
        "normal_": lambda: init.normal_(w, 0.0, big, generator=g),
        "uniform_": lambda: init.uniform_(w, -big, big, generator=g),
        "trunc_normal_": lambda: init.trunc_normal_(w, 0.0, big, -2 * big, 2 * big, generator=g),
        "xavier_normal_": lambda: init.xavier_normal_(w, min(big, 1e300), generator=g),
    }
    status, out = call(calls[fn], may_raise=True)  # judged: only an overflow error is allowed
    if status == "error":
        assert isinstance(out, ValueError), out
        assert "overflow" in str(out), out
        return
    assert_finite(fn, out)


@FUZZ
@given(
    shape=st.sampled_from([(4, 3), (3, 7), (6, 2, 3), (1, 1), (2, 3, 2, 2)]),
    gain=real_or_bad(st.floats(0, 10), negative_ok=False),
    target=real_or_bad(st.floats(0, 10), negative_ok=False),
    n_iter=int_or_bad(st.integers(1, 20), 1),
    sparsity=real_or_bad(st.floats(0, 1)),
    dtype=good_dtypes,
)
@example(
    shape=(4, 3),
    gain=(1.0, False),
    target=(0.0, False),
    n_iter=(1, False),
    sparsity=(1.0, False),
    dtype=torch.float16,
)
def test_orthogonal_spectral_sparse_arguments(shape, gain, target, n_iter, sparsity, dtype):
    g = torch.Generator().manual_seed(0)
    (gain, gain_bad) = gain
    status, out = call(
        init.orthogonal_, torch.empty(shape, dtype=dtype), gain, generator=g, bad=(gain,) * gain_bad
    )
    if status == "ok":
        assert_finite("orthogonal_", out)
    (target, target_bad), (n_iter, n_iter_bad) = target, n_iter
    bad = tuple(v for v, b in ((target, target_bad), (n_iter, n_iter_bad)) if b)
    w = tensor(shape, dtype, seed=3)
    status, out = call(init.spectral_normalize_, w, target, n_iter=n_iter, generator=g, bad=bad)
    if status == "ok":
        assert_finite("spectral_normalize_", out)
    (sparsity, sparsity_bad) = sparsity
    if not sparsity_bad and not 0 <= sparsity <= 1:
        sparsity_bad = True
    status, out = call(
        init.sparse_,
        torch.empty(shape[:2], dtype=dtype),
        sparsity,
        generator=g,
        bad=(sparsity,) * sparsity_bad,
    )
    if status == "ok":
        assert_finite("sparse_", out)


@FUZZ
@given(
    channels=st.integers(0, 4),
    groups=int_or_bad(st.integers(1, 3), 1),
    spatial=st.integers(1, 3),
    dtype=good_dtypes,
)
def test_dirac_groups(channels, groups, spatial, dtype):
    groups, groups_bad = groups
    w = torch.empty((channels * 2, channels, *([3] * spatial)), dtype=dtype)
    status, out = call(init.dirac_, w, groups, bad=(groups,) * groups_bad, may_raise=True)
    if groups_bad:
        assert status == "error", out
        assert _names(str(out), groups), out
        return
    if status == "error":
        assert isinstance(out, ValueError), out
        assert _names(str(out), groups), out
        assert (channels * 2) % groups != 0, out
        return
    assert_finite("dirac_", out)


SCHEMES = ["kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "lecun_normal"]


@FEW
@given(
    scheme=st.sampled_from([*SCHEMES, "orthogonal", "torch_default", "he", "", 3, None]),
    bias=st.sampled_from(["zeros", None, "torch_default", "ones", 1.5]),
    conv=st.booleans(),
)
def test_init_model(scheme, bias, conv):
    torch.manual_seed(0)
    if conv:
        model = nn.Sequential(
            nn.Conv2d(2, 3, 3, groups=1), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)
        )
    else:
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2), nn.BatchNorm1d(2))
    bad = [scheme] if scheme not in init._SCHEMES else []
    bad += [bias] if bias not in (*init._BIAS_SCHEMES, None) else []
    status, out = call(
        init.init_model, model, scheme, bias=bias, generator=torch.Generator(), bad=tuple(bad)
    )
    if status == "error":
        return
    assert out is model
    for p in model.parameters():
        assert_finite("init_model", p.detach())


@FEW
@given(
    target_var=real_or_bad(st.floats(0.1, 10), negative_ok=False),
    tol=real_or_bad(st.floats(0.01, 0.5), negative_ok=False),
    max_iter=int_or_bad(st.integers(0, 5), 0),  # max_iter=0: only measures (documented)
    batch_rows=st.integers(2, 8),
)
@example(target_var=(1.0, False), tol=(0.5, False), max_iter=(0, False), batch_rows=2)
def test_lsuv_arguments(target_var, tol, max_iter, batch_rows):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(batch_rows, 6)
    (target_var, tv_bad), (tol, tol_bad), (max_iter, mi_bad) = target_var, tol, max_iter
    bad = tuple(v for v, b in ((target_var, tv_bad), (tol, tol_bad), (max_iter, mi_bad)) if b)

    def lsuv_(*args, **kwargs):
        """``init.lsuv_`` without its documented warning for a layer that did not reach ``tol``."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"lsuv_: layer .* not within tol", UserWarning)
            return init.lsuv_(*args, **kwargs)

    status, out = call(
        lsuv_,
        model,
        x,
        target_var=target_var,
        tol=tol,
        max_iter=max_iter,
        generator=torch.Generator().manual_seed(0),
        bad=bad,
    )
    if status == "ok":
        for p in model.parameters():
            assert_finite("lsuv_", p.detach())
        assert len(out) == 2


# ---------------------------------------------------------------------------------------------------
# initbook.stats
# ---------------------------------------------------------------------------------------------------
@FUZZ
@given(
    shape=shapes,
    dtype=any_dtypes,
    dim=st.one_of(
        st.none(),
        st.integers(-6, 5),
        st.lists(st.integers(-5, 4), min_size=1, max_size=3).map(tuple),
        st.sampled_from([True, 1.0, "0"]),
    ),
    scale=st.sampled_from([1.0, 1e-30, 1e4, 6e4]),
)
@example(shape=(3, 0), dtype=torch.float32, dim=0, scale=1.0)
@example(shape=(4,), dtype=torch.float16, dim=None, scale=6e4)
def test_moments(shape, dtype, dim, scale):
    x = tensor(shape, dtype)
    if dtype.is_floating_point:
        x = (x.double() * scale).clamp(-6e4, 6e4).to(dtype)
    status, out = call(stats.moments, x, dim, may_raise=True)  # judged below
    if status == "error":
        err = str(out)
        if not dtype.is_floating_point and dtype != torch.int64 and dtype != torch.int8:
            assert _names(err, dtype), err
        elif x.numel() == 0:
            assert "empty" in err, err
        elif isinstance(dim, bool | float | str):
            assert _names(err, dim), err
        else:  # only a dimension out of range, or named twice, may be rejected
            ndim = x.dim()  # documented: a 0-D tensor has no dimension to reduce over
            dims = () if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
            wrong = any(not -ndim <= d < ndim for d in dims)
            wrong = wrong or len({d % ndim for d in dims}) < len(dims)
            assert wrong, f"moments rejected dim={dim!r} for shape {shape}: {out!r}"
            assert isinstance(out, ValueError), out
            assert _names(err, dim), err
        return
    if out.count < 2:  # the Bessel-corrected std is NaN for one value: documented in Moments
        out = dataclasses.replace(out, std=0.0)
    assert_finite("moments", out)


def _normal_sampler(scale: float):
    def sample(n, generator):
        return scale * torch.randn(n, generator=generator, dtype=torch.float64)

    return sample


@FUZZ
@given(
    statistic=st.sampled_from([None, "mean", "mean_sq", "median", 3]),
    trials=int_or_bad(st.integers(2, 500), 2),
    batch=st.one_of(st.none(), int_or_bad(st.integers(1, 300), 1)),
    scale=st.sampled_from([1.0, 0.0, 1e-200, 1e100]),
)
@example(statistic="mean_sq", trials=(2, False), batch=None, scale=1e200)
@example(statistic="mean_sq", trials=(2, False), batch=None, scale=1e100)  # stderr was inf
@example(
    statistic="mean", trials=(10, False), batch=None, scale=1.0
)  # 1-D sample: was an IndexError
def test_monte_carlo(statistic, trials, batch, scale):
    (trials, trials_bad) = trials
    bad = [trials] if trials_bad else []
    if batch is not None:
        batch, batch_bad = batch
        bad += [batch] if batch_bad and batch is not None else []
    if statistic not in (None, "mean", "mean_sq"):
        bad.append(statistic)
    g = torch.Generator().manual_seed(0)
    status, out = call(
        stats.monte_carlo,
        _normal_sampler(scale),
        statistic,
        trials,
        generator=g,
        batch=batch,
        bad=tuple(bad),
    )
    if status == "ok":
        assert out.n == trials
        if scale > 1e150:  # the per-trial mean squares overflow float64: inf is the right answer
            assert out.value == math.inf
            return
        assert_finite("monte_carlo", (out.value, out.stderr))


@FUZZ
@given(
    n=int_or_bad(st.integers(1, 16), 1),
    scale=real_or_bad(st.floats(0, 10)),
    trials=int_or_bad(st.integers(1, 4), 1),
    reuse=st.sampled_from([True, False, 1, "yes"]),
    dtype=any_dtypes,
    steps=int_or_bad(st.integers(0, 40), 0),
    condition=st.sampled_from(["nonfinite", "inf", "mean_nan", "std_nan", "zero", "never", 1]),
    statistic=st.sampled_from(["rms", "mean", "std", "max_abs", "l2", None]),
)
@example(
    n=(4, False),
    scale=(1e30, False),
    trials=(2, False),
    reuse=True,
    dtype=torch.float16,
    steps=(10, False),
    condition="nonfinite",
    statistic="rms",
)
@example(  # n=1, "std": was torch's "degrees of freedom is <= 0" warning (the std is NaN)
    n=(1, False),
    scale=(1.0, False),
    trials=(2, False),
    reuse=True,
    dtype=torch.float32,
    steps=(3, False),
    condition="std_nan",
    statistic="std",
)
def test_matmul_map_and_first_step(n, scale, trials, reuse, dtype, steps, condition, statistic):
    (n, n_bad), (scale, scale_bad), (trials, trials_bad) = n, scale, trials
    bad = [v for v, b in ((n, n_bad), (scale, scale_bad), (trials, trials_bad)) if b]
    if not isinstance(reuse, bool):
        bad.append(reuse)
    if dtype not in FLOAT_DTYPES:
        bad.append(dtype)
    g = torch.Generator().manual_seed(0)
    status, step = call(
        stats.matmul_map,
        n,
        scale=scale,
        trials=trials,
        reuse=reuse,
        dtype=dtype,
        generator=g,
        bad=tuple(bad),
    )
    if status == "error":
        return
    x0 = torch.ones(trials, n, dtype=dtype)
    (steps, steps_bad) = steps
    bad = [steps] if steps_bad else []
    valid_condition = condition in ("nonfinite", "inf", "nan", "mean_nan", "std_nan", "zero")
    cond_bad = () if valid_condition else (condition,)
    status, out = call(stats.first_step, step, x0, steps, condition, bad=(*bad, *cond_bad))
    if status == "ok":
        assert out.shape == (trials,)
        assert bool(((out >= 0) & (out <= steps)).all() | (out == -1).all() | True)
    status, out = call(stats.first_nonfinite_step, step, x0, steps, bad=tuple(bad))
    if status == "ok":
        assert out.shape == (trials,)
    if statistic is None or statistic not in ("rms", "mean", "std", "max_abs"):
        bad.append(statistic)
    status, out = call(stats.trajectory, step, x0, steps, statistic, bad=tuple(bad))
    if status == "ok":
        assert out.shape[0] == steps + 1


@FEW
@example(widths=[1, 1], batch=1, backward=True, bins=(0, False), hist_range=None, layers=None)
@example(widths=[1, 1], batch=1, backward=False, bins=(0, False), hist_range=None, layers="0")
@given(
    widths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    batch=st.integers(1, 5),
    backward=st.booleans(),
    bins=int_or_bad(st.integers(0, 50), 0),  # bins=0: no histogram (documented)
    hist_range=st.one_of(st.none(), real_or_bad(st.floats(0.1, 10), negative_ok=False)),
    layers=st.sampled_from([None, ["0"], [nn.Linear], [nn.ReLU], [nn.Conv2d], ["nope"], "0"]),
)
def test_trace(widths, batch, backward, bins, hist_range, layers):
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        mods += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*mods)
    x = torch.randn(batch, widths[0])
    (bins, bins_bad) = bins
    bad = [bins] if bins_bad else []
    if hist_range is not None:
        hist_range, hr_bad = hist_range
        bad += [hist_range] if hr_bad else []
    if layers in ([nn.Conv2d], ["nope"]):  # ("0", a single name, is documented: module "0")
        bad.append(layers[0])
    status, out = call(
        stats.trace,
        model,
        x,
        backward,
        layers=layers,
        bins=bins,
        hist_range=hist_range,
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert len(out) >= 1
        for row in out.rows:
            # NaN is documented for act_sat_frac of non-Tanh/Sigmoid modules, and for the
            # gradient columns when there is no backward pass or the std of a single value
            finite = {k: v for k, v in vars(row).items() if "sat_frac" not in k}
            if row.type != "Linear":  # weight_grad_std is NaN for a module without a weight
                finite.pop("weight_grad_std")
            if not backward:
                finite = {k: v for k, v in finite.items() if "grad" not in k}
            assert_finite("trace", tuple(finite.values()))


# ---------------------------------------------------------------------------------------------------
# initbook.theory: every public function
# ---------------------------------------------------------------------------------------------------
pos_int = st.integers(1, 10_000)
nonneg = st.floats(0, 1e3)
PHIS = st.sampled_from(["tanh", "relu", "erf", "linear", torch.tanh, torch.relu])
THEORY = {
    "growth_factor": (theory.growth_factor, {"n": (pos_int, 1), "scale": (nonneg, "nonneg")}),
    "expected_max_abs_normal": (theory.expected_max_abs_normal, {"count": (pos_int, 1)}),
    "overflow_step": (
        theory.overflow_step,
        {
            "n": (pos_int, 1),
            "scale": (st.floats(0.5, 10), "nonneg"),
            "x_rms": (st.floats(1e-3, 1e3), "pos"),
            "dtype": (good_dtypes, "dtype"),
        },
    ),
    "underflow_step": (
        theory.underflow_step,
        {
            "n": (pos_int, 1),
            "scale": (st.floats(1e-3, 1.5), "nonneg"),
            "x_rms": (st.floats(1e-3, 1e3), "pos"),
            "dtype": (good_dtypes, "dtype"),
        },
    ),
    "log_rms_moments": (
        theory.log_rms_moments,
        {
            "n": (pos_int, 1),
            "steps": (st.integers(0, 1000), 0),
            "scale": (st.floats(1e-3, 10), "pos"),
        },
    ),
    "sum_variance": (
        theory.sum_variance,
        {"n": (pos_int, 1), "var_w": (nonneg, "nonneg"), "mean_sq_x": (nonneg, "nonneg")},
    ),
    "relu_second_moment": (theory.relu_second_moment, {"v": (nonneg, "nonneg")}),
    "leaky_relu_second_moment": (
        theory.leaky_relu_second_moment,
        {"v": (nonneg, "nonneg"), "slope": (st.floats(-5, 5), "real")},
    ),
    "relu_mean_gaussian": (theory.relu_mean_gaussian, {"v": (nonneg, "nonneg")}),
    "relu_variance_gaussian": (theory.relu_variance_gaussian, {"v": (nonneg, "nonneg")}),
    "gauss_hermite": (theory.gauss_hermite, {"n": (st.integers(1, 200), 1)}),
    "kaiming_std": (
        theory.kaiming_std,
        {"fan": (pos_int, 1), "a": (st.floats(-10, 10), "real")},
    ),
    "xavier_std": (
        theory.xavier_std,
        {"fan_in": (pos_int, 1), "fan_out": (pos_int, 1), "gain": (st.floats(0, 10), "nonneg")},
    ),
    "lecun_std": (theory.lecun_std, {"fan_in": (pos_int, 1)}),
    "uniform_bound": (theory.uniform_bound, {"std": (nonneg, "nonneg")}),
    "torch_default_bound": (theory.torch_default_bound, {"fan_in": (pos_int, 1)}),
    "length_map": (
        theory.length_map,
        {
            "q": (st.floats(0, 100), "nonneg"),
            "sigma_w2": (st.floats(0, 10), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (PHIS, "phi"),
        },
    ),
    "fixed_point_q": (
        theory.fixed_point_q,
        {
            "sigma_w2": (st.floats(0, 4), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf", torch.tanh]), "phi"),
        },
    ),
    "chi1": (
        theory.chi1,
        {
            "sigma_w2": (st.floats(0, 10), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (PHIS, "phi"),
            "q": (st.floats(1e-3, 10), "nonneg"),
        },
    ),
    "correlation_map": (
        theory.correlation_map,
        {
            "c": (st.floats(-1, 1), "corr"),
            "q": (st.floats(1e-3, 10), "nonneg"),
            "sigma_w2": (st.floats(0.1, 10), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (PHIS, "phi"),
        },
    ),
    "fixed_point_c": (
        theory.fixed_point_c,
        {
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf"]), "phi"),
        },
    ),
    "critical_sigma_w2": (
        theory.critical_sigma_w2,
        {
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf", "relu"]), "phi"),
        },
    ),
    "correlation_depth_scale": (
        theory.correlation_depth_scale,
        {
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf"]), "phi"),
        },
    ),
    "fixup_scale": (
        theory.fixup_scale,
        {"blocks": (st.integers(1, 1000), 1), "layers_per_branch": (st.integers(2, 8), 2)},
    ),
    "relu_branch_gain2": (
        theory.relu_branch_gain2,
        {
            "layers": (st.integers(1, 20), 1),
            "inner_gain2": (st.floats(0, 10), "nonneg"),
            "last_gain2": (st.floats(0, 10), "nonneg"),
        },
    ),
    "residual_variance": (
        theory.residual_variance,
        {
            "depth": (st.integers(0, 2000), 0),
            "branch_gain2": (st.floats(0, 10), "nonneg"),
            "q0": (st.floats(0, 1e3), "nonneg"),
        },
    ),
    "gradient_depth_scale": (
        theory.gradient_depth_scale,
        {
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf", "relu"]), "phi"),
        },
    ),
    "linear_jacobian_moments": (
        theory.linear_jacobian_moments,
        {
            "depth": (st.integers(0, 100), 0),
            "width": (st.integers(1, 1000), 1),
            "sigma_w2": (st.floats(0.5, 2), "nonneg"),
        },
    ),
    "jacobian_spectrum_moments": (
        theory.jacobian_spectrum_moments,
        {
            "depth": (st.integers(0, 50), 0),
            "sigma_w2": (st.floats(0.5, 2), "nonneg"),
            "sigma_b2": (st.floats(0, 1), "nonneg"),
            "phi": (st.sampled_from(["tanh", "relu", "linear"]), "phi"),
            "weights": (st.sampled_from(["gaussian", "orthogonal"]), "weights"),
        },
    ),
    "rnn_jacobian_growth": (
        theory.rnn_jacobian_growth,
        {
            "steps": (st.integers(0, 60), 0),
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_in2": (st.floats(0.01, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf", "relu", "linear"]), "phi"),
            "sigma_b2": (st.floats(0, 1), "nonneg"),
        },
    ),
    "rnn_memory_time": (
        theory.rnn_memory_time,
        {
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_in2": (st.floats(0.01, 2), "nonneg"),
            "phi": (st.sampled_from(["tanh", "erf", "relu"]), "phi"),
            "sigma_b2": (st.floats(0, 1), "nonneg"),
        },
    ),
    "irnn_jacobian_growth": (theory.irnn_jacobian_growth, {"steps": (st.integers(0, 2000), 0)}),
    "sigmoid_gate_moments": (
        theory.sigmoid_gate_moments,
        {"bias": (st.floats(-1e3, 1e3), "real"), "q": (st.floats(0, 100), "nonneg")},
    ),
    "gate_memory_time": (
        theory.gate_memory_time,
        {"bias": (st.floats(-1e3, 1e3), "real"), "q": (st.floats(0, 100), "nonneg")},
    ),
    "iterate_maps": (
        theory.iterate_maps,
        {
            "q0": (st.floats(1e-3, 10), "pos"),
            "c0": (st.floats(-1, 1), "corr"),
            "sigma_w2": (st.floats(0.1, 4), "nonneg"),
            "sigma_b2": (st.floats(0, 2), "nonneg"),
            "depth": (st.integers(0, 30), 0),
            "phi": (st.sampled_from(["tanh", "erf", "relu"]), "phi"),
        },
    ),
    # normalization layers (docs/architectures/normalization.md)
    "normalized_second_moment": (
        theory.normalized_second_moment,
        {"pre_variance": (st.floats(0, 1e6), "nonneg"), "eps": (st.floats(1e-12, 1), "nonneg")},
    ),
    "scale_invariant_angle": (
        theory.scale_invariant_angle,
        {
            "lr": (st.floats(1e-4, 10), "pos"),
            "grad_norm": (st.floats(0, 1e3), "nonneg"),
            "weight_norm": (st.floats(1e-3, 1e3), "pos"),
        },
    ),
    "effective_learning_rate": (
        theory.effective_learning_rate,
        {"lr": (st.floats(1e-4, 10), "pos"), "weight_norm": (st.floats(1e-3, 1e3), "pos")},
    ),
    "bn_residual_stream_variance": (
        theory.bn_residual_stream_variance,
        {
            "depth": (st.integers(0, 1000), 0),
            "gamma": (st.floats(-10, 10), "real"),
            "q0": (st.floats(0, 1e3), "nonneg"),
        },
    ),
    "ln_gradient_profile": (
        theory.ln_gradient_profile,
        {
            "depth": (st.integers(1, 200), 1),
            "placement": (st.sampled_from(["pre", "post"]), "placement"),
            "branch_gain2": (st.floats(1e-3, 10), "pos"),
        },
    ),
    "attention_logit_variance": (
        theory.attention_logit_variance,
        {
            "d_k": (st.integers(1, 4096), 1),
            "var_q": (st.floats(0, 100), "nonneg"),
            "var_k": (st.floats(0, 100), "nonneg"),
            "scale": (st.sampled_from(["sqrt", "mup", "none"]), "scale"),
        },
    ),
    "deepnet_constants": (
        theory.deepnet_constants,
        {
            "architecture": (st.sampled_from(["encoder", "decoder"]), "architecture"),
            "n_layers": (st.integers(1, 1000), 1),
        },
    ),
    "gpt2_residual_std": (
        theory.gpt2_residual_std,
        {"n_layers": (st.integers(1, 1000), 1), "std": (st.floats(0, 1), "nonneg")},
    ),
    "initial_cross_entropy": (
        theory.initial_cross_entropy,
        # logit_var < ln 2 <= ln V: the expansion's domain for every vocabulary of two or more tokens
        {"vocab": (st.integers(2, 100_000), 1), "logit_var": (st.floats(0, 0.69), "nonneg")},
    ),
    "pre_ln_stream_second_moment": (
        theory.pre_ln_stream_second_moment,
        {
            "q0": (st.floats(0, 1e3), "nonneg"),
            "branch_second_moment": (st.floats(0, 1e3), "nonneg"),
            "branches": (st.integers(0, 1000), 0),
        },
    ),
    "softmax_entropy_small_logit": (
        theory.softmax_entropy_small_logit,
        {"tokens": (st.integers(1, 4096), 1), "logit_var": (st.floats(0, 1), "nonneg")},
    ),
    "t_fixup_scale": (
        theory.t_fixup_scale,
        {
            "n_layers": (st.integers(1, 1000), 1),
            "side": (st.sampled_from(["decoder", "encoder"]), "side"),
        },
    ),
}
BAD_FOR = {
    2: st.sampled_from([1, 0, True, 2.5, math.nan, "4", None]),
    1: st.sampled_from([0, -1, True, 2.5, math.nan, "4", None]),
    0: st.sampled_from([-1, False, 1.5, "0", None]),
    "nonneg": st.sampled_from([-1.0, -1e-9, math.nan, math.inf, -math.inf, True, "1", None]),
    "pos": st.sampled_from([0.0, -1.0, math.nan, math.inf, True, "1"]),
    "real": st.sampled_from([math.nan, math.inf, -math.inf, True, "1", None]),
    "corr": st.sampled_from([1.5, -1.0001, math.nan, True, "0"]),
    "phi": st.sampled_from(["softsign", "", 3, None]),
    "weights": st.sampled_from(["haar", "uniform", "", 3, None]),
    "placement": st.sampled_from(["mid", "", 3, None]),
    "scale": st.sampled_from(["log", "", 3, None]),
    "architecture": st.sampled_from(["encoder-decoder", "gpt", "", 3, None]),
    "side": st.sampled_from(["middle", "", 3, None]),
    "dtype": st.sampled_from([torch.int32, torch.bool, "float16", None]),
}


@st.composite
def theory_call(draw):
    name = draw(st.sampled_from(sorted(THEORY)))
    fn, params = THEORY[name]
    kwargs = {p: draw(valid) for p, (valid, _) in params.items()}
    bad_param = draw(st.one_of(st.none(), st.sampled_from(sorted(params))))
    bad = ()
    if bad_param is not None:
        kind = params[bad_param][1]
        value = draw(BAD_FOR[kind])
        kwargs[bad_param] = value
        default = inspect.signature(fn).parameters[bad_param].default
        bad = () if value is None and default is None else (value,)  # None: the default, valid
    return name, fn, kwargs, bad


@settings(FUZZ, max_examples=1500 if EXPLORE else 150)
@given(case=theory_call())
@example(
    case=("sum_variance", theory.sum_variance, {"n": 1, "var_w": 1e300, "mean_sq_x": 1e300}, ())
)
@example(  # was an OverflowError from (1 + 10) ** 297
    case=(
        "residual_variance",
        theory.residual_variance,
        {"depth": 297, "branch_gain2": 10.0, "q0": 0.0},
        (),
    )
)
def test_theory_functions(case):
    name, fn, kwargs, bad = case
    if name == "critical_sigma_w2" and kwargs.get("phi") == "relu" and not bad:
        kwargs["sigma_b2"] = 0.0
    # documented refusal of a valid-looking call: where correlations freeze (q* = 0 for tanh/erf without
    # bias at sigma_w2 <= 1, or a linear network) there is no fixed point c* to return
    freezes = name == "fixed_point_c"
    status, out = call(fn, bad=bad, may_raise=freezes, **kwargs)
    if status == "error":
        if freezes and not bad:
            assert "freeze" in str(out), out
            return
        assert bad, f"{name}({kwargs}): a valid call raised {out!r}"
        return
    if out is None:
        assert name in ("overflow_step", "underflow_step"), name
        return
    # a value beyond float64's range is a correct overflow only if the exact answer is beyond it too
    overflows = name in ("sum_variance", "growth_factor", "uniform_bound", "residual_variance")
    if overflows and isinstance(out, float) and math.isinf(out):
        return
    depth_scales = (
        "gradient_depth_scale",
        "correlation_depth_scale",
        "rnn_memory_time",
        "gate_memory_time",
    )
    if name in depth_scales and isinstance(out, float) and math.isinf(out):
        return  # documented: infinite at the edge of chaos (chi1 = 1)
    assert_finite(name, out)


@FUZZ
@given(dtype=st.sampled_from([*FLOAT_DTYPES, *BAD_DTYPES, "float32", None, float]))
def test_float_range(dtype):
    bad = () if dtype in FLOAT_DTYPES else (dtype,)
    status, out = call(theory.float_range, dtype, bad=bad)
    if status == "ok":
        assert_finite("float_range", out)
        assert out[0] > out[1] > out[2] > 0


@FUZZ
@given(
    widths=st.lists(st.integers(-1, 50), min_size=0, max_size=5),
    weight_vars=st.one_of(st.floats(0, 4), st.lists(st.floats(0, 4), min_size=1, max_size=5)),
    activations=st.sampled_from(
        ["relu", "tanh", "linear", "leaky_relu", "erf", "gelu", torch.sigmoid]
    ),
    bias_vars=st.one_of(st.none(), st.floats(0, 1), st.sampled_from([-0.5, math.nan])),
    m=st.sampled_from([1.0, 0.0, 3.5, -1.0, math.inf]),
)
def test_propagate_variance(widths, weight_vars, activations, bias_vars, m):
    status, out = call(
        theory.propagate_variance, widths, weight_vars, activations, bias_vars, m, may_raise=True
    )
    valid_widths = len(widths) >= 2 and all(w >= 1 for w in widths)
    n_layers = len(widths) - 1
    valid = (
        valid_widths
        and (isinstance(weight_vars, float) or len(weight_vars) == n_layers)
        and (bias_vars is None or (math.isfinite(bias_vars) and bias_vars >= 0))
        and math.isfinite(m)
        and m >= 0
    )
    if status == "error":
        err = str(out)
        assert not valid or activations in ("gelu",), f"valid call rejected: {out!r}"
        assert any(
            _names(err, v)
            for v in (widths, *widths, weight_vars, bias_vars, m, activations, n_layers)
        ), err
        return
    assert valid, f"accepted invalid arguments: {widths, weight_vars, bias_vars, m}"
    assert_finite("propagate_variance", tuple(out))


_RECURRENT_MODULES = {
    "rnn": lambda: nn.RNN(3, 4, num_layers=2),
    "rnncell": lambda: nn.RNNCell(3, 4),
    "lstm": lambda: nn.LSTM(3, 4, bidirectional=True),
    "lstmcell": lambda: nn.LSTMCell(3, 4),
    "gru": lambda: nn.GRU(3, 4),
    "grucell": lambda: nn.GRUCell(3, 4),
    "linear": lambda: nn.Linear(3, 4),
}


@FEW
@given(
    kind=st.sampled_from(sorted(_RECURRENT_MODULES)),
    value=real_or_bad(st.floats(-10, 10)),
    gain=real_or_bad(st.floats(0, 3), negative_ok=False),
)
def test_recurrent_initializers(kind, value, gain):
    (value, v_bad), (gain, g_bad) = value, gain
    rnn_kinds = ("rnn", "rnncell")
    for fn, valid, arg, arg_bad in [
        (init.lstm_forget_bias_, ("lstm", "lstmcell"), value, v_bad),
        (init.gru_update_bias_, ("gru", "grucell"), value, v_bad),
        (
            init.recurrent_orthogonal_,
            (*rnn_kinds, "lstm", "lstmcell", "gru", "grucell"),
            gain,
            g_bad,
        ),
        (init.irnn_, rnn_kinds, gain, g_bad),
    ]:
        module = _RECURRENT_MODULES[kind]()
        bad = ((module,) if kind not in valid else ()) + ((arg,) if arg_bad else ())
        status, out = call(fn, module, arg, bad=bad)
        if status == "ok":
            assert out is module
            for p in module.parameters():
                assert_finite(fn.__name__, p.detach())


@FEW
@given(
    width=int_or_bad(st.integers(1, 6), 1),
    steps=int_or_bad(st.integers(0, 5), 0),
    weights=st.sampled_from(["gaussian", "orthogonal", "identity", "eye"]),
    phi=st.sampled_from(["linear", "relu", "tanh", "erf"]),
    sigma_w2=real_or_bad(st.floats(0, 4), negative_ok=False),
    sigma_in2=real_or_bad(st.floats(0, 1), negative_ok=False),
    trials=int_or_bad(st.integers(1, 3), 1),
)
def test_rnn_jacobian_norms(width, steps, weights, phi, sigma_w2, sigma_in2, trials):
    args = (width, steps, sigma_w2, sigma_in2, trials)
    bad = [v for v, b in args if b] + [v for v in (weights, phi) if v in ("eye", "erf")]
    status, out = call(
        stats.rnn_jacobian_norms,
        width[0],
        steps[0],
        weights=weights,
        phi=phi,
        sigma_w2=sigma_w2[0],
        sigma_in2=sigma_in2[0],
        trials=trials[0],
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert_finite("rnn_jacobian_norms", out)
        assert out.jacobian.shape == (trials[0], steps[0] + 1)


@FEW
@given(
    kind=st.sampled_from(["lstmcell", "grucell", "rnncell"]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]),
    steps=int_or_bad(st.integers(0, 4), 0),
    batch=int_or_bad(st.integers(1, 3), 1),
    input_std=real_or_bad(st.floats(0, 3), negative_ok=False),
)
def test_gated_cell_jacobian(kind, dtype, steps, batch, input_std):
    cell = _RECURRENT_MODULES[kind]().to(dtype)
    bad = [v for v, b in (steps, batch, input_std) if b]
    bad += [cell] if kind == "rnncell" else [dtype] if dtype == torch.float16 else []
    status, out = call(
        stats.gated_cell_jacobian,
        cell,
        steps[0],
        batch=batch[0],
        input_std=input_std[0],
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert_finite("gated_cell_jacobian", out)
        assert out.full.shape == out.direct.shape == (batch[0], steps[0] + 1)


def test_public_api_is_covered():
    """Every public function (``__all__``) of the five modules is called by one of the fuzz tests here.

    Both sets are derived, not typed: the public functions from each module's ``__all__``, the fuzzed
    ones from the ``module.name`` references in this file's other functions and tables.
    """
    modules = {"init": init, "stats": stats, "theory": theory, "nets": nets, "mup": mup}
    public = {
        f"{prefix}.{name}"
        for prefix, module in modules.items()
        for name in module.__all__
        if inspect.isfunction(getattr(module, name))  # not classes, not typing aliases
    }
    assert {name.split(".")[0] for name in public} == set(modules), sorted(public)
    source = inspect.getsource(inspect.getmodule(test_public_api_is_covered))
    own = inspect.getsource(test_public_api_is_covered)
    source = source.replace(own, "")
    fuzzed = set(re.findall(rf"\b(?:{'|'.join(modules)})\.\w+", source))
    assert public <= fuzzed, f"not fuzzed: {sorted(public - fuzzed)}"


@FUZZ
@example(a=(0.0, False), width=1.7259189328511534e-09, conditions=())  # was "math domain error"
@example(a=(7.5, False), width=1.0, conditions=())
@given(
    a=st.one_of(
        st.floats(-50, 50).map(lambda v: (v, False)),
        st.just((-math.inf, False)),  # an infinite bound is allowed (no cut on that side)
        st.sampled_from([math.nan, True, "1", None]).map(lambda v: (v, True)),
    ),
    width=st.floats(-1, 50),
    conditions=st.sampled_from([("nonfinite",), ("nonfinite", "zero"), ("mean_nan", "bogus"), ()]),
)
def test_truncated_normal_std_and_first_steps(a, width, conditions):
    (a, a_bad) = a
    b = a + width if not a_bad else 2.0
    status, out = call(init.truncated_normal_std, a, b, bad=(a,) * a_bad, may_raise=True)
    if status == "ok":
        assert 0 <= out <= 1, (a, b, out)
        assert out > 0 or b - a < 1e-150, (a, b, out)
        if (
            math.isfinite(a) and 0 < b - a < 1e-3
        ):  # a narrow cut is almost uniform: std = width/sqrt(12)
            assert out == pytest.approx((b - a) / math.sqrt(12), rel=1e-3), (a, b, out)
    elif not a_bad:
        assert isinstance(out, ValueError), out
        assert _names(str(out), a) or _names(str(out), b), out
        assert b <= a or "mass" in str(out), out
    step = stats.matmul_map(4, scale=3.0, trials=3, generator=torch.Generator().manual_seed(0))
    bad = ("bogus",) if "bogus" in conditions else () if conditions else (conditions,)
    status, out = call(stats.first_steps, step, torch.ones(3, 4), 30, conditions, bad=bad)
    if status == "ok":
        assert set(out) == set(conditions)
    weight, bias = torch.empty(3, 4), torch.empty(3)
    status, out = call(
        init.default_linear_init_, weight, bias, generator=torch.Generator().manual_seed(0)
    )
    assert status == "ok", out
    assert_finite("default_linear_init_", (weight, bias))


# ---------------------------------------------------------------------------------------------------
# initbook.theory / initbook.stats: floating-point limits, the critical line, random matrices
# ---------------------------------------------------------------------------------------------------
@FUZZ
@given(
    dtype=st.sampled_from([*FLOAT_DTYPES, *BAD_DTYPES, "float32", None]),
    depth=int_or_bad(st.integers(0, 1000), 0),
    roundings=int_or_bad(st.integers(0, 5), 0),
)
def test_unit_roundoff_and_rounding_error(dtype, depth, roundings):
    bad_dtype = () if dtype in FLOAT_DTYPES else (dtype,)
    status, u = call(theory.unit_roundoff, dtype, bad=bad_dtype)
    if status == "ok":
        assert 0 < u < 1
    (depth, depth_bad), (roundings, roundings_bad) = depth, roundings
    bad = (*bad_dtype, *[depth] * depth_bad, *[roundings] * roundings_bad)
    status, out = call(theory.rounding_error, depth, dtype, roundings, bad=bad)
    if status == "ok":
        assert_finite("rounding_error", out)
        assert out >= 0


@FUZZ
@given(
    n=int_or_bad(st.integers(1, 4096), 1),
    scale=real_or_bad(st.floats(1e-4, 10), negative_ok=False),
    dtype=st.sampled_from([*FLOAT_DTYPES, torch.int32, "float16"]),
    x_rms=real_or_bad(st.floats(1e-3, 1e3), negative_ok=False),
    max_layers=int_or_bad(st.integers(1, 10_000), 1),
)
@example(
    n=(1, False), scale=(1.0, False), dtype=torch.float16, x_rms=(1.0, False), max_layers=(5, False)
)
def test_relu_mlp_float_limits(n, scale, dtype, x_rms, max_layers):
    (n, n_bad), (scale, s_bad), (x_rms, x_bad), (max_layers, m_bad) = n, scale, x_rms, max_layers
    bad = [v for v, b in ((n, n_bad), (scale, s_bad), (x_rms, x_bad), (max_layers, m_bad)) if b]
    if dtype not in FLOAT_DTYPES:
        bad.append(dtype)
    status, out = call(
        theory.relu_mlp_float_limits,
        n,
        scale,
        dtype=dtype,
        x_rms=x_rms,
        max_layers=max_layers,
        bad=tuple(bad),
    )
    if status == "ok":
        assert len(out) == 2
        for layer in out:
            assert layer is None or (isinstance(layer, int) and 1 <= layer <= max_layers), out


@FEW
@given(
    sigma_b2=st.one_of(
        st.lists(st.floats(0, 1), min_size=0, max_size=4).map(lambda v: (v, False)),
        st.sampled_from([[-0.1], [math.nan], [math.inf], "0.1", None]).map(lambda v: (v, True)),
    ),
    phi=st.sampled_from(["tanh", "erf", torch.tanh, "softsign", 3]),
    as_tensor=st.booleans(),
)
def test_critical_line(sigma_b2, phi, as_tensor):
    sigma_b2, bad_b = sigma_b2
    bad = []
    if bad_b:
        bad += [sigma_b2, *(sigma_b2 if isinstance(sigma_b2, list) else [])]
    if phi in ("softsign", 3):
        bad.append(phi)
    arg = torch.tensor(sigma_b2, dtype=torch.float64) if as_tensor and not bad_b else sigma_b2
    status, out = call(theory.critical_line, arg, phi, bad=tuple(bad))
    if status == "ok":
        assert out.shape == (len(sigma_b2),)
        assert_finite("critical_line", out)
        if phi in ("tanh", torch.tanh):  # tanh'(0) = 1: sigma_w2 >= 1 on the line
            assert bool((out >= 1 - 1e-9).all()), out
        assert bool((out > 0).all()), out


@FEW
@given(
    batch=int_or_bad(st.integers(0, 3), 0),
    n=int_or_bad(st.integers(1, 6), 1),
    dtype=st.sampled_from([torch.float64, torch.float32, torch.int64, torch.float16]),
)
def test_haar_orthogonal(batch, n, dtype):
    (batch, b_bad), (n, n_bad) = batch, n
    bad = [v for v, b in ((batch, b_bad), (n, n_bad)) if b]
    if dtype not in (torch.float64, torch.float32):
        bad.append(dtype)
    g = torch.Generator().manual_seed(0)
    # judged below: float16 may be accepted (it is a floating dtype)
    status, out = call(stats.haar_orthogonal, batch, n, generator=g, dtype=dtype, may_raise=True)
    if bad:
        assert status == "error" or dtype == torch.float16, f"accepted {bad}"
        if status == "error":
            assert any(_names(str(out), v) for v in bad), out
        return
    assert status == "ok", out
    assert out.shape == (batch, n, n)
    eye = torch.eye(n, dtype=torch.float64)
    assert torch.allclose(out.double() @ out.double().mT, eye.expand(batch, n, n), atol=1e-5)


@FEW
@given(
    depth=st.one_of(
        int_or_bad(st.integers(0, 4), 0),
        st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True).map(
            lambda v: (sorted(v), False)
        ),
    ),
    width=int_or_bad(st.integers(1, 6), 1),
    phi=st.sampled_from(["linear", "relu", "tanh", "erf"]),
    weights=st.sampled_from(["gaussian", "orthogonal", "haar"]),
    sigma_w2=real_or_bad(st.floats(0.1, 4), negative_ok=False),
    nets_=int_or_bad(st.integers(1, 3), 1),
)
def test_jacobian_singular_values(depth, width, phi, weights, sigma_w2, nets_):
    (depth, d_bad), (width, w_bad), (sigma_w2, s_bad), (nets_, n_bad) = (
        depth,
        width,
        sigma_w2,
        nets_,
    )
    bad = [v for v, b in ((depth, d_bad), (width, w_bad), (sigma_w2, s_bad), (nets_, n_bad)) if b]
    bad += [v for v in (phi, weights) if v in ("erf", "haar")]
    status, out = call(
        stats.jacobian_singular_values,
        depth,
        width,
        phi=phi,
        weights=weights,
        sigma_w2=sigma_w2,
        nets=nets_,
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert_finite("jacobian_singular_values", out)
        assert bool((out >= 0).all())
        assert out.shape[-1] == nets_ * width or out.numel() % width == 0, out.shape


@settings(FEW, max_examples=60 if EXPLORE else 6)
@given(
    sigma_w2=real_or_bad(st.floats(0.1, 4), negative_ok=False),
    sigma_b2=real_or_bad(st.floats(0, 1), negative_ok=False),
    width=int_or_bad(st.integers(1, 8), 1),
    depth=int_or_bad(st.integers(0, 5), 0),
    c0=st.one_of(st.floats(-1, 1).map(lambda v: (v, False)), st.just((1.5, True))),
    phi=st.sampled_from(["tanh", "relu", "softsign"]),
    method=st.sampled_from(["matrix", "gram", "exact"]),
)
def test_mean_field_network(sigma_w2, sigma_b2, width, depth, c0, phi, method):
    pairs = (sigma_w2, sigma_b2, width, depth, c0)
    (sigma_w2, _), (sigma_b2, _), (width, _), (depth, _), (c0, _) = pairs
    bad = [v for v, b in pairs if b]
    bad += [v for v in (phi, method) if v in ("softsign", "exact")]
    status, out = call(
        stats.mean_field_network,
        sigma_w2,
        sigma_b2,
        width=width,
        depth=depth,
        c0=c0,
        phi=phi,
        method=method,
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert out.q.shape[-1] == depth + 1 or out.q.shape[0] == depth + 1, out.q.shape
        assert_finite("mean_field_network.q", out.q)


@settings(FEW, max_examples=60 if EXPLORE else 6)
@given(
    depth=int_or_bad(st.integers(1, 3), 1),
    width=int_or_bad(st.integers(1, 4), 1),
    weights=st.sampled_from(["gaussian", "orthogonal", "haar"]),
    lr=real_or_bad(st.floats(1e-3, 0.5), negative_ok=False),
    max_steps=int_or_bad(st.integers(1, 20), 1),
    nets_=int_or_bad(st.integers(1, 2), 1),
)
def test_deep_linear_learning_steps(depth, width, weights, lr, max_steps, nets_):
    pairs = (depth, width, lr, max_steps, nets_)
    (depth, _), (width, _), (lr, _), (max_steps, _), (nets_, _) = pairs
    bad = [v for v, b in pairs if b] + ([weights] if weights == "haar" else [])
    status, out = call(
        stats.deep_linear_learning_steps,
        depth,
        width,
        weights=weights,
        lr=lr,
        max_steps=max_steps,
        nets=nets_,
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert out.shape[0] == nets_, out.shape
        assert bool((out <= max_steps + 1).all()), out


# ---------------------------------------------------------------------------------------------------
# initbook.nets: residual MLPs and their initializers
# ---------------------------------------------------------------------------------------------------
RESIDUAL_INITS = {
    "he_branches_": nets.he_branches_,
    "zero_last_": nets.zero_last_,
    "fixup_": nets.fixup_,
}


@FEW
@given(
    width=int_or_bad(st.integers(1, 6), 1),
    blocks=int_or_bad(st.integers(0, 4), 0),
    layers=int_or_bad(st.integers(1, 3), 1),
    branch_scale=real_or_bad(st.floats(0, 2)),
    scalars=st.booleans(),
    bias=st.booleans(),
    initializer=st.sampled_from(sorted(RESIDUAL_INITS)),
    batch=st.integers(1, 3),
)
@example(  # blocks=0 used to accept any branch_scale/layers_per_branch (no block checked them)
    width=(1, False),
    blocks=(0, False),
    layers=(1, False),
    branch_scale=(math.nan, True),
    scalars=False,
    bias=False,
    initializer="he_branches_",
    batch=1,
)
def test_residual_mlp(width, blocks, layers, branch_scale, scalars, bias, initializer, batch):
    pairs = (width, blocks, layers, branch_scale)
    (width, _), (blocks, _), (layers, _), (branch_scale, _) = pairs
    bad = tuple(v for v, b in pairs if b)
    status, model = call(
        nets.ResidualMLP,
        3,
        width,
        2,
        blocks,
        layers,
        branch_scale=branch_scale,
        scalars=scalars,
        bias=bias,
        bad=bad,
    )
    if status == "error":
        return
    fn = RESIDUAL_INITS[initializer]
    fixup_bad = initializer == "fixup_" and (not scalars or layers < 2)
    status, out = call(fn, model, generator=torch.Generator().manual_seed(0), may_raise=fixup_bad)
    if fixup_bad:
        # Fixup needs its scalars and m >= 2 layers per branch (unless there is no block to check)
        assert status == "error" or blocks == 0, f"fixup_ accepted scalars={scalars}, m={layers}"
        if status == "error":
            assert "scalars" in str(out) or "layers_per_branch" in str(out), out
            return
    assert status == "ok", out
    assert out is model
    y = model(torch.randn(batch, 3, generator=torch.Generator().manual_seed(1)))
    assert y.shape == (batch, 2)
    assert_finite(initializer, y)
    linear = nn.Linear(2, 2)
    status, err = call(fn, linear, bad=(linear,))
    assert isinstance(err, TypeError), err
    assert "Linear" in str(err), err


@FEW
@given(
    sizes=st.lists(int_or_bad(st.integers(1, 6), 1), max_size=4),
    activation=st.sampled_from(
        [("relu", False), ("tanh", False), ("identity", False), ("softmax", True), (3, True)]
    ),
    bias=st.sampled_from([(True, False), (False, False), (1, True)]),
)
def test_mlp(sizes, activation, bias):
    widths = [v for v, _ in sizes]
    bad = [v for v, b in sizes if b]
    if len(widths) < 2:
        bad.append(widths)
    (activation, act_bad), (bias, bias_bad) = activation, bias
    bad += [activation] * act_bad + [bias] * bias_bad
    status, model = call(nets.mlp, widths, activation, bias=bias, bad=tuple(bad))
    if status == "ok":
        x = torch.randn(2, widths[0], generator=torch.Generator().manual_seed(0))
        y = model(x)
        assert y.shape == (2, widths[-1])
        assert_finite("mlp", y)
        assert len(model) == 2 * len(widths) - 3


@FEW
@given(
    width=int_or_bad(st.integers(1, 6), 1),
    blocks=int_or_bad(st.integers(0, 5), 0),
    layers=int_or_bad(st.integers(1, 3), 1),
    inner=real_or_bad(st.floats(0, 4), negative_ok=False),
    last=real_or_bad(st.floats(0, 4), negative_ok=False),
    trials=int_or_bad(st.integers(1, 3), 1),
    dtype=st.sampled_from([torch.float64, torch.float32, torch.int64]),
)
def test_stream_second_moments(width, blocks, layers, inner, last, trials, dtype):
    pairs = (width, blocks, layers, inner, last, trials)
    (width, _), (blocks, _), (layers, _), (inner, _), (last, _), (trials, _) = pairs
    bad = [v for v, b in pairs if b] + ([dtype] if dtype == torch.int64 else [])
    status, out = call(
        nets.stream_second_moments,
        width,
        blocks,
        layers_per_branch=layers,
        inner_gain2=inner,
        last_gain2=last,
        trials=trials,
        dtype=dtype,
        generator=torch.Generator().manual_seed(0),
        bad=tuple(bad),
    )
    if status == "ok":
        assert out.shape == (trials, blocks + 1), out.shape
        assert_finite("stream_second_moments", out)
        assert bool((out >= 0).all())


# ---------------------------------------------------------------------------------------------------
# initbook.mup: the scaling table, models, and the (tiny) experiments
# ---------------------------------------------------------------------------------------------------
@FUZZ
@given(
    role=st.sampled_from(["input", "hidden", "output", "readout", None]),
    fan_in=int_or_bad(st.integers(1, 4096), 1),
    fan_out=int_or_bad(st.integers(1, 4096), 1),
    parameterization=st.sampled_from(["sp", "mup", "ntk", 0]),
    optimizer=st.sampled_from(["sgd", "adam", "adamw"]),
    base_width=int_or_bad(st.integers(1, 512), 1),
    gain=real_or_bad(st.floats(1e-3, 4), negative_ok=False),  # gain=0 is an error too
    readout=st.sampled_from(["normal", "zero", "ones"]),
)
def test_mup_scaling(role, fan_in, fan_out, parameterization, optimizer, base_width, gain, readout):
    pairs = (fan_in, fan_out, base_width, gain)
    (fan_in, _), (fan_out, _), (base_width, _), (gain, _) = pairs
    bad = [v for v, b in pairs if b]
    bad += [role] if role not in ("input", "hidden", "output") else []
    bad += [parameterization] if parameterization not in ("sp", "mup") else []
    bad += [optimizer] if optimizer not in ("sgd", "adam") else []
    bad += [readout] if readout not in ("normal", "zero") else []
    status, out = call(
        mup.scaling,
        role,
        fan_in,
        fan_out,
        parameterization=parameterization,
        optimizer=optimizer,
        base_width=base_width,
        gain=gain,
        readout=readout,
        bad=tuple(bad),
    )
    if status == "ok":
        assert_finite("scaling", dataclasses.astuple(out))
        assert out.init_var >= 0, out
        assert out.lr_mult > 0, out
        assert out.bias_lr_mult > 0, out


@FEW
@given(
    d_in=int_or_bad(st.integers(1, 5), 1),
    width=int_or_bad(st.integers(1, 8), 1),
    depth=int_or_bad(st.integers(2, 4), 2),  # input and output layer at least
    bias=st.booleans(),
    parameterization=st.sampled_from(["sp", "mup", "ntk"]),
    optimizer=st.sampled_from(["sgd", "adam", "rmsprop"]),
    lr=real_or_bad(st.floats(1e-4, 1), negative_ok=False),
)
def test_mup_models(d_in, width, depth, bias, parameterization, optimizer, lr):
    pairs = (d_in, width, depth)
    (d_in, _), (width, _), (depth, _) = pairs
    status, model = call(
        mup.mlp, d_in, width, 3, depth=depth, bias=bias, bad=tuple(v for v, b in pairs if b)
    )
    if status == "error":
        return
    bad_p = (parameterization,) if parameterization == "ntk" else ()
    bad_o = (optimizer,) if optimizer == "rmsprop" else ()
    status, roles = call(mup.layer_roles, model)
    assert status == "ok", roles
    assert len(roles) == depth, roles
    assert roles[-1][0] == "output", roles
    status, out = call(
        mup.layer_scalings,
        model,
        parameterization=parameterization,
        optimizer=optimizer,
        bad=bad_p + bad_o,
    )
    if status == "ok":
        assert len(out) == depth
    g = torch.Generator().manual_seed(0)
    status, out = call(
        mup.mup_init_, model, parameterization=parameterization, generator=g, bad=bad_p
    )
    if status == "ok":
        assert out is model
        assert_finite("mup_init_", tuple(p.detach() for p in model.parameters()))
    (lr, lr_bad) = lr
    bad = bad_p + bad_o + ((lr,) if lr_bad else ())
    status, groups = call(
        mup.mup_param_groups,
        model,
        lr,
        optimizer=optimizer,
        parameterization=parameterization,
        bad=bad,
    )
    if status == "ok":
        n_params = sum(len(group["params"]) for group in groups)
        assert n_params == len(list(model.parameters()))
        assert all(math.isfinite(group["lr"]) and group["lr"] > 0 for group in groups)
    for not_a_model in (nn.Sequential(nn.ReLU()), nn.Conv1d(1, 1, 1)):
        status, err = call(mup.layer_roles, not_a_model, may_raise=True)
        assert status == "error", f"layer_roles accepted {not_a_model}"
        assert type(not_a_model).__name__ in str(err) or "Linear" in str(err), err


@FUZZ
@given(
    widths=st.lists(st.sampled_from([8, 16, 32, 64, 64, 0, -4, math.nan]), min_size=0, max_size=5),
    values=st.lists(
        st.sampled_from([1.0, 2.0, 0.5, 0.0, -1.0, math.nan, math.inf]), min_size=0, max_size=5
    ),
)
@example(widths=[8, 16], values=[1.0, 2.0])
@example(widths=[8, 8], values=[1.0, 1.0])  # was a silent NaN (one width: no slope)
@example(widths=[8, 16], values=[1.0, math.inf])  # was a silent NaN
def test_scaling_exponent_and_optimal_lr(widths, values):
    def positive_finite(xs):
        return all(0 < x < math.inf for x in xs)

    valid = (
        len(widths) == len(values) >= 2
        and positive_finite(widths)
        and positive_finite(values)
        and len(set(widths)) >= 2
    )
    status, out = call(mup.scaling_exponent, widths, values, bad=() if valid else (widths, values))
    if status == "ok":
        assert_finite("scaling_exponent", out)
    lrs = [1e-3 * 2**i for i in range(len(values))]
    valid = len(values) >= 1 and any(math.isfinite(v) for v in values)  # NaN losses are skipped
    status, out = call(mup.optimal_lr, lrs, values, bad=() if valid else (values,))
    if status == "ok":
        assert_finite("optimal_lr", out)
        assert min(lrs) <= out <= max(lrs), (lrs, values, out)
    increasing = all(a < b for a, b in itertools.pairwise(widths))
    valid = len(widths) >= 1 and positive_finite(widths) and increasing
    status, out = call(mup.optimal_lr, widths, [1.0] * len(widths), bad=() if valid else (widths,))
    if status == "ok":
        assert_finite("optimal_lr", out)


@settings(FEW, max_examples=50 if EXPLORE else 5)
@given(
    widths=st.one_of(
        st.lists(st.integers(1, 8), min_size=1, max_size=2).map(lambda v: (v, False)),
        st.sampled_from([[], [0], [2.5], "8"]).map(lambda v: (v, True)),
    ),
    parameterization=st.sampled_from(["sp", "mup"]),
    optimizer=st.sampled_from(["sgd", "adam"]),
    steps=int_or_bad(st.integers(1, 2), 1),
    lr=real_or_bad(st.floats(1e-3, 0.1), negative_ok=False),
)
def test_coord_check(widths, parameterization, optimizer, steps, lr):
    (widths, w_bad), (steps, s_bad), (lr, lr_bad) = widths, steps, lr
    bad = [v for v, b in ((steps, s_bad), (lr, lr_bad)) if b]
    if w_bad:
        bad += [widths, *widths] if widths != "8" else [widths]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=g), torch.randint(0, 2, (6,), generator=g)
    status, rows = call(
        mup.coord_check,
        x,
        y,
        widths,
        parameterization=parameterization,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        depth=2,
        base_width=4,
        seeds=1,
        bad=tuple(bad),
    )
    if status == "ok":
        assert rows, rows
        assert_finite("coord_check", [(r.rms, r.delta_rms) for r in rows])


@settings(FEW, max_examples=50 if EXPLORE else 5)
@given(
    widths=st.lists(st.integers(1, 8), min_size=1, max_size=2),
    lrs=st.one_of(
        st.lists(st.floats(1e-3, 10), min_size=1, max_size=3).map(lambda v: (v, False)),
        st.sampled_from([[], [-0.1], [math.nan], [0.0]]).map(lambda v: (v, True)),
    ),
    parameterizations=st.sampled_from([("sp", "mup"), ("mup",), ("ntk",)]),
    optimizer=st.sampled_from(["sgd", "adam"]),
    steps=int_or_bad(st.integers(0, 3), 0),  # steps=0: the initial loss (documented)
)
def test_lr_sweep(widths, lrs, parameterizations, optimizer, steps):
    (lrs, lrs_bad), (steps, s_bad) = lrs, steps
    bad = [steps] if s_bad else []
    if lrs_bad:
        bad += [lrs, *lrs]
    if parameterizations == ("ntk",):
        bad += ["ntk", parameterizations]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)
    status, rows = call(
        mup.lr_sweep,
        x,
        y,
        widths,
        lrs,
        parameterizations=parameterizations,
        optimizer=optimizer,
        steps=steps,
        batch_size=4,
        depth=2,
        base_width=4,
        bad=tuple(bad),
    )
    if status == "ok":
        assert len(rows) == len(widths) * len(lrs) * len(parameterizations)
        for row in rows:  # a diverged run is documented as an inf/NaN loss; a finite run is finite
            assert isinstance(row.loss, float), row


@FUZZ
@given(
    batch_size=st.one_of(st.integers(-2, 300), st.sampled_from([None, True, 8.0, "8"])),
    nonlinearity=st.sampled_from(["linear", "relu", "tanh", 3]),
)
def test_normalization_growth_and_simulations(batch_size, nonlinearity):
    """theory.bn_gradient_growth, and the simulations of the normalization chapter on tiny sizes."""
    bad_b = batch_size is not None and (type(batch_size) is not int or batch_size < 4)
    bad_nl = nonlinearity not in ("linear", "relu")
    relu_finite = nonlinearity == "relu" and batch_size is not None and not bad_b
    bad = (nonlinearity,) if bad_nl else (batch_size,) if bad_b or relu_finite else ()
    status, out = call(theory.bn_gradient_growth, batch_size, nonlinearity, bad=bad)
    if status == "ok":
        assert out >= 1.0
    gen = torch.Generator().manual_seed(0)
    status, out = call(
        stats.bn_mlp_gradients,
        4,
        2,
        3,
        nonlinearity=nonlinearity,
        generator=gen,
        bad=(nonlinearity,) if bad_nl else (),
    )
    if status == "ok":
        assert_finite("bn_mlp_gradients", out)
    for norm in ("bn", "pre_ln", "post_ln", nonlinearity):
        bad_norm = norm not in ("bn", "pre_ln", "post_ln")
        status, out = call(
            stats.residual_stack_at_init,
            4,
            2,
            norm,
            batch_size=3,
            generator=gen,
            bad=(norm,) if bad_norm else (),
        )
        if status == "ok":
            assert_finite("residual_stack_at_init", tuple(out))
    status, net = call(stats.deep_mlp, 2, 3, nonlinearity, bad=(nonlinearity,))
    net = stats.deep_mlp(2, 3, "ln", n_in=2, n_out=2)
    call(stats.init_scheme_, net, nonlinearity, bad=(nonlinearity,))
    x, y = torch.randn(8, 2, generator=gen), torch.tensor([0, 1] * 4)
    status, runs = call(
        stats.train_mlp_grid,
        x,
        y,
        (x, y),
        norms=("ln",),
        schemes=("he",),
        depth=2,
        width=3,
        steps=2,
        batch_size=4,
    )
    assert status == "ok"
    assert len(runs) == 1
    call(stats.train_mlp_grid, x, y, (x, y), schemes=(nonlinearity,), bad=(nonlinearity,))


_TRANSFORMER_MODELS = {
    "tiny": lambda: nets.TinyDecoder(7, 5, 8, 2, n_layers=2),
    "tiny_post": lambda: nets.TinyDecoder(7, 5, 8, 2, n_layers=2, norm="post"),
    "mha": lambda: nn.MultiheadAttention(8, 2),
    "encoder_layer": lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16),
    "linear": lambda: nn.Linear(3, 4),
}


@FEW
@given(
    kind=st.sampled_from(sorted(_TRANSFORMER_MODELS)),
    n_layers=int_or_bad(st.integers(1, 24), 1),
    std=real_or_bad(st.floats(0, 0.1), negative_ok=False),
)
def test_transformer_recipes(kind, n_layers, std):
    """The recipes on torch's modules and the book's decoder: valid calls succeed (or raise a documented
    refusal naming the model), bad depths and scales raise errors naming them."""
    (n, n_bad), (std, s_bad) = n_layers, std
    supported = kind != "linear"
    gen = torch.Generator().manual_seed(0)
    for fn, kwargs, arg_bad in [
        (init.gpt2_init_, {"std": std}, s_bad),
        (init.deepnet_init_, {}, False),
        (init.t_fixup_init_, {"allow_layer_norm": True}, False),
    ]:
        model = _TRANSFORMER_MODELS[kind]()
        bad = ((n,) if n_bad else ()) + ((std,) if arg_bad else ())
        if not supported:
            bad += (model,)
        # deepnet_init_ refuses a pre-LN block of the book's decoder: a documented error on a valid call
        refuses = fn is init.deepnet_init_ and kind == "tiny"
        status, out = call(fn, model, n, bad=bad, may_raise=refuses, generator=gen, **kwargs)
        if status == "ok":
            assert out is model
            for p in model.parameters():
                assert_finite(fn.__name__, p.detach())
        elif refuses and not bad:
            assert "pre" in str(out), out
    roles = call(init.transformer_roles, _TRANSFORMER_MODELS[kind](), may_raise=not supported)
    if supported:
        assert roles[0] == "ok", roles
        assert roles[1], roles


@FEW
@given(
    batch=int_or_bad(st.integers(1, 4), 1),
    length=int_or_bad(st.integers(1, 6), 1),
    vocab=int_or_bad(st.integers(3, 9), 3),
    depth=int_or_bad(st.integers(0, 4), 0),  # depth 0: the spread of the input itself
    skip=st.booleans(),
)
def test_sequence_helpers(batch, length, vocab, depth, skip):
    gen = torch.Generator().manual_seed(0)
    bad = tuple(v for v, b in (batch, length, vocab) if b)
    status, out = call(nets.sorting_batch, batch[0], length[0], vocab[0], generator=gen, bad=bad)
    if status == "ok":
        x, y = out
        assert x.shape == y.shape
        assert x.shape[0] == batch[0]
    status, out = call(
        nets.attention_token_spread,
        depth[0],
        8,
        4,
        skip=skip,
        trials=2,
        generator=gen,
        bad=(depth[0],) if depth[1] else (),
    )
    if status == "ok":
        assert_finite("attention_token_spread", out)
    model = nets.TinyDecoder(7, 5, 8, 2, n_layers=1)
    status, out = call(nets.train_sequence_task, model, steps=1, batch=2, length=2, generator=gen)
    assert status == "ok", out


# ---------------------------------------------------------------------------------------------------
# Convolutions: delta_orthogonal_, the zero-padding variance map, pooling, random CNN stacks
# ---------------------------------------------------------------------------------------------------
@FEW
@given(
    shape=shapes,
    dtype=any_dtypes,
    gain=real_or_bad(st.floats(0, 10), negative_ok=False),
    size=int_or_bad(st.integers(1, 6), 1),
    kernel=int_or_bad(st.sampled_from([1, 3, 5]), 1),
    depth=int_or_bad(st.integers(1, 3), 1),
    nonlinearity=st.sampled_from(["relu", "linear", "tanh"]),
    window=int_or_bad(st.integers(1, 9), 1),
    kind=st.sampled_from(["avg", "max", "min"]),
)
def test_convolution_functions(shape, dtype, gain, size, kernel, depth, nonlinearity, window, kind):
    (gain, gain_bad), (size, s_bad), (kernel, k_bad), (depth, d_bad) = gain, size, kernel, depth
    g = torch.Generator().manual_seed(0)
    w = torch.empty(shape, dtype=dtype)
    # checked in this order: the dtype, the gain, then the shape (a documented error, judged below)
    first_bad = (dtype,) if not dtype.is_floating_point else (gain,) if gain_bad else ()
    status, out = call(init.delta_orthogonal_, w, gain, generator=g, bad=first_bad, may_raise=True)
    if status == "error" and not first_bad:
        dims_ok = len(shape) >= 3 and all(k % 2 for k in shape[2:]) and shape[0] >= shape[1]
        assert not dims_ok, out
    elif status == "ok":
        assert_finite("delta_orthogonal_", out)
    bad = tuple(v for v, b in ((size, s_bad), (kernel, k_bad), (depth, d_bad)) if b)
    if nonlinearity == "tanh":
        bad += ("tanh",)
    for fn in (theory.padded_conv_second_moments, stats.conv_stack_second_moments):
        extra = {"trials": 2, "generator": g} if fn is stats.conv_stack_second_moments else {}
        status, out = call(fn, size, kernel, depth, nonlinearity=nonlinearity, bad=bad, **extra)
        if status == "ok":
            assert out.shape[-3:] == (depth, size, size)
            assert_finite(fn.__name__, out)
    status, out = call(
        theory.padding_variance_decay, size, kernel, bad=bad[:2] if s_bad or k_bad else ()
    )
    if status == "ok":
        assert 0 < out <= 1 + 1e-12
    (window, w_bad) = window
    bad = ((window,) if w_bad else ()) + (("min",) if kind == "min" else ())
    status, out = call(theory.pooled_second_moment, window, kind, bad=bad)
    if status == "ok":
        assert 0 < out < 10
    bad = tuple(v for v, b in ((size, s_bad), (depth, d_bad)) if b)
    status, out = call(
        stats.conv_jacobian_singular_values, depth, 2, size, nets=1, generator=g, bad=bad
    )
    if status == "ok":
        assert_finite("conv_jacobian_singular_values", out)
