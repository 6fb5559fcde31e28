"""Transformers at initialization: attention logits and entropy, the loss at step 0, the pre-LN stream, and the
GPT-2 / DeepNet / T-Fixup recipes.

Tolerances (tests/_stats.py): a Monte-Carlo mean agrees with theory when it is within k_sigma(n) estimated
standard errors (plus a stated allowance for a known higher-order term), a false-failure rate of 5.7e-7 per
comparison for a correct formula. The sample variance of N i.i.d. normal weights is compared with Z = 5 exact
standard errors, sigma^2 sqrt(2 / N). No test here compares more than 27 quantities (the weights of a 4-block
TinyDecoder), so each fails falsely with probability below 2e-5. Each statistical test states which wrong formula it would catch (its power).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from initbook import init, nets, theory
from tests._stats import Z, assert_agrees, estimate, seeded

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------------------
# Theory against Monte Carlo
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["sqrt", "mup", "none"])
@pytest.mark.parametrize("same_token", [False, True])
def test_attention_logit_variance(scale, same_token, seed):
    """Var[c q.k] for q = W_q x, k = W_k x' with Gaussian weights, over 20000 weight draws for fixed x, x'.

    The per-trial value (c q.k)^2 has a relative standard deviation of about 1.7 (d_k = 8), so the relative
    standard error is 1.2 % and the tolerance about 6 %: a factor 2 in any variance, or 1/sqrt(d_k) in
    place of 1/d_k (a factor 8 here), fails.
    """
    g = seeded(seed)
    d, d_k, n, sq2, sk2 = 32, 8, 20_000, 0.7 / 32, 1.3 / 32
    x = torch.randn(d, generator=g, dtype=torch.float64)
    xp = x if same_token else torch.randn(d, generator=g, dtype=torch.float64) * 2
    wq = torch.randn(n, d_k, d, generator=g, dtype=torch.float64) * sq2**0.5
    wk = torch.randn(n, d_k, d, generator=g, dtype=torch.float64) * sk2**0.5
    c = {"sqrt": d_k**-0.5, "mup": 1 / d_k, "none": 1.0}[scale]
    logit = c * ((wq @ x) * (wk @ xp)).sum(-1)
    predicted = theory.attention_logit_variance(
        d_k, sq2 * float(x @ x), sk2 * float(xp @ xp), scale=scale
    )
    assert_agrees(estimate(logit.square()), predicted, what="Var[logit]")


@pytest.mark.parametrize(("tokens", "s2"), [(2, 0.04), (8, 0.04), (8, 0.16), (32, 0.1)])
def test_softmax_entropy_small_logit(tokens, s2, seed):
    """E[H(softmax(z))] for i.i.d. N(0, s^2) logits, 200000 draws, against ln T - s^2 (T-1) / (2T).

    Allowance s^4 / 4 for the fourth-order term (measured coefficient 0.18 at T = 2, 0.08 at T = 8, 0.02 at
    T = 32). Power: a factor 2 on the s^2 term is an error of s^2 (T-1)/(4T) >= 0.005 here, against a tolerance
    below 0.0013; dropping the (T-1)/T factor is caught at T = 2 (0.01 vs 0.0005).
    """
    z = torch.randn(200_000, tokens, generator=seeded(seed), dtype=torch.float64) * math.sqrt(s2)
    p = z.softmax(dim=-1)
    entropy = -(p * p.log()).sum(dim=-1)
    assert_agrees(
        estimate(entropy),
        theory.softmax_entropy_small_logit(tokens, s2),
        allowance=s2**2 / 4,
        what="entropy",
    )


@pytest.mark.parametrize(("vocab", "s2"), [(32, 0.25), (64, 1.0), (16, 0.02)])
def test_initial_cross_entropy(vocab, s2, seed):
    """E[logsumexp(z) - z_y] for i.i.d. N(0, s^2) logits and a target independent of them, 200000 draws.

    The per-trial value is logsumexp(z) - ln V (E[z_y] = 0 exactly; leaving it out removes most of the
    noise). The allowance is the next term of the expansion, (e^{s^2}-1)^2 (e^{s^2}+2) / (3 V^2), doubled.
    Power: leaving out the -(e^{s^2}-1)/(2V) correction is an error of 0.0044 at V = 32, s^2 = 0.25, against a
    tolerance of about 0.001; a factor 2 on s^2/2 fails every case.
    """
    z = torch.randn(200_000, vocab, generator=seeded(seed), dtype=torch.float64) * math.sqrt(s2)
    value = z.logsumexp(dim=-1)
    e = math.expm1(s2)
    allowance = 2 * e**2 * (e + 3) / (3 * vocab**2)
    assert_agrees(
        estimate(value), theory.initial_cross_entropy(vocab, s2), allowance=allowance, what="loss"
    )


def test_pre_ln_stream_adds_a_constant_per_branch(seed):
    """x <- x + W LN(x) with W ~ N(0, s^2): the second moment grows by s^2 d per branch, not by a factor.

    Over 1000 independent stacks of 24 branches (width 32): E[|x_N|^2 / d] = q_0 + N s^2 d. Power: the
    multiplicative (1 + beta^2)^N of an unnormalized stack, with the same first step, is 5 times larger at
    N = 24; a tolerance of about 2 % catches a 10 % error in v.
    """
    g = seeded(seed)
    trials, d, n_branches, s2 = 1000, 32, 24, 0.5 / 32
    x = torch.randn(trials, d, generator=g, dtype=torch.float64) * 3
    q0 = x.square().mean(dim=1)
    q = [q0]
    for _ in range(n_branches):
        w = torch.randn(trials, d, d, generator=g, dtype=torch.float64) * s2**0.5
        x = x + (w @ F.layer_norm(x, (d,), eps=0.0).unsqueeze(-1)).squeeze(-1)
        q.append(x.square().mean(dim=1))
    per_trial = torch.stack(q, dim=1) - q0.unsqueeze(1)  # q_N - q_0, exact per trial in expectation
    predicted = [
        theory.pre_ln_stream_second_moment(0.0, s2 * d, k) for k in range(0, n_branches + 1, 4)
    ]
    assert_agrees(estimate(per_trial[:, ::4]), predicted, what="q_N - q_0")


# ---------------------------------------------------------------------------------------------------------
# Exact constants
# ---------------------------------------------------------------------------------------------------------


def test_depth_constants_exact():
    assert theory.gpt2_residual_std(12) == pytest.approx(0.02 / math.sqrt(24), rel=1e-15)
    assert theory.gpt2_residual_std(1, std=1.0) == pytest.approx(2**-0.5)
    for n in (1, 6, 18, 100):
        assert theory.deepnet_constants("encoder", n) == pytest.approx(
            ((2 * n) ** 0.25, (8 * n) ** -0.25)
        )
        assert theory.deepnet_constants("decoder", n) == theory.deepnet_constants("encoder", n)
        assert theory.deepnet_constants("encoder-decoder:decoder", n) == pytest.approx(
            ((3 * n) ** 0.25, (12 * n) ** -0.25)
        )
        assert theory.t_fixup_scale(n) == pytest.approx((9 * n) ** -0.25)
        assert theory.t_fixup_scale(n, "encoder") == pytest.approx(0.67 * n**-0.25)
    alpha, beta = theory.deepnet_constants("encoder-decoder:encoder", 18, 6)
    assert alpha == pytest.approx(0.81 * (18**4 * 6) ** (1 / 16))
    assert beta == pytest.approx(0.87 * (18**4 * 6) ** (-1 / 16))
    assert theory.initial_cross_entropy(10, 0.0) == pytest.approx(math.log(10), rel=1e-15)
    assert theory.initial_cross_entropy(1, 0.0) == 0.0  # one class: the loss is 0 for any logits
    assert theory.attention_logit_variance(16, 2.0, 3.0, scale="none") == 96.0


# ---------------------------------------------------------------------------------------------------------
# Recipes: which parameters change, and to what distribution
# ---------------------------------------------------------------------------------------------------------


def _assert_std(t: torch.Tensor, std: float, what: str) -> None:
    """Sample variance of i.i.d. N(0, std^2) entries within Z exact standard errors (11 % for 4096 entries, 5.5 %
    for 16384: a missing 1/sqrt(2L), a factor 2L = 8 in variance, or a Xavier gain of 1 instead of DeepNet's
    beta, a factor 7 in variance, fails)."""
    n = t.numel()
    var = float(t.detach().double().square().mean())
    tol = Z * std**2 * math.sqrt(2 / n)
    assert abs(var - std**2) <= tol, f"{what}: variance {var:.3e} vs {std**2:.3e} +- {tol:.1e}"


def _models(d=64, layers=4):
    return {
        "tiny": nets.TinyDecoder(13, 8, d_model=d, n_heads=4, n_layers=layers),
        "tiny_tied": nets.TinyDecoder(13, 8, d_model=d, n_heads=4, n_layers=layers, tie=True),
        "encoder_layer": nn.TransformerEncoderLayer(d, 4, dim_feedforward=4 * d),
        "mha": nn.MultiheadAttention(d, 4),
        "mha_kdim": nn.MultiheadAttention(d, 4, kdim=d // 2, vdim=d // 2),
    }


@pytest.mark.parametrize("kind", list(_models()))
def test_gpt2_init_distributions(kind, seed):
    model = _models()[kind]
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)  # so that anything the recipe does not touch is visible
    init.gpt2_init_(model, n_layers=4, generator=seeded(seed))
    roles = init.transformer_roles(model)
    params = dict(model.named_parameters())
    resid = 0.02 / math.sqrt(8)
    for name, role in roles.items():
        if "[" in name:  # a packed slice: in_proj_weight[query] etc.
            base, part = name[:-1].split("[")
            i = ("query", "key", "value").index(part)
            e = params[base].shape[1]
            tensor = params[base][i * e : (i + 1) * e]
        else:
            tensor = params[name]
        _assert_std(tensor, resid if role in ("attn_out", "mlp_out") else 0.02, f"{kind}:{name}")
    for name, p in params.items():
        if name.endswith("bias"):
            assert p.count_nonzero() == 0, name
        if "ln" in name or "norm" in name:
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name
    assert not any(bool((p == 7.0).any()) for p in model.parameters()), (
        "a parameter was left untouched"
    )
    if kind == "tiny_tied":
        assert model.head.weight is model.tok_emb.weight


def test_roles_of_torch_and_initbook_modules():
    roles = init.transformer_roles(_models()["encoder_layer"])
    assert roles == {
        "self_attn.in_proj_weight[query]": "query",
        "self_attn.in_proj_weight[key]": "key",
        "self_attn.in_proj_weight[value]": "value",
        "self_attn.out_proj.weight": "attn_out",
        "linear1.weight": "mlp_in",
        "linear2.weight": "mlp_out",
    }
    tiny = init.transformer_roles(_models()["tiny_tied"])
    assert tiny["tok_emb.weight"] == "embedding"
    assert "head.weight" not in tiny  # tied: filled once, as the embedding
    assert init.transformer_roles(_models()["tiny"])["head.weight"] == "other"
    assert sum(r == "mlp_out" for r in tiny.values()) == 4


def test_gpt2_forward_backward_variance(seed):
    """nn.MultiheadAttention on one token after gpt2_init_: y = W_o W_v x, so E[|y|^2]/d = d s_o^2 s_v^2 |x|^2,
    and the input gradient W_v^T W_o^T g has E[|.|^2]/d = d s_v^2 s_o^2 |g|^2. 400 re-initializations; the
    tolerance is about 4 %, so leaving out the 1/sqrt(2L) (a factor 2L = 16) or using it twice fails."""
    d, layers, trials = 64, 8, 400
    g = seeded(seed)
    mha = nn.MultiheadAttention(d, 4)
    x = torch.randn(1, 1, d, generator=g)
    up = torch.randn(1, 1, d, generator=g)
    fwd, bwd = [], []
    for _ in range(trials):
        init.gpt2_init_(mha, layers, generator=g)
        xi = x.clone().requires_grad_(True)
        y = mha(xi, xi, xi, need_weights=False)[0]
        (y * up).sum().backward()
        fwd.append(float(y.detach().double().square().mean()))
        bwd.append(float(xi.grad.double().square().mean()))
    s_v2, s_o2 = 0.02**2, theory.gpt2_residual_std(layers) ** 2
    assert_agrees(
        estimate(torch.tensor(fwd)), d * s_o2 * s_v2 * float(x.square().sum()), what="forward"
    )
    assert_agrees(
        estimate(torch.tensor(bwd)), d * s_v2 * s_o2 * float(up.square().sum()), what="backward"
    )


@pytest.mark.parametrize("kind", ["tiny_post", "encoder_layer", "mha"])
def test_deepnet_init(kind, seed):
    d, layers = 64, 6
    model = {
        "tiny_post": nets.TinyDecoder(13, 8, d_model=d, n_heads=4, n_layers=layers, norm="post"),
        "encoder_layer": nn.TransformerEncoderLayer(d, 4, dim_feedforward=4 * d),
        "mha": nn.MultiheadAttention(d, 4),
    }[kind]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    init.deepnet_init_(model, layers, generator=seeded(seed))
    alpha, beta = theory.deepnet_constants("decoder", layers)
    params = dict(model.named_parameters())
    for name, role in init.transformer_roles(model).items():
        if "[" in name:
            base, part = name[:-1].split("[")
            i = ("query", "key", "value").index(part)
            tensor = params[base][i * d : (i + 1) * d]
        else:
            tensor = params[name]
        if role in ("embedding", "other"):
            assert torch.equal(tensor, before[name]), f"{name} should be left alone"
            continue
        gain = 1.0 if role in ("query", "key") else beta
        std = gain * math.sqrt(2 / (tensor.shape[0] + tensor.shape[1]))
        _assert_std(tensor, std, f"{kind}:{name}")
    if kind == "tiny_post":
        assert all(b.alpha == pytest.approx(alpha) for b in model.blocks)


def test_deepnet_refuses_pre_ln_blocks():
    with pytest.raises(ValueError, match=r"norm='pre'.*valid: norm='post'"):
        init.deepnet_init_(nets.TinyDecoder(5, 4, 16, 2, 2, norm="pre"), 2)


def test_t_fixup_init(seed):
    d, layers = 64, 6
    model = nets.TinyDecoder(13, 8, d_model=d, n_heads=4, n_layers=layers, norm="none", tie=True)
    init.t_fixup_init_(model, layers, generator=seeded(seed))
    s = (9 * layers) ** -0.25
    _assert_std(model.tok_emb.weight, d**-0.5 * s, "tok_emb")
    _assert_std(model.pos_emb.weight, d**-0.5 * s, "pos_emb")
    for b in model.blocks:
        for lin, scale in (
            (b.attn.q_proj, 1.0),
            (b.attn.k_proj, 1.0),
            (b.attn.v_proj, s),
            (b.fc2, s),
        ):
            bound = scale * math.sqrt(6 / (lin.in_features + lin.out_features))
            assert float(lin.weight.detach().abs().max()) <= bound
            _assert_std(lin.weight, bound / math.sqrt(3), "xavier-uniform")
            assert lin.bias.count_nonzero() == 0


def test_t_fixup_refuses_layer_norm_unless_allowed(seed):
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64)
    with pytest.raises(ValueError, match=r"without layer normalization.*allow_layer_norm=True"):
        init.t_fixup_init_(layer, 3)
    init.t_fixup_init_(layer, 3, side="encoder", allow_layer_norm=True, generator=seeded(seed))
    bound = 0.67 * 3**-0.25 * math.sqrt(6 / (32 + 64))
    assert float(layer.linear1.weight.detach().abs().max()) <= bound


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: init.gpt2_init_(nn.Linear(3, 3), 2),
            ValueError,
            "found no attention module.*MultiheadAttention",
        ),
        (lambda: init.gpt2_init_("model", 2), TypeError, "must be a torch.nn.Module"),
        (
            lambda: init.gpt2_init_(nn.MultiheadAttention(8, 2), 0),
            ValueError,
            "n_layers must be >= 1",
        ),
        (
            lambda: init.gpt2_init_(nn.MultiheadAttention(8, 2), True),
            TypeError,
            "n_layers must be an int",
        ),
        (
            lambda: init.gpt2_init_(nn.MultiheadAttention(8, 2), 2, generator=1),
            TypeError,
            "generator",
        ),
        (
            lambda: init.deepnet_init_(nn.MultiheadAttention(8, 2), 2, architecture="gpt"),
            ValueError,
            r"architecture='gpt' is not one of \['decoder', 'encoder'",
        ),
        (
            lambda: theory.deepnet_constants("encoder-decoder:encoder", 6),
            ValueError,
            "n_other_layers",
        ),
        (lambda: theory.deepnet_constants("decoder", 6, 6), ValueError, "only used with"),
        (
            lambda: init.t_fixup_init_(nn.MultiheadAttention(8, 2), 2, side="middle"),
            ValueError,
            r"side='middle' is not one of \['decoder', 'encoder'\]",
        ),
        (
            lambda: theory.attention_logit_variance(8, scale="log"),
            ValueError,
            "scale='log' is not one of",
        ),
        (lambda: theory.softmax_entropy_small_logit(0, 0.1), ValueError, "tokens must be >= 1"),
        (lambda: theory.initial_cross_entropy(10, -1.0), ValueError, "logit_var"),
        # beyond e^{s^2} = V the expansion would even turn negative (V = 2, s^2 = 3: -2.0)
        (lambda: theory.initial_cross_entropy(10, 3.0), ValueError, r"logit_var < ln\(vocab\)"),
        (lambda: theory.initial_cross_entropy(1, 0.5), ValueError, "logit_var=0.5"),
        (lambda: nets.TinyDecoder(10, 8, 16, 3), ValueError, "n_heads=3 must divide d_model=16"),
        (
            lambda: nets.TinyDecoder(10, 8, 16, 2, norm="rms"),
            ValueError,
            "norm='rms' is not one of",
        ),
        (lambda: nets.train_sequence_task(nn.Linear(2, 2)), TypeError, "TinyDecoder"),
    ],
)
def test_bad_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------------------
# The task, the model, rank collapse
# ---------------------------------------------------------------------------------------------------------


def test_sorting_batch_and_loss_at_init(seed):
    x, y = nets.sorting_batch(64, 5, 17, generator=seeded(seed))
    assert x.shape == y.shape == (64, 10)
    assert torch.all(x[:, 5] == 16)
    scored = y[:, 5:]
    assert torch.equal(scored, x[:, :5].sort(dim=1).values)
    assert torch.all(y[:, :5] == -100)
    # the loss at step 0 of a GPT-2-initialized model: logits of variance d * 0.02^2 after the final LayerNorm
    model = init.gpt2_init_(nets.TinyDecoder(17, 10, 64, 4, 2), 2, generator=seeded(seed, 1))
    loss = F.cross_entropy(model(x).reshape(-1, 17), y.reshape(-1))
    assert abs(float(loss.detach()) - theory.initial_cross_entropy(17, 64 * 0.02**2)) < 0.05


def test_rank_collapse_without_skips(seed):
    """Pure attention collapses all tokens to one vector within a few layers (doubly exponentially); a skip with
    alpha = 1 only slows the decay to exponential; alpha = 1/sqrt(L) keeps the tokens apart (seen at width 32,
    8 tokens: < 1e-6 after 6 layers without skips, ~ 0.005 after 24 with alpha = 1, > 0.85 with 1/sqrt(L))."""
    kw = {"trials": 8, "generator": seeded(seed)}
    r_plain = nets.attention_token_spread(6, 32, 8, skip=False, **kw)
    r_skip = nets.attention_token_spread(24, 32, 8, skip=True, **kw)
    r_scaled = nets.attention_token_spread(24, 32, 8, skip=True, branch_scale=24**-0.5, **kw)
    assert r_plain.shape == (8, 7)
    assert float(r_plain[:, -1].max()) < 1e-4
    assert float(r_skip[:, -1].max()) < 0.2
    assert float(r_scaled[:, -1].min()) > 0.6
