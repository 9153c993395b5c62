"""Custom Keras layers of the zoo (serialisable, pure ``keras.ops``)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="spectrazoo")
class PerSpectrumMaxNormalization(keras.layers.Layer):
    """Divide every spectrum (last axis) by its own maximum — the study's preprocessing.

    A spectrum without a positive maximum (all zero or all negative) has no valid normalisation; its output
    row is NaN (and so are the probabilities computed from it) instead of a silently wrong value.
    """

    def call(self, inputs: Any) -> Any:
        maxima = ops.max(inputs, axis=-1, keepdims=True)
        valid = ops.where(maxima > 0, maxima, ops.full_like(maxima, float("nan")))
        return inputs / valid

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="spectrazoo")
class SliceMaxPool1D(keras.layers.MaxPooling1D):
    """``MaxPooling1D`` ("valid", channels last) computed as the maximum of ``pool_size`` strided slices.

    The outputs are identical to ``MaxPooling1D``; only the computation differs. Its gradient is a chain of
    element-wise selects that XLA fuses and parallelises, where the reduce-window gradient of the built-in
    layer (select-and-scatter) runs on one core: about 10x less time for CNN6's first pooling layer with
    XLA (``jit_compile=True``, the Keras default on TensorFlow, and always on JAX). Without XLA (TensorFlow
    graph mode, e.g. with op determinism) the built-in layer is faster — see ``benchmarks/throughput.py``.
    Needs a static length (models of the zoo have one).
    """

    def __init__(
        self,
        pool_size: int,
        strides: int | None = None,
        padding: str = "valid",
        data_format: str | None = "channels_last",
        **kwargs: Any,
    ) -> None:
        if padding != "valid" or data_format not in (None, "channels_last"):
            raise ValueError(
                f"SliceMaxPool1D: only padding='valid', channels_last; got {padding!r}, {data_format!r}"
            )
        super().__init__(pool_size, strides=strides, padding=padding, data_format="channels_last", **kwargs)

    def call(self, inputs: Any) -> Any:
        size, stride = self.pool_size[0], self.strides[0]
        length = inputs.shape[1]
        if length is None:
            raise ValueError(f"{self.name}: SliceMaxPool1D needs a static input length")
        span = ((length - size) // stride) * stride + 1  # from the first to the last window start
        outputs = inputs[:, :span:stride]
        for offset in range(1, size):
            outputs = ops.maximum(outputs, inputs[:, offset : offset + span : stride])
        return outputs
