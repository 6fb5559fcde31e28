r"""Tests for :mod:`initbook.init`: exact checks, and statistical checks against torch.nn.init and theory.

How often can this file fail by chance?
---------------------------------------
Every random draw comes from a :class:`torch.Generator` seeded from the ``seed`` fixture (the test's
node id, shifted by ``$INITBOOK_TEST_SEED``; see the root ``conftest.py``), and torch's global generator
is reseeded before every test. A given seed therefore passes or fails deterministically; the
probabilities below are over the choice of seed, e.g. ``INITBOOK_TEST_SEED=1..20``.

* **Kolmogorov-Smirnov tests.** Each sampler is compared with its torch.nn.init counterpart by a
  two-sample KS test (:func:`scipy.stats.ks_2samp`, about 40 000 values a side, compared in float64),
  which fails when the p-value is at most ``ALPHA = 1e-6``. Under the null hypothesis (same
  distribution) the p-value is uniform, so each test fails falsely with probability at most ``ALPHA``.
  For float16 and bfloat16 the values are discrete and tie; both samples are rounded the same way (ours
  once from float32, torch's inside its own sampler), and the KS null distribution computed for
  continuous data is *conservative* for discrete data (p-values come out too large), so the bound still
  holds. There are

  ``192`` (kaiming_normal_/kaiming_uniform_: 4 shapes 2-D..5-D x 2 modes x 3 nonlinearities x
  4 dtypes x 2 samplers) ``+ 64`` (xavier_normal_/xavier_uniform_: 4 shapes x 2 gains x 4 dtypes x 2)
  ``+ 16`` (torch_default_: 4 shapes x 4 dtypes) ``+ 64`` (lecun_normal_, lecun_uniform_, he_normal_,
  glorot_normal_ against torch's trunc_normal_/uniform_ with the parameters spelled out: 4 shapes x
  4 dtypes x 4) ``+ 18`` (variance_scaling_: 3 modes x 3 distributions x 2 dtypes) ``+ 20`` (normal_,
  uniform_ and three trunc_normal_ settings x 4 dtypes) ``+ 4`` (sparse_'s non-zero values, 4 dtypes)
  ``= 378``

  KS tests (``K = 378``), and by Bonferroni's inequality the probability that *any* of them fails falsely is at most
  ``K * ALPHA = 3.8e-4``. (:func:`test_false_failure_budget` recounts K and M below from the tests'
  parametrize decorators.) With
  40 000 values a side a KS test at this level still detects a 10% error in a standard deviation, e.g. a
  missing truncation correction (14%); smaller errors are the moment tests' job. orthogonal_ needs no KS
  test: with the same generator it gives exactly torch's numbers (float32/float64) or torch's float32
  numbers rounded once (float16/bfloat16, where torch's own raises).
* **Moment tests** compare a sample's mean and second moment with the values recomputed in the test
  from the fans, allowing 5 standard errors: :math:`\sigma^2\sqrt{(2+\gamma)/N}` for the second moment
  about the known mean 0 (the sample variance's standard error :math:`\sigma^2\sqrt{2/(N-1)}` for a
  normal; :math:`\gamma` is the excess kurtosis: 0 normal, -6/5 uniform, -0.634 normal cut at
  :math:`\pm2`) and :math:`\sigma/\sqrt N` for the mean. Each check fails falsely with probability
  about :math:`P(|Z| > 5) = 5.7\cdot10^{-7}`; there are ``M = 93`` of them (21 cases x 2 shapes x
  2 moments, 4 for trunc_normal_, 4 for init_model, 1 far-tail mean), so at most ``5.4e-5`` together.

Altogether a run fails falsely with probability below ``4.4e-4``; twenty seeds, below 1%. Every other
check is exact or has a deterministic tolerance.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from scipy import stats
from torch import nn

import initbook
from initbook import init
from tests._stats import P_FALSE, Z
from tests._stats import seeded as gen

ALPHA = 1e-6  # per-KS-test false-failure rate
FLOAT_DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# about 40 000 values each, from 2-D to 5-D; rectangular, so fan_in != fan_out
SHAPES = [(160, 250), (50, 40, 20), (32, 20, 8, 8), (16, 10, 5, 5, 10)]
MODES = ["fan_in", "fan_out"]
NONLINEARITIES = [("relu", 0.0), ("leaky_relu", 0.2), ("tanh", 0.0)]
GAINS = [1.0, 5.0 / 3.0]
VS_MODES = ["fan_in", "fan_out", "fan_avg"]
VS_DISTRIBUTIONS = ["normal", "uniform", "truncated_normal"]
VS_DTYPES = [torch.float64, torch.bfloat16]
TRUNC_SETTINGS = [  # (mean, std, a, b): rejection path; inverse CDF (flipped); inverse CDF
    (0.0, 1.0, -2.0, 2.0),
    (0.0, 1.0, 1.0, 3.0),
    (0.5, 0.5, -1.0, 0.0),
]
C = 0.87962566103423978  # JAX's literal: std of N(0, 1) truncated to [-2, 2]
TRUNC_KURTOSIS = float(stats.truncnorm(-2, 2).stats(moments="k"))


pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_distribution(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    x = ours.detach().double().flatten().numpy()
    y = theirs.detach().double().flatten().numpy()
    result = stats.ks_2samp(x, y)
    assert result.pvalue > ALPHA, f"KS D={result.statistic:.4g}, p={result.pvalue:.3g} <= {ALPHA}"


def assert_moments(x: torch.Tensor, variance: float, excess_kurtosis: float) -> None:
    """Mean 0 and second moment ``variance``, each within 5 standard errors."""
    x = x.detach().double().flatten()
    n = x.numel()
    second = x.pow(2).mean().item()
    se_second = variance * math.sqrt((2.0 + excess_kurtosis) / n)
    assert abs(second - variance) < Z * se_second, (second, variance, se_second)
    se_mean = math.sqrt(variance / n)
    assert abs(x.mean().item()) < Z * se_mean, (x.mean().item(), se_mean)


def fans_by_hand(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype)


# ---------------------------------------------------------------------------------------------------
# Fans and gains: exact
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        nn.Linear(5, 3),
        nn.Conv1d(3, 6, 5),
        nn.Conv2d(4, 8, (3, 5)),
        nn.Conv3d(2, 4, (1, 2, 3)),
        nn.Bilinear(3, 4, 5),
    ],
    ids=lambda m: type(m).__name__,
)
def test_compute_fans_equals_torch_on_its_layers(layer):
    torch_fans = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert initbook.compute_fans(layer.weight) == torch_fans
    assert initbook.compute_fans(layer.weight.shape) == torch_fans
    assert initbook.compute_fans(list(layer.weight.shape)) == torch_fans
    assert initbook.fans_of(layer) == torch_fans  # no groups, not transposed: torch is right


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((3, 5), (5, 3)),
        ((6, 3, 5), (15, 30)),
        ((8, 4, 3, 5), (60, 120)),
        ((4, 2, 1, 2, 3), (12, 24)),
    ],
)
def test_compute_fans_table(shape, fans):
    assert initbook.compute_fans(shape) == fans == fans_by_hand(shape)


@pytest.mark.parametrize(
    ("layer", "ours", "torchs"),
    [
        (nn.Conv2d(8, 16, 3, groups=4), (18, 36), (18, 144)),
        (nn.ConvTranspose2d(8, 4, 3), (72, 36), (36, 72)),
        (nn.ConvTranspose1d(6, 9, 4, groups=3), (8, 12), (12, 24)),
        (nn.ConvTranspose3d(4, 2, (1, 3, 3)), (36, 18), (18, 36)),
        (nn.Conv1d(6, 9, 3, groups=3), (6, 9), (6, 27)),
    ],
    ids=["grouped2d", "transposed2d", "transposed1d-grouped", "transposed3d", "grouped1d"],
)
def test_fans_of_grouped_and_transposed(layer, ours, torchs):
    assert initbook.fans_of(layer) == ours
    assert nn.init._calculate_fan_in_and_fan_out(layer.weight) == torchs
    assert initbook.compute_fans(layer.weight) == torchs


@pytest.mark.parametrize(
    "layer",
    [
        nn.Linear(7, 3),
        nn.Conv2d(3, 5, (3, 5)),
        nn.Conv1d(6, 9, 3, groups=3),
        nn.Conv2d(8, 16, 3, groups=4),
        nn.ConvTranspose2d(8, 4, 3),
        nn.ConvTranspose2d(8, 12, 3, groups=2),
        nn.ConvTranspose3d(4, 2, (1, 3, 3)),
    ],
    ids=lambda m: f"{type(m).__name__}-{getattr(m, 'groups', 1)}",
)
def test_fans_of_counts_the_connections(layer):
    """fan_in = terms summed into an output value; fan_out = outputs an input value feeds (ones in, ones out)."""
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    channels = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    spatial = () if isinstance(layer, nn.Linear) else (9,) * (layer.weight.dim() - 2)
    x = torch.ones(1, channels, *spatial, requires_grad=True)
    y = layer(x)
    y.backward(torch.ones_like(y))
    centre_out = (0, 0, *(s // 2 for s in y.shape[2:]))
    centre_in = (0, 0, *(s // 2 for s in x.shape[2:]))
    assert (y[centre_out].item(), x.grad[centre_in].item()) == initbook.fans_of(layer)


def test_fans_of_other_modules_and_errors():
    assert initbook.fans_of(nn.Bilinear(3, 4, 5)) == (12, 20)
    with pytest.raises(TypeError, match="no tensor weight"):
        initbook.fans_of(nn.ReLU())
    with pytest.raises(TypeError, match=r"nn\.Module"):
        initbook.fans_of(torch.empty(3, 4))


@pytest.mark.parametrize("shape", [(4,), ()])
def test_compute_fans_needs_two_dims(shape):
    with pytest.raises(ValueError, match=rf"got {len(shape)} dimension\(s\)"):
        initbook.compute_fans(torch.empty(shape))
    with pytest.raises(ValueError, match=rf"got {len(shape)} dimension\(s\)"):
        initbook.compute_fans(shape)


def test_compute_fans_rejects_bad_shapes():
    with pytest.raises(TypeError, match="int"):
        initbook.compute_fans((3, 2.0))
    with pytest.raises(TypeError, match="int"):
        initbook.compute_fans((3, True))
    with pytest.raises(ValueError, match=">= 0"):
        initbook.compute_fans((3, -1))
    with pytest.raises(TypeError, match="tensor or a shape"):
        initbook.compute_fans("34")


@pytest.mark.parametrize("nonlinearity", init._NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0, 0.2, 1.0, -0.5])
def test_gain_equals_torch(nonlinearity, param):
    expected = nn.init.calculate_gain(nonlinearity, param)
    assert initbook.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


def test_gain_values():
    gain = initbook.calculate_gain
    assert gain("tanh") == pytest.approx(5 / 3)
    assert gain("relu") == pytest.approx(math.sqrt(2))
    assert gain("selu") == pytest.approx(0.75)
    assert gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid"):
        assert gain(name) == 1.0


def test_gain_errors():
    valid = str(sorted(init._NONLINEARITIES)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ValueError, match=rf"nonlinearity='softplus' is not one of {valid}"):
        initbook.calculate_gain("softplus")
    with pytest.raises(TypeError, match="real number"):
        initbook.calculate_gain("leaky_relu", True)  # bool is rejected before int
    with pytest.raises(TypeError, match="real number"):
        initbook.calculate_gain("leaky_relu", "0.2")
    with pytest.raises(ValueError, match="finite"):
        initbook.calculate_gain("leaky_relu", math.nan)
    with pytest.raises(TypeError, match="string"):
        initbook.calculate_gain(None)


def test_truncation_constant():
    assert abs(initbook.TRUNCATED_NORMAL_STD - C) < 1e-15
    assert stats.truncnorm(-2, 2).std() == pytest.approx(initbook.TRUNCATED_NORMAL_STD, rel=1e-14)
    for a, b in [(-1.0, 3.0), (0.0, math.inf), (-math.inf, -1.5), (-0.5, 0.5), (2.0, 5.0)]:
        expected = stats.truncnorm(a, b).std()
        assert initbook.truncated_normal_std(a, b) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="a < b"):
        initbook.truncated_normal_std(1.0, 1.0)


def test_aliases():
    assert initbook.glorot_uniform_ is initbook.xavier_uniform_
    assert initbook.he_uniform_ is initbook.kaiming_uniform_
    assert initbook.he_normal_ is not initbook.kaiming_normal_  # JAX's is truncated
    assert initbook.glorot_normal_ is not initbook.xavier_normal_
    assert initbook.init.variance_scaling_ is initbook.variance_scaling_


# ---------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------

FAN_INITS = [
    lambda t, **kw: initbook.variance_scaling_(t, **kw),
    lambda t, **kw: initbook.kaiming_normal_(t, **kw),
    lambda t, **kw: initbook.kaiming_uniform_(t, **kw),
    lambda t, **kw: initbook.xavier_normal_(t, **kw),
    lambda t, **kw: initbook.xavier_uniform_(t, **kw),
    lambda t, **kw: initbook.lecun_normal_(t, **kw),
    lambda t, **kw: initbook.lecun_uniform_(t, **kw),
    lambda t, **kw: initbook.he_normal_(t, **kw),
    lambda t, **kw: initbook.glorot_normal_(t, **kw),
    lambda t, **kw: initbook.torch_default_(t, **kw),
]
FAN_IDS = [
    "variance_scaling",
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "lecun_normal",
    "lecun_uniform",
    "he_normal",
    "glorot_normal",
    "torch_default",
]
SHAPE_INITS = [
    *FAN_INITS,
    lambda t, **kw: initbook.orthogonal_(t, **kw),
    lambda t, **kw: initbook.spectral_normalize_(initbook.normal_(t, **kw), **kw),
]
SHAPE_IDS = [*FAN_IDS, "orthogonal", "spectral_normalize"]


@pytest.mark.parametrize("fn", SHAPE_INITS, ids=SHAPE_IDS)
def test_fewer_than_two_dims(fn):
    with pytest.raises(ValueError, match=r"1 dimension\(s\)"):
        fn(torch.empty(5))


@pytest.mark.parametrize("fn", SHAPE_INITS, ids=SHAPE_IDS)
def test_integer_tensor_rejected(fn):
    with pytest.raises(TypeError, match="floating dtype"):
        fn(torch.zeros(3, 4, dtype=torch.int64))


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: initbook.uniform_(t),
        lambda t: initbook.normal_(t),
        lambda t: initbook.trunc_normal_(t),
        lambda t: initbook.constant_(t, 1.0),
        lambda t: initbook.zeros_(t),
        lambda t: initbook.ones_(t),
        lambda t: initbook.eye_(t),
        lambda t: initbook.sparse_(t, 0.5),
    ],
)
def test_integer_tensor_rejected_by_fills(fn):
    with pytest.raises(TypeError, match="floating dtype"):
        fn(torch.zeros(3, 4, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn([[0.0, 0.0]])


def test_bad_mode_and_distribution():
    t = empty((4, 3))
    with pytest.raises(
        ValueError, match=r"mode='fan_sum' is not one of \['fan_avg', 'fan_in', 'fan_out'\]"
    ):
        initbook.variance_scaling_(t, 1.0, "fan_sum")
    with pytest.raises(ValueError, match=r"mode='fan_avg' is not one of \['fan_in', 'fan_out'\]"):
        initbook.kaiming_normal_(t, mode="fan_avg")
    with pytest.raises(
        ValueError,
        match=r"distribution='gaussian' is not one of \['normal', 'truncated_normal', 'uniform'\]",
    ):
        initbook.variance_scaling_(t, 1.0, "fan_in", "gaussian")
    with pytest.raises(ValueError, match="nonlinearity='gelu' is not one of"):
        initbook.kaiming_uniform_(t, nonlinearity="gelu")
    # torch lower-cases the mode; so do we
    assert initbook.kaiming_normal_(t, mode="FAN_OUT") is t


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: initbook.variance_scaling_(t, -1.0), ValueError, "scale must be >= 0"),
        (lambda t: initbook.variance_scaling_(t, math.inf), ValueError, "scale must be finite"),
        (lambda t: initbook.variance_scaling_(t, math.nan), ValueError, "scale must be finite"),
        (lambda t: initbook.variance_scaling_(t, True), TypeError, "scale must be a real number"),
        (lambda t: initbook.variance_scaling_(t, "1"), TypeError, "scale must be a real number"),
        (lambda t: initbook.xavier_normal_(t, gain=-1.0), ValueError, "gain must be >= 0"),
        (lambda t: initbook.xavier_uniform_(t, gain=True), TypeError, "gain must be a real"),
        (lambda t: initbook.orthogonal_(t, gain=math.inf), ValueError, "gain must be finite"),
        (lambda t: initbook.kaiming_normal_(t, a=True), TypeError, "a must be a real number"),
        (lambda t: initbook.normal_(t, std=-0.1), ValueError, "std must be >= 0"),
        (lambda t: initbook.normal_(t, std=math.nan), ValueError, "std must be finite"),
        (lambda t: initbook.normal_(t, mean=False), TypeError, "mean must be a real"),
        (lambda t: initbook.uniform_(t, 1.0, 0.0), ValueError, "a <= b"),
        (lambda t: initbook.uniform_(t, 0.0, math.inf), ValueError, "b must be finite"),
        (lambda t: initbook.trunc_normal_(t, std=0.0), ValueError, "std must be > 0"),
        (lambda t: initbook.trunc_normal_(t, a=1.0, b=1.0), ValueError, "a < b"),
        (lambda t: initbook.trunc_normal_(t, a=40.0, b=41.0), ValueError, "no probability mass"),
        (lambda t: initbook.constant_(t, math.nan), ValueError, "val must be finite"),
        (lambda t: initbook.constant_(t, True), TypeError, "val must be a real"),
        (lambda t: initbook.sparse_(t, 1.5), ValueError, r"sparsity must be in \[0, 1\]"),
        (lambda t: initbook.sparse_(t, 0.5, std=-1.0), ValueError, "std must be >= 0"),
        (lambda t: initbook.sparse_(empty((2, 3, 4)), 0.5), ValueError, r"3 dimension\(s\)"),
        (lambda t: initbook.eye_(empty((2, 3, 4))), ValueError, r"3 dimension\(s\)"),
        (lambda t: initbook.dirac_(t), ValueError, r"2 dimension\(s\)"),
        (lambda t: initbook.dirac_(empty((6, 2, 3)), 4), ValueError, "groups=4 does not divide"),
        (lambda t: initbook.dirac_(empty((6, 2, 3)), 0), ValueError, "groups must be >= 1"),
        (lambda t: initbook.spectral_normalize_(t, -1.0), ValueError, "target must be >= 0"),
        (lambda t: initbook.spectral_normalize_(t, n_iter=0), ValueError, "n_iter must be >= 1"),
        (lambda t: initbook.normal_(t, generator=0), TypeError, "torch.Generator"),
        (lambda t: initbook.lecun_normal_(t, fans=(3,)), TypeError, "pair"),
        (lambda t: initbook.lecun_normal_(t, fans=(0, 3)), ValueError, "fan_in must be >= 1"),
        (lambda t: initbook.lecun_normal_(t, fans=(2.0, 3)), TypeError, "fan_in must be an int"),
    ],
)
def test_bad_arguments(call, error, match):
    t = empty((4, 3)).fill_(0.5)
    before = t.clone()
    with pytest.raises(error, match=match):
        call(t)
    assert torch.equal(t, before)  # nothing is touched before the checks pass


def test_spectral_normalize_all_zero():
    with pytest.raises(ValueError, match="all zero"):
        initbook.spectral_normalize_(torch.zeros(3, 4))


NOOP_CALLS = [
    *FAN_INITS,
    lambda t, **kw: initbook.orthogonal_(t, **kw),
    lambda t, **kw: initbook.spectral_normalize_(t, **kw),
    lambda t, **kw: initbook.sparse_(t, 0.5, **kw),
]


@pytest.mark.parametrize("fn", NOOP_CALLS, ids=[*FAN_IDS, "orthogonal", "spectral", "sparse"])
@pytest.mark.parametrize("shape", [(0, 5), (3, 0)])
def test_zero_element_tensor_warns_and_is_unchanged(fn, shape):
    t = empty(shape)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert fn(t) is t
    assert t.shape == shape


def test_zero_element_torch_wording():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        nn.init.kaiming_normal_(empty((0, 5)))


def test_zero_element_fills_are_silent():  # as in torch; filterwarnings=error would catch a warning
    t = empty((0, 3))
    for fn in (initbook.uniform_, initbook.normal_, initbook.trunc_normal_, initbook.zeros_):
        assert fn(t) is t
    assert initbook.eye_(t) is t
    assert initbook.dirac_(empty((0, 2, 3))).shape == (0, 2, 3)


# ---------------------------------------------------------------------------------------------------
# In place, same object, no autograd history, dtype and views
# ---------------------------------------------------------------------------------------------------

ALL_INITS = [
    *SHAPE_INITS,
    lambda t, **kw: initbook.he_uniform_(t, **kw),
    lambda t, **kw: initbook.glorot_uniform_(t, **kw),
    lambda t, **kw: initbook.uniform_(t, -1.0, 1.0, **kw),
    lambda t, **kw: initbook.normal_(t, **kw),
    lambda t, **kw: initbook.trunc_normal_(t, **kw),
    lambda t, **kw: initbook.sparse_(t, 0.3, **kw),
    lambda t, **kw: initbook.default_linear_init_(t, **kw),
]
ALL_IDS = [
    *SHAPE_IDS,
    "he_uniform",
    "glorot_uniform",
    "uniform",
    "normal",
    "trunc_normal",
    "sparse",
    "default_linear",
]
DETERMINISTIC = [
    lambda t: initbook.constant_(t, 0.3),
    lambda t: initbook.zeros_(t),
    lambda t: initbook.ones_(t),
    lambda t: initbook.eye_(t),
]


@pytest.mark.parametrize("fn", ALL_INITS + DETERMINISTIC, ids=[*ALL_IDS, "const", "0", "1", "eye"])
def test_in_place_on_parameter_without_history(fn):
    p = nn.Parameter(torch.full((6, 8), 7.0))
    version = p._version
    out = fn(p)
    assert out is p
    assert p.requires_grad
    assert p.is_leaf
    assert p.grad_fn is None
    assert p._version > version
    assert not torch.equal(p.detach(), torch.full((6, 8), 7.0))
    (p * 2).sum().backward()  # still an ordinary trainable parameter
    assert torch.equal(p.grad, torch.full((6, 8), 2.0))


@pytest.mark.parametrize("fn", ALL_INITS, ids=ALL_IDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_dtype_kept_and_same_seed_same_tensor(fn, dtype, seed):
    a = fn(empty((12, 10), dtype), generator=gen(seed))
    b = fn(empty((12, 10), dtype), generator=gen(seed))
    assert a.dtype == dtype
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    c = fn(empty((12, 10), dtype), generator=gen(seed, 1))
    assert not torch.equal(a, c)


@pytest.mark.parametrize("fn", ALL_INITS, ids=ALL_IDS)
def test_transposed_view_filled_in_place(fn, seed):
    base = torch.full((10, 12), 7.0)
    view = base.T  # non-contiguous; x @ w layout
    assert fn(view, generator=gen(seed)) is view
    assert not (base == 7.0).any()


# ---------------------------------------------------------------------------------------------------
# Generator parity with torch (same algorithm => same numbers)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda t, g: initbook.kaiming_normal_(
                t, mode="fan_out", nonlinearity="relu", generator=g
            ),
            lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
        ),
        (
            lambda t, g: initbook.kaiming_uniform_(t, a=0.1, generator=g),
            lambda t: nn.init.kaiming_uniform_(t, a=0.1),
        ),
        (
            lambda t, g: initbook.xavier_normal_(t, gain=2.0, generator=g),
            lambda t: nn.init.xavier_normal_(t, gain=2.0),
        ),
        (
            lambda t, g: initbook.xavier_uniform_(t, generator=g),
            lambda t: nn.init.xavier_uniform_(t),
        ),
        (
            lambda t, g: initbook.variance_scaling_(t, 0.5, "fan_avg", "uniform", generator=g),
            lambda t: nn.init.xavier_uniform_(t, gain=math.sqrt(0.5)),
        ),
        (
            lambda t, g: initbook.torch_default_(t, generator=g),
            lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5)),
        ),
        (
            lambda t, g: initbook.orthogonal_(t, 1.5, generator=g),
            lambda t: nn.init.orthogonal_(t, 1.5),
        ),
        (
            lambda t, g: initbook.normal_(t, 1.0, 0.5, generator=g),
            lambda t: nn.init.normal_(t, 1.0, 0.5),
        ),
        (
            lambda t, g: initbook.uniform_(t, -3.0, 1.0, generator=g),
            lambda t: nn.init.uniform_(t, -3.0, 1.0),
        ),
    ],
    ids=[
        "kaiming_normal",
        "kaiming_uniform",
        "xavier_normal",
        "xavier_uniform",
        "variance_scaling",
        "torch_default",
        "orthogonal",
        "normal",
        "uniform",
    ],
)
@pytest.mark.parametrize("shape", [(40, 30), (7, 30), (12, 5, 3, 3)])
def test_seeded_generator_equals_torch_global_seed(ours, theirs, dtype, shape, seed):
    """A seeded Generator gives torch's numbers under torch.manual_seed (up to one rounding of the std)."""
    mine = ours(empty(shape, dtype), gen(seed))
    torch.manual_seed((seed * 7919) % 2**63)
    expected = theirs(empty(shape, dtype))
    torch.testing.assert_close(
        mine, expected, rtol=2e-6 if dtype == torch.float32 else 1e-13, atol=0
    )


def test_default_linear_init_reproduces_fresh_layers(seed):
    for make in (
        lambda: nn.Linear(20, 30),
        lambda: nn.Conv2d(4, 6, 3),
        lambda: nn.Conv1d(6, 4, 5, groups=2),
    ):
        torch.manual_seed(seed)
        layer = make()
        w, b = torch.empty_like(layer.weight), torch.empty_like(layer.bias)
        assert (
            initbook.default_linear_init_(w, b, generator=torch.Generator().manual_seed(seed)) is w
        )
        torch.testing.assert_close(w, layer.weight.detach(), rtol=2e-6, atol=0)
        torch.testing.assert_close(b, layer.bias.detach(), rtol=2e-6, atol=0)


def test_init_model_torch_default_reproduces_torch(seed):
    def build():
        return nn.Sequential(
            nn.Conv2d(3, 8, 3),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, groups=2),
            nn.Flatten(),
            nn.Linear(32, 5),
        )

    torch.manual_seed(seed)
    reference = build()
    model = initbook.init_model(
        build(),
        "torch_default",
        bias="torch_default",
        generator=torch.Generator().manual_seed(seed),
    )
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=2e-6, atol=0)


def test_sparse_is_reproducible_unlike_torch(seed):
    """torch.nn.init.sparse_ draws the zeros' rows from the global generator; ours from ``generator``."""
    a = initbook.sparse_(empty((50, 40)), 0.3, generator=gen(seed))
    torch.manual_seed(seed)
    b = initbook.sparse_(empty((50, 40)), 0.3, generator=gen(seed))
    assert torch.equal(a, b)
    assert ((a == 0).sum(dim=0) == math.ceil(0.3 * 50)).all()


# ---------------------------------------------------------------------------------------------------
# Deterministic fills: same as torch
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_equals_torch(shape):
    assert torch.equal(initbook.eye_(empty(shape)), nn.init.eye_(empty(shape)))


@pytest.mark.parametrize(
    ("shape", "groups"),
    [((4, 4, 3), 1), ((6, 4, 3, 3), 1), ((8, 3, 3, 5), 2), ((6, 2, 3, 3, 3), 3), ((4, 6, 1, 2), 1)],
)
def test_dirac_equals_torch(shape, groups):
    assert torch.equal(initbook.dirac_(empty(shape), groups), nn.init.dirac_(empty(shape), groups))


def test_dirac_conv_is_identity_per_group():
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=3, bias=False)
    initbook.dirac_(conv.weight, groups=3)
    x = torch.randn(2, 6, 5, 5, generator=gen(0))
    assert torch.equal(conv(x), x)


def test_constant_zeros_ones():
    assert (initbook.constant_(empty((2, 3)), -math.inf) == -math.inf).all()
    assert torch.equal(initbook.constant_(empty((2, 3)), 2), torch.full((2, 3), 2.0))
    assert torch.equal(initbook.zeros_(torch.ones(2, 3)), torch.zeros(2, 3))
    assert torch.equal(
        initbook.ones_(empty((2, 3), torch.bfloat16)), torch.ones(2, 3, dtype=torch.bfloat16)
    )


# ---------------------------------------------------------------------------------------------------
# Kolmogorov-Smirnov against torch.nn.init (K = 378 tests; see the module docstring)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize(("nonlinearity", "a"), NONLINEARITIES, ids=[n for n, _ in NONLINEARITIES])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("name", ["kaiming_normal_", "kaiming_uniform_"])
def test_ks_kaiming(name, shape, mode, nonlinearity, a, dtype, seed):
    ours = getattr(initbook, name)(
        empty(shape, dtype), a, mode, nonlinearity, generator=gen(seed, 0)
    )
    theirs = getattr(nn.init, name)(
        empty(shape, dtype), a, mode, nonlinearity, generator=gen(seed, 1)
    )
    assert_same_distribution(ours, theirs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("gain", GAINS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("name", ["xavier_normal_", "xavier_uniform_"])
def test_ks_xavier(name, shape, gain, dtype, seed):
    ours = getattr(initbook, name)(empty(shape, dtype), gain, generator=gen(seed, 0))
    theirs = getattr(nn.init, name)(empty(shape, dtype), gain, generator=gen(seed, 1))
    assert_same_distribution(ours, theirs)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_ks_torch_default(shape, dtype, seed):
    ours = initbook.torch_default_(empty(shape, dtype), generator=gen(seed, 0))
    theirs = nn.init.kaiming_uniform_(empty(shape, dtype), a=math.sqrt(5), generator=gen(seed, 1))
    assert_same_distribution(ours, theirs)


def _torch_jax_style(shape, dtype, scale, mode, distribution, generator):
    """JAX's variance scaling, built from torch's own samplers with the parameters spelled out."""
    fan_in, fan_out = fans_by_hand(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    t = empty(shape, dtype)
    if distribution == "normal":
        return nn.init.normal_(t, 0.0, std, generator=generator)
    if distribution == "uniform":
        return nn.init.uniform_(t, -math.sqrt(3) * std, math.sqrt(3) * std, generator=generator)
    s = std / C  # torch's trunc_normal_ takes absolute bounds and does not correct the variance
    return nn.init.trunc_normal_(t, 0.0, s, -2 * s, 2 * s, generator=generator)


JAX_PRESETS = {
    "lecun_normal_": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform_": (1.0, "fan_in", "uniform"),
    "he_normal_": (2.0, "fan_in", "truncated_normal"),
    "glorot_normal_": (1.0, "fan_avg", "truncated_normal"),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("name", list(JAX_PRESETS))
def test_ks_jax_presets(name, shape, dtype, seed):
    ours = getattr(initbook, name)(empty(shape, dtype), generator=gen(seed, 0))
    theirs = _torch_jax_style(shape, dtype, *JAX_PRESETS[name], generator=gen(seed, 1))
    assert_same_distribution(ours, theirs)


@pytest.mark.parametrize("dtype", VS_DTYPES, ids=str)
@pytest.mark.parametrize("distribution", VS_DISTRIBUTIONS)
@pytest.mark.parametrize("mode", VS_MODES)
def test_ks_variance_scaling(mode, distribution, dtype, seed):
    shape = SHAPES[2]
    ours = initbook.variance_scaling_(
        empty(shape, dtype), 0.7, mode, distribution, generator=gen(seed, 0)
    )
    theirs = _torch_jax_style(shape, dtype, 0.7, mode, distribution, generator=gen(seed, 1))
    assert_same_distribution(ours, theirs)


ELEMENTWISE = {
    "normal": (
        lambda t, g: initbook.normal_(t, 0.5, 0.2, generator=g),
        lambda t, g: nn.init.normal_(t, 0.5, 0.2, generator=g),
    ),
    "uniform": (
        lambda t, g: initbook.uniform_(t, -0.3, 0.7, generator=g),
        lambda t, g: nn.init.uniform_(t, -0.3, 0.7, generator=g),
    ),
    **{
        f"trunc_normal{setting}": (
            lambda t, g, s=setting: initbook.trunc_normal_(t, *s, generator=g),
            lambda t, g, s=setting: nn.init.trunc_normal_(t, *s, generator=g),
        )
        for setting in TRUNC_SETTINGS
    },
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_ks_elementwise(name, dtype, seed):
    ours, theirs = ELEMENTWISE[name]
    assert_same_distribution(
        ours(empty(SHAPES[0], dtype), gen(seed, 0)), theirs(empty(SHAPES[0], dtype), gen(seed, 1))
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 3, 2)])
def test_orthogonal_half_is_torch_float32_rounded(shape, dtype, seed):
    """torch's QR has no float16/bfloat16 CPU kernel (its orthogonal_ raises); ours factorizes in
    float32, so it gives exactly torch's float32 matrix rounded once: stronger than a KS test."""
    ours = initbook.orthogonal_(empty(shape, dtype), generator=gen(seed))
    theirs = nn.init.orthogonal_(empty(shape), generator=gen(seed)).to(dtype)
    assert torch.equal(ours, theirs)
    with pytest.raises(RuntimeError, match="not implemented"):
        nn.init.orthogonal_(empty(shape, dtype), generator=gen(seed))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_ks_sparse_nonzeros(dtype, seed):
    ours = initbook.sparse_(empty((400, 100), dtype), 0.25, 0.05, generator=gen(seed, 0))
    theirs = nn.init.sparse_(empty((400, 100), dtype), 0.25, 0.05, generator=gen(seed, 1))
    for x in (ours, theirs):  # float16 rounds about 1 normal draw in 2e6 to 0 as well
        zeros = (x == 0).sum(dim=0)
        assert (zeros >= 100).all()
        assert zeros.sum().item() <= 100 * 100 + 10
    assert_same_distribution(ours[ours != 0], theirs[theirs != 0])


def _cases(test) -> int:
    """How many test cases ``test``'s ``parametrize`` decorators generate (the product of their lengths)."""
    marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
    return math.prod(len(m.args[1]) for m in marks)


def _docstring_count(name: str) -> int:
    """The count the module docstring states as ``name = <number>``, e.g. ``M = 93``."""
    found = re.findall(rf"``{name} = (\d+)``", __doc__)
    assert len(found) == 1, (name, found)
    return int(found[0])


def test_false_failure_budget():
    """K and M of the module docstring, recounted from the tests' own parametrize decorators.

    Adding a case to any parametrized statistical test changes the count and fails this test until the
    docstring (and its stated rate) is updated.
    """
    ks_tests = [obj for name, obj in globals().items() if name.startswith("test_ks_")]
    k = sum(_cases(test) for test in ks_tests)
    assert k == _docstring_count("K")
    # moment checks: 2 per assert_moments call, 1 per init_model case, 1 for the far tail
    m = (
        2 * _cases(test_variance_matches_theory)
        + 2 * 2  # test_torch_trunc_normal_is_uncorrected: torch's and ours
        + _cases(test_init_model_uses_correct_fans)
        + 1  # test_trunc_normal_far_tail
    )
    assert m == _docstring_count("M")
    rate = k * ALPHA + m * P_FALSE
    assert rate < float(
        re.search(r"fails falsely with probability below ``([\d.e-]+)``", __doc__)[1]
    )


# ---------------------------------------------------------------------------------------------------
# Values against theory (5 standard errors; see the module docstring)
# ---------------------------------------------------------------------------------------------------

NORMAL, UNIFORM, TRUNC = 0.0, -1.2, TRUNC_KURTOSIS
MOMENT_SHAPES = [(200, 200), (64, 50, 3, 5)]


def _variance(shape, scale, mode):
    fan_in, fan_out = fans_by_hand(shape)
    return scale / {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


MOMENT_CASES = {
    # name: (call, scale, mode, excess kurtosis), scale = gain**2 recomputed here by hand
    "kaiming_normal-relu": (
        lambda t, g: initbook.kaiming_normal_(t, nonlinearity="relu", generator=g),
        2.0,
        "fan_in",
        NORMAL,
    ),
    "kaiming_normal-leaky-fan_out": (
        lambda t, g: initbook.kaiming_normal_(t, 0.2, "fan_out", generator=g),
        2.0 / 1.04,
        "fan_out",
        NORMAL,
    ),
    "kaiming_normal-tanh": (
        lambda t, g: initbook.kaiming_normal_(t, nonlinearity="tanh", generator=g),
        25.0 / 9.0,
        "fan_in",
        NORMAL,
    ),
    "kaiming_uniform-relu-fan_out": (
        lambda t, g: initbook.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", generator=g),
        2.0,
        "fan_out",
        UNIFORM,
    ),
    "kaiming_uniform-default": (  # a=0 is passed on as the slope: gain**2 = 2, not 2 / 1.0001
        lambda t, g: initbook.kaiming_uniform_(t, generator=g),
        2.0,
        "fan_in",
        UNIFORM,
    ),
    "kaiming_uniform-selu": (
        lambda t, g: initbook.kaiming_uniform_(t, nonlinearity="selu", generator=g),
        0.5625,
        "fan_in",
        UNIFORM,
    ),
    "xavier_normal": (lambda t, g: initbook.xavier_normal_(t, generator=g), 1.0, "fan_avg", NORMAL),
    "xavier_normal-gain": (
        lambda t, g: initbook.xavier_normal_(t, math.sqrt(2), generator=g),
        2.0,
        "fan_avg",
        NORMAL,
    ),
    "xavier_uniform": (
        lambda t, g: initbook.xavier_uniform_(t, generator=g),
        1.0,
        "fan_avg",
        UNIFORM,
    ),
    "xavier_uniform-gain": (
        lambda t, g: initbook.xavier_uniform_(t, 0.5, generator=g),
        0.25,
        "fan_avg",
        UNIFORM,
    ),
    "lecun_normal": (lambda t, g: initbook.lecun_normal_(t, generator=g), 1.0, "fan_in", TRUNC),
    "lecun_uniform": (lambda t, g: initbook.lecun_uniform_(t, generator=g), 1.0, "fan_in", UNIFORM),
    "he_normal": (lambda t, g: initbook.he_normal_(t, generator=g), 2.0, "fan_in", TRUNC),
    "glorot_normal": (lambda t, g: initbook.glorot_normal_(t, generator=g), 1.0, "fan_avg", TRUNC),
    "torch_default": (
        lambda t, g: initbook.torch_default_(t, generator=g),
        1 / 3,
        "fan_in",
        UNIFORM,
    ),
    **{
        f"variance_scaling-{mode}-{dist}": (
            lambda t, g, m=mode, d=dist: initbook.variance_scaling_(t, 1.7, m, d, generator=g),
            1.7,
            mode,
            {"normal": NORMAL, "uniform": UNIFORM, "truncated_normal": TRUNC}[dist],
        )
        for mode in VS_MODES
        for dist in ("uniform", "truncated_normal")  # "normal" is covered by kaiming/xavier above
    },
}


@pytest.mark.parametrize("shape", MOMENT_SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("name", list(MOMENT_CASES))
def test_variance_matches_theory(name, shape, seed):
    call, scale, mode, kurtosis = MOMENT_CASES[name]
    x = call(empty(shape, torch.float64), gen(seed))
    assert_moments(x, _variance(shape, scale, mode), kurtosis)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("mode", VS_MODES)
def test_uniform_bounds_exact(mode, dtype, seed):
    shape = MOMENT_SHAPES[1]
    bound = math.sqrt(3 * _variance(shape, 1.3, mode))
    x = initbook.variance_scaling_(empty(shape, dtype), 1.3, mode, "uniform", generator=gen(seed))
    limit = torch.tensor(bound, dtype=dtype).item()  # the bound as the dtype stores it
    assert x.abs().max().item() <= limit
    assert x.max().item() > 0.999 * bound
    assert x.min().item() < -0.999 * bound


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("name", ["he_normal_", "lecun_normal_", "glorot_normal_"])
def test_truncated_bounds_and_correction(name, dtype, seed):
    """Cut at 2 underlying stds, i.e. at 2 * std / C: the std after truncation is the target (JAX)."""
    shape = MOMENT_SHAPES[0]
    scale, mode, _ = JAX_PRESETS[name]
    std = math.sqrt(_variance(shape, scale, mode))
    x = getattr(initbook, name)(empty(shape, dtype), generator=gen(seed))
    assert x.abs().max().item() <= torch.tensor(2 * std / C, dtype=dtype).item()
    assert x.abs().max().item() > 0.99 * 2 * std / C  # the cut is where it should be, not lower
    # untruncated kaiming_normal_ with the same variance exceeds that cut (2.3% of its values do)
    y = initbook.kaiming_normal_(empty(shape, dtype), nonlinearity="relu", generator=gen(seed, 1))
    assert (y.abs() > 2 * std / C).float().mean().item() > 0.01


def test_torch_trunc_normal_is_uncorrected(seed):
    """torch's trunc_normal_(std=s, a=-2s, b=2s) has std C * s, not s; ours (same semantics) too."""
    s, shape = 0.05, MOMENT_SHAPES[0]
    for fn, stream in ((nn.init.trunc_normal_, 0), (initbook.trunc_normal_, 1)):
        x = fn(empty(shape, torch.float64), 0.0, s, -2 * s, 2 * s, generator=gen(seed, stream))
        assert_moments(x, (C * s) ** 2, TRUNC)  # 2 moment checks each
        n = x.numel()
        assert abs(x.pow(2).mean().item() - s**2) > 20 * s**2 * math.sqrt((2 + TRUNC) / n)


def test_trunc_normal_defaults_are_absolute_bounds(seed):
    """The pitfall: with std=0.02 the default [-2, 2] cuts nothing; std stays 0.02."""
    x = initbook.trunc_normal_(empty((300, 300), torch.float64), std=0.02, generator=gen(seed))
    assert x.std().item() == pytest.approx(0.02, rel=0.02)
    assert x.abs().max().item() < 0.2


def test_trunc_normal_far_tail(seed):
    """Bounds 6 to 7 std out, where torch warns, are sampled from the inverse CDF in float64."""
    x = initbook.trunc_normal_(
        empty((100, 100), torch.float64), 0.0, 1.0, 6.0, 7.0, generator=gen(seed)
    )
    assert x.min().item() >= 6.0
    assert x.max().item() <= 7.0
    expected_mean = stats.truncnorm(6.0, 7.0).mean()
    assert x.mean().item() == pytest.approx(
        expected_mean, abs=Z * stats.truncnorm(6.0, 7.0).std() / 100
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(8, 8), (5, 12), (12, 5), (6, 2, 3, 3), (4, 3, 2, 2, 1)])
def test_orthogonal_rows_or_columns_orthonormal(shape, dtype, seed):
    gain = 1.5
    w = initbook.orthogonal_(empty(shape, dtype), gain, generator=gen(seed)).double()
    m = w.reshape(shape[0], -1)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 4e-2}[
        dtype
    ]
    torch.testing.assert_close(
        gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64), rtol=0, atol=tol
    )


@pytest.mark.parametrize("target", [1.0, 2.5])
@pytest.mark.parametrize("shape", [(64, 128), (256, 256), (32, 16, 3, 3), (10, 1000), (300, 20)])
def test_spectral_normalize(shape, target, seed):
    w = initbook.normal_(empty(shape, torch.float64), generator=gen(seed, 0))
    initbook.spectral_normalize_(w, target, generator=gen(seed, 1))
    top = torch.linalg.matrix_norm(w.reshape(shape[0], -1), ord=2).item()
    assert top == pytest.approx(target, rel=1e-3)
    assert top >= target * (1 - 1e-12)  # the estimate never exceeds sigma_1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_spectral_normalize_low_precision_and_idempotent(dtype, seed):
    w = initbook.kaiming_normal_(empty((48, 80), dtype), generator=gen(seed, 0))
    initbook.spectral_normalize_(w, generator=gen(seed, 1))
    top = torch.linalg.matrix_norm(w.double(), ord=2).item()
    assert top == pytest.approx(1.0, rel=1e-3 if dtype == torch.float16 else 1e-5)
    before = w.clone()
    initbook.spectral_normalize_(w, generator=gen(seed, 2))
    torch.testing.assert_close(w, before, rtol=2e-3 if dtype == torch.float16 else 1e-5, atol=0)


# ---------------------------------------------------------------------------------------------------
# Whole models: init_model and lsuv_
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "scheme", "kwargs", "scale", "mode"),
    [
        (nn.ConvTranspose2d(64, 32, 5), "kaiming_normal", {"nonlinearity": "relu"}, 2.0, "fan_in"),
        (nn.Conv2d(64, 128, 3, groups=4), "kaiming_normal", {"mode": "fan_out"}, 2.0, "fan_out"),
        (nn.ConvTranspose1d(96, 144, 7, groups=3), "xavier_uniform", {}, 1.0, "fan_avg"),
        (nn.Conv3d(32, 64, 3, groups=8), "glorot_normal", {}, 1.0, "fan_avg"),
    ],
    ids=["transposed-fan_in", "grouped-fan_out", "transposed-grouped-avg", "grouped3d"],
)
def test_init_model_uses_correct_fans(layer, scheme, kwargs, scale, mode, seed):
    """The weights' variance follows the layer's true fans (4 moment checks counted in M: one each)."""
    model = nn.Sequential(layer)
    initbook.init_model(model, scheme, generator=gen(seed), **kwargs)
    k = math.prod(layer.kernel_size)
    fan_in = layer.in_channels // layer.groups * k  # recomputed here, not taken from fans_of
    fan_out = layer.out_channels // layer.groups * k
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    w = layer.weight.detach().double().flatten()
    kurtosis = {"kaiming_normal": NORMAL, "xavier_uniform": UNIFORM, "glorot_normal": TRUNC}[scheme]
    second = w.pow(2).mean().item()
    se = scale / n * math.sqrt((2 + kurtosis) / w.numel())
    assert abs(second - scale / n) < Z * se
    torch_fan_in, torch_fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    torch_n = {
        "fan_in": torch_fan_in,
        "fan_out": torch_fan_out,
        "fan_avg": (torch_fan_in + torch_fan_out) / 2,
    }
    assert abs(second - scale / torch_n[mode]) > 20 * se  # torch's fans would be visibly wrong
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_init_model_schemes_and_bias_options(seed):
    model = nn.Sequential(
        nn.Linear(10, 20), nn.Tanh(), nn.Conv1d(4, 8, 3), nn.ConvTranspose1d(8, 4, 3)
    )
    received = []

    def record(weight, *, fans, generator, scale):
        received.append(fans)
        return initbook.variance_scaling_(weight, scale, fans=fans, generator=generator)

    def bias_init(b, *, fans, generator):
        return initbook.constant_(b, fans[0])

    initbook.init_model(model, record, bias=bias_init, generator=gen(seed), scale=2.0)
    assert received == [(10, 20), (12, 24), (24, 12)]
    assert model[0].bias.unique().tolist() == [10.0]
    assert model[3].bias.unique().tolist() == [24.0]

    initbook.init_model(model, "orthogonal", bias=None, generator=gen(seed), gain=2.0)
    w = model[0].weight.detach()
    torch.testing.assert_close(w.T @ w, 4 * torch.eye(10), rtol=0, atol=1e-4)
    assert model[0].bias.unique().tolist() == [10.0]  # bias=None leaves biases alone

    initbook.init_model(model, "torch_default", bias="torch_default", generator=gen(seed))
    assert model[3].bias.abs().max().item() <= 1 / math.sqrt(
        24
    )  # true fan_in of the transposed conv

    for scheme in init._SCHEMES:
        assert initbook.init_model(model, scheme, generator=gen(seed)) is model


def test_init_model_errors():
    model = nn.Sequential(nn.Linear(3, 4))
    valid = str(sorted(init._SCHEMES)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ValueError, match=rf"scheme='he' is not one of {valid}"):
        initbook.init_model(model, "he")
    with pytest.raises(ValueError, match=r"bias='ones' is not one of \['torch_default', 'zeros'\]"):
        initbook.init_model(model, "he_normal", bias="ones")
    with pytest.raises(TypeError, match="unexpected keyword"):
        initbook.init_model(model, "he_normal", gain=2.0)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        initbook.init_model(torch.empty(3, 3), "he_normal")
    with pytest.raises(TypeError, match="not materialized"):
        initbook.init_model(nn.Sequential(nn.LazyLinear(3)), "he_normal")


def _output_variances(model, batch):
    variances = {}

    def hook(module, args, output, name):
        variances.setdefault(name, output.double().var().item())

    hooks = [
        m.register_forward_hook(lambda mod, i, out, n=name: hook(mod, i, out, n))
        for name, m in model.named_modules()
        if isinstance(m, init._WEIGHTED_LAYERS)
    ]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in hooks:
            h.remove()
    return variances


def _deep_mlp():
    layers = [nn.Linear(32, 64)]
    for i in range(9):
        layers += [nn.Tanh() if i % 2 else nn.ReLU(), nn.Linear(64, 64)]
    return nn.Sequential(*layers)


def _conv_net():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, groups=4),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 8, 2, stride=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    )


@pytest.mark.parametrize(
    ("build", "batch_shape", "target"),
    [(_deep_mlp, (256, 32), 1.0), (_conv_net, (32, 3, 8, 8), 1.0), (_deep_mlp, (256, 32), 0.25)],
    ids=["mlp", "conv", "mlp-quarter"],
)
def test_lsuv_reaches_target_variance(build, batch_shape, target, seed):
    model = build()
    batch = torch.randn(batch_shape, generator=gen(seed, 0)) * 3.0
    tol = 0.1 * target
    report = initbook.lsuv_(model, batch, target_var=target, tol=tol, generator=gen(seed, 1))
    names = [name for name, m in model.named_modules() if isinstance(m, init._WEIGHTED_LAYERS)]
    assert [r.name for r in report] == names  # forward order
    assert all(r.converged and 0 <= r.iterations <= 10 for r in report)
    measured = _output_variances(model, batch)
    for record in report:
        assert abs(measured[record.name] - target) < tol
        assert measured[record.name] == pytest.approx(record.var_after, rel=1e-9)
    assert all(not m._forward_hooks for m in model.modules())


def test_lsuv_zero_bias_and_orthogonal_preinit(seed):
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8))
    initbook.lsuv_(model, torch.randn(64, 16, generator=gen(seed)), generator=gen(seed, 1))
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in (model[0], model[2]))
    w = model[0].weight.detach()  # a rescaled orthogonal matrix: W W^T = c I
    gram = w @ w.T
    torch.testing.assert_close(gram, gram[0, 0] * torch.eye(16), rtol=0, atol=1e-5)


def test_lsuv_removes_hooks_on_error(seed):
    broken = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))  # shape error in the second layer
    with pytest.raises(RuntimeError):
        initbook.lsuv_(broken, torch.randn(8, 4, generator=gen(seed)))
    assert all(not m._forward_hooks for m in broken.modules())

    class FailsLater(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.calls = nn.Linear(4, 4), nn.Linear(4, 4), 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 2:  # the order pass and the first measurement succeed
                raise RuntimeError("boom")
            return self.b(self.a(x))

    model = FailsLater()
    with pytest.raises(RuntimeError, match="boom"):
        initbook.lsuv_(model, torch.randn(8, 4, generator=gen(seed)) * 5)
    assert all(not m._forward_hooks for m in model.modules())


def test_lsuv_warns_when_it_cannot_converge(seed):
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with pytest.warns(UserWarning, match="not within tol"):
        report = initbook.lsuv_(model, torch.zeros(8, 4))  # zero output: nothing to rescale
    assert not any(r.converged for r in report)
    with pytest.warns(UserWarning, match="after 0 rescaling"):
        initbook.lsuv_(model, torch.randn(8, 4, generator=gen(seed)) * 10, max_iter=0)


def test_lsuv_errors():
    with pytest.raises(ValueError, match="no Linear"):
        initbook.lsuv_(nn.Sequential(nn.ReLU()), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="tol must be > 0"):
        initbook.lsuv_(nn.Linear(2, 2), torch.zeros(2, 2), tol=0.0)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        initbook.lsuv_(nn.Linear(2, 2), torch.zeros(2, 2), max_iter=True)
