r"""Recurrent networks: the initializers on torch's own modules, and the theory against Monte Carlo.

Tolerances follow ``tests/_stats.py``: ``k_sigma(n)`` standard errors for a false-failure rate of
``P_FALSE = 5.7e-7`` per comparison. A test comparing ``m`` lags fails falsely with probability at most
``m * P_FALSE``; the largest ``m`` here is 31, so every test's rate is below 2e-5. Where the prediction is
exact only at infinite width (mean-field), the allowance is stated and sized in the test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initbook import init, stats, theory
from tests._stats import assert_agrees, estimate, seeded

F64 = torch.float64


# ---------------------------------------------------------------------------------------------------------
# Initializers: the right slices change, nothing else does
# ---------------------------------------------------------------------------------------------------------


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _assert_only_rows_changed(before, module, changed: dict[str, slice]) -> None:
    """Every parameter equals its snapshot except the listed rows of the listed ones."""
    for name, p in module.named_parameters():
        mask = torch.ones_like(p, dtype=torch.bool)
        if name in changed:
            mask[changed[name]] = False
        assert torch.equal(p.detach()[mask], before[name][mask]), name


def _bias_names(module):
    return [n for n, _ in module.named_parameters() if n.startswith("bias_ih")]


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True),
        lambda: nn.LSTM(3, 5, num_layers=2, proj_size=2),
        lambda: nn.LSTMCell(3, 5),
    ],
)
def test_lstm_forget_bias_sets_the_f_block_only(make):
    """torch's gate order is (i, f, g, o): rows 5:10 of both biases; bias_hh's slice is zeroed."""
    module = make()
    before = _snapshot(module)
    assert init.lstm_forget_bias_(module, 2.5) is module
    f = slice(5, 10)
    changed = {}
    for name in _bias_names(module):
        hh = name.replace("bias_ih", "bias_hh")
        ih_p, hh_p = getattr(module, name), getattr(module, hh)
        assert (ih_p[f] == 2.5).all()
        assert (hh_p[f] == 0).all()
        assert ((ih_p + hh_p)[f] == 2.5).all()
        changed[name] = changed[hh] = f
    _assert_only_rows_changed(before, module, changed)


@pytest.mark.parametrize(
    "make", [lambda: nn.GRU(3, 4, num_layers=3, bidirectional=True), lambda: nn.GRUCell(3, 4)]
)
def test_gru_update_bias_sets_the_z_block_only(make):
    """torch's gate order is (r, z, n): rows 4:8."""
    module = make()
    before = _snapshot(module)
    init.gru_update_bias_(module, -1.5)
    z = slice(4, 8)
    changed = {}
    for name in _bias_names(module):
        hh = name.replace("bias_ih", "bias_hh")
        assert (getattr(module, name)[z] == -1.5).all()
        assert (getattr(module, hh)[z] == 0).all()
        changed[name] = changed[hh] = z
    _assert_only_rows_changed(before, module, changed)


@pytest.mark.parametrize(
    ("make", "gates"),
    [
        (lambda: nn.RNN(3, 6, num_layers=2, bidirectional=True), 1),
        (lambda: nn.LSTM(3, 6, num_layers=2), 4),
        (lambda: nn.GRU(3, 6), 3),
        (lambda: nn.LSTMCell(3, 6), 4),
        (lambda: nn.GRUCell(3, 6), 3),
        (lambda: nn.RNNCell(3, 6), 1),
    ],
)
def test_recurrent_orthogonal_gives_every_gate_block_its_own_orthogonal_matrix(make, gates, seed):
    module = make()
    before = _snapshot(module)
    init.recurrent_orthogonal_(module, gain=0.7, generator=seeded(seed))
    eye = torch.eye(6)
    changed = {}
    for name, p in module.named_parameters():
        if name.startswith("weight_hh"):
            changed[name] = slice(None)
            blocks = p.detach().split(6)
            assert len(blocks) == gates
            for blk in blocks:
                torch.testing.assert_close(blk @ blk.T, 0.49 * eye, atol=1e-5, rtol=0)
            if (
                gates > 1
            ):  # independent blocks, not one tall orthonormal matrix (its blocks are not orthogonal)
                assert not torch.allclose(blocks[0], blocks[1])
    _assert_only_rows_changed(before, module, changed)
    again = make()
    init.recurrent_orthogonal_(again, gain=0.7, generator=seeded(seed))
    for name in changed:  # the same generator seed gives the same matrices
        assert torch.equal(getattr(module, name), getattr(again, name))


def test_recurrent_orthogonal_with_projection_is_semi_orthogonal(seed):
    lstm = nn.LSTM(3, 6, proj_size=2)
    init.recurrent_orthogonal_(lstm, generator=seeded(seed))
    for blk in lstm.weight_hh_l0.detach().split(6):  # (6, 2) blocks: orthonormal columns
        torch.testing.assert_close(blk.T @ blk, torch.eye(2), atol=1e-5, rtol=0)


def test_irnn_sets_identity_and_zero_biases_only():
    rnn = nn.RNN(3, 4, num_layers=2, nonlinearity="relu")
    before = _snapshot(rnn)
    init.irnn_(rnn, scale=0.5)
    for k in range(2):
        assert torch.equal(getattr(rnn, f"weight_hh_l{k}"), 0.5 * torch.eye(4))
        assert not getattr(rnn, f"bias_ih_l{k}").any()
        assert not getattr(rnn, f"bias_hh_l{k}").any()
    assert torch.equal(rnn.weight_ih_l0, before["weight_ih_l0"])
    assert torch.equal(rnn.weight_ih_l1, before["weight_ih_l1"])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: init.lstm_forget_bias_(nn.GRU(2, 3)),
            TypeError,
            r"nn\.LSTM.*nn\.LSTMCell.*GRU.*gru_update_bias_",
        ),
        (
            lambda: init.lstm_forget_bias_(nn.Linear(2, 3)),
            TypeError,
            r"\['nn\.LSTM', 'nn\.LSTMCell'\].*Linear",
        ),
        (lambda: init.gru_update_bias_(nn.LSTM(2, 3)), TypeError, r"nn\.GRU.*lstm_forget_bias_"),
        (lambda: init.irnn_(nn.LSTM(2, 3)), TypeError, r"\['nn\.RNN', 'nn\.RNNCell'\].*LSTM"),
        (
            lambda: init.recurrent_orthogonal_(nn.Linear(2, 3)),
            TypeError,
            r"nn\.GRU.*nn\.LSTM.*nn\.RNN",
        ),
        (
            lambda: init.lstm_forget_bias_(nn.LSTM(2, 3), math.nan),
            ValueError,
            "value must be finite",
        ),
        (
            lambda: init.lstm_forget_bias_(nn.LSTM(2, 3), "1"),
            TypeError,
            "value must be a real number",
        ),
        (
            lambda: init.gru_update_bias_(nn.GRU(2, 3), True),
            TypeError,
            "value must be a real number",
        ),
        (lambda: init.lstm_forget_bias_(nn.LSTM(2, 3, bias=False)), ValueError, "bias=False"),
        (lambda: init.gru_update_bias_(nn.GRUCell(2, 3, bias=False)), ValueError, "bias=False"),
        (
            lambda: init.recurrent_orthogonal_(nn.GRU(2, 3), gain=-1.0),
            ValueError,
            "gain must be >= 0",
        ),
        (lambda: init.irnn_(nn.RNN(2, 3), scale=math.inf), ValueError, "scale must be finite"),
        (
            lambda: theory.rnn_jacobian_growth(3, 2.0, 0.0, "relu"),
            ValueError,
            "sigma_in2 \\+ sigma_b2 > 0",
        ),
        (lambda: theory.rnn_jacobian_growth(-1, 1.0), ValueError, "steps must be >= 0"),
        (
            lambda: theory.rnn_jacobian_growth(3, 1.0, phi="gelu"),
            ValueError,
            "phi='gelu' is not one of",
        ),
        (lambda: theory.sigmoid_gate_moments(0.0, 101.0), ValueError, "q must be <= 100"),
        (lambda: theory.sigmoid_gate_moments(0.0, -1.0), ValueError, "q must be >= 0"),
        (
            lambda: stats.rnn_jacobian_norms(4, 3, weights="eye"),
            ValueError,
            "weights='eye' is not one of",
        ),
        (
            lambda: stats.rnn_jacobian_norms(4, 3, phi="gelu"),
            ValueError,
            r"\['linear', 'relu', 'tanh'\]",
        ),
        (lambda: stats.gated_cell_jacobian(nn.RNNCell(2, 3), 3), TypeError, "RNNCell"),
    ],
)
def test_bad_arguments_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------------------------------
# Theory: exact facts
# ---------------------------------------------------------------------------------------------------------


def test_exact_facts():
    k = torch.arange(11, dtype=F64)
    torch.testing.assert_close(theory.rnn_jacobian_growth(10, 1.3, 0.2, "linear"), 1.3**k)
    torch.testing.assert_close(theory.rnn_jacobian_growth(10, 3.0, 0.2, "relu"), 1.5**k)
    # tanh with no drive stays at h = 0, where tanh' = 1: the linear network
    torch.testing.assert_close(theory.rnn_jacobian_growth(10, 0.8, 0.0, "tanh"), 0.8**k)
    # the first factor is chi1 at the drive's variance, the fixed point governs the long run
    r = theory.rnn_jacobian_growth(400, 1.5, 0.1)
    assert float(r[1]) == pytest.approx(theory.chi1(1.5, 0.1, q=0.1), rel=1e-12)
    assert float(r[400] / r[399]) == pytest.approx(theory.chi1(1.5, 0.1), rel=1e-9)
    assert theory.rnn_memory_time(1.5, 0.1, sigma_b2=0.05) == theory.gradient_depth_scale(1.5, 0.15)
    irnn = theory.irnn_jacobian_growth(50)
    exact = [math.comb(2 * j, j) / 4**j for j in range(51)]
    torch.testing.assert_close(irnn, torch.tensor(exact, dtype=F64), rtol=1e-13, atol=0)
    assert float(irnn[50]) * math.sqrt(math.pi * 50) == pytest.approx(1.0, abs=1 / 400)
    for b in (-2.0, 0.0, 1.0, 3.0):
        m1, m2 = theory.sigmoid_gate_moments(b)
        s = 1 / (1 + math.exp(-b))
        assert (m1, m2) == (pytest.approx(s, abs=1e-12), pytest.approx(s * s, abs=1e-12))
        # sigma(-x) = 1 - sigma(x) and z is symmetric: E sigma(-b + sqrt(q) z) = 1 - E sigma(b + ...)
        assert theory.sigmoid_gate_moments(-b, 2.0)[0] == pytest.approx(
            1 - theory.sigmoid_gate_moments(b, 2.0)[0], abs=1e-12
        )
    assert theory.gate_memory_time(0.0) == pytest.approx(1 / math.log(4), rel=1e-12)


@pytest.mark.parametrize(("bias", "q"), [(0.0, 0.3), (1.0, 1.0), (3.0, 4.0), (-2.0, 50.0)])
def test_sigmoid_gate_moments_against_samples(bias, q, seed):
    """Power: 2e5 samples give a standard error of at most 1.2e-3 (sd <= 1/2) on E[f] and E[f^2]; the noise-free
    sigma(b), sigma(b)^2 misses E[f^2] by 0.016 to 0.33 at these (b, q), more than 10 standard errors."""

    def sample(b, gen):
        f = torch.sigmoid(bias + math.sqrt(q) * torch.randn(b, generator=gen, dtype=F64))
        return torch.stack([f, f.square()], dim=1)

    est = stats.monte_carlo(sample, trials=200_000, generator=seeded(seed))
    assert_agrees(
        est, list(theory.sigmoid_gate_moments(bias, q)), what=f"gate moments b={bias} q={q}"
    )


# ---------------------------------------------------------------------------------------------------------
# Simulated recurrent networks against the theory
# ---------------------------------------------------------------------------------------------------------


def test_linear_orthogonal_and_identity_preserve_norms_exactly(seed):
    for weights in ("orthogonal", "identity"):
        run = stats.rnn_jacobian_norms(
            32, 50, weights=weights, phi="linear", sigma_in2=1.0, trials=4, generator=seeded(seed)
        )
        torch.testing.assert_close(run.jacobian, torch.ones(4, 51, dtype=F64), rtol=1e-10, atol=0)


def test_irnn_against_sparre_andersen(seed):
    """Exact at any width: E r_k = C(2k, k) / 4^k. The power-law tail is far from every exponential and
    from the ReLU mean-field value (sigma_w^2 / 2)^k = 2^-k: at k = 30 these differ by orders of magnitude;
    400 networks of width 16 give a standard error of about 5 % of the value there."""
    run = stats.rnn_jacobian_norms(
        16, 30, weights="identity", phi="relu", sigma_in2=0.5, trials=400, generator=seeded(seed)
    )
    assert_agrees(estimate(run.jacobian), theory.irnn_jacobian_growth(30), what="IRNN r_k")


def test_orthogonal_tanh_rnn_against_mean_field(seed):
    """Mean field is exact only for infinite width; at n = 256 and lags up to 12 the measured bias is
    below 1 % of r_k (checked with 1000 networks), so the allowance is 3 % of the prediction.
    Power: a factor-2 error in sigma_w^2 or a missing input drive changes r_12 by far more than that."""
    steps, sw2, sin2 = 12, 1.5, 0.2
    run = stats.rnn_jacobian_norms(
        256,
        steps,
        weights="orthogonal",
        sigma_w2=sw2,
        sigma_in2=sin2,
        trials=100,
        generator=seeded(seed),
    )
    predicted = theory.rnn_jacobian_growth(steps, sw2, sin2)
    assert_agrees(estimate(run.jacobian), predicted, allowance=0.03 * predicted, what="r_k")
    # the forward pass: q_t follows the length map with bias variance sigma_in2 (+ sigma_b2)
    q, qs = sin2, []
    for _ in range(steps):
        qs.append(q)
        q = theory.length_map(q, sw2, sin2)
    assert_agrees(estimate(run.pre_mean_sq), qs, allowance=0.01 * torch.tensor(qs), what="q_t")


# ---------------------------------------------------------------------------------------------------------
# The recipes on torch modules, against the theory
# ---------------------------------------------------------------------------------------------------------


def _rnn_gradients(rnn: nn.RNN, x: torch.Tensor, steps: int, gen: torch.Generator) -> torch.Tensor:
    """||dL/dh_0||^2 for L = g . h_k with a random unit g, for k = 1..steps: shape (batch, steps)."""
    batch, hid = x.shape[1], rnn.hidden_size
    h0 = torch.zeros(1, batch, hid, dtype=x.dtype, requires_grad=True)
    y, _ = rnn(x[:steps], h0)
    out = []
    for k in range(steps):
        g = torch.randn(batch, hid, generator=gen, dtype=x.dtype)
        g = g / g.norm(dim=1, keepdim=True)
        (grad,) = torch.autograd.grad((y[k] * g).sum(), h0, retain_graph=True)
        out.append(grad[0].square().sum(dim=1))
    return torch.stack(out, dim=1).double()


def test_irnn_module_gradients_against_sparre_andersen(seed):
    """irnn_ on a torch nn.RNN: the back-propagated gradient over k steps, exactly C(2k, k) / 4^k on
    average at any width (inputs i.i.d. over time). 400 sequences through 2 networks of width 32."""
    gen = seeded(seed)
    steps, values = 20, []
    for _ in range(2):
        rnn = nn.RNN(8, 32, nonlinearity="relu", dtype=F64)
        init.irnn_(rnn)
        x = torch.randn(steps, 200, 8, generator=gen, dtype=F64)
        values.append(_rnn_gradients(rnn, x, steps, gen))
    assert_agrees(
        estimate(torch.cat(values)), theory.irnn_jacobian_growth(steps)[1:], what="IRNN module"
    )


def test_recurrent_orthogonal_module_gradients_against_mean_field(seed):
    """recurrent_orthogonal_ on a torch tanh nn.RNN with an exactly known input drive (orthonormal input
    rows, Gaussian inputs): the back-propagated gradient follows prod chi1(q_t). Width 256, 8 networks of
    16 sequences (independent networks: the trials must not share a recurrent matrix); allowance 3 % of the
    prediction for the finite width, as above. A gain of 1 instead of 1.2 changes r_8 by a factor of 9."""
    gen = seeded(seed)
    steps, gain, s_in, n = 8, 1.2, 0.5, 256
    values = []
    for _ in range(8):
        rnn = nn.RNN(n, n, dtype=F64)
        init.recurrent_orthogonal_(rnn, gain, generator=gen)
        init.orthogonal_(rnn.weight_ih_l0, generator=gen)
        nn.init.zeros_(rnn.bias_ih_l0)
        nn.init.zeros_(rnn.bias_hh_l0)
        x = torch.randn(steps, 16, n, generator=gen, dtype=F64) * s_in
        # each network's 16 sequences share its weights: average them into one trial per network
        values.append(_rnn_gradients(rnn, x, steps, gen).mean(dim=0, keepdim=True))
    predicted = theory.rnn_jacobian_growth(steps, gain**2, s_in**2)[1:]
    assert_agrees(
        estimate(torch.cat(values)), predicted, allowance=0.03 * predicted, what="orthogonal nn.RNN"
    )


@pytest.mark.parametrize(
    ("kind", "value"), [("lstm", 2.0), ("lstm", 0.0), ("gru", 2.0), ("gru", -1.0)]
)
def test_keep_gate_bias_sets_the_memory(kind, value, seed):
    """With no recurrent weights and orthonormal keep-gate input rows, the keep gate is exactly
    sigma(b + z), z ~ N(0, 1), independent over units and steps, so E r_k = E[f^2]^k exactly. This pins the
    sign of the GRU convention: torch's z *keeps* the old state, so b_z = +2 lengthens memory; the other
    sign (or the wrong gate block) would give E[sigma(-2 + z)^2]^k, about 10^5 times smaller at k = 4."""
    gen = seeded(seed)
    steps, n = 8, 32
    cell = (nn.LSTMCell if kind == "lstm" else nn.GRUCell)(n, n, dtype=F64)
    (init.lstm_forget_bias_ if kind == "lstm" else init.gru_update_bias_)(cell, value)
    nn.init.zeros_(cell.weight_hh)
    with torch.no_grad():
        init.orthogonal_(cell.weight_ih[n : 2 * n], generator=gen)
    run = stats.gated_cell_jacobian(cell, steps, batch=2000, generator=gen)
    torch.testing.assert_close(run.full, run.direct, rtol=1e-10, atol=1e-300)
    m2 = theory.sigmoid_gate_moments(value, 1.0)[1]
    predicted = m2 ** torch.arange(steps + 1, dtype=F64)
    assert_agrees(estimate(run.full[:, 1:]), predicted[1:], what=f"{kind} keep gate b={value}")
    wrong = theory.sigmoid_gate_moments(-value, 1.0)[1] ** torch.arange(steps + 1, dtype=F64)
    if value != 0.0:
        assert not estimate(run.full[:, 1:]).agrees_with(wrong[1:])
    # the gate's pre-activation variance (minus its bias) is the q of the theory: 1 here
    assert_agrees(estimate(run.gate_pre_var), 1.0, what="gate pre-activation variance")
