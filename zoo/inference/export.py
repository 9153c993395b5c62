"""Export a trained model as a self-contained serving directory (the contract shared with the predictor).

``export(model, path)`` writes ``path/`` containing

* a TensorFlow SavedModel whose ``serve`` endpoint takes RAW spectra ``float32[batch, datapoints]``, divides
  each by its own maximum, adds the channel axis and returns ``float32[batch, num_classes]`` probabilities
  (load with ``tf.saved_model.load(path).serve(x)`` or
  ``keras.layers.TFSMLayer(path, call_endpoint="serve")``);
* ``model.keras``: the Keras model itself (input ``(datapoints, 1)``, max-normalised spectra);
* ``metadata.json``: format, model name, build arguments, class names, dataset, metrics, versions.

Everything is written into a temporary sibling directory that is renamed at the end, so a failure never
leaves a half-written export. Keras and TensorFlow are imported only when :func:`export` runs.
"""

from __future__ import annotations

import datetime
import json
import math
import pathlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError
from zoo.models.registry import build_args_of, get_model_info, list_models

if TYPE_CHECKING:
    import keras

FORMAT = "spectrazoo-export"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
SERVING_ENDPOINT = "serve"


def serving_model(model: keras.Model) -> keras.Model:
    """Wrap ``model`` to take raw spectra ``(batch, datapoints)``: max-normalise, add channel axis, call."""
    import keras

    from zoo.models.layers import NaNForInvalidSpectra, PerSpectrumMaxNormalization

    datapoints = _datapoints(model)
    spectra = keras.Input(shape=(datapoints,), dtype="float32", name="spectra")
    x = PerSpectrumMaxNormalization(name="max_normalization")(spectra)
    x = keras.layers.Reshape((datapoints, 1), name="add_channel_axis")(x)
    probabilities = NaNForInvalidSpectra(name="nan_for_invalid_spectra")([spectra, model(x, training=False)])
    return keras.Model(spectra, probabilities, name=f"{model.name}_serving")


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
        return [str(index) for index in range(num_classes)]
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


def _dataset_name(dataset_config: Any) -> str | None:
    if dataset_config is None or isinstance(dataset_config, str):
        return dataset_config
    name = getattr(dataset_config, "name", None)
    if not isinstance(name, str):
        raise UserError(f"dataset_config must be a config name or have a .name, got {dataset_config!r:.80}")
    return name


def build_metadata(
    model: keras.Model,
    *,
    dataset_config: Any = None,
    class_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    build_args: Mapping[str, Any] | None = None,
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
        "metrics": _metrics(metrics),
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
    overwrite: bool = False,
) -> pathlib.Path:
    """Write the export directory ``path`` (SavedModel + ``model.keras`` + ``metadata.json``); return it.

    Args:
        model: a Keras model with input ``(datapoints, 1)`` and softmax output ``(num_classes,)``.
        path: target directory; must not exist or be empty unless ``overwrite``.
        dataset_config: the dataset config name (or an object with ``.name``) the model was trained on.
        class_names: one label per class (default ``"0" ... "N-1"``).
        metrics: evaluation results to record (numbers).
        model_name: registry name (default: recorded by :func:`zoo.build`, else ``"custom"``).
        build_args: arguments that rebuild the model with :func:`zoo.build` (default: recorded ones).
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
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        serving_model(model).export(str(staging), format="tf_saved_model", verbose=False)
        model.save(staging / KERAS_FILE)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        _replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


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
