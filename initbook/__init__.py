"""initbook: how and why neural networks are initialized.

The library behind the initbook online book. The top level holds what a model author reaches for: the
initializers of :mod:`initbook.init` (``initbook.kaiming_normal_``, like :mod:`torch.nn.init` and
``jax.nn.initializers``) and :func:`initbook.diagnose`. The rest lives in the modules:

* :mod:`initbook.init`: initializers (torch.nn.init's names on one variance-scaling core), LSUV,
  whole-model initialization with the correct fans for grouped and transposed convolutions;
* :mod:`initbook.theory`: the closed-form predictions the book derives;
* :mod:`initbook.stats`: measurement (iterated maps, the step where they break, statistics per step,
  Monte-Carlo estimates, per-layer traces) and the book's random-network simulators;
* :mod:`initbook.data`: MNIST from the official files, verified; the book's fixed split;
* :mod:`initbook.nets`: the book's MLPs (:func:`initbook.nets.mlp`), residual MLPs without normalization
  with their He, zero-last and Fixup inits, and a minimal decoder-only transformer and its sorting task;
* :mod:`initbook.plotting`: the book's figure style (matplotlib is imported only when it is used);
* :mod:`initbook.simulate`: the experiments a chapter and a gallery script both show;
* :mod:`initbook.mup`: width: standard vs maximal-update parameterization (μP), the coordinate check;
* :mod:`initbook.train`: a small, fast, deterministic training loop;
* :func:`initbook.diagnose`: the initialization of any model, per layer, with findings and their fixes
  (module ``initbook.diagnose``; also ``python -m initbook diagnose``).
"""

from __future__ import annotations

from . import data, init, mup, nets, plotting, simulate, stats, theory, train
from .diagnose import Finding, LayerReport, Report, diagnose
from .init import (
    TRUNCATED_NORMAL_STD,
    Distribution,
    FanMode,
    LSUVRecord,
    Nonlinearity,
    calculate_gain,
    compute_fans,
    constant_,
    deepnet_init_,
    default_linear_init_,
    delta_orthogonal_,
    dirac_,
    eye_,
    fans_of,
    glorot_normal_,
    glorot_uniform_,
    gpt2_init_,
    gru_update_bias_,
    he_normal_,
    he_uniform_,
    init_model,
    irnn_,
    kaiming_normal_,
    kaiming_uniform_,
    lecun_normal_,
    lecun_uniform_,
    lstm_forget_bias_,
    lsuv_,
    normal_,
    ones_,
    orthogonal_,
    recurrent_orthogonal_,
    sparse_,
    spectral_normalize_,
    t_fixup_init_,
    torch_default_,
    transformer_roles,
    trunc_normal_,
    truncated_normal_std,
    uniform_,
    variance_scaling_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)

__version__ = "0.1.0"

__all__ = [
    "TRUNCATED_NORMAL_STD",
    "Distribution",
    "FanMode",
    "Finding",
    "LSUVRecord",
    "LayerReport",
    "Nonlinearity",
    "Report",
    "__version__",
    "calculate_gain",
    "compute_fans",
    "constant_",
    "data",
    "deepnet_init_",
    "default_linear_init_",
    "delta_orthogonal_",
    "diagnose",
    "dirac_",
    "eye_",
    "fans_of",
    "glorot_normal_",
    "glorot_uniform_",
    "gpt2_init_",
    "gru_update_bias_",
    "he_normal_",
    "he_uniform_",
    "init",
    "init_model",
    "irnn_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "lstm_forget_bias_",
    "lsuv_",
    "mup",
    "nets",
    "normal_",
    "ones_",
    "orthogonal_",
    "plotting",
    "recurrent_orthogonal_",
    "simulate",
    "sparse_",
    "spectral_normalize_",
    "stats",
    "t_fixup_init_",
    "theory",
    "torch_default_",
    "train",
    "transformer_roles",
    "trunc_normal_",
    "truncated_normal_std",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
