"""PRNet (peak-resolving network): this project's architecture against the study's three failure modes.

Schuetzke et al. (2023) found that the published CNNs fail on the ``challenge`` set in three ways: they
miss *minor peaks* (3.5 % of the highest peak), they confuse classes whose peaks are only 70 points apart
(*position overlap*, near the resolution left after their pooling) and classes that differ only by a peak
height (*intensity overlap*, steps of 0.075 in relative height). PRNet answers each of them and is an
order of magnitude smaller and cheaper than CNN6:

* **Minor peaks — a linear and a log-compressed channel.** :class:`LogCompression` maps the
  max-normalised spectrum through ``sign(x) log(1 + |x|/ε) / log(1 + 1/ε)`` (ε = 0.01): 1 stays 1, a
  3.5 % peak becomes 0.33 instead of 0.035 (a ~22x gain near zero), so the first convolution sees minor
  peaks at the scale of major ones. The linear spectrum is kept beside it as a second input channel,
  because the intensity classes are told apart by *linear* height ratios (which max normalisation keeps
  exact); the log channel also spreads the small heights of those classes (0.08/0.155/0.23 become
  0.48/0.60/0.69).
* **Position resolution — strided convolutions, no max pooling, and a flatten.** Max pooling discards
  where in its window a maximum was; CNN6's pools (3,2) (3,2) (2,2) leave position mostly to the
  coarse grid of the pooled map. PRNet downsamples only with learned stride-2 convolutions whose
  channel count grows as the length shrinks (16 → 64), so the offset of a peak inside a cell of the
  final stride-64 grid stays encoded in the channels. The final map is flattened (not globally pooled),
  so absolute positions stay visible to the classifier; with ReLU units, the logits vary piecewise
  linearly with a peak's position and height, which places decision boundaries between the training
  ranges of neighbouring classes instead of at arbitrary pool-cell edges.
* **A narrow ReLU FC head with strong dropout.** One hidden ReLU layer of 256 units with dropout 0.5
  before it and before the output: the study found ReLU FC layers better than linear ones for every
  model; the small width keeps the classifier from memorising the 50 training spectra per class.
* **Cost.** A full-resolution stem conv(16, 9), then six conv(k 8, stride 2) with 24, 32, 48, 48, 64, 64
  filters: 5000 points → 79 × 64 features → Dense(256). About 1.4 M parameters and 76 MFLOP per spectrum
  (CNN6: 19.6 M and 1.08 GFLOP), so it also trains on a CPU in minutes.

All toggles of :func:`zoo.build` apply: ``batch_norm`` (between every conv and its ReLU),
``conv_dropout`` (after every strided conv), ``fc_widths``, ``fc_activation`` and ``fc_dropout``;
``compression_epsilon=0`` removes the log channel (the ablation of the minor-peak input).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
from keras import ops

from zoo.models.blocks import Conv, conv_unit, dropout

#: Full-resolution stem: short peak detectors (a σ = 2 peak spans about 9 points within ±2σ).
STEM = Conv(16, 9)
#: Learned downsampling: each conv halves the length; channels grow as resolution moves into them.
DOWNSAMPLING: tuple[Conv, ...] = (
    Conv(24, 8, 2),
    Conv(32, 8, 2),
    Conv(48, 8, 2),
    Conv(48, 8, 2),
    Conv(64, 8, 2),
    Conv(64, 8, 2),
)


@keras.saving.register_keras_serializable(package="spectrazoo")
class LogCompression(keras.layers.Layer):
    """``sign(x) · log(1 + |x|/ε) / log(1 + 1/ε)``: keeps 0 and ±1, magnifies small values ~1/(ε log(1/ε)).

    Odd and monotonic, so negative values (noise, baseline-subtracted spectra) are compressed symmetrically.
    """

    def __init__(self, epsilon: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = check_epsilon("epsilon", epsilon, allow_zero=False)

    def call(self, inputs: Any) -> Any:
        scale = 1.0 / math.log1p(1.0 / self.epsilon)
        return ops.sign(inputs) * ops.log1p(ops.abs(inputs) / self.epsilon) * scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def check_epsilon(field: str, value: Any, *, allow_zero: bool) -> float:
    """Validate a compression constant: a finite number > 0 (or 0 where ``allow_zero``), one-line error."""
    valid = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not valid:
        bound = ">= 0 (0 = no log channel)" if allow_zero else "> 0"
        raise ValueError(f"{field} must be a finite number {bound}, got {value!r}")
    return float(value)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float, compression_epsilon: float) -> Any:
    """[x, log-compressed x] → stem conv(16, 9) → six conv(k 8, stride 2), each [BN] ReLU [Dropout]."""
    epsilon = check_epsilon("compression_epsilon", compression_epsilon, allow_zero=True)
    if epsilon > 0:
        compressed = LogCompression(epsilon, name="log_compression")(x)
        x = keras.layers.Concatenate(axis=-1, name="linear_and_log")([x, compressed])
    x = conv_unit(x, STEM, batch_norm=batch_norm, name="stem_conv")
    for index, conv in enumerate(DOWNSAMPLING, start=1):
        x = conv_unit(x, conv, batch_norm=batch_norm, name=f"conv{index}")
        x = dropout(x, conv_dropout, name=f"conv{index}_dropout")
    return x
