"""How far a batch-normalised model's moving statistics are from its training spectra's own.

Keras's ``BatchNormalization`` starts its moving variance at 1 and moves it by ``1 - momentum`` (0.01) per
training step. With the study's protocol on ``challenge`` (1,350 spectra, batch 128: 11 steps per epoch) the
starting value still weighs ``0.99 ** (11 * epochs)`` after ``epochs`` epochs: 2.3 % after 34 epochs. Where a
layer's true variance is far below that (the first convolution of max-normalised spectra, mostly zeros), the
stored variance is many times too large, the layer's output shrinks towards its offset in inference, and the
model's validation accuracy (and the validation loss early stopping watches) can sit far below what its
weights give. :func:`diagnose` measures that gap on one model:

- the accuracy with the stored (moving) statistics, as ``model.predict`` and the protocol see it;
- the accuracy after :func:`population_statistics` replaced them with the training spectra's own mean and
  variance of every batch-normalised layer's input (inference mode: dropout off; layer by layer, so each
  layer sees its predecessors' corrected output), the statistics the moving averages converge to;
- per layer, the stored variance over the population variance (median over channels).

The model's statistics are restored before :func:`diagnose` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from zoo.models.batch_norm import batch_norm_layers, kept_moving_statistics


@dataclass(frozen=True)
class LayerStatistics:
    """One batch-normalised layer's stored and population statistics (per channel)."""

    name: str
    stored_mean: np.ndarray
    stored_variance: np.ndarray
    population_mean: np.ndarray
    population_variance: np.ndarray

    @property
    def variance_ratio(self) -> float:
        """Median over channels of the stored variance over the population variance (1: they agree)."""
        floor = np.finfo(np.float32).tiny
        return float(np.median(self.stored_variance / np.maximum(self.population_variance, floor)))


def _numpy(variable: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable)


def _input_moments(model: keras.Model, layer: Any, spectra: np.ndarray, batch_size: int) -> tuple[Any, Any]:
    """Mean and variance per channel of ``layer``'s input over all of ``spectra`` (inference mode)."""
    probe = keras.Model(model.input, layer.input)
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(spectra), batch_size):
        values = np.asarray(probe(spectra[start : start + batch_size], training=False), dtype=np.float64)
        values = values.reshape(-1, values.shape[-1])
        total = total + values.sum(axis=0)
        total_sq = total_sq + np.square(values).sum(axis=0)
        count += values.shape[0]
    mean = total / count
    return mean, np.maximum(total_sq / count - np.square(mean), 0.0)


def population_statistics(
    model: keras.Model, spectra: np.ndarray, *, batch_size: int = 128
) -> list[LayerStatistics]:
    """Each batch-normalised layer's stored statistics and those of its input over ``spectra`` (shaped as
    the model's input). The model is left as it was."""
    found = []
    with kept_moving_statistics(model):
        for layer in batch_norm_layers(model):
            stored_mean, stored_variance = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
            mean, variance = _input_moments(model, layer, spectra, batch_size)
            found.append(LayerStatistics(layer.name, stored_mean, stored_variance, mean, variance))
            layer.moving_mean.assign(mean.astype(stored_mean.dtype))  # the next layers see this one corrected
            layer.moving_variance.assign(variance.astype(stored_variance.dtype))
    return found


def assign_population_statistics(model: keras.Model, statistics: list[LayerStatistics]) -> None:
    """Put ``statistics``' population mean and variance into the model's layers of the same names."""
    layers = {layer.name: layer for layer in batch_norm_layers(model)}
    for found in statistics:
        layer = layers[found.name]
        layer.moving_mean.assign(found.population_mean.astype(found.stored_mean.dtype))
        layer.moving_variance.assign(found.population_variance.astype(found.stored_variance.dtype))


def accuracy(model: keras.Model, spectra: np.ndarray, labels: np.ndarray, *, batch_size: int = 128) -> float:
    """Top-1 accuracy of ``model`` in inference mode."""
    predicted = [
        np.asarray(model(spectra[start : start + batch_size], training=False)).argmax(axis=-1)
        for start in range(0, len(spectra), batch_size)
    ]
    return float(np.mean(np.concatenate(predicted) == labels))


def diagnose(
    model: keras.Model,
    population: np.ndarray,
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Accuracy on each of ``sets`` (name -> spectra shaped as the model's input, labels) with the stored
    statistics and with those of ``population`` (the training spectra), and each layer's variance ratio.
    ValueError for a model without batch normalisation. The model is left as it was."""
    if not batch_norm_layers(model):
        raise ValueError(f"{model.name} has no BatchNormalization layer")
    stored = {name: accuracy(model, *found, batch_size=batch_size) for name, found in sets.items()}
    statistics = population_statistics(model, population, batch_size=batch_size)
    with kept_moving_statistics(model):
        assign_population_statistics(model, statistics)
        corrected = {name: accuracy(model, *found, batch_size=batch_size) for name, found in sets.items()}
    return {
        "accuracy_stored": stored,
        "accuracy_population": corrected,
        "variance_ratio": {found.name: found.variance_ratio for found in statistics},
    }


__all__ = [
    "LayerStatistics",
    "accuracy",
    "assign_population_statistics",
    "batch_norm_layers",
    "diagnose",
    "population_statistics",
]
