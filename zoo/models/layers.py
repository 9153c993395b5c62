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
