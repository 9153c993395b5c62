"""Export a trained model as a self-contained serving directory (the contract shared with the predictor).

``export(model, path)`` writes ``path/`` containing

* a TensorFlow SavedModel on RAW spectra ``[batch, datapoints]``, float32 or float64, any batch size, each
  divided by its own maximum inside the model. ``tf.saved_model.load(path)`` gives ``serve(x)`` →
  probabilities ``float32[batch, num_classes]``, ``top_k(x, k)`` → ``{"classes", "probabilities",
  "confidence", "valid", "unknown"}`` and ``class_names()``;
  ``keras.layers.TFSMLayer(path, call_endpoint="serve")`` works too. The signatures for TF Serving:
  ``serving_default`` / ``serve_float64`` → ``{"probabilities", "logits", "confidence", "valid",
  "unknown"}`` (``confidence``: the best class's probability, through the calibration's confidence map
  where it has one; plus ``"feature_score"`` where the calibration has a feature rule, whose bank is a
  variable of the SavedModel), ``top_k`` / ``top_k_float64`` and ``class_names``. A wrong length fails
  with a message naming the expected one; a spectrum without a positive maximum gets ``valid`` False and
  NaN probabilities. Its ``variables/`` hold every weight once, with no optimizer state, under the
  checkpoint key :func:`checkpoint_key` ``(i)`` for ``model.weights[i]``;
* ``metadata.json``: format, model name, build arguments, class names, dataset, metrics, versions, and
  ``keras_file``;
* ``model.keras`` (only where ``keras_file`` names it): the Keras model itself (input ``(datapoints, 1)``,
  max-normalised spectra) without its optimizer's state, for a model that :func:`zoo.build` cannot
  rebuild from the metadata (a custom model, a registry model changed after building, one built under
  another dtype policy). A registry model has none (``keras_file`` null): :func:`zoo.load_keras_model`
  rebuilds it from ``model`` and ``build_args`` and reads its weights from ``variables/``, so the weights
  are stored once. Exports written before this layout hold ``model.keras`` and no ``keras_file``.

Everything is written into a temporary sibling directory that is renamed at the end, so a failure never
leaves a half-written export. Keras and TensorFlow are imported only when :func:`export` runs.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import pathlib
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError
from zoo.inference.calibration import Calibration, ConfidenceMap
from zoo.models.registry import build, build_args_of, get_model_info, list_models

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

FORMAT = "spectrazoo-export"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
SERVING_ENDPOINT = "serve"
#: The SavedModel's checkpoint, relative to the export directory (``.index`` and ``.data-*`` files).
VARIABLES_PREFIX = "variables/variables"
#: The serving module's list of the model's variables, in ``model.weights`` order (the checkpoint's keys).
WEIGHTS_ATTRIBUTE = "model_weights"
#: The serving module's feature bank (float16 ``[n, features]``), where the calibration has a feature rule.
BANK_ATTRIBUTE = "feature_bank"
#: The feature bank's key in an export's checkpoint (``variables/variables``).
BANK_KEY = f"{BANK_ATTRIBUTE}/.ATTRIBUTES/VARIABLE_VALUE"


def checkpoint_key(index: int) -> str:
    """The key of ``model.weights[index]`` in an export's checkpoint (``variables/variables``)."""
    return f"{WEIGHTS_ATTRIBUTE}/{index}/.ATTRIBUTES/VARIABLE_VALUE"


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Keras' global dtype policy set to float32 in the block (how an export's model is rebuilt)."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def rebuild(model_name: str, build_args: Mapping[str, Any]) -> keras.Model:
    """``zoo.build(model_name, **build_args)`` in float32, uncompiled: an export's model without weights."""
    with float32_policy():
        return build(model_name, compile=False, **build_args)


def rebuilds(model: keras.Model, model_name: str, build_args: Mapping[str, Any]) -> bool:
    """Whether :func:`rebuild` gives ``model``'s architecture: the same config (layers, arguments, dtypes)."""
    if model_name not in list_models():
        return False
    try:
        return rebuild(model_name, build_args).get_config() == model.get_config()
    except (ValueError, TypeError, NotImplementedError):  # arguments the registry refuses, no config
        return False


def wrong_length_message(datapoints: int) -> str:
    """The first line of the SavedModel's error for spectra of another length than ``datapoints``."""
    return f"spectra: expected {datapoints} points per spectrum (shape [batch, {datapoints}]), got"


def serving_module(
    model: keras.Model, class_names: Sequence[str], calibration: Calibration | None = None
) -> tuple[tf.Module, dict[str, tf.types.experimental.PolymorphicFunction]]:
    """The SavedModel's object (``serve``, ``logits``, ``top_k`` and ``class_names`` over ``model``'s
    weights; ``scores`` where ``calibration`` has a feature rule) and its signatures for TF Serving
    (``serving_default``, ``serve_float64``, ``top_k``, ``top_k_float64``, ``class_names``).

    ``serve``, ``logits`` and ``top_k`` take raw spectra ``[batch, datapoints]`` in float32 or float64,
    check the length (``InvalidArgumentError``: ``assertion failed: [<wrong_length_message>] [<length>]``,
    the first line of the error TF Serving returns; in Python, TensorFlow puts ``Graph execution error:``
    and the failing node first and this line last),
    divide each spectrum by its own maximum and run ``model``. ``serve`` gives ``softmax(logits / T)`` with
    ``calibration``'s temperature (1 without one), ``logits`` the raw logits (:mod:`zoo.inference.logits`).
    The signatures add ``confidence`` (the top probability, passed through ``calibration``'s confidence map
    where it has one: :meth:`zoo.inference.calibration.Calibration.confidence`) and ``unknown``: the top
    probability is below ``calibration``'s threshold (never
    without one) or, with a feature rule, the spectrum's ``feature_score`` (also returned, and by
    ``scores`` with the logits: :func:`zoo.inference.calibration.knn_score` of the softmax layer's input
    against the bank, stored in the SavedModel's variables) is below the rule's threshold. A spectrum
    without a positive maximum (all zero, negative, NaN) gets ``valid`` False, NaN probabilities, logits
    and feature score and (``top_k``) empty class names.
    """
    import tensorflow as tf

    from zoo.inference.logits import features_and_logits_function, logits_function

    calibration = calibration or Calibration()
    rule = calibration.feature_distance
    datapoints, num_classes = _datapoints(model), _num_classes(model)
    names = tf.constant(list(class_names))
    temperature = tf.constant(calibration.temperature, tf.float32)
    threshold = tf.constant(-1.0 if calibration.threshold is None else calibration.threshold, tf.float32)
    both = features_and_logits_function(model) if rule is not None else None
    if rule is not None and (rule.bank is None or both is None):
        raise UserError(
            "calibration: a feature rule needs its bank (fit_calibration(..., reference=...)) and a model "
            "ending in a softmax layer"
        )
    confidence_map = None if calibration.confidence_map is None else _tf_map(calibration.confidence_map)
    module = tf.Module(name="spectrazoo_serving")
    if rule is None:
        logits_of, _ = logits_function(model)

        def model_outputs(scaled: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": tf.cast(logits_of(scaled, training=False), tf.float32)}

    else:
        setattr(module, BANK_ATTRIBUTE, tf.Variable(rule.bank, trainable=False, name=BANK_ATTRIBUTE))
        bank, neighbours = getattr(module, BANK_ATTRIBUTE), rule.k
        feature_threshold = tf.constant(rule.threshold, tf.float32)

        def model_outputs(scaled: tf.Tensor) -> dict[str, tf.Tensor]:
            features, logits = both(scaled, training=False)
            # the k-th smallest distance between unit rows, |a - b|^2 = 2 - 2 a.b (as knn_score)
            unit = tf.math.l2_normalize(tf.cast(features, tf.float32), axis=1, epsilon=1e-24)
            reference = tf.math.l2_normalize(tf.cast(bank, tf.float32), axis=1, epsilon=1e-24)
            squared = tf.maximum(2.0 - 2.0 * tf.matmul(unit, reference, transpose_b=True), 0.0)
            kth = -tf.math.top_k(-squared, k=neighbours).values[:, neighbours - 1]
            return {"logits": tf.cast(logits, tf.float32), "feature_score": -tf.sqrt(kth)}

    # Every endpoint calls `outputs` (one trace per input dtype), which calls `run_model` (one trace):
    # saved_model.pb holds the model's graph once, not once per endpoint and dtype (6x).
    run_model = tf.function(
        model_outputs, input_signature=[tf.TensorSpec([None, datapoints, 1], tf.float32)], autograph=False
    )

    @tf.function(autograph=False)
    def outputs(spectra: tf.Tensor) -> dict[str, tf.Tensor]:
        # the assertion's message is the op error's first line (TF Serving's error): no Condition/x/y noise
        length = tf.shape(spectra)[1]
        check = tf.debugging.Assert(tf.equal(length, datapoints), [wrong_length_message(datapoints), length])
        with tf.control_dependencies([check]):  # the check runs first; no static shape may fail before it
            spectra = tf.compat.v1.placeholder_with_default(spectra, [None, None])
        spectra = tf.reshape(spectra, [-1, datapoints])
        peak = tf.reduce_max(spectra, axis=1, keepdims=True)
        valid = peak > 0
        scaled = tf.cast(spectra / tf.where(valid, peak, tf.ones_like(peak)), tf.float32)
        model_out = run_model(scaled[..., tf.newaxis])
        valid = valid[:, 0]
        logits = tf.where(valid[:, tf.newaxis], model_out["logits"], float("nan"))
        probabilities = tf.nn.softmax(logits / temperature, axis=-1)
        top = tf.reduce_max(probabilities, axis=-1)
        unknown = tf.logical_and(valid, top < threshold)
        confidence = top if confidence_map is None else confidence_map(top)
        result = {"probabilities": probabilities, "logits": logits, "confidence": confidence, "valid": valid}
        if rule is not None:
            score = tf.where(valid, model_out["feature_score"], float("nan"))
            unknown = tf.logical_or(unknown, tf.logical_and(valid, score < feature_threshold))
            result["feature_score"] = score
        return {**result, "unknown": unknown}

    def serve(spectra: tf.Tensor) -> tf.Tensor:
        return outputs(spectra)["probabilities"]

    def serve_with_validity(spectra: tf.Tensor) -> dict[str, tf.Tensor]:
        return outputs(spectra)

    def logits(spectra: tf.Tensor) -> tf.Tensor:
        return outputs(spectra)["logits"]

    def scores(spectra: tf.Tensor) -> dict[str, tf.Tensor]:
        result = outputs(spectra)
        return {"logits": result["logits"], "feature_score": result["feature_score"]}

    def top_k(spectra: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        result = outputs(spectra)
        values, indices = tf.math.top_k(result["probabilities"], tf.clip_by_value(k, 1, num_classes))
        classes = tf.where(result["valid"][:, tf.newaxis], tf.gather(names, indices), tf.constant(""))
        extra = {"feature_score": result["feature_score"]} if rule is not None else {}
        return {
            "classes": classes,
            "probabilities": values,
            "confidence": result["confidence"],
            "valid": result["valid"],
            "unknown": result["unknown"],
            **extra,
        }

    # saved once, under stable keys (checkpoint_key); the functions below capture the same variables
    setattr(module, WEIGHTS_ATTRIBUTE, [variable.value for variable in model.weights])
    module.serve = tf.function(serve, autograph=False)
    module.logits = tf.function(logits, autograph=False)
    if rule is not None:
        module.scores = tf.function(scores, autograph=False)
    module.top_k = tf.function(top_k, autograph=False)
    module.class_names = tf.function(lambda: names, input_signature=[], autograph=False)
    # The signatures are traced by tf.saved_model.save, like the module's functions: traced here instead
    # (outside the save's context), they would call a second trace of the model, saved beside the first.
    signatures = {
        "class_names": tf.function(lambda: {"class_names": names}, input_signature=[], autograph=False)
    }
    for dtype in ("float32", "float64"):
        spectra = tf.TensorSpec([None, None], dtype, name="spectra")
        k = tf.TensorSpec([], tf.int32, name="k")
        module.serve.get_concrete_function(spectra)  # the input types the saved functions accept
        module.logits.get_concrete_function(spectra)
        if rule is not None:
            module.scores.get_concrete_function(spectra)
        module.top_k.get_concrete_function(spectra, k)
        suffix = "" if dtype == "float32" else "_float64"
        signatures["serving_default" if dtype == "float32" else "serve_float64"] = tf.function(
            serve_with_validity, input_signature=[spectra], autograph=False
        )
        signatures[f"top_k{suffix}"] = tf.function(top_k, input_signature=[spectra, k], autograph=False)
    return module, signatures


def _tf_map(confidence_map: ConfidenceMap) -> Callable[[tf.Tensor], tf.Tensor]:
    """:class:`ConfidenceMap` as a TensorFlow function of float32 top probabilities (same interpolation:
    linear between knots, the end values outside them, NaN kept)."""
    import tensorflow as tf

    x = tf.constant(confidence_map.x, tf.float64)
    y = tf.constant(confidence_map.y, tf.float64)
    last = len(confidence_map.x) - 1

    def apply(top: tf.Tensor) -> tf.Tensor:
        if last == 0:
            return tf.where(tf.math.is_nan(top), top, tf.fill(tf.shape(top), tf.cast(y[0], top.dtype)))
        value = tf.clip_by_value(tf.cast(top, tf.float64), x[0], x[-1])
        right = tf.clip_by_value(tf.searchsorted(x, value, side="right"), 1, last)
        x0, x1 = tf.gather(x, right - 1), tf.gather(x, right)
        y0, y1 = tf.gather(y, right - 1), tf.gather(y, right)
        mapped = y0 + (value - x0) / (x1 - x0) * (y1 - y0)
        return tf.where(tf.math.is_nan(top), top, tf.cast(mapped, top.dtype))

    return apply


def _datapoints(model: keras.Model) -> int:
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    if shape is None or len(shape) != 3 or shape[1] is None or shape[2] != 1:
        raise UserError(f"model: expected one input of shape (batch, datapoints, 1), got {model.input_shape}")
    return int(shape[1])


def _num_classes(model: keras.Model) -> int:
    shape = model.output_shape
    if not isinstance(shape, tuple) or len(shape) != 2 or shape[1] is None:
        raise UserError(f"model: expected one output of shape (batch, num_classes), got {shape}")
    return int(shape[1])


def _check_target(path: pathlib.Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise UserError(f"export path {str(path)!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserError(f"export path {str(path)!r} is not empty; pass overwrite=True to replace it")


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        from synthetic_spectra.config import default_class_names

        return default_class_names(num_classes)
    if isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names):
        raise UserError(f"class_names must be a list of strings, got {class_names!r:.80}")
    if len(class_names) != num_classes:
        raise UserError(f"class_names has {len(class_names)} entries but the model has {num_classes} classes")
    return list(class_names)


def _metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    result: dict[str, float | None] = {}
    for key, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"metrics[{key!r}] must be a number, got {value!r:.80}") from None
        result[str(key)] = number if math.isfinite(number) else None
    return result


def _calibration(calibration: Any) -> Calibration:
    if calibration is None:
        return Calibration()
    if not isinstance(calibration, Calibration):
        raise UserError(
            f"calibration must be a zoo.inference.calibration.Calibration, got {calibration!r:.80}"
        )
    return calibration


def _dataset_name(dataset_config: Any) -> str | None:
    if dataset_config is None or isinstance(dataset_config, str):
        return dataset_config
    name = getattr(dataset_config, "name", None)
    if not isinstance(name, str):
        raise UserError(f"dataset_config must be a config name or have a .name, got {dataset_config!r:.80}")
    return name


def _dataset_record(dataset_config: Any) -> dict[str, Any] | None:
    """The whole config of a dataset that is not built in (a config file's, a fresh draw's), so that a
    reader resolves it without the file; None for a built-in config or a bare name."""
    from synthetic_spectra.config import BUILTIN_CONFIGS, DatasetConfig

    if not isinstance(dataset_config, DatasetConfig) or dataset_config.name in BUILTIN_CONFIGS:
        return None
    return dataset_config.to_dict()


def build_metadata(
    model: keras.Model,
    *,
    dataset_config: Any = None,
    class_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    build_args: Mapping[str, Any] | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """The ``metadata.json`` content for ``model`` (validates every field; ``UserError`` on a bad one).

    ``model_name`` / ``build_args`` default to what :func:`zoo.build` recorded for this model; a model the
    registry does not know is ``"custom"``.
    """
    import keras
    import tensorflow as tf

    num_classes = _num_classes(model)
    record = build_args_of(model)
    if model_name is None:
        model_name = record[0] if record else (model.name if model.name in list_models() else "custom")
    if build_args is None:
        build_args = record[1] if record and record[0] == model_name else {}
    display_name = get_model_info(model_name).display_name if model_name in list_models() else model.name
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "display_name": display_name,
        "build_args": dict(build_args),
        "num_classes": num_classes,
        "class_names": _class_names(class_names, num_classes),
        "datapoints": _datapoints(model),
        "input_dtype": "float32",
        "normalization": "per_spectrum_max",
        "dataset": _dataset_name(dataset_config),
        **({"dataset_config": record} if (record := _dataset_record(dataset_config)) else {}),
        "metrics": _metrics(metrics),
        "calibration": _calibration(calibration).to_dict(),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(f"build_args must be JSON-serialisable: {exc}") from None
    return metadata


def export(
    model: keras.Model,
    path: str | pathlib.Path,
    *,
    dataset_config: Any = None,
    class_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    build_args: Mapping[str, Any] | None = None,
    calibration: Calibration | None = None,
    overwrite: bool = False,
) -> pathlib.Path:
    """Write the export directory ``path`` (SavedModel + ``metadata.json``); return it.

    A model that :func:`zoo.build` rebuilds from ``model_name`` and ``build_args`` (same config) is stored
    once, in the SavedModel's variables; any other model (e.g. a custom Keras model) also gets
    ``model.keras`` (without optimizer state), so that :func:`zoo.load_keras_model` can return it.

    Args:
        model: a Keras model with input ``(datapoints, 1)`` and softmax output ``(num_classes,)``.
        path: target directory; must not exist or be empty unless ``overwrite``.
        dataset_config: the dataset config name (or an object with ``.name``) the model was trained on.
        class_names: one label per class (default ``class_000``, ``class_001``, … as in the datasets).
        metrics: evaluation results to record (numbers).
        model_name: registry name (default: recorded by :func:`zoo.build`, else ``"custom"``).
        build_args: arguments that rebuild the model with :func:`zoo.build` (default: recorded ones).
        calibration: temperature and unknown threshold (:func:`zoo.inference.calibration.fit_calibration`,
            fitted on validation data); the SavedModel's probabilities are then ``softmax(logits / T)``.
            A feature rule (``fit_calibration(..., reference=...)``) stores its bank in the SavedModel's
            variables and adds ``feature_score`` to its outputs; a confidence map
            (``calibration.with_confidence_map(logits, labels)``) shapes the ``confidence`` output.
            Default: temperature 1, no threshold, no map.
        overwrite: replace an existing non-empty ``path``.

    Raises:
        UserError: ``path`` is not empty (and not ``overwrite``) or a metadata field is invalid; nothing
            is written in that case.
    """
    path = pathlib.Path(path)
    _check_target(path, overwrite)
    metadata = build_metadata(
        model,
        dataset_config=dataset_config,
        class_names=class_names,
        metrics=metrics,
        model_name=model_name,
        build_args=build_args,
        calibration=calibration,
    )
    rebuilt = rebuilds(model, metadata["model"], json.loads(json.dumps(metadata["build_args"])))  # as read
    metadata["keras_file"] = None if rebuilt else KERAS_FILE
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()  # the umask's permissions (tempfile.mkdtemp would make the export 0700)
    try:
        module, signatures = serving_module(model, metadata["class_names"], _calibration(calibration))
        tf.saved_model.save(module, str(staging), signatures=signatures)
        if not rebuilt:
            save_without_optimizer(model, staging / KERAS_FILE)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        _replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def save_without_optimizer(model: keras.Model, path: pathlib.Path) -> None:
    """``model.save(path)`` without the optimizer's state (its compile settings are kept)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        model.save(path)
        return
    model.optimizer = None
    try:
        model.save(path)
    finally:
        model.optimizer = optimizer


def _replace(staging: pathlib.Path, path: pathlib.Path) -> None:
    """Move ``staging`` to ``path``; an existing ``path`` is moved aside first and deleted afterwards."""
    if not path.exists():
        staging.rename(path)
        return
    retired = staging.with_name(staging.name + ".old")
    path.rename(retired)
    try:
        staging.rename(path)
    except BaseException:
        retired.rename(path)
        raise
    shutil.rmtree(retired, ignore_errors=True)
