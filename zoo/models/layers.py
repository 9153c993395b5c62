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
class NaNForInvalidSpectra(keras.layers.Layer):
    """``[spectra, outputs]`` → ``outputs``, with the rows of spectra without a positive maximum set to NaN.

    The NaN from :class:`PerSpectrumMaxNormalization` does not always survive the network: some CPU kernels
    (oneDNN's ReLU and pooling on Intel CPUs) turn NaN into numbers. This layer makes the contract explicit
    at the output.
    """

    def call(self, inputs: Any) -> Any:
        spectra, outputs = inputs
        valid = ops.max(spectra, axis=-1, keepdims=True) > 0
        return ops.where(valid, outputs, ops.full_like(outputs, float("nan")))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[1]
