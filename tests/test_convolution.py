r"""Tests for the convolution chapter: delta_orthogonal_, the zero-padding variance map, pooling, the fans.

Statistical tests compare a Monte-Carlo mean with a prediction within ``k_sigma(n) * stderr``
(``tests/_stats.py``: false-failure rate 5.7e-7 per comparison). A map test compares every pixel of every
layer, ``m`` comparisons, so its false-failure rate is at most ``m * 5.7e-7`` (union bound): below 1e-4 for
the largest map here (3 layers of 8x8 = 192 pixels). Each docstring says what error the test would catch.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.init import _calculate_fan_in_and_fan_out as torch_fans

import initbook
from initbook import stats, theory
from tests._stats import assert_agrees, estimate, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------------------
# delta_orthogonal_
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((8, 8, 3, 3), torch.float32),
        ((16, 8, 5), torch.float64),
        ((6, 4, 3, 1, 5), torch.float64),
        ((8, 8, 3, 3), torch.float16),
        ((5, 5, 1, 1), torch.bfloat16),
    ],
)
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_delta_orthogonal_centre_is_orthogonal_and_rest_zero(shape, dtype, gain, seed):
    w = initbook.delta_orthogonal_(torch.empty(shape, dtype=dtype), gain, generator=seeded(seed))
    assert w.dtype == dtype
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    h = w[centre].double()
    eps = {torch.float16: 4e-3, torch.bfloat16: 3e-2}.get(dtype, 1e-5)
    assert torch.allclose(
        h.T @ h, gain**2 * torch.eye(shape[1], dtype=torch.float64), atol=eps * gain**2
    )
    rest = w.clone()
    rest[centre] = 0
    assert int(rest.count_nonzero()) == 0


def test_delta_orthogonal_is_orthogonal_on_the_centre_with_the_same_generator(seed):
    """The centre is exactly orthogonal_'s (out, in) matrix from the same generator (so Haar-distributed)."""
    w = initbook.delta_orthogonal_(torch.empty(12, 7, 3, 3), 1.5, generator=seeded(seed))
    h = initbook.orthogonal_(torch.empty(12, 7), 1.5, generator=seeded(seed))
    assert torch.equal(w[:, :, 1, 1], h)


def test_delta_orthogonal_generator_reproducible_and_independent(seed):
    a = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3), generator=seeded(seed))
    b = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3), generator=seeded(seed))
    c = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3), generator=seeded(seed, 1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(seed % 2**31)
    d = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3))
    torch.manual_seed(seed % 2**31)
    e = initbook.delta_orthogonal_(torch.empty(8, 8, 3, 3))
    assert torch.equal(d, e)


def test_delta_orthogonal_no_grad_and_returns_tensor():
    p = nn.Parameter(torch.empty(4, 4, 3, 3))
    out = initbook.delta_orthogonal_(p)
    assert out is p
    assert p.grad_fn is None
    assert p.requires_grad


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: initbook.delta_orthogonal_(torch.empty(4, 4)),
            ValueError,
            "at least 3 dimensions",
        ),
        (
            lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 2, 3)),
            ValueError,
            r"odd kernel.*\(2, 3\)",
        ),
        (lambda: initbook.delta_orthogonal_(torch.empty(4, 8, 3, 3)), ValueError, "out=4, in=8"),
        (
            lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 3), -1.0),
            ValueError,
            "gain must be >= 0",
        ),
        (lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 3), math.nan), ValueError, "finite"),
        (lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 3), True), TypeError, "real number"),
        (
            lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 3), generator=0),
            TypeError,
            "generator",
        ),
        (
            lambda: initbook.delta_orthogonal_(torch.empty(4, 4, 3, dtype=torch.int64)),
            TypeError,
            "floating",
        ),
    ],
)
def test_delta_orthogonal_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_delta_orthogonal_zero_element_warns():
    w = torch.empty(0, 0, 3, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        assert initbook.delta_orthogonal_(w) is w


@pytest.mark.parametrize(("channels_out", "kernel"), [(8, 3), (12, 5)])
def test_deep_linear_delta_orthogonal_stack_preserves_the_norm_exactly(channels_out, kernel, seed):
    """40 circular-padded layers: ||y|| = gain**depth ||x|| for every input, to rounding (float64).

    The first layer widens 8 -> ``channels_out`` (out > in: H^T H = I still preserves norms), the others
    are square. A kernel with any nonzero off-centre tap, or a non-orthogonal centre, fails by far more.
    """
    gen = seeded(seed)
    x = torch.randn(3, 8, 6, 7, generator=gen, dtype=torch.float64)
    y, gain = x, 1.1
    r = kernel // 2
    for layer in range(40):
        c_in = 8 if layer == 0 else channels_out
        w = initbook.delta_orthogonal_(
            torch.empty(channels_out, c_in, kernel, kernel, dtype=torch.float64),
            gain,
            generator=gen,
        )
        y = F.conv2d(F.pad(y, (r, r, r, r), mode="circular"), w)
    ratio = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.allclose(ratio, torch.full_like(ratio, gain**40), rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# The variance map under zero padding
# ---------------------------------------------------------------------------------------------------------


def test_padded_map_exact_facts():
    # one linear layer: the count of in-image taps over k^2
    m = theory.padded_conv_second_moments((3, 5), 3, 1, nonlinearity="linear")[0]
    counts = torch.tensor([[4, 6, 6, 6, 4], [6, 9, 9, 9, 6], [4, 6, 6, 6, 4]], dtype=torch.float64)
    assert torch.allclose(m, counts / 9, rtol=1e-15)
    # He ReLU: 2 q0 (the unrectified input) wherever the border is out of reach, at any depth
    m = theory.padded_conv_second_moments(21, 3, 10, q0=0.7)
    for layer in range(10):
        assert m[layer, 10, 10] == pytest.approx(1.4, rel=1e-12)
        assert m[layer, layer + 1, 10] == pytest.approx(1.4, rel=1e-12)  # depth l+1 reaches row l
        assert m[layer, layer, 10] < 1.4 * (1 - 1e-9)  # ... and row l - 1 sees the border
    # the gain scales layer l by gain2**l, relu's 1/2 included
    a = theory.padded_conv_second_moments(9, 5, 4, nonlinearity="relu", gain2=3.0)
    b = theory.padded_conv_second_moments(9, 5, 4, nonlinearity="linear", gain2=1.5)
    for layer in range(4):
        assert torch.allclose(a[layer], b[layer] * 2.0, rtol=1e-12)
    # a 1x1 kernel has no border
    assert torch.all(theory.padded_conv_second_moments(4, 1, 3, nonlinearity="linear") == 1.0)


@pytest.mark.parametrize(("size", "kernel"), [(8, 3), ((5, 11), 3), (12, 5), (28, 7)])
def test_padding_decay_is_the_asymptotic_rate_of_the_map(size, kernel):
    """The ratio of consecutive maps tends to the top eigenvalue; for k = 3 the closed form holds."""
    m = theory.padded_conv_second_moments(size, kernel, 400, nonlinearity="linear")
    lam = theory.padding_variance_decay(size, kernel)
    assert float(m[-1].sum() / m[-2].sum()) == pytest.approx(lam, rel=1e-8)
    if kernel == 3:
        h, w = (size, size) if isinstance(size, int) else size
        closed = (1 + 2 * math.cos(math.pi / (h + 1))) * (1 + 2 * math.cos(math.pi / (w + 1))) / 9
        assert lam == pytest.approx(closed, rel=1e-12)


@pytest.mark.parametrize(("nonlinearity", "channels"), [("relu", 16), ("linear", 4), ("relu", 2)])
def test_padded_map_matches_monte_carlo(nonlinearity, channels, seed):
    """Every pixel of 3 layers of 8x8, 2000 networks: within k_sigma standard errors.

    The standard error of a pixel is about 3% of its value (at 2 channels), so a corner predicted with the
    full tap count (9/4 too large), a missing ReLU factor 1/2, or the wrong fan (C k^2 vs k^2) is off by
    more than 30 standard errors. The 2-channel case checks that the map needs no large width.
    """
    m = stats.conv_stack_second_moments(
        8, 3, 3, channels=channels, nonlinearity=nonlinearity, trials=2000, generator=seeded(seed)
    )
    predicted = theory.padded_conv_second_moments(8, 3, 3, nonlinearity=nonlinearity)
    assert_agrees(estimate(m), predicted, what=f"{nonlinearity}, C={channels}")


def test_circular_padding_has_no_border(seed):
    """Circular padding: every pixel has the interior value (He, ReLU: 2). A zero-padded corner has 4/9."""
    m = stats.conv_stack_second_moments(
        6, 3, 2, channels=8, padding_mode="circular", trials=2000, generator=seeded(seed)
    )
    assert_agrees(estimate(m), torch.full((2, 6, 6), 2.0), what="circular")


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("window", [1, 2, 4, 9])
def test_pooled_second_moment_matches_monte_carlo(kind, relu, window, seed):
    """200,000 pools of i.i.d. normals; the stderr is below 0.5% of the value, so a max pool computed as
    a single ReLU (0.5), or an average pool that forgets the ReLU's mean, is off by over 20 stderr."""
    z = torch.randn(200_000, window, generator=seeded(seed), dtype=torch.float64)
    v = torch.relu(z) if relu else z
    pooled = v.mean(dim=1) if kind == "avg" else v.amax(dim=1)
    assert_agrees(estimate(pooled.square()), theory.pooled_second_moment(window, kind, relu=relu))


def test_pooled_second_moment_closed_forms():
    assert theory.pooled_second_moment(2, "max", relu=False) == pytest.approx(1.0, abs=1e-12)
    assert theory.pooled_second_moment(1, "avg") == 0.5
    mu2 = 1 / (2 * math.pi)  # the squared mean of a ReLU'd standard normal
    assert theory.pooled_second_moment(1000, "avg") == pytest.approx(
        mu2 + (0.5 - mu2) / 1000, rel=1e-14
    )
    # two ReLU'd normals: E[max^2] = 1 (max^2 and min^2 have the same law), and the part with max < 0,
    # both negative, is E[min(|a|, |b|)^2] / 4 = (1 - 2/pi) / 4 (polar coordinates), so 3/4 + 1/(2 pi)
    assert theory.pooled_second_moment(2, "max") == pytest.approx(
        0.75 + 1 / (2 * math.pi), rel=1e-10
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: theory.padded_conv_second_moments(8, 4, 2), ValueError, "kernel_size must be odd"),
        (lambda: theory.padded_conv_second_moments(0, 3, 2), ValueError, "image_size"),
        (lambda: theory.padded_conv_second_moments((8,), 3, 2), TypeError, "image_size"),
        (lambda: theory.padded_conv_second_moments(8, 3, 0), ValueError, "depth"),
        (
            lambda: theory.padded_conv_second_moments(8, 3, 2, nonlinearity="tanh"),
            ValueError,
            "tanh",
        ),
        (lambda: theory.padded_conv_second_moments(8, 3, 2, gain2=-1.0), ValueError, "gain2"),
        (lambda: theory.padding_variance_decay(8, 2), ValueError, "odd"),
        (lambda: theory.pooled_second_moment(0, "max"), ValueError, "window"),
        (lambda: theory.pooled_second_moment(4, "min"), ValueError, "min"),
        (lambda: theory.pooled_second_moment(4, "avg", relu=1), TypeError, "relu"),
        (
            lambda: stats.conv_stack_second_moments(8, 3, 2, padding_mode="reflect"),
            ValueError,
            "reflect",
        ),
        (
            lambda: stats.conv_stack_second_moments(8, 3, 2, dtype=torch.float16),
            ValueError,
            "float16",
        ),
        (lambda: stats.conv_jacobian_singular_values([3, 2], 4, 4), ValueError, "increasing"),
        (lambda: stats.conv_jacobian_singular_values(3, 4, 4, weights="orth"), ValueError, "orth"),
        (lambda: stats.conv_jacobian_singular_values(3, 4, 4, generator=1), TypeError, "generator"),
    ],
)
def test_convolution_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------------------
# The Jacobian of deep CNNs
# ---------------------------------------------------------------------------------------------------------


def test_linear_delta_orthogonal_cnn_is_an_isometry(seed):
    s = stats.conv_jacobian_singular_values(
        [5, 30], 6, (3, 4), weights="delta_orthogonal", phi="linear", nets=3, generator=seeded(seed)
    )
    assert s.shape == (2, 3, 72)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-10)


def test_conv_jacobian_agrees_with_autograd(seed):
    """The tangent propagation builds the same Jacobian as torch.autograd on the same network."""
    gen = seeded(seed)
    state = gen.get_state()
    s = stats.conv_jacobian_singular_values(
        4,
        3,
        4,
        weights="gaussian",
        phi="tanh",
        sigma_w2=1.5,
        sigma_b2=0.1,
        nets=1,
        q0=0.5,
        generator=gen,
    )
    gen.set_state(state)  # replay the same draws, in the same order, through autograd
    x0 = torch.tanh(math.sqrt(0.5) * torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64))
    layers = []
    for _ in range(4):
        w = torch.empty(3, 3, 3, 3, dtype=torch.float64).normal_(
            0, math.sqrt(1.5 / 27), generator=gen
        )
        b = torch.randn(3, generator=gen, dtype=torch.float64) * math.sqrt(0.1)
        layers.append((w, b))

    def net(x):
        for w, b in layers:
            x = torch.tanh(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), w, b))
        return x

    jac = torch.autograd.functional.jacobian(net, x0).reshape(48, 48)
    assert torch.allclose(s, torch.linalg.svdvals(jac), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weights", ["delta_orthogonal", "gaussian"])
def test_critical_tanh_cnn_mean_squared_singular_value_is_one(weights, seed):
    """At the critical point chi_1 = 1 the mean squared singular value of the Jacobian stays near 1.

    Mean field makes it exactly chi_1**L = 1 at infinite width; at 16 channels and depth 10 the measured
    excess is about 6% for delta-orthogonal kernels (1.063 +- 0.005 over 200 networks) and none for Gaussian
    ones (0.988 +- 0.013), so the test allows 0.1 on top of k_sigma standard errors (32 networks). Power:
    sigma_w2 off the critical value by a factor 1.5 or 0.67 gives about 2.1 or 0.09 (measured), and a
    Jacobian without the phi' factors sigma_w2**10 = 5.7; a 10% error in sigma_w2 moves the mean by only
    15-20% (q* moves too) and is not reliably caught.
    """
    sw2 = theory.critical_sigma_w2(1e-3, "tanh")
    s = stats.conv_jacobian_singular_values(
        10, 16, 4, weights=weights, sigma_w2=sw2, sigma_b2=1e-3, nets=32, generator=seeded(seed),
        dtype=torch.float32,
    )  # fmt: skip
    assert_agrees(estimate(s.double().square().mean(dim=1)), 1.0, allowance=0.1, what=weights)


# ---------------------------------------------------------------------------------------------------------
# Fans of grouped, depthwise and transposed convolutions
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv2d(8, 16, 3, groups=4),
        nn.Conv2d(8, 8, 3, groups=8),  # depthwise
        nn.ConvTranspose2d(8, 4, 3),
        nn.ConvTranspose2d(8, 12, 3, groups=4),
    ],
)
def test_fans_of_preserves_interior_variance_where_torch_fans_do_not(layer, seed):
    """kaiming_normal_(fans=fans_of(layer), nonlinearity="linear") keeps the second moment of interior
    outputs at 1 (Monte Carlo, 400 layers); torch's fan_in does so only where it equals the true one.
    A fan off by the factor 2 or 3 of these layers moves the estimate by over 20 stderr."""
    gen = seeded(seed)
    true_in = initbook.fans_of(layer)[0]
    values = []
    for _ in range(400):
        with torch.no_grad():
            initbook.kaiming_normal_(
                layer.weight, nonlinearity="linear", fans=initbook.fans_of(layer), generator=gen
            )
            layer.bias.zero_()
            x = torch.randn(1, layer.in_channels, 9, 9, generator=gen)
            y = layer(x)
        c = y.shape[-1] // 2
        values.append(float(y[0, :, c - 1 : c + 2, c - 1 : c + 2].square().mean()))
    assert_agrees(estimate(torch.tensor(values)), 1.0, what=type(layer).__name__)
    assert true_in == layer.in_channels // layer.groups * 9
    if isinstance(layer, nn.ConvTranspose2d) or layer.groups > 1:
        assert torch_fans(layer.weight) != initbook.fans_of(layer)


def test_no_unexpected_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theory.padded_conv_second_moments(5, 3, 2)
        theory.pooled_second_moment(4, "max")


@pytest.mark.parametrize(
    "layer",
    [
        nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1),  # the usual upsampling layer
        nn.ConvTranspose2d(6, 4, 3, stride=2),  # 3 taps alternate 2, 1: mean 1.5 per dimension
        nn.ConvTranspose1d(4, 8, 6, stride=3, groups=2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.Conv2d(4, 8, (4, 2), stride=(2, 2), groups=2),
        nn.Conv1d(3, 5, 5, stride=1, dilation=2),
    ],
    ids=lambda m: f"{type(m).__name__}-k{m.kernel_size}-s{m.stride}",
)
def test_fans_of_counts_strided_connections(layer):
    """With all-ones weights and input, an interior output is its number of terms (fan_in) and the gradient
    of sum(y) at an interior input is the number of outputs it feeds (fan_out); averaged over one period
    of the stride. Ignoring the stride (the old fans_of, and torch) is off by s**d on one side."""
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    d = layer.weight.dim() - 2
    x = torch.ones(1, layer.in_channels, *(24,) * d, requires_grad=True)
    y = layer(x)
    y.backward(torch.ones_like(y))
    inner_y = y.detach()[(0, 0, *(slice(8, 8 + 6),) * d)]  # 6 is a multiple of every stride here
    inner_x = x.grad[(0, 0, *(slice(8, 8 + 6),) * d)]
    counted = (round(float(inner_y.mean())), round(float(inner_x.mean())))
    assert counted == initbook.fans_of(layer)
    exact = (float(inner_y.mean()), float(inner_x.mean()))
    assert max(abs(a - b) for a, b in zip(exact, counted, strict=True)) <= 0.5


def test_diagnose_does_not_flag_strided_convs_initialized_with_torch_fan_out(seed):
    """fans_of counts the stride, so a strided conv's true fan-out differs from torch's; torchvision's
    kaiming_normal_(mode="fan_out") on it is not a grouped/transposed fan error and is not flagged.
    A strided transposed convolution with torch's default init still is."""
    gen = seeded(seed)
    conv = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 1, stride=2)
    )
    for m in conv:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
    report = initbook.diagnose(conv, torch.randn(8, 3, 16, 16, generator=gen))
    assert "torch_fans" not in report.codes()
    up = nn.Sequential(nn.ConvTranspose2d(64, 8, 4, stride=2, padding=1), nn.ReLU())
    assert "torch_fans" in initbook.diagnose(up, torch.randn(4, 64, 6, 6, generator=gen)).codes()
