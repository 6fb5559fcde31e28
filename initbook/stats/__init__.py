r"""Measurement: iterate maps, find the step where they break, and summarise what flows through them.

The book's first experiment is the iterated map :math:`x_{t} = a_t x_{t-1}` with random matrices
:math:`a_t`: a deep linear network with no nonlinearity. This module builds such maps for many independent
chains at once (one batched matrix product per step instead of a Python loop over seeds) and measures them.
By topic:

* iterated maps and the step where they break (:func:`matmul_map`, :func:`first_step`,
  :func:`trajectory`, ...);
* moments and Monte-Carlo estimates with standard errors (:func:`moments`, :class:`Estimate`,
  :func:`monte_carlo`);
* per-layer statistics of a model's activations and gradients (:func:`trace`);
* random-network simulators: Haar-orthogonal matrices, Jacobian singular values, deep linear learning
  (:func:`haar_orthogonal`, :func:`jacobian_singular_values`, :func:`deep_linear_learning_steps`) and
  the mean-field simulation (:func:`mean_field_network`).
"""

from __future__ import annotations

from ._convolution import conv_jacobian_singular_values, conv_stack_second_moments
from ._estimate import (
    Estimate,
    Moments,
    moments,
    monte_carlo,
)
from ._isometry import (
    deep_linear_learning_steps,
    haar_orthogonal,
    jacobian_singular_values,
)
from ._maps import (
    Condition,
    Statistic,
    first_nonfinite_step,
    first_step,
    first_steps,
    matmul_map,
    trajectory,
)
from ._meanfield import (
    MeanFieldRun,
    mean_field_network,
)
from ._normalization import (
    MLPGridRun,
    ResidualStackRun,
    bn_mlp_gradients,
    deep_mlp,
    init_scheme_,
    residual_stack_at_init,
    train_mlp_grid,
)
from ._recurrent import GatedCellRun, RNNJacobianRun, gated_cell_jacobian, rnn_jacobian_norms
from ._trace import (
    LayerStats,
    Trace,
    trace,
)

__all__ = [
    "Condition",
    "Estimate",
    "GatedCellRun",
    "LayerStats",
    "MLPGridRun",
    "MeanFieldRun",
    "Moments",
    "RNNJacobianRun",
    "ResidualStackRun",
    "Statistic",
    "Trace",
    "bn_mlp_gradients",
    "conv_jacobian_singular_values",
    "conv_stack_second_moments",
    "deep_linear_learning_steps",
    "deep_mlp",
    "first_nonfinite_step",
    "first_step",
    "first_steps",
    "gated_cell_jacobian",
    "haar_orthogonal",
    "init_scheme_",
    "jacobian_singular_values",
    "matmul_map",
    "mean_field_network",
    "moments",
    "monte_carlo",
    "residual_stack_at_init",
    "rnn_jacobian_norms",
    "trace",
    "train_mlp_grid",
    "trajectory",
]
