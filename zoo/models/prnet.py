"""PRNet (peak-resolving network): this project's architecture against the study's three failure modes.

A fixed, parameter-free peak encoder — apexes (:class:`PeakCoding`), a log-compressed height code on
triangular levels, positions absolute or relative to the strongest apex (:class:`RelativeToStrongest`),
triangular position cells, a fixed gain and a constant bias channel — followed by one trained linear
softmax layer (:func:`trunk`, registered as ``prnet``: ``zoo.build("prnet", classes)``). Options:
:data:`ROBUST_OPTION` (smoothing, baseline removal, a noise threshold) and :data:`V4_OPTION` (absolute
positions with a median-based noise level).

The design, step by step, with the reasons for each choice and what PRNet reaches: ``docs/prnet.md`` (the
documentation site's PRNet page). Pure Keras 3 ops (builds and runs under JAX as well); the custom layers
are registered serialisable (``spectrazoo>PeakCoding``, ``spectrazoo>RelativeToStrongest``,
``spectrazoo>AppendConstant``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from zoo.checks import check_int

#: Local-maximum window of the apex detector (points); peaks of one class are >= 160 points apart.
APEX_WINDOW = 11
#: Apexes below this fraction of the highest peak are ignored (the smallest test minor peak is 0.5 %).
APEX_THRESHOLD = 0.002
#: Extra channels of the peak code besides the height levels: presence and log-compressed height.
EXTRA_CHANNELS = 2
#: The fixed front end computes in float32 under any global dtype policy (mixed precision included): its
#: apex detection, height levels and position cells are exact comparisons and sums, not learned weights.
FRONT_END_DTYPE = "float32"

#: The robust option (smoothing, baseline removal, noise threshold) chosen on challenge_realistic's
#: validation split (candidate ``robust_s7_b51_n1.5`` of ``benchmarks/experiments/prnet_design.py``).
ROBUST_OPTION = {"smooth": 7, "background": 51, "noise": 1.5}

#: PRNet v4 (issue #15, part 3): absolute positions (v2's code, which keeps classes that are translates of
#: each other apart) and a robust front end whose noise level is the median absolute smoothing residual, so
#: that clean spectra keep every apex (on them it is zero) while noise maxima stay below the threshold. The
#: multiplier 2 was chosen on validation-split perturbations of a fresh draw
#: (``benchmarks/experiments/prnet_v4.py``).
V4_OPTION = {"positions": "absolute", "smooth": 7, "background": 51, "noise": 2.0, "noise_statistic": "mad"}

#: How the robust option estimates the noise level from what the smoothing removed: its root mean square
#: (PRNet's robust option; on clean spectra the peaks' own smoothing residual raises the threshold) or its
#: median absolute value × 1.4826 (the Gaussian standard deviation; zero on clean spectra, whose residual is
#: zero off the peaks).
NOISE_STATISTICS = ("rms", "mad")
#: Median absolute deviation to the standard deviation of a Gaussian.
MAD_TO_STD = 1.4826

#: Position code: absolute (index in the spectrum) or relative to the strongest apex.
POSITIONS = ("absolute", "relative")


@keras.saving.register_keras_serializable(package="spectrazoo")
class LogCompression(keras.layers.Layer):
    """``sign(x) · log(1 + |x|/ε) / log(1 + 1/ε)``: keeps 0 and ±1, magnifies small values ~1/(ε log(1/ε)).

    PRNet v1's input layer (kept so that its exported models still load); :class:`PeakCoding` applies the
    same formula to apex heights.

    Odd and monotonic, so negative values (noise, baseline-subtracted spectra) are compressed symmetrically.
    """

    def __init__(self, epsilon: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = check_epsilon("epsilon", epsilon)

    def call(self, inputs: Any) -> Any:
        scale = 1.0 / math.log1p(1.0 / self.epsilon)
        return ops.sign(inputs) * ops.log1p(ops.abs(inputs) / self.epsilon) * scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="spectrazoo")
class PeakCoding(keras.layers.Layer):
    """Peak apexes of a ``(length, 1)`` spectrum, coded as ``(length, levels + 2)``; zero off the apexes.

    Per apex (a local maximum within ``window`` points above ``threshold`` × the spectrum's maximum):
    ``levels`` triangular memberships of the log-compressed height ``u`` (levels evenly spaced on [0, 1]),
    then 1 (presence) and ``u``.

    Design options (for the candidates of ``benchmarks/experiments/prnet_design.py``; PRNet uses the
    defaults):
    ``levels=0`` drops the height levels, ``extra_channels=False`` drops presence and ``u``,
    ``linear_height`` appends the relative height itself, and ``periods`` append ``sin`` and ``cos`` of the
    position with each period (points), in that order.

    Robust option for noisy spectra (all off by default): ``smooth`` > 1 filters the spectrum with two box
    passes of ``smooth`` points, ``background`` > 1 subtracts its morphological opening over ``background``
    points (a baseline under peaks narrower than the window), and ``noise`` > 0 raises the threshold to
    ``noise`` × the RMS of what the smoothing removed (relative to the processed maximum). Heights are then
    relative to the processed spectrum's maximum.
    """

    def __init__(
        self,
        levels: int = 11,
        epsilon: float = 0.01,
        window: int = APEX_WINDOW,
        threshold: float = APEX_THRESHOLD,
        linear_levels: bool = False,
        smooth: int = 0,
        background: int = 0,
        noise: float = 0.0,
        noise_statistic: str = "rms",
        extra_channels: bool = True,
        linear_height: bool = False,
        periods: Sequence[int] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.linear_levels = bool(linear_levels)
        self.extra_channels = bool(extra_channels)
        self.linear_height = bool(linear_height)
        self.periods = tuple(check_int(f"periods[{i}]", period) for i, period in enumerate(periods))
        self.smooth = check_int("smooth", smooth, minimum=0)
        self.background = check_int("background", background, minimum=0)
        valid = not isinstance(noise, bool) and isinstance(noise, numbers.Real) and math.isfinite(noise)
        if not (valid and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        self.noise = float(noise)
        if noise_statistic not in NOISE_STATISTICS:
            choices = ", ".join(NOISE_STATISTICS)
            raise ValueError(f"noise_statistic must be one of {choices}, got {noise_statistic!r}")
        self.noise_statistic = noise_statistic
        no_levels = levels == 0 and not isinstance(levels, bool)
        self.levels = 0 if no_levels else check_int("levels", levels, minimum=2)
        self.epsilon = check_epsilon("epsilon", epsilon)
        self.window = check_int("window", window, minimum=1)
        self.threshold = float(threshold)

    def call(self, inputs: Any) -> Any:
        x = inputs
        if self.smooth > 1:  # two box passes: a triangular filter of 2·smooth - 1 points
            x = ops.average_pool(ops.average_pool(x, self.smooth, 1, padding="same"), self.smooth, 1, "same")
        residual = inputs - x  # only used by the noise threshold
        if self.background > 1:  # morphological opening (rolling minimum, then maximum) as the baseline
            floor = -ops.max_pool(-x, self.background, 1, padding="same")
            x = x - ops.max_pool(floor, self.background, 1, padding="same")
        peak = ops.maximum(ops.max(x, axis=(1, 2), keepdims=True), 1e-12)
        threshold = self.threshold
        if self.noise:  # noise-relative: the spread of what the smoothing removed (needs smooth > 1)
            if self.noise_statistic == "mad":
                flat = ops.reshape(ops.abs(residual), (ops.shape(residual)[0], -1))
                spread = MAD_TO_STD * ops.reshape(ops.quantile(flat, 0.5, axis=1), (-1, 1, 1))
            else:
                spread = ops.sqrt(ops.mean(ops.square(residual), axis=(1, 2), keepdims=True))
            threshold = ops.maximum(threshold, self.noise * spread / peak)
        x = x / peak
        local_max = ops.max_pool(x, self.window, 1, padding="same")
        apex = ops.logical_and(x >= local_max, x > threshold)
        u = ops.log1p(ops.maximum(x, 0.0) / self.epsilon) / math.log1p(1.0 / self.epsilon)
        parts = []
        if self.levels:
            centres = ops.linspace(0.0, 1.0, self.levels)
            level_of = ops.minimum(x, 1.0) if self.linear_levels else u
            parts.append(ops.relu(1.0 - ops.abs(level_of - centres) * (self.levels - 1)))
        if self.extra_channels:
            parts += [ops.ones_like(u), u]
        if self.linear_height:
            parts.append(x)
        position = ops.arange(x.shape[1], dtype="float32")[None, :, None] + ops.zeros_like(u)
        for period in self.periods:
            angle = 2.0 * math.pi * position / period
            parts += [ops.sin(angle), ops.cos(angle)]
        code = ops.concatenate(parts, axis=-1)
        return ops.where(apex, code, ops.zeros_like(code))

    @property
    def channels(self) -> int:
        """Channels of the code: levels, presence and ``u``, the height, two per period."""
        extra = EXTRA_CHANNELS if self.extra_channels else 0
        return self.levels + extra + int(self.linear_height) + 2 * len(self.periods)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.channels)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "levels": self.levels,
            "epsilon": self.epsilon,
            "window": self.window,
            "threshold": self.threshold,
            "linear_levels": self.linear_levels,
            "smooth": self.smooth,
            "background": self.background,
            "noise": self.noise,
            "noise_statistic": self.noise_statistic,
            "extra_channels": self.extra_channels,
            "linear_height": self.linear_height,
            "periods": list(self.periods),
        }


@keras.saving.register_keras_serializable(package="spectrazoo")
class AppendConstant(keras.layers.Layer):
    """Append one channel holding ``value`` everywhere (a bias feature for the read-out)."""

    def __init__(self, value: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, inputs: Any) -> Any:
        return ops.concatenate([inputs, ops.full_like(inputs[..., :1], self.value)], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package="spectrazoo")
class RelativeToStrongest(keras.layers.Layer):
    """Re-index a ``(batch, length, channels)`` peak code by the offset from the strongest apex.

    Output position ``i`` (of ``2 · length``) holds the input at ``anchor + i − length``, zero outside the
    spectrum, so the strongest apex always lands at ``length`` and every other apex at its distance from
    it. The anchor is the position of the largest value in the last channel (PeakCoding's coded height:
    1 at the spectrum's maximum, 0 off the apexes). A shift of the whole pattern leaves the output
    unchanged.
    """

    def call(self, inputs: Any) -> Any:
        length = inputs.shape[1]
        if length is None:
            raise ValueError("RelativeToStrongest needs a fixed input length")
        anchor = ops.cast(ops.argmax(inputs[..., -1], axis=1), "int32")
        source = ops.arange(2 * length, dtype="int32")[None, :] + anchor[:, None] - length
        source = ops.where(ops.logical_and(source >= 0, source < length), source, length)
        padded = ops.concatenate([inputs, ops.zeros_like(inputs[:, :1])], axis=1)  # index length: zeros
        index = ops.broadcast_to(source[..., None], (ops.shape(inputs)[0], 2 * length, inputs.shape[2]))
        return ops.take_along_axis(padded, index, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, length, channels = input_shape
        return (batch, None if length is None else 2 * length, channels)


def check_epsilon(field: str, value: Any) -> float:
    """Validate a finite number > 0 (a compression constant, the gain); one-line ``ValueError`` otherwise."""
    valid = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not (valid and value > 0):
        raise ValueError(f"{field} must be a finite number > 0, got {value!r}")
    return float(value)


def trunk(
    x: Any,
    *,
    batch_norm: bool,
    conv_dropout: float,
    levels: int,
    spacing: int,
    gain: float,
    compression_epsilon: float,
    smooth: int = 0,
    background: int = 0,
    noise: float = 0.0,
    noise_statistic: str = "rms",
    positions: str = "relative",
) -> Any:
    """Peak apexes → height levels, presence, log height → [relative to the strongest apex] → triangular
    position cells → gain, bias channel."""
    if batch_norm or conv_dropout:
        raise ValueError("prnet has no convolutions: batch_norm and conv_dropout must stay off")
    levels = check_int("levels", levels, minimum=2)
    spacing = check_int("spacing", spacing, minimum=1)
    gain = check_epsilon("gain", gain)
    epsilon = check_epsilon("compression_epsilon", compression_epsilon)
    robust = {"smooth": smooth, "background": background, "noise": noise, "noise_statistic": noise_statistic}
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
    x = PeakCoding(levels, epsilon, name="peak_coding", dtype=FRONT_END_DTYPE, **robust)(x)
    if positions == "relative":
        x = RelativeToStrongest(name="relative_to_strongest", dtype=FRONT_END_DTYPE)(x)
    x = position_cells(x, spacing, gain, named=True)
    return AppendConstant(gain / x.shape[1], name="bias_channel", dtype=FRONT_END_DTYPE)(x)


def position_cells(x: Any, spacing: int, gain: float, *, named: bool = False) -> Any:
    """Splat a ``(length, channels)`` peak code onto triangular cells (half-width ``2 · spacing``, stride
    ``spacing``) and scale it by ``gain · 2 · spacing`` (each apex: total mass ``2 · gain``).

    ``named`` gives the layers PRNet's names (one use per model); the design script calls it unnamed.
    """
    names = ("position_box1", "position_cells", "gain") if named else (None, None, None)
    dtype = FRONT_END_DTYPE
    x = keras.layers.AveragePooling1D(2 * spacing, 1, padding="same", name=names[0], dtype=dtype)(x)
    x = keras.layers.AveragePooling1D(2 * spacing, spacing, padding="same", name=names[1], dtype=dtype)(x)
    return keras.layers.Rescaling(gain * 2 * spacing, name=names[2], dtype=dtype)(x)
