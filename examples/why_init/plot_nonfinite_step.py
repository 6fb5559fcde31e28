r"""
When does float overflow? The first non-finite step across widths and formats
==============================================================================

For :math:`x_t = a_t x_{t-1}` with :math:`\mathcal N(0, 1)` entries the state grows by
:math:`g = \sqrt n` per step, so a format whose largest value is :math:`M` overflows after about
:math:`\ln M / \ln\sqrt n` steps (:func:`initbook.theory.overflow_step`). This example measures the first
step with an ``inf`` or ``NaN`` entry (:func:`initbook.stats.first_nonfinite_step`) for widths from 16 to
512 in float16, bfloat16 and float32, and sets it against the prediction.

See :ref:`why-initialization-matters` for the derivation.
"""

# License: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 1

# %%
# Measure
# -------
# Fresh matrices per step, 16 chains per width (6 for the widest): the chains run as one batched product.
import matplotlib.pyplot as plt
import torch

import initbook

gen = torch.Generator().manual_seed(0)
widths = [16, 32, 64, 128, 256, 512]
formats = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
TRIALS = 16

measured = {name: [] for name in formats}
predicted = {name: [] for name in formats}
for name, dtype in formats.items():
    for n in widths:
        trials = TRIALS if n <= 128 else 6
        step = initbook.stats.matmul_map(n, trials=trials, reuse=False, dtype=dtype, generator=gen)
        x0 = torch.randn(trials, n, generator=gen).to(dtype)
        first = initbook.stats.first_nonfinite_step(step, x0, max_steps=200)
        measured[name].append(first.double())
        predicted[name].append(initbook.theory.overflow_step(n, dtype=dtype))
    print(name, "predicted:", predicted[name])
    print(name, "median measured:", [int(m.median()) for m in measured[name]])

# %%
# Compare with theory
# -------------------
# Points are the median over chains with the full range as an error bar; lines are the prediction.
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
for name, color in zip(formats, ["C3", "C2", "C0"], strict=True):
    med = torch.stack([m.median() for m in measured[name]])
    lo = med - torch.stack([m.min() for m in measured[name]])
    hi = torch.stack([m.max() for m in measured[name]]) - med
    ax.errorbar(
        widths,
        med,
        yerr=torch.stack([lo, hi]),
        fmt="o",
        color=color,
        capsize=3,
        label=f"{name}, measured",
    )
    ax.plot(widths, predicted[name], "-", color=color, lw=1, label=f"{name}, theory")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="width n",
    ylabel="first non-finite step",
    title=r"Overflow of $x_t = a_t x_{t-1}$, $a \sim \mathcal{N}(0,1)$",
)
ax.set_xticks(widths, [str(n) for n in widths])
ax.legend(fontsize=8, ncols=2)
plt.show()

# %%
# Takeaway
# --------
# bfloat16 has float32's exponent range and overflows at the same step; float16 (largest value 65504)
# lasts only a handful of layers at any width. Precision (the mantissa) does not enter the prediction, range
# (the exponent) does.
