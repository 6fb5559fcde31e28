"""initbook: how and why neural networks are initialized.

The library behind the initbook online book. Modules:

* :mod:`initbook.stats`: measurement (iterated maps, the step where they break, statistics per step);
* :mod:`initbook.theory`: the closed-form predictions the book derives;
* :mod:`initbook.data`: MNIST from the official files, verified; the book's fixed split;
* :mod:`initbook.train`: a small, fast, deterministic training loop.
* :mod:`initbook.init`: initializers (torch.nn.init's names on one variance-scaling core), LSUV,
  whole-model initialization with the correct fans for grouped and transposed convolutions.
"""

from __future__ import annotations

from . import data, init, stats, theory, train
from .init import (
    TRUNCATED_NORMAL_STD,
    Distribution,
    FanMode,
    LSUVRecord,
    Nonlinearity,
    calculate_gain,
    compute_fans,
    constant_,
    default_linear_init_,
    dirac_,
    eye_,
    fans_of,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    he_uniform_,
    init_model,
    kaiming_normal_,
    kaiming_uniform_,
    lecun_normal_,
    lecun_uniform_,
    lsuv_,
    normal_,
    ones_,
    orthogonal_,
    sparse_,
    spectral_normalize_,
    torch_default_,
    trunc_normal_,
    truncated_normal_std,
    uniform_,
    variance_scaling_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from .stats import first_nonfinite_step, first_step, first_steps, matmul_map, trajectory
from .theory import growth_factor, overflow_step, underflow_step

__version__ = "0.1.0"

__all__ = [
    "TRUNCATED_NORMAL_STD",
    "Distribution",
    "FanMode",
    "LSUVRecord",
    "Nonlinearity",
    "__version__",
    "calculate_gain",
    "compute_fans",
    "constant_",
    "data",
    "default_linear_init_",
    "dirac_",
    "eye_",
    "fans_of",
    "first_nonfinite_step",
    "first_step",
    "first_steps",
    "glorot_normal_",
    "glorot_uniform_",
    "growth_factor",
    "he_normal_",
    "he_uniform_",
    "init",
    "init_model",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "lsuv_",
    "matmul_map",
    "normal_",
    "ones_",
    "orthogonal_",
    "overflow_step",
    "sparse_",
    "spectral_normalize_",
    "stats",
    "theory",
    "torch_default_",
    "train",
    "trajectory",
    "trunc_normal_",
    "truncated_normal_std",
    "underflow_step",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
