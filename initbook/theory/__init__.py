r"""Closed-form predictions derived in the book.

Every function here is checked against a Monte-Carlo measurement from :mod:`initbook.stats` in the test
suite, with a tolerance derived from the number of samples. By topic:

* floating-point formats: the growth factor of repeated products, overflow, underflow and rounding
  (:func:`growth_factor`, :func:`overflow_step`, :func:`underflow_step`, :func:`unit_roundoff`, ...);
* the variance of a layer's output and the initializers' scales (:func:`sum_variance`,
  :func:`propagate_variance`, :func:`kaiming_std`, ...);
* Gaussian expectations by quadrature (:func:`gauss_hermite`);
* mean-field theory: length and correlation maps, fixed points, :math:`\chi_1`, depth scales and the
  critical line (:func:`length_map`, :func:`chi1`, :func:`critical_line`, :func:`iterate_maps`, ...);
* dynamical isometry: the moments of the Jacobian's spectrum (:func:`jacobian_spectrum_moments`);
* residual networks (:func:`relu_branch_gain2`, :func:`residual_variance`, :func:`fixup_scale`).
"""

from __future__ import annotations

from ._attention import (
    AttentionScale,
    DeepNetArchitecture,
    attention_logit_variance,
    deepnet_constants,
    gpt2_residual_std,
    initial_cross_entropy,
    pre_ln_stream_second_moment,
    softmax_entropy_small_logit,
    t_fixup_scale,
)
from ._convolution import padded_conv_second_moments, padding_variance_decay, pooled_second_moment
from ._floats import (
    expected_max_abs_normal,
    float_range,
    growth_factor,
    log_rms_moments,
    overflow_step,
    relu_mlp_float_limits,
    rounding_error,
    underflow_step,
    unit_roundoff,
)
from ._isometry import (
    JacobianMoments,
    jacobian_spectrum_moments,
    linear_jacobian_moments,
)
from ._meanfield import (
    MeanFieldMaps,
    chi1,
    correlation_depth_scale,
    correlation_map,
    critical_line,
    critical_sigma_w2,
    fixed_point_c,
    fixed_point_q,
    gradient_depth_scale,
    iterate_maps,
    length_map,
)
from ._normalization import (
    bn_gradient_growth,
    bn_residual_stream_variance,
    effective_learning_rate,
    ln_gradient_profile,
    normalized_second_moment,
    scale_invariant_angle,
)
from ._quadrature import (
    gauss_hermite,
)
from ._recurrent import (
    gate_memory_time,
    irnn_jacobian_growth,
    rnn_jacobian_growth,
    rnn_memory_time,
    sigmoid_gate_moments,
)
from ._residual import (
    fixup_scale,
    relu_branch_gain2,
    residual_variance,
)
from ._variance import (
    VariancePropagation,
    kaiming_std,
    leaky_relu_second_moment,
    lecun_std,
    propagate_variance,
    relu_mean_gaussian,
    relu_second_moment,
    relu_variance_gaussian,
    sum_variance,
    torch_default_bound,
    uniform_bound,
    xavier_std,
)

__all__ = [
    "AttentionScale",
    "DeepNetArchitecture",
    "JacobianMoments",
    "MeanFieldMaps",
    "VariancePropagation",
    "attention_logit_variance",
    "bn_gradient_growth",
    "bn_residual_stream_variance",
    "chi1",
    "correlation_depth_scale",
    "correlation_map",
    "critical_line",
    "critical_sigma_w2",
    "deepnet_constants",
    "effective_learning_rate",
    "expected_max_abs_normal",
    "fixed_point_c",
    "fixed_point_q",
    "fixup_scale",
    "float_range",
    "gate_memory_time",
    "gauss_hermite",
    "gpt2_residual_std",
    "gradient_depth_scale",
    "growth_factor",
    "initial_cross_entropy",
    "irnn_jacobian_growth",
    "iterate_maps",
    "jacobian_spectrum_moments",
    "kaiming_std",
    "leaky_relu_second_moment",
    "lecun_std",
    "length_map",
    "linear_jacobian_moments",
    "ln_gradient_profile",
    "log_rms_moments",
    "normalized_second_moment",
    "overflow_step",
    "padded_conv_second_moments",
    "padding_variance_decay",
    "pooled_second_moment",
    "pre_ln_stream_second_moment",
    "propagate_variance",
    "relu_branch_gain2",
    "relu_mean_gaussian",
    "relu_mlp_float_limits",
    "relu_second_moment",
    "relu_variance_gaussian",
    "residual_variance",
    "rnn_jacobian_growth",
    "rnn_memory_time",
    "rounding_error",
    "scale_invariant_angle",
    "sigmoid_gate_moments",
    "softmax_entropy_small_logit",
    "sum_variance",
    "t_fixup_scale",
    "torch_default_bound",
    "underflow_step",
    "uniform_bound",
    "unit_roundoff",
    "xavier_std",
]
