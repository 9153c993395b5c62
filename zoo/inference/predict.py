"""Classify measured spectra with an exported model: ``zoo.load(path)`` returns a :class:`Predictor`.

Two kinds of model path are accepted:

* an **export directory** written by :func:`zoo.export` — the TensorFlow SavedModel's ``serve``
  endpoint is called directly (it normalises raw spectra itself), and ``metadata.json`` gives the
  class names and input length;
* a **``.keras`` file** — always loaded with ``safe_mode=True`` (a model whose config needs unsafe
  deserialisation, e.g. a ``Lambda`` layer, is refused). Class names and input length come from a
  spectrazoo ``metadata.json`` beside it (as in an export directory); without one (a missing file,
  or one that is not an export's), the input length is read from the model, the classes are named
  ``class_000``, ``class_001``, … after its output size, and :attr:`Predictor.note` says so.
  Spectra are max-normalised here before the model sees them.

:func:`load_keras_model` gives an export's Keras model instead (rebuilt from the registry with the
SavedModel's weights, or its ``model.keras``).

Probabilities are calibrated: ``softmax(logits / T)`` with the temperature stored in the export
(``metadata.json``'s ``calibration``, :mod:`zoo.inference.calibration`); :meth:`Predictor.predict_logits`
gives the raw logits and :meth:`Predictor.identify` says which spectra are ``unknown``: top probability
below the stored threshold or, where the calibration has a feature rule
(:class:`zoo.inference.calibration.FeatureDistance`), the spectrum's features far from every training
spectrum's (its ``feature_score`` below the rule's threshold). An export computes that score in its
SavedModel (the bank is one of its variables); a preset reads its bank from a checksummed file beside its
weights. An export without a calibration (written before it existed, or a ``.keras`` file) has
temperature 1 and no threshold; one without a feature rule uses the softmax threshold alone.

Spectra go in raw (any scale); every spectrum is checked first (finite, not all zero, not
constant, with a positive maximum, of the model's length unless resampled) and a bad one raises a
one-line :class:`ValueError` naming it. TensorFlow/Keras are imported only when a model is loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.errors import UserError
from zoo.inference.calibration import Calibration, FeatureDistance, logits_from_probabilities
from zoo.inference.export import (
    BANK_KEY,
    KERAS_FILE,
    VARIABLES_PREFIX,
    WEIGHTS_ATTRIBUTE,
    checkpoint_key,
    rebuild,
)
from zoo.inference.spectra_io import resample as resample_spectra
from zoo.models.registry import list_models

if TYPE_CHECKING:
    import keras

EXPORT_FORMAT = "spectrazoo-export"
SUPPORTED_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
DEFAULT_BATCH_SIZE = 128

#: Validated raw spectra ``[n, datapoints]`` → ``(logits, feature scores)``; the scores are None for a
#: model without a feature rule.
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


#: ``zoo.load("preset:NAME")`` loads a preset of the zoo (:mod:`zoo.models.presets`).
PRESET_PREFIX = "preset:"


@dataclasses.dataclass(frozen=True)
class Identification:
    """What a model says about each spectrum: its best class, how sure, and whether it is unknown."""

    probabilities: np.ndarray  # calibrated, float32 [n, classes]
    logits: np.ndarray  # raw, [n, classes]
    best: np.ndarray  # index of the most probable class, [n]
    names: list[str]  # its name
    #: the chance its best class is right: the calibrated top probability, through the export's confidence
    #: map where it has one, [n]
    confidence: np.ndarray
    unknown: np.ndarray  # either rule of the export fires (all False without a threshold), [n]
    #: the feature rule's score per spectrum (higher: more like the training spectra); None without one
    feature_score: np.ndarray | None = None


class Predictor:
    """A loaded model that turns raw spectra into calibrated class probabilities.

    Use :func:`load` to create one. ``forward`` maps a float32 batch ``[n, datapoints]`` of
    validated raw spectra to logits ``[n, num_classes]`` and feature scores ``[n]`` (None without a feature
    rule); ``calibration`` (temperature, unknown threshold, feature rule) comes from the export's
    ``metadata.json`` (default: temperature 1, no threshold).
    """

    def __init__(
        self,
        forward: Forward,
        metadata: dict[str, Any],
        path: Path,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        note: str | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self._forward = forward
        #: Temperature and unknown threshold applied to the logits (:mod:`zoo.inference.calibration`).
        self.calibration: Calibration = calibration or Calibration()
        self.metadata: dict[str, Any] = metadata
        self.path: Path = path
        self.class_names: list[str] = list(metadata["class_names"])
        self.datapoints: int = int(metadata["datapoints"])
        self.batch_size: int = _check_positive("batch_size", batch_size)
        #: A remark about how the model was loaded (e.g. generated class names), else None.
        self.note: str | None = note

    @property
    def num_classes(self) -> int:
        """Number of classes the model outputs."""
        return len(self.class_names)

    def __repr__(self) -> str:
        name = self.metadata.get("model", "model")
        return (
            f"Predictor({name!r}, path={str(self.path)!r}, classes={self.num_classes}, "
            f"points={self.datapoints})"
        )

    def prepare(
        self,
        spectra: Any,
        *,
        resample: bool = False,
        axis: np.ndarray | None = None,
        names: Sequence[str] | None = None,
        x_range: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Validate raw spectra and return them as float32 ``[n, datapoints]``.

        Args:
            spectra: one spectrum (1-D) or one per row (2-D), any real dtype.
            resample: interpolate spectra of another length onto the model's grid
                (:func:`zoo.inference.spectra_io.resample`) instead of refusing them.
            axis: the x values of the spectra (strictly monotonic; descending ones are flipped, as for
                two-column files), used by resampling; default evenly spaced.
            names: a name per spectrum for error messages (default ``spectra[i]``).
            x_range: ``(low, high)``, the model's input grid in the units of ``axis`` (e.g. the 2θ range
                it was trained on): the spectra are cropped to it and interpolated onto the model's
                points, whatever their length (needs ``axis``; refused if ``axis`` does not cover it).

        Raises:
            ValueError: one line naming the first bad spectrum and the problem.
        """
        array = _as_2d(spectra)
        labels = list(names) if names is not None else [f"spectra[{i}]" for i in range(len(array))]
        if len(labels) != len(array):
            raise ValueError(f"names: {len(labels)} names given for {len(array)} spectra")
        array = validate_spectra(array, labels)
        points = array.shape[1]
        if x_range is not None:
            try:
                onto_grid = resample_spectra(array, self.datapoints, axis, x_range)
            except ValueError as exc:
                raise ValueError(f"{labels[0]}: {exc}") from None
            return validate_spectra(onto_grid.astype(np.float32), labels)
        if points != self.datapoints:
            if not resample:
                raise ValueError(
                    f"{labels[0]}: {points} points, but the model expects {self.datapoints} "
                    "(resample to interpolate onto the model's grid: --resample / resample=True)"
                )
            array = validate_spectra(
                resample_spectra(array, self.datapoints, axis).astype(np.float32), labels
            )
        return array

    def predict_logits(
        self,
        spectra: Any,
        *,
        resample: bool = False,
        axis: np.ndarray | None = None,
        names: Sequence[str] | None = None,
        batch_size: int | None = None,
        x_range: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Raw logits ``[n, num_classes]`` (before temperature and softmax) for raw spectra.

        Arguments as :meth:`prepare`; ``batch_size`` overrides the predictor's for this call. A model that
        only gives probabilities (an export written before logits were exported) gives ``log(p)``: the
        logits up to a constant per spectrum.
        """
        return self._run(
            spectra, resample=resample, axis=axis, names=names, batch_size=batch_size, x_range=x_range
        )[0]

    def _run(
        self, spectra: Any, *, batch_size: int | None = None, **kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(logits, feature scores or None)`` of raw spectra, batch by batch."""
        batch = self.prepare(spectra, **kwargs)
        size = self.batch_size if batch_size is None else _check_positive("batch_size", batch_size)
        parts = [self._forward(batch[i : i + size]) for i in range(0, len(batch), size)]
        logits = np.concatenate([np.asarray(part[0]) for part in parts])
        if parts[0][1] is None:
            return logits, None
        return logits, np.concatenate([np.asarray(part[1], dtype=np.float64) for part in parts])

    def predict(self, spectra: Any, **kwargs: Any) -> np.ndarray:
        """Calibrated class probabilities float32 ``[n, num_classes]`` for raw spectra (1-D input: ``n = 1``):
        ``softmax(logits / T)`` with the export's temperature. Arguments as :meth:`predict_logits`."""
        return self.calibration.probabilities(self.predict_logits(spectra, **kwargs))

    def identify(self, spectra: Any, **kwargs: Any) -> Identification:
        """The best class of each spectrum with its confidence (its calibrated probability, through the
        export's confidence map where it has one), its feature score (with a feature rule) and whether it
        is ``unknown``: calibrated top probability below the export's threshold, or feature score below
        the feature rule's (never without a threshold). Arguments as :meth:`predict_logits`."""
        logits, feature_score = self._run(spectra, **kwargs)
        probabilities, confidence, unknown = self.calibration.assess(logits, feature_score)
        best = probabilities.argmax(axis=1)
        return Identification(
            probabilities, logits, best, [self.class_names[i] for i in best], confidence, unknown,
            feature_score,
        )  # fmt: skip

    def classify(self, spectra: Any, top_k: int = 3, **kwargs: Any) -> list[list[tuple[str, float]]]:
        """The ``top_k`` most probable ``(class name, probability)`` per spectrum, best first.

        Other keyword arguments go to :meth:`predict`.
        """
        self.check_top_k(top_k)
        return self.top_classes(self.predict(spectra, **kwargs), top_k)

    def check_top_k(self, top_k: int) -> int:
        """Return ``top_k`` if it is between 1 and the number of classes, else raise ValueError."""
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, (int, np.integer))
            or not 1 <= top_k <= self.num_classes
        ):
            raise ValueError(
                f"top_k must be between 1 and {self.num_classes} (the model's classes), got {top_k!r}"
            )
        return int(top_k)

    def top_classes(self, probabilities: np.ndarray, top_k: int) -> list[list[tuple[str, float]]]:
        """Turn probabilities ``[n, num_classes]`` into the ``top_k`` (name, probability) pairs per row."""
        self.check_top_k(top_k)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        return [
            [(self.class_names[j], float(row[j])) for j in indices]
            for row, indices in zip(probabilities, order, strict=True)
        ]


def validate_spectra(spectra: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Check each row of a 2-D array is usable for a max-normalising model; return it as float32.

    A spectrum must be finite, not all zero, not constant and have a positive maximum (it is divided
    by its maximum). The first failing row raises a one-line ValueError naming it.
    """
    array = np.asarray(spectra, dtype=np.float32)
    maximum, minimum = array.max(axis=1), array.min(axis=1)
    bad = ~np.isfinite(array).all(axis=1) | (maximum <= 0) | (maximum == minimum)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{names[row]}: {_spectrum_problem(array[row])}")
    return array


def load(
    path: str | os.PathLike[str], *, batch_size: int = DEFAULT_BATCH_SIZE, jit_compile: bool = False
) -> Predictor:
    """Load an export directory (:func:`zoo.export`), a ``.keras`` file or ``preset:NAME`` as a Predictor.

    ``jit_compile=True`` compiles the model with XLA: a few percent less CPU per call for CNN6 on a
    2-core CPU (``benchmarks/results/inference.md``), but every new batch size costs a compilation
    (about a second), so it only pays in long-running services.

    Raises:
        UserError: one line, for a missing path, a directory that is not an export, a corrupted
            model, or a ``.keras`` file that would need unsafe deserialisation.
    """
    if str(path).startswith(PRESET_PREFIX):
        return _load_preset(str(path)[len(PRESET_PREFIX) :], batch_size, jit_compile)
    path = Path(path)
    if not path.exists():
        raise UserError(f"model path {str(path)!r} does not exist")
    if path.is_dir():
        return _load_export(path, batch_size, jit_compile)
    if path.suffix == ".keras":
        return _load_keras(path, batch_size, jit_compile)
    raise UserError(f"{path}: not a model; expected an export directory (zoo.export) or a .keras file")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an export's ``metadata.json`` (raises a one-line UserError naming the field)."""
    path = Path(path)
    return _check_metadata(_read_json(path), path)


def _check_metadata(metadata: Any, path: Path) -> dict[str, Any]:
    if not _is_export_metadata(metadata):
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise UserError(
            f"{path}: not spectrazoo export metadata (format {found!r}, expected {EXPORT_FORMAT!r})"
        )
    version = metadata.get("format_version")
    if version != SUPPORTED_FORMAT_VERSION:
        raise UserError(f"{path}: format_version {version!r} is not supported (this version reads 1)")
    datapoints, names = metadata.get("datapoints"), metadata.get("class_names")
    if isinstance(datapoints, bool) or not isinstance(datapoints, int) or datapoints < 1:
        raise UserError(f"{path}: field 'datapoints' must be a positive integer, got {datapoints!r}")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path}: field 'class_names' must be a non-empty list of strings")
    if metadata.get("num_classes", len(names)) != len(names):
        raise UserError(f"{path}: num_classes {metadata['num_classes']!r} but {len(names)} class_names")
    if metadata.get("keras_file", KERAS_FILE) not in (None, KERAS_FILE):
        raise UserError(f"{path}: field 'keras_file' must be null or {KERAS_FILE!r}")
    if metadata.get("normalization", "per_spectrum_max") != "per_spectrum_max":
        raise UserError(f"{path}: normalization {metadata['normalization']!r} is not supported")
    _calibration_of(metadata, path)
    return metadata


def _calibration_of(metadata: dict[str, Any], path: Path | str) -> Calibration:
    """The metadata's calibration (temperature 1 and no threshold where it has none); one-line UserError."""
    try:
        return Calibration.from_dict(metadata.get("calibration"))
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: corrupted metadata ({exc})") from None


def _is_export_metadata(metadata: Any) -> bool:
    return isinstance(metadata, dict) and metadata.get("format") == EXPORT_FORMAT


def _export_metadata(path: Path) -> dict[str, Any]:
    """An export directory's checked metadata, after checking that its SavedModel and weights are there."""
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        raise UserError(f"{path}: not a spectrazoo export (no {METADATA_FILE}); write one with zoo.export")
    metadata = read_metadata(metadata_path)
    if not (path / "saved_model.pb").is_file():
        raise UserError(f"{path}: not a spectrazoo export (no saved_model.pb)")
    if not (path / f"{VARIABLES_PREFIX}.index").is_file():
        raise UserError(f"{path}: incomplete export: no {VARIABLES_PREFIX}.index (the model's weights)")
    return metadata


def _load_export(path: Path, batch_size: int, jit_compile: bool) -> Predictor:
    metadata = _export_metadata(path)
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # protobuf, NotFound, DataLoss...: all mean the same to a user
        raise UserError(f"{path}: corrupted SavedModel ({_first_line(exc)})") from None
    datapoints = metadata["datapoints"]
    calibration = _calibration_of(metadata, path)
    # exports written before logits were exported have only `serve` (probabilities): their logits are log(p)
    endpoint = "logits" if hasattr(loaded, "logits") else "serve"
    if calibration.feature_distance is not None:
        if not hasattr(loaded, "scores"):
            raise UserError(
                f"{path}: {METADATA_FILE} has a feature rule but the SavedModel no 'scores' endpoint; "
                "the export is inconsistent (export the model again)"
            )
        endpoint = "scores"
    try:
        spec = tf.TensorSpec([None, datapoints], tf.float32)
        function = getattr(loaded, endpoint).get_concrete_function(spec)
    except Exception:
        raise UserError(
            f"{path}: SavedModel {endpoint!r} endpoint does not take float32[batch, {datapoints}]"
        ) from None
    logits_spec = function.structured_outputs
    outputs = (logits_spec["logits"] if isinstance(logits_spec, dict) else logits_spec).shape[-1]
    named = len(metadata["class_names"])
    if outputs != named:
        raise UserError(f"{path}: the SavedModel gives {outputs} classes but {METADATA_FILE} names {named}")
    _check_graph_length(function, datapoints, path)
    if jit_compile:
        function = tf.function(function, input_signature=[spec], jit_compile=True)
    forward = _ServingFunction(loaded, function, logits=endpoint != "serve")
    return Predictor(forward, metadata, path, batch_size=batch_size, calibration=calibration)


def _check_graph_length(function: Any, datapoints: int, path: Path) -> None:
    """Run the SavedModel once on one spectrum of ``datapoints`` points: a graph built for another length
    (metadata and graph disagree) is one clear UserError, not a TensorFlow traceback at predict time."""
    import tensorflow as tf

    try:
        function(tf.ones([1, datapoints], tf.float32))
    except tf.errors.InvalidArgumentError as exc:
        found = re.search(r"expected (\d+) points per spectrum", str(exc))
        expects = f"{found[1]} points per spectrum" if found else f"another input ({_first_line(exc)})"
        raise UserError(
            f"{path}: {METADATA_FILE} says {datapoints} points per spectrum but its SavedModel expects "
            f"{expects}; the export is inconsistent (export the model again)"
        ) from None


class _ServingFunction:
    """Calls an export's ``scores`` (with a feature rule), ``logits`` (or, in older exports, ``serve``)
    concrete function directly (no ``model.predict`` overhead per call); gives logits and feature scores."""

    def __init__(self, loaded: Any, function: Any, *, logits: bool) -> None:
        self._loaded = loaded  # owns the variables ``function`` reads: keep it alive as long as ``function``
        self._function = function
        self._logits = logits

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import tensorflow as tf

        output = self._function(tf.constant(batch))
        if isinstance(output, dict):
            return output["logits"].numpy(), output["feature_score"].numpy()
        output = output.numpy()
        return (output if self._logits else logits_from_probabilities(output)), None


def import_custom_layers() -> None:
    """Register the zoo's serialisable custom layers (they register when their modules are imported)."""
    for module in ("zoo.models.layers", "zoo.models.prnet"):
        importlib.import_module(module)


def load_keras_model(path: str | os.PathLike[str]) -> keras.Model:
    """The Keras model of an export directory (:func:`zoo.export`), uncompiled, with its trained weights.

    Its input is max-normalised spectra ``(datapoints, 1)`` (:meth:`Predictor.predict` normalises raw ones).
    A registry model is rebuilt with :func:`zoo.build` from ``metadata.json`` (float32) and its weights are
    read from the SavedModel's variables: any Keras backend, TensorFlow installed. An export holding
    ``model.keras`` (a custom model, or written before issue #16's layout) loads that file with
    ``safe_mode=True``.

    Raises:
        UserError: one line, for a path that is not a complete export or weights that do not fit the model.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: not an export directory (zoo.export)")
    metadata = _export_metadata(path)
    if metadata.get("keras_file", KERAS_FILE) is not None:  # older exports hold model.keras, not the field
        if not (path / KERAS_FILE).is_file():
            raise UserError(f"{path}: incomplete export: no {KERAS_FILE}")
        return _read_keras_file(path / KERAS_FILE)
    name, build_args = metadata.get("model"), metadata.get("build_args")
    if name not in list_models() or not isinstance(build_args, dict):
        raise UserError(
            f"{path}: model {name!r} is not in this zoo's registry and the export has no {KERAS_FILE}"
        )
    try:
        model = rebuild(name, build_args)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: cannot rebuild {name!r} from metadata.json ({_first_line(exc)})") from None
    model.set_weights(_saved_weights(path, model, name))
    return model


def read_feature_bank(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The feature bank stored in an export's SavedModel variables (float16 ``[n, features]``); None for
    an export without a feature rule. One-line UserError for an unreadable checkpoint."""
    path = Path(path)
    calibration = _calibration_of(_export_metadata(path), path)
    if calibration.feature_distance is None:
        return None
    import tensorflow as tf

    try:
        bank = tf.train.load_checkpoint(str(path / VARIABLES_PREFIX)).get_tensor(BANK_KEY)
    except Exception as exc:  # DataLoss, NotFound...: all mean the same to a user
        raise UserError(f"{path}: no readable feature bank in the SavedModel ({_first_line(exc)})") from None
    try:
        calibration.feature_distance.with_bank(bank)  # its shape is the metadata's
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    return np.asarray(bank)


def _saved_weights(path: Path, model: keras.Model, name: str) -> list[np.ndarray]:
    """``model.weights``' values from the export's checkpoint (checked: one per weight, same shapes)."""
    try:
        import tensorflow as tf
    except ImportError:
        raise UserError(
            f"{path}: reading an export's weights needs TensorFlow (pip install tensorflow)"
        ) from None
    try:
        reader = tf.train.load_checkpoint(str(path / VARIABLES_PREFIX))
    except Exception as exc:  # DataLoss, NotFound...: all mean the same to a user
        raise UserError(f"{path}: corrupted SavedModel variables ({_first_line(exc)})") from None
    shapes = reader.get_variable_to_shape_map()
    saved = sorted(key for key in shapes if key.startswith(f"{WEIGHTS_ATTRIBUTE}/"))
    keys = [checkpoint_key(i) for i in range(len(model.weights))]
    if saved != sorted(keys):
        raise UserError(
            f"{path}: the SavedModel holds {len(saved)} weights but {name!r} rebuilt from metadata.json "
            f"has {len(keys)}"
        )
    for key, weight in zip(keys, model.weights, strict=True):
        if tuple(shapes[key]) != tuple(weight.shape):
            raise UserError(
                f"{path}: weight {weight.path!r} has shape {tuple(shapes[key])} in the SavedModel but "
                f"{tuple(weight.shape)} in {name!r} rebuilt from metadata.json"
            )
    return [reader.get_tensor(key) for key in keys]


def _read_keras_file(path: Path) -> keras.Model:
    """A ``.keras`` archive loaded with ``safe_mode=True``, uncompiled (one-line UserError otherwise)."""
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a .keras archive (not a zip file)")
    import keras

    try:
        import_custom_layers()
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        if "safe_mode" in str(exc):
            raise UserError(
                f"{path}: refused: the model needs unsafe deserialisation (e.g. a Lambda layer); "
                "only safe_mode=True loading is allowed"
            ) from None
        raise UserError(f"{path}: cannot load .keras file ({_first_line(exc)})") from None


def _load_keras(path: Path, batch_size: int, jit_compile: bool) -> Predictor:
    model = _read_keras_file(path)
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(input_shape) != 3 or input_shape[2] != 1 or input_shape[1] is None or len(output_shape) != 2:
        raise UserError(
            f"{path}: model input {input_shape} / output {output_shape} is not "
            "(batch, points, 1) -> (batch, classes)"
        )
    datapoints, num_classes = int(input_shape[1]), int(output_shape[1])
    metadata_path = path.with_name(METADATA_FILE)
    beside = _read_json(metadata_path) if metadata_path.is_file() else None
    note = None
    if _is_export_metadata(beside):
        metadata = _check_metadata(beside, metadata_path)
        described = (metadata["datapoints"], len(metadata["class_names"]))
        if described != (datapoints, num_classes):
            raise UserError(
                f"{metadata_path}: describes {described[0]} points / {described[1]} classes, "
                f"but {path.name} takes {datapoints} points / {num_classes} classes"
            )
    else:
        from synthetic_spectra.config import default_class_names

        names = default_class_names(num_classes)
        metadata = {
            "model": path.stem,
            "num_classes": num_classes,
            "class_names": names,
            "datapoints": datapoints,
            "normalization": "per_spectrum_max",
        }
        found = "no" if beside is None else "ignored a non-spectrazoo"
        note = f"{path}: {found} {METADATA_FILE} beside it; classes named {names[0]}... by output index"

    calibration = _calibration_of(metadata, metadata_path)
    if calibration.feature_distance is not None:  # a .keras file inside an export: the export's bank
        calibration = _with_bank(calibration, read_feature_bank(path.parent), metadata_path)
    return Predictor(
        _keras_forward(model, jit_compile, calibration.feature_distance), metadata, path,
        batch_size=batch_size, note=note, calibration=calibration,
    )  # fmt: skip


def _with_bank(calibration: Calibration, bank: np.ndarray | None, where: Path | str) -> Calibration:
    """``calibration`` with its feature rule's bank attached (one-line UserError where it does not fit)."""
    try:
        return calibration.with_bank(bank)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def _keras_forward(model: Any, jit_compile: bool, rule: FeatureDistance | None = None) -> Forward:
    """Raw spectra → logits (and, with a feature ``rule``, its scores of the softmax layer's input) through
    a Keras model that takes max-normalised ``(points, 1)`` input (:func:`zoo.inference.logits.logits_model`;
    ``log(p)`` for a model that has no functional graph)."""
    from zoo.inference.logits import logits_model

    try:
        network, exact = logits_model(model, with_features=rule is not None), True
    except (AttributeError, ValueError, TypeError):  # a subclassed model: its probabilities' log
        if rule is not None:
            raise UserError(f"{model.name}: a feature rule needs a model ending in a softmax layer") from None
        network, exact = model, False
    network.jit_compile = jit_compile

    def forward(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        normalised = (batch / batch.max(axis=1, keepdims=True))[:, :, np.newaxis]
        if rule is not None:
            logits, features = network.predict_on_batch(normalised)
            return np.asarray(logits, dtype=np.float32), rule.scores(np.asarray(features))
        output = np.asarray(network.predict_on_batch(normalised), dtype=np.float32)
        return (output if exact else logits_from_probabilities(output)), None

    return forward


def _load_preset(name: str, batch_size: int, jit_compile: bool) -> Predictor:
    """A preset of :mod:`zoo.models.presets` as a Predictor (class names from its dataset's config)."""
    from synthetic_spectra.config import get_config
    from zoo.models.presets import build_preset_model, get_preset, verified_bank, verified_weights

    preset = get_preset(name)  # the table is read once: from_preset would read it again
    model = build_preset_model(preset)
    model.load_weights(verified_weights(preset))
    metadata = {
        "model": preset.model,
        "preset": preset.name,
        "num_classes": preset.num_classes,
        "class_names": get_config(preset.dataset).class_names(),
        "datapoints": preset.datapoints,
        "normalization": "per_spectrum_max",
        "metrics": {"test_accuracy": preset.test_accuracy, "misclassified": preset.misclassified},
        "calibration": preset.calibration,
        "dataset": preset.dataset,
    }
    calibration = _calibration_of(metadata, f"preset {preset.name!r}")
    if calibration.feature_distance is not None:
        calibration = _with_bank(calibration, np.load(verified_bank(preset)), f"preset {preset.name!r}")
    return Predictor(
        _keras_forward(model, jit_compile, calibration.feature_distance), metadata, preset.weights_path(),
        batch_size=batch_size, calibration=calibration,
    )  # fmt: skip


def _as_2d(spectra: Any) -> np.ndarray:
    array = np.asarray(spectra)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"spectra: expected real numbers, got dtype {array.dtype}")
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"spectra: expected a non-empty 1-D or 2-D array, got shape {array.shape}")
    return np.atleast_2d(array)


def _spectrum_problem(spectrum: np.ndarray) -> str:
    """Why one spectrum cannot be max-normalised (it failed :func:`validate_spectra`)."""
    non_finite = ~np.isfinite(spectrum)
    if non_finite.any():
        index = int(np.argmax(non_finite))
        kind = "NaN" if np.isnan(spectrum[index]) else "infinite"
        return f"{kind} value at index {index}; spectra must be finite"
    if not spectrum.any():
        return "all values are zero; there is no maximum to normalise by"
    if spectrum.max() == spectrum.min():
        return f"constant spectrum (every value is {spectrum[0]:g}); nothing to classify"
    return f"no positive value (maximum {spectrum.max():g}); spectra are normalised by their maximum"


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
