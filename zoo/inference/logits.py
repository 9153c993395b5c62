"""The logits of a Keras classifier (the inputs of its final softmax), and Monte Carlo dropout.

Temperature scaling and the energy score need logits, not probabilities. The zoo's models end in
``Dense(num_classes, activation="softmax")`` (:func:`zoo.models.blocks.softmax_output`);
:func:`logits_function` gives a callable computing that layer's pre-activation, sharing the model's
weights. A model ending otherwise (a separate ``Activation("softmax")`` layer is handled too) gets
``log(p)``, equal to its logits up to a constant per spectrum. Keras is imported on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

#: ``logits(x, training) -> tensor [batch, classes]`` on max-normalised ``(batch, datapoints, 1)`` input.
LogitsFunction = Callable[..., Any]


def _is_softmax(activation: Any) -> bool:
    import keras

    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


def features_and_logits_function(model: keras.Model) -> Callable[..., tuple[Any, Any]] | None:
    """A function of max-normalised input (and ``training``) giving ``(features, logits)``: the input of
    the model's final softmax layer and its pre-softmax values, from one pass through the model; None for
    a model that does not end in a softmax layer of a functional graph."""
    import keras
    from keras import ops

    last = model.layers[-1]
    try:
        features_model = keras.Model(model.input, last.input)
    except (AttributeError, ValueError, TypeError):  # not a functional graph
        return None
    if isinstance(last, keras.layers.Dense) and _is_softmax(last.activation):

        def dense(x: Any, training: bool = False) -> tuple[Any, Any]:
            features = ops.cast(features_model(x, training=training), last.kernel.dtype)
            out = ops.matmul(features, last.kernel)
            return features, out + last.bias if last.use_bias else out

        return dense
    if isinstance(last, keras.layers.Activation) and _is_softmax(last.activation):

        def activation(x: Any, training: bool = False) -> tuple[Any, Any]:
            features = ops.cast(features_model(x, training=training), "float32")
            return features, features

        return activation
    return None


def logits_function(model: keras.Model) -> tuple[LogitsFunction, bool]:
    """``(logits, exact)``: a function of max-normalised input (and ``training``) giving the model's logits,
    and whether they are the true pre-softmax values (False: ``log`` of the probabilities)."""
    from keras import ops

    both = features_and_logits_function(model)
    if both is not None:
        return lambda x, training=False: both(x, training=training)[1], True

    def log_probabilities(x: Any, training: bool = False) -> Any:
        p = ops.cast(model(x, training=training), "float32")
        return ops.log(ops.maximum(p, np.finfo(np.float32).tiny))

    return log_probabilities, False


def has_dropout(model: keras.Model) -> bool:
    """Whether the model holds a Dropout layer with a positive rate (Monte Carlo dropout applies)."""
    import keras

    return any(isinstance(layer, keras.layers.Dropout) and layer.rate > 0 for layer in _all_layers(model))


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def predict_logits(
    model: keras.Model, spectra: np.ndarray, *, batch_size: int = 128, training: bool = False
) -> np.ndarray:
    """Logits ``[n, classes]`` (float64) of max-normalised spectra ``[n, datapoints]``.

    ``training=True`` keeps Dropout active (one Monte Carlo dropout pass); BatchNormalization layers are
    frozen for the call, so they keep using their moving statistics.
    """
    import keras

    logits, _ = logits_function(model)
    frozen = []
    if training:
        for layer in _all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
                layer.trainable = False  # Keras 3: a non-trainable BatchNormalization runs in inference mode
                frozen.append(layer)
    try:
        parts = [
            keras.ops.convert_to_numpy(
                logits(spectra[i : i + batch_size, :, np.newaxis].astype(np.float32), training=training)
            )
            for i in range(0, len(spectra), batch_size)
        ]
    finally:
        for layer in frozen:
            layer.trainable = True
    return np.concatenate(parts).astype(np.float64)


def predict_features(model: keras.Model, spectra: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """The input of the model's final layer (the features its softmax layer sees), ``[n, features]``,
    for max-normalised spectra ``[n, datapoints]``."""
    import keras

    features_model = keras.Model(model.input, model.layers[-1].input)
    parts = [
        np.asarray(features_model.predict_on_batch(spectra[i : i + batch_size, :, np.newaxis]), np.float64)
        for i in range(0, len(spectra), batch_size)
    ]
    return np.concatenate(parts).reshape(len(spectra), -1)


def mc_dropout_probabilities(
    model: keras.Model, spectra: np.ndarray, *, passes: int = 20, batch_size: int = 128, seed: int = 0
) -> np.ndarray:
    """Mean softmax ``[n, classes]`` over ``passes`` forward passes with Dropout active (Monte Carlo dropout).

    ValueError for a model without Dropout (every pass would be the same).
    """
    import keras

    from zoo.inference.calibration import softmax

    if not has_dropout(model):
        raise ValueError(f"{model.name}: no Dropout layer, Monte Carlo dropout does not apply")
    keras.utils.set_random_seed(seed)
    total = np.zeros((len(spectra), model.output_shape[-1]))
    for _ in range(passes):
        total += softmax(predict_logits(model, spectra, batch_size=batch_size, training=True))
    return total / passes


def logits_model(model: keras.Model, *, with_features: bool = False) -> keras.Model:
    """A Keras model giving ``model``'s logits (same input), for fast ``predict_on_batch`` calls;
    ``with_features``: ``[logits, features]`` (the input of the final softmax layer) from one pass.

    For a model ending in ``Dense(softmax)`` it is the model up to that layer plus a copy of it without
    the activation (its weights copied: use it for inference, not training); otherwise a model giving
    ``log(p)`` (:func:`logits_function`; ValueError ``with_features``: it has no feature layer).
    """
    import keras

    last = model.layers[-1]
    _, exact = logits_function(model)
    if not exact and with_features:
        raise ValueError(f"{model.name}: no softmax layer, so no features before it")
    features = last.input if exact else None
    if exact and isinstance(last, keras.layers.Dense):
        copy = keras.layers.Dense(last.units, use_bias=last.use_bias, dtype="float32", name="logits")
        outputs = copy(keras.ops.cast(last.input, "float32"))
        copy.set_weights(last.get_weights())
    elif exact:
        outputs = last.input
    else:
        outputs = keras.ops.log(
            keras.ops.maximum(keras.ops.cast(model.output, "float32"), np.finfo(np.float32).tiny)
        )
    return keras.Model(
        model.input, [outputs, features] if with_features else outputs, name=f"{model.name}_logits"
    )
