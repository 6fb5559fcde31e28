"""initbook: how and why neural networks are initialized.

The library behind the initbook online book. Modules:

* :mod:`initbook.stats`: measurement (iterated maps, the step where they break, statistics per step);
* :mod:`initbook.theory`: the closed-form predictions the book derives;
* :mod:`initbook.data`: MNIST from the official files, verified; the book's fixed split;
* :mod:`initbook.train`: a small, fast, deterministic training loop.
"""

from __future__ import annotations

from . import data, stats, theory, train
from .stats import first_nonfinite_step, first_step, first_steps, matmul_map, trajectory
from .theory import growth_factor, overflow_step, underflow_step

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "data",
    "first_nonfinite_step",
    "first_step",
    "first_steps",
    "growth_factor",
    "matmul_map",
    "overflow_step",
    "stats",
    "theory",
    "train",
    "trajectory",
    "underflow_step",
]
