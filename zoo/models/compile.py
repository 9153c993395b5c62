"""The study's training configuration, in one place: Adam(3e-4, β 0.9/0.999) + categorical cross-entropy."""

from __future__ import annotations

from typing import Literal

import keras

#: Learning rate of the study (Schuetzke et al. 2023) for every model.
LEARNING_RATE = 3e-4


def compile_model(
    model: keras.Model,
    learning_rate: float = LEARNING_RATE,
    *,
    jit_compile: bool | Literal["auto"] = "auto",
) -> keras.Model:
    """Compile ``model`` in place with the study's optimizer, loss and accuracy metric; return it.

    Args:
        model: any Keras model with a softmax output over one-hot labels.
        learning_rate: Adam learning rate (β1 0.9, β2 0.999).
        jit_compile: passed to ``Model.compile`` (``"auto"`` = XLA where the backend supports it).
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model
