"""Tests of initbook.diagnose: planted faults are found, healthy models are not flagged, the model is untouched.

False-alarm rate: each healthy model (a He-initialized residual CNN with batch norm, a pre-LN transformer
with GPT-2 scaling and Adam at lr 1e-3) is diagnosed under ``N_SEEDS`` = 15 seeds each (model and data
drawn afresh); the test requires 0 warnings in all 30 runs. With 0 of 30 observed, the one-sided 95 %
upper bound on the per-run false-alarm rate is 1 - 0.05**(1/30) = 9.5 % (the "rule of three", 3/30).
The test itself fails spuriously only if a run does alarm, whose probability is that rate; it is a check
that no threshold sits near the healthy models' values, not a fixed-rate statistical test. An offline run of
the same two models over 100 further seeds each (50000-50099) also found 0 alarms in 200 runs: a 95 % upper
bound of 1.5 % per run.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import initbook
from initbook.__main__ import main
from initbook.diagnose import FINDINGS, Report, diagnose

N_SEEDS = 15
DOCS = Path(__file__).resolve().parents[1] / "docs"


def mlp(depth: int, width: int, act: type[nn.Module] = nn.ReLU, d_in: int = 32, classes: int = 10):
    return initbook.nets.mlp([d_in] + [width] * (depth - 1) + [classes], act)


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.skip = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.skip(x))


def resnet(widths=(8, 16), blocks=2, classes=10, generator=None):
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(),
    ]
    c = widths[0]
    for i, w in enumerate(widths):
        for b in range(blocks):
            layers.append(Block(c, w, 2 if (i > 0 and b == 0) else 1))
            c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    model = nn.Sequential(*layers)
    initbook.init_model(
        model, "kaiming_normal", mode="fan_out", nonlinearity="relu", generator=generator
    )
    initbook.lecun_normal_(model[-1].weight, generator=generator)  # not He fan_out: std 0.45
    return model


def transformer(layers: int, d: int = 32, pre: bool = True, gpt2: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=pre)
    enc = nn.TransformerEncoder(
        layer, layers, norm=nn.LayerNorm(d) if pre else None, enable_nested_tensor=False
    )
    model = nn.Sequential(enc, nn.Linear(d, 10))
    if gpt2:  # Radford et al. 2019: std 0.02, residual output projections / sqrt(2 L)
        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                scaled = "linear2" in name or "out_proj" in name
                initbook.normal_(
                    p, std=0.02 / math.sqrt(2 * layers) if scaled else 0.02, generator=g
                )
            elif "bias" in name:
                nn.init.zeros_(p)
    return model


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only contend on a shared machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def gen(seed):
    return torch.Generator().manual_seed(seed)


def data(gen, n=128, d=32, classes=10):
    return torch.randn(n, d, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def he(model, gen):
    return initbook.init_model(model, "kaiming_normal", nonlinearity="relu", generator=gen)


# -- planted faults ------------------------------------------------------------------------------------


def test_torch_default_deep_relu_mlp(gen):
    x, y = data(gen)
    torch.manual_seed(gen.initial_seed() % 2**31)
    report = diagnose(mlp(20, 128), x, target=y)  # torch's default: Var[W] = 1/(3 fan_in)
    assert {"vanishing_activations", "vanishing_gradients"} <= report.codes("warning")
    finding = next(f for f in report.findings if f.code == "vanishing_gradients")
    assert finding.severity == "error"
    # chi_1 = sigma_w^2 / 2 with sigma_w^2 = fan_in Var[W] = 1/3; the hidden layers hold ~3e5 uniform
    # weights, so their sample variance is within 0.2 % (one sd) of that: a 1 % tolerance is 5 sd.
    chi = float(re.search(r"chi_1 = ([0-9.e+-]+) per layer", finding.message).group(1))
    assert chi == pytest.approx(1 / 6, rel=0.01)
    assert "kaiming_normal" in finding.fix


def test_tanh_gain_five_thirds_is_chaotic(gen):
    x, y = data(gen)
    model = initbook.init_model(mlp(50, 128, nn.Tanh), "xavier_normal", gain=5 / 3, generator=gen)
    report = diagnose(model, x, target=y)
    finding = next(f for f in report.findings if f.code == "exploding_gradients")
    assert "chaotic" in finding.message
    assert finding.page == "beyond/order-and-chaos"
    assert "lecun_normal" in finding.fix
    # at the critical point sigma_w^2 = 1 the same net is not flagged
    fixed = initbook.init_model(mlp(50, 128, nn.Tanh), "lecun_normal", generator=gen)
    assert "exploding_gradients" not in diagnose(fixed, x, target=y).codes()


def test_uniform_001_vanishes_and_loss_is_ln_c(gen):
    x, y = data(gen)

    def tiny(w, fans, generator):
        return initbook.uniform_(w, -0.01, 0.01, generator=generator)

    report = diagnose(initbook.init_model(mlp(10, 128), tiny, generator=gen), x, target=y)
    assert {"vanishing_activations", "vanishing_gradients"} <= report.codes("error")
    assert report.loss == pytest.approx(math.log(10), abs=1e-3)
    assert any("ln(C)" in f.message for f in report.findings)


def test_constant_layer_breaks_symmetry_check(gen):
    x, y = data(gen)
    model = he(mlp(6, 64), gen)
    initbook.constant_(model[2].weight, 0.05)
    report = diagnose(model, x, target=y)
    finding = next(f for f in report.findings if f.code == "symmetry")
    assert finding.layers == ("2",)
    assert finding.severity == "error"


def test_zero_head_is_not_a_symmetry_fault(gen):
    x, y = data(gen)
    model = he(mlp(6, 64), gen)
    initbook.zeros_(model[-1].weight)  # a zero head: ln C exactly, and the gradient breaks the tie
    report = diagnose(model, x, target=y)
    assert "symmetry" not in report.codes()
    assert report.ok
    assert report.loss == pytest.approx(math.log(10), abs=1e-6)


def test_overconfident_logits(gen):
    x, y = data(gen)
    model = he(mlp(6, 128), gen)
    with torch.no_grad():
        model[-1].weight.mul_(30)
    report = diagnose(model, x, target=y)
    finding = next(f for f in report.findings if f.code == "overconfident_logits")
    assert finding.severity == "error"
    assert report.loss > 2 * math.log(10)
    assert finding.layers == ("10",)


def test_dead_relus_from_negative_bias(gen):
    x, y = data(gen)
    model = he(mlp(6, 128), gen)
    initbook.constant_(model[4].bias, -3.0)
    report = diagnose(model, x, target=y)
    finding = next(f for f in report.findings if f.code == "dead_units")
    assert finding.layers == ("5",)
    assert "mean bias of -3" in finding.message
    assert finding.fix == "initbook.zeros_(model.get_submodule('4').bias)"


def test_post_ln_transformer_too_deep_for_its_lr(gen):
    # Adam at lr 2e-3, 12 layers of width 32. Over 12 other seeds one step moved the output of such
    # post-LN transformers by 0.74-1.77 of its norm, and that of pre-LN ones with GPT-2 scaling by
    # 0.23-0.35; the threshold is 0.5.
    x = torch.randn(16, 16, 32, generator=gen)
    seed = gen.initial_seed() % 2**31
    model = transformer(12, pre=False, gpt2=False, seed=seed)
    report = diagnose(model, x, optimizer=torch.optim.Adam(model.parameters(), lr=2e-3))
    assert "large_step" in report.codes("warning")
    assert report.output_change > 0.5
    assert all(math.isfinite(r.update_ratio) for r in report.layers)
    healthy = transformer(12, pre=True, gpt2=True, seed=seed)
    report = diagnose(healthy, x, optimizer=torch.optim.Adam(healthy.parameters(), lr=2e-3))
    assert "large_step" not in report.codes()


def test_grouped_conv_with_torch_fan_out(gen):
    conv = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, groups=8),
        nn.ReLU(),
    )
    initbook.init_model(conv, "kaiming_normal", nonlinearity="relu", generator=gen)
    nn.init.kaiming_normal_(conv[2].weight, mode="fan_out", nonlinearity="relu", generator=gen)
    report = diagnose(conv, torch.randn(8, 3, 16, 16, generator=gen))
    finding = next(f for f in report.findings if f.code == "torch_fans")
    assert finding.layers == ("2",)
    assert "fans=initbook.fans_of(conv)" in finding.fix
    row = report["2"]
    assert (row.fan_out, row.torch_fan_out) == (72, 576)
    # initialized with the true fans, no finding
    initbook.kaiming_normal_(
        conv[2].weight, mode="fan_out", fans=initbook.fans_of(conv[2]), generator=gen
    )
    assert "torch_fans" not in diagnose(conv, torch.randn(8, 3, 16, 16, generator=gen)).codes()


def test_float16_overflow(gen):
    x, y = data(gen)
    model = he(mlp(40, 128), gen)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(1.6)  # x 1.6 per layer: 1.6**40 ~ 1.5e8 > 65504
    report = diagnose(model.half(), x.half(), target=y)
    finding = next(f for f in report.findings if f.code == "nonfinite")
    assert finding.severity == "error"
    assert finding.page == "beyond/low-precision"
    assert "float16" in finding.message


# -- healthy models: the false-alarm rate --------------------------------------------------------------


def test_healthy_models_get_no_warning(seed):
    alarms = []
    for k in range(N_SEEDS):
        g = torch.Generator().manual_seed(seed + k)
        torch.manual_seed(seed + k)
        cnn = resnet(generator=g)
        x = torch.randn(16, 3, 16, 16, generator=g)
        r = diagnose(cnn, x, target=torch.randint(0, 10, (16,), generator=g))
        alarms += [("resnet", k, f.code) for f in r.findings if f.severity != "info"]
        tf = transformer(6, seed=seed + k)
        r = diagnose(
            tf,
            torch.randn(8, 16, 32, generator=g),
            optimizer=torch.optim.Adam(tf.parameters(), lr=1e-3),
        )
        alarms += [("pre-LN", k, f.code) for f in r.findings if f.severity != "info"]
    assert alarms == []  # 0 of 2 * N_SEEDS runs


def test_he_mlp_is_clean(gen):
    x, y = data(gen)
    report = diagnose(he(mlp(20, 128), gen), x, target=y)
    assert report.ok
    assert report.worst in ("none", "info")
    row = report["2"]
    assert row.nonlinearity == "relu"
    assert row.scale_ratio == pytest.approx(1, abs=0.05)  # std of 128**2 samples: relative se 0.6 %
    assert row.he_std == pytest.approx(math.sqrt(2 / 128))


# -- the model is left exactly as it was -------------------------------------------------------------


class Raises(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def snapshot(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()},
        [m.training for m in model.modules()],
    )


def assert_same(model, snap):
    state, grads, modes = snap
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    for n, p in model.named_parameters():
        assert (p.grad is None) == (grads[n] is None)
        assert p.grad is None or torch.equal(p.grad, grads[n])
    assert [m.training for m in model.modules()] == modes
    for m in model.modules():
        assert not m._forward_hooks
        assert not m._forward_pre_hooks
        assert not m._backward_hooks
    for p in model.parameters():
        assert not p._backward_hooks


def test_model_untouched(gen):
    model = nn.Sequential(
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)
    )
    model.eval()
    model[1].train()
    x = torch.randn(32, 8, generator=gen)
    model(x).sum().backward()  # .grad set before
    snap = snapshot(model)
    rng = torch.get_rng_state()
    report = diagnose(
        model,
        x,
        target=torch.randint(0, 3, (32,), generator=gen),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )
    assert isinstance(report, Report)
    assert math.isfinite(report.output_change)
    assert_same(model, snap)
    assert torch.equal(torch.get_rng_state(), rng)


def test_model_untouched_when_it_raises(gen):
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), Raises())
    snap = snapshot(model)
    with pytest.raises(ValueError, match=r"module '2'.*\(32, 8\).*RuntimeError: boom"):
        diagnose(model, torch.randn(32, 8, generator=gen))
    assert_same(model, snap)  # BatchNorm's running stats, updated before the raise, are restored


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_inputs(gen):
    model = nn.Sequential(nn.Linear(8, 4))
    x = torch.randn(4, 8, generator=gen)
    with pytest.raises(TypeError, match=r"must be a torch\.nn\.Module, got function"):
        diagnose(lambda t: t, x)
    with pytest.raises(TypeError, match="at least one input"):
        diagnose(model)
    with pytest.raises(ValueError, match=r"input 0 contains 1 NaN and 0 inf"):
        diagnose(model, torch.where(torch.arange(32).reshape(4, 8) == 5, math.nan, x))
    with pytest.raises(ValueError, match=r"input 0 contains 0 NaN and 1 inf"):
        diagnose(model, torch.where(torch.arange(32).reshape(4, 8) == 5, math.inf, x))
    with pytest.raises(
        TypeError,
        match=r"input 0 has dtype torch.float64 but the model's parameters are torch.float32",
    ):
        diagnose(model, x.double())
    with pytest.raises(
        ValueError, match=r"module '0' on inputs of shape/dtype \[\(4, 3\) float32\].*shapes cannot"
    ):
        diagnose(model, x[:, :3])
    with pytest.raises(
        ValueError, match=r"integer target of shape \(5,\) does not fit an output of shape \(4, 4\)"
    ):
        diagnose(model, x, target=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"class labels in \[0, 7\], outside \[0, 3\]"):
        diagnose(model, x, target=torch.tensor([0, 1, 2, 7]))
    with pytest.raises(ValueError, match="target contains 16 NaN"):
        diagnose(model, x, target=torch.tensor([[math.nan] * 4] * 4))
    with pytest.raises(TypeError, match="optimizer must be"):
        diagnose(model, x, optimizer="adam")
    with pytest.raises(ValueError, match="nonlinearity='swish' is not one of"):
        diagnose(model, x, nonlinearity="swish")
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['7'\]"):
        diagnose(model, x, nonlinearity={"7": "relu"})
    other = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not the model's"):
        diagnose(model, x, optimizer=torch.optim.SGD(other.parameters(), lr=0.1))


def test_nonlinearity_override(gen):
    x = torch.randn(64, 32, generator=gen)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(32, 64), nn.Linear(64, 64)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    model = Functional()
    assert diagnose(model, x)["a"].nonlinearity == "linear"  # invisible to module hooks
    assert diagnose(model, x, nonlinearity={"a": "relu"})["a"].nonlinearity == "relu"


# -- views ---------------------------------------------------------------------------------------------


def test_views(gen):
    x, y = data(gen)
    torch.manual_seed(0)
    report = diagnose(mlp(8, 64), x, target=y)
    text = str(report)
    assert text.startswith("initbook.diagnose: 8 weighted layer(s), dtype float32; initial loss")
    assert "vanishing_gradients" in text
    assert "fix: initbook.init_model" in text
    assert "<table>" in report._repr_html_()
    assert "vanishing_gradients" in report._repr_html_()
    data_ = json.loads(report.to_json())
    assert data_["classes"] == 10
    assert len(data_["layers"]) == 8
    assert data_["worst"] == "warning"
    assert {f["code"] for f in data_["findings"]} == report.codes()
    import matplotlib.pyplot as plt

    fig = report.plot()
    assert len(fig.axes) == 2
    plt.close(fig)


def test_every_page_exists():
    for code, (page, _) in FINDINGS.items():
        assert (DOCS / f"{page}.md").is_file(), (code, page)


# -- the command line ----------------------------------------------------------------------------------

FACTORIES = """
import torch, initbook
def bad():
    torch.manual_seed(0)
    return torch.nn.Sequential(*[m for _ in range(12) for m in (torch.nn.Linear(64, 64), torch.nn.ReLU())])
def good():
    return initbook.init_model(bad(), "kaiming_normal", nonlinearity="relu", generator=torch.Generator().manual_seed(0))
not_callable = 3
"""


def test_cli(tmp_path, capsys):
    path = tmp_path / "models.py"
    path.write_text(FACTORIES)
    assert main(["diagnose", f"{path}:bad", "--input-shape", "64,64"]) == 1
    assert "vanishing_gradients" in capsys.readouterr().out
    assert main(["diagnose", f"{path}:good", "--input-shape", "64x64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(
        [
            "diagnose",
            f"{path}:good",
            "--input-shape",
            "64,64",
            "--optimizer",
            "adam",
            "--classes",
            "3",
            "--fail-on",
            "info",
        ]
    ) in (0, 1)
    capsys.readouterr()
    assert main(["diagnose", f"{path}:good", "--input-shape", "64,63"]) == 2
    assert "shapes cannot be multiplied" in capsys.readouterr().err
    for argv, message in (
        (["diagnose", f"{path}:nope", "--input-shape", "4,64"], "has no callable 'nope'"),
        (["diagnose", f"{path}:not_callable", "--input-shape", "4,64"], "has no callable"),
        (["diagnose", "no_such_module_xyz:f", "--input-shape", "4,64"], "cannot import module"),
        (["diagnose", f"{path}:good", "--input-shape", "4,-1"], "positive ints"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"initbook {initbook.__version__}"


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase]):
        super().__init__()
        self.rnn = cell(16, 32, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


@pytest.mark.parametrize("cell", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_nets(gen, cell):
    model = Recurrent(cell)
    snap = snapshot(model)
    report = diagnose(
        model, torch.randn(8, 12, 16, generator=gen), target=torch.randint(0, 5, (8,))
    )
    row = report["rnn"]
    assert row.fan_in == 32
    assert row.nonlinearity == "tanh"
    assert math.isfinite(row.grad_rms)
    assert report.classes == 5
    assert_same(model, snap)


def test_transposed_conv_default_init_uses_torch_fans(gen):
    torch.manual_seed(gen.initial_seed() % 2**31)
    up = nn.Sequential(
        nn.ConvTranspose2d(64, 8, 3), nn.ReLU()
    )  # torch's fan_in = 8 * 9, true 64 * 9
    report = diagnose(up, torch.randn(4, 64, 6, 6, generator=gen))
    assert "torch_fans" in report.codes("warning")
    initbook.init_model(up, "kaiming_uniform", nonlinearity="relu", generator=gen)
    assert "torch_fans" not in diagnose(up, torch.randn(4, 64, 6, 6, generator=gen)).codes()


def test_python_dash_m(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "models.py"
    path.write_text(FACTORIES)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run(
        [sys.executable, "-m", "initbook", "diagnose", f"{path}:bad", "--input-shape", "32,64"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "[ERROR] vanishing_gradients" in run.stdout


def test_integer_tokens_and_own_modules(gen):
    class Tiny(
        nn.Module
    ):  # a user's own module: embedding, a custom scale, a functional activation
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 32)
            self.proj = nn.Linear(32, 32)
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, tokens):
            return self.scale * torch.tanh(self.proj(self.emb(tokens))).mean(1)

    model = Tiny()
    snap = snapshot(model)
    report = diagnose(model, torch.randint(0, 50, (8, 10), generator=gen))
    assert [r.name for r in report.layers] == ["proj"]  # an embedding has no fan_in to check
    assert_same(model, snap)
