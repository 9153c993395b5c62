"""Building blocks shared by the zoo's architectures: conv units, conv/pool stages (max, average or no
pooling), inception and residual blocks, an LSTM stage, the fully connected heads (plain, or with batch
normalisation), and :func:`spectrum_classifier`, which wires a trunk and a head into a ``keras.Model``.

Pure Keras 3 (``keras.layers`` / ``keras.ops`` only), so every model also builds under the JAX, PyTorch or
NumPy backends. Layer names follow the papers' tables: ``conv1``, ``maxpool1``, ``dense0``, ``output``...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import keras

from zoo.models.build_config import BuildConfig

#: A Keras activation name, or a factory ``factory(name=...) -> keras.layers.Layer`` (e.g. a LeakyReLU).
ActivationSpec = str | Callable[..., keras.layers.Layer]


class Trunk(Protocol):
    """Feature extractor of one architecture: maps the ``(length, 1)`` input to a ``(length', c)`` map."""

    def __call__(self, x: Any, *, batch_norm: bool, conv_dropout: float, **options: Any) -> Any: ...


class InputTooShortError(ValueError):
    """The input shrank below a pooling window; :func:`spectrum_classifier` adds the model context."""


@dataclasses.dataclass(frozen=True)
class Conv:
    """``Conv1D(filters, kernel_size, strides)`` with "same" padding."""

    filters: int
    kernel_size: int
    strides: int = 1


#: Pooling layers a :class:`Stage` can end with.
POOLS: tuple[str, ...] = ("max", "avg", "none")


@dataclasses.dataclass(frozen=True)
class Stage:
    """Convolutions followed by a ``pool`` pooling layer (``pool_size``, ``pool_strides``, "valid" padding).

    ``pool="max"`` (the default) is ``MaxPool1D``, ``"avg"`` is ``AveragePooling1D``, ``"none"`` ends the
    stage with its last convolution (the pool sizes are then ignored).
    """

    convs: tuple[Conv, ...]
    pool_size: int
    pool_strides: int
    pool: str = "max"

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"Stage.pool must be one of {', '.join(POOLS)}, got {self.pool!r}")


def check_activation(field: str, activation: str) -> None:
    """Raise a one-line ``ValueError`` naming ``field`` if ``activation`` is not a Keras activation name."""
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(f"{field}: unknown Keras activation {activation!r}") from None


def dropout(x: Any, rate: float, name: str) -> Any:
    """``Dropout(rate)`` when ``rate > 0``; otherwise ``x`` unchanged (no layer)."""
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def conv_unit(
    x: Any,
    conv: Conv,
    *,
    activation: ActivationSpec = "relu",
    batch_norm: bool = False,
    name: str,
) -> Any:
    """Conv1D ("same") → [BatchNormalization] → activation.

    Without BN a named activation is fused into the ``Conv1D`` (one layer, as in the papers); with BN the
    convolution is linear and BN sits between it and the activation. ``"linear"`` adds no activation layer.
    """
    fuse = isinstance(activation, str) and not batch_norm
    x = keras.layers.Conv1D(
        conv.filters,
        conv.kernel_size,
        strides=conv.strides,
        padding="same",
        activation=activation if fuse else None,
        name=name,
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if fuse or activation == "linear":
        return x
    if isinstance(activation, str):
        return keras.layers.Activation(activation, name=f"{name}_act")(x)
    return activation(name=f"{name}_act")(x)


def _check_window(x: Any, pool_size: int, name: str) -> None:
    length = x.shape[1]
    if length is not None and length < pool_size:
        raise InputTooShortError(f"layer {name!r} (pool size {pool_size}) would receive {length} point(s)")


def max_pool(x: Any, pool_size: int, strides: int, name: str) -> Any:
    """``MaxPool1D`` ("valid"); :class:`InputTooShortError` if the input is shorter than the window."""
    _check_window(x, pool_size, name)
    return keras.layers.MaxPool1D(pool_size, strides=strides, padding="valid", name=name)(x)


def avg_pool(x: Any, pool_size: int, strides: int, name: str) -> Any:
    """``AveragePooling1D`` ("valid"); :class:`InputTooShortError` if the input is shorter than the window."""
    _check_window(x, pool_size, name)
    return keras.layers.AveragePooling1D(pool_size, strides=strides, padding="valid", name=name)(x)


def conv_pool_stages(
    x: Any,
    stages: Sequence[Stage],
    *,
    activation: ActivationSpec = "relu",
    batch_norm: bool,
    conv_dropout: float,
    dropout_before_pool: bool = False,
    dropout_after_last_stage: bool = True,
) -> Any:
    """Stacks of conv units, each stage closed by its pool and (if ``conv_dropout``) a Dropout.

    Convolutions are numbered ``conv1, conv2, ...`` across stages, pools ``maxpool1`` / ``avgpool1``, ...
    by stage. The Dropout follows the pool (``<pool>_dropout``), or, with ``dropout_before_pool`` or in a
    stage without pooling, the stage's last convolution (``conv<k>_dropout``).
    ``dropout_after_last_stage=False`` leaves the last stage without one (for trunks whose next layer is
    the head's own Dropout, or an LSTM).
    """
    conv_index = 0
    for stage_index, stage in enumerate(stages, start=1):
        for conv in stage.convs:
            conv_index += 1
            x = conv_unit(x, conv, activation=activation, batch_norm=batch_norm, name=f"conv{conv_index}")
        rate = conv_dropout if dropout_after_last_stage or stage_index < len(stages) else 0.0
        if stage.pool == "none" or dropout_before_pool:
            x = dropout(x, rate, name=f"conv{conv_index}_dropout")
        if stage.pool != "none":
            pool = max_pool if stage.pool == "max" else avg_pool
            name = f"{stage.pool}pool{stage_index}"
            x = pool(x, stage.pool_size, stage.pool_strides, name=name)
            if not dropout_before_pool:
                x = dropout(x, rate, name=f"{name}_dropout")
    return x


def lstm_stage(x: Any, units: int, name: str = "lstm") -> Any:
    """``LSTM(units)`` with Keras defaults, returning its last hidden state ``(batch, units)``."""
    return keras.layers.LSTM(units, name=name)(x)


def inception_block(x: Any, filters: Sequence[int], *, batch_norm: bool, name: str) -> Any:
    """GoogLeNet-style block: 1x1 | 1x1→3 | 1x1→5 | avgpool(3)→1x1 branches, concatenated on channels.

    ``filters`` = (f0, ..., f5): f0 for the 1x1 branch, (f1, f2) and (f3, f4) for the reduce/conv pairs,
    f5 for the pooling projection. Every conv is ReLU; the length is preserved.
    """
    f0, f1, f2, f3, f4, f5 = filters

    def unit(tensor: Any, conv: Conv, suffix: str) -> Any:
        return conv_unit(tensor, conv, batch_norm=batch_norm, name=f"{name}_{suffix}")

    branch1 = unit(x, Conv(f0, 1), "1x1")
    branch3 = unit(unit(x, Conv(f1, 1), "3x3_reduce"), Conv(f2, 3), "3x3")
    branch5 = unit(unit(x, Conv(f3, 1), "5x5_reduce"), Conv(f4, 5), "5x5")
    pooled = keras.layers.AveragePooling1D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = unit(pooled, Conv(f5, 1), "pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([branch1, branch3, branch5, branch_pool])


def residual_block(
    x: Any, filters: int, kernel_size: int, *, strides: int, projection: bool, batch_norm: bool, name: str
) -> Any:
    """ResNet block: conv(k, s)→[BN]→ReLU→conv(k)→[BN], plus the shortcut, then ReLU.

    The shortcut is the input itself, or (``projection=True``) a linear 1x1 conv with stride ``strides``
    followed by [BN].
    """
    shortcut = x
    if projection:
        shortcut = conv_unit(
            x, Conv(filters, 1, strides), activation="linear", batch_norm=batch_norm, name=f"{name}_shortcut"
        )
    y = conv_unit(x, Conv(filters, kernel_size, strides), batch_norm=batch_norm, name=f"{name}_conv1")
    y = conv_unit(
        y, Conv(filters, kernel_size), activation="linear", batch_norm=batch_norm, name=f"{name}_conv2"
    )
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def softmax_output(x: Any, num_classes: int) -> Any:
    """``Dense(num_classes, softmax)`` named ``output``, in float32 under any global dtype policy."""
    # float32 under any global policy: the softmax (and the loss on it) stay exact under mixed precision.
    return keras.layers.Dense(num_classes, activation="softmax", name="output", dtype="float32")(x)


def classifier_head(
    x: Any, *, num_classes: int, widths: Sequence[int], activation: str | None, rate: float
) -> Any:
    """Flatten → [Dropout → Dense(w, activation)] per hidden width → Dropout → Dense(num_classes, softmax)."""
    x = keras.layers.Flatten(name="flatten")(x)
    for index, width in enumerate(widths):
        x = dropout(x, rate, name=f"dense{index}_dropout")
        x = keras.layers.Dense(width, activation=activation, name=f"dense{index}")(x)
    x = dropout(x, rate, name="output_dropout")
    return softmax_output(x, num_classes)


def bn_classifier_head(
    x: Any, *, num_classes: int, widths: Sequence[int], activation: str | None, rate: float
) -> Any:
    """Flatten → [Dense(w) → BatchNormalization → activation → Dropout] per hidden width → softmax output.

    The head with batch normalisation inside: each hidden Dense is linear (bias kept), BN sits between it and
    its activation, and the Dropout comes after the activation only (none between Flatten and the first
    Dense, none at all without hidden layers).
    """
    x = keras.layers.Flatten(name="flatten")(x)
    for index, width in enumerate(widths):
        x = keras.layers.Dense(width, name=f"dense{index}")(x)
        x = keras.layers.BatchNormalization(name=f"dense{index}_bn")(x)
        if activation not in (None, "linear"):
            x = keras.layers.Activation(activation, name=f"dense{index}_act")(x)
        x = dropout(x, rate, name=f"dense{index}_dropout")
    return softmax_output(x, num_classes)


class Head(Protocol):
    """Classifier on top of a trunk: features → softmax probabilities (see :func:`classifier_head`)."""

    def __call__(
        self, x: Any, *, num_classes: int, widths: Sequence[int], activation: str | None, rate: float
    ) -> Any: ...


def spectrum_classifier(
    name: str, trunk: Trunk, config: BuildConfig, head: Head = classifier_head
) -> keras.Model:
    """Input ``(input_length, 1)`` → ``trunk`` → ``head`` (:func:`classifier_head`) as a ``keras.Model``.

    Raises:
        ValueError: one line, for an unknown activation or an input too short for the trunk's pooling.
    """
    if config.fc_activation is not None:
        check_activation("fc_activation", config.fc_activation)
    inputs = keras.Input(shape=(config.input_length, 1), name="spectrum")
    try:
        features = trunk(
            inputs, batch_norm=config.batch_norm, conv_dropout=config.conv_dropout, **config.options
        )
    except InputTooShortError as exc:
        raise ValueError(f"input_length={config.input_length} is too short for {name}: {exc}") from None
    outputs = head(
        features,
        num_classes=config.num_classes,
        widths=config.fc_widths,
        activation=config.fc_activation,
        rate=config.fc_dropout,
    )
    return keras.Model(inputs, outputs, name=name)
