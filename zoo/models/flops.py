"""Floating-point operation counts from layer shapes (no forward pass).

Counts 2 × multiply-accumulates of the convolutions and dense layers of one forward pass for one sample;
pooling, normalisation and activations are bandwidth-bound and not counted. A training step costs about
3 × the forward count (forward, gradient w.r.t. inputs, gradient w.r.t. weights).
"""

from __future__ import annotations

import math
from typing import Any

import keras

#: Approximate ratio between the FLOPs of one training step and one forward pass.
TRAINING_FACTOR = 3


def _layer_macs(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.layers.Conv1D):
        _, length, filters = layer.output.shape
        in_channels = layer.input.shape[-1]
        return length * filters * layer.kernel_size[0] * in_channels // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.input.shape[1:-1])
        return positions * layer.input.shape[-1] * layer.units
    return 0


def flops_by_layer(model: keras.Model) -> dict[str, int]:
    """Forward FLOPs per sample of every Conv1D / Dense layer (nested models flattened, ``outer/inner``)."""
    counts: dict[str, int] = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            counts.update({f"{layer.name}/{k}": v for k, v in flops_by_layer(layer).items()})
        elif macs := _layer_macs(layer):
            counts[layer.name] = 2 * macs
    return counts


def count_flops(model: keras.Model, *, training: bool = False) -> int:
    """Forward FLOPs per sample (``training=True``: ≈ 3 × forward, one training step per sample)."""
    forward = sum(flops_by_layer(model).values())
    return forward * TRAINING_FACTOR if training else forward


def describe_flops(model: Any) -> str:
    """One line: forward and training GFLOP per sample."""
    forward = count_flops(model)
    training = forward * TRAINING_FACTOR
    return f"{forward / 1e9:.3f} GFLOP forward, {training / 1e9:.3f} GFLOP per training sample"
