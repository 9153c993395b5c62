"""Re-estimate a model's batch-norm statistics from its training spectra ("precise" batch norm).

Keras's ``BatchNormalization`` keeps moving averages of its input's mean and variance for inference. They
start at 0 and 1 and move by ``1 - momentum`` (0.01) per training step, so a model trained for few steps
(the study's ``challenge`` gives 11 per epoch) carries statistics that are still mostly their starting
values. Where a layer's true variance is far from 1 (the first convolution of max-normalised spectra), the
model's inference output is far from what its weights give, and validation, early stopping and the export
all see that model.

:func:`reestimate_batch_norm` replaces every batch-norm layer's moving statistics with its input's mean and
variance over a set of spectra (the training spectra), computed in one pass the way training sees them:
batch-norm layers normalise with their batch's statistics, dropout is off. This is the "precise batch norm"
of Wu & Johnson, *Rethinking "Batch" in BatchNorm* (2021). The weights are unchanged; only the two moving
statistics of each batch-norm layer are assigned.

    >>> reestimate_batch_norm(model, train_spectra)  # doctest: +SKIP
    5
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's own ``BatchNormalization`` layers, in calling order.

    ValueError for a batch-norm layer inside a nested model: its input is not one of the outer model's
    tensors (the zoo's models are flat)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model) and batch_norm_layers(layer):
            raise ValueError(f"{model.name}: batch norm in a nested model ({layer.name}) is not supported")
    return found


def _numpy(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def _per_spectrum_axes(layer: keras.layers.BatchNormalization, rank: int) -> tuple[int, ...]:
    """The axes of a layer's input to average over within one spectrum: all but the batch and channels."""
    channel = layer.axis if layer.axis >= 0 else rank + layer.axis
    return tuple(axis for axis in range(1, rank) if axis != channel)


class _TrainingModeMoments(keras.Model):
    """Per spectrum and channel, the mean and mean square of every batch-norm layer's input, with the
    model's layers called in training mode (batch-norm layers normalise with the batch's statistics)."""

    def __init__(self, model: keras.Model, layers: list[keras.layers.BatchNormalization]) -> None:
        super().__init__(name="batch_norm_moments")
        outputs = []
        for layer in layers:
            value = keras.ops.cast(layer.input, "float32")
            axes = _per_spectrum_axes(layer, len(value.shape))
            outputs += [keras.ops.mean(value, axis=axes), keras.ops.mean(keras.ops.square(value), axis=axes)]
        self.moments = keras.Model(model.inputs, outputs)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.moments(inputs, training=True)


@contextmanager
def _dropout_off(model: keras.Model) -> Iterator[None]:
    """Every dropout layer's rate is 0 inside the block (they then draw no random numbers)."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in layers]
    try:
        for layer in layers:
            layer.rate = 0.0
        yield
    finally:
        for layer, rate in zip(layers, rates, strict=True):
            layer.rate = rate


@contextmanager
def kept_moving_statistics(model: keras.Model, *, only_on_error: bool = False) -> Iterator[None]:
    """Put every batch-norm layer's moving mean and variance back as they were when the block ends, or
    only when it fails (``only_on_error``: a training-mode call that fails half-way moves them)."""
    layers = batch_norm_layers(model)
    kept = [(_numpy(layer.moving_mean), _numpy(layer.moving_variance)) for layer in layers]
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if failed or not only_on_error:
            for layer, (mean, variance) in zip(layers, kept, strict=True):
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)


def reestimate_batch_norm(model: keras.Model, spectra: Any, *, batch_size: int = 128) -> int:
    """Set every batch-norm layer's moving mean and variance to those of its input over ``spectra``.

    ``spectra`` is an array shaped as the model's input, or a ``tf.data.Dataset`` of input batches (or of
    ``(spectra, labels)`` batches); use the training spectra, never test data. Each layer's input is
    computed in one pass as in training, ``batch_size`` spectra at a time for an array (a dataset's own
    batches otherwise): batch-norm layers normalise with their batch's statistics and dropout is off. The
    mean is taken over every value of a channel, the variance is the mean square minus the squared mean.
    Returns the number of layers updated (0, and nothing done, for a model without batch norm).
    ValueError for empty ``spectra``.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    moments = _TrainingModeMoments(model, layers)
    with kept_moving_statistics(model, only_on_error=True), _dropout_off(model):
        if isinstance(spectra, np.ndarray) and not len(spectra):
            raise ValueError("spectra: no spectra to estimate the batch-norm statistics from")
        per_spectrum = moments.predict(spectra, batch_size=batch_size, verbose=0)
        for i, layer in enumerate(layers):  # every spectrum has as many values per channel: plain means
            mean = np.mean(per_spectrum[2 * i], axis=0, dtype=np.float64)
            variance = np.maximum(np.mean(per_spectrum[2 * i + 1], axis=0, dtype=np.float64) - mean**2, 0.0)
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return len(layers)


__all__ = ["batch_norm_layers", "kept_moving_statistics", "reestimate_batch_norm"]
