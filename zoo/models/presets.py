"""Presets: trained models that ship with the zoo, each tied to the results row that proves its numbers.

A preset is a name (``vgg_relu_challenge``), an architecture with its toggles, the dataset it was trained
on, the protocol it ran (epochs, stop reason, seed, precision, backend), the results row it comes from
(file and run id), that row's test accuracy and misclassification count, and a weights file (float32
weights only, no optimizer state) with its SHA-256. The table lives in ``zoo/models/presets.json``; the
committed weights ship inside the package, in ``zoo/models/preset_weights/`` (package data: a checkout, an
editable install and a wheel all read them from there, read-only).

    >>> import zoo
    >>> model = zoo.from_preset("vgg_relu_challenge")   # a Keras model, checksum verified

A preset whose weights are not committed (too large for the repository) is retrained from its recipe by
``spectrazoo preset build NAME`` (:func:`zoo.training.presets.build_preset`), which writes the weights and
a build record (their SHA-256, and whether the rebuild reproduced the recorded numbers) beside them in the
user's presets folder (:func:`user_presets_dir`), never into the shipped one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError

if TYPE_CHECKING:
    import keras

#: The preset table (package data).
PRESETS_FILE = pathlib.Path(__file__).with_name("presets.json")
#: Where the committed weights ship: package data beside this module (read-only for users).
SHIPPED_PRESETS_DIR = pathlib.Path(__file__).resolve().with_name("preset_weights")
#: A preset's weights and feature bank together stay below this size (bytes).
MAX_PRESET_BYTES = 15_000_000
#: Suffix of a preset's feature bank file (float16 ``.npy``), after its name.
FEATURE_BANK_SUFFIX = ".features.npy"
#: Environment variable naming the user's presets folder (rebuilt presets; default :func:`user_presets_dir`).
PRESETS_DIR_VARIABLE = "SPECTRAZOO_PRESETS"


@dataclasses.dataclass(frozen=True)
class Preset:
    """One trained model of the zoo and the evidence for its numbers."""

    name: str
    model: str
    toggles: Mapping[str, Any]
    dataset: str
    num_classes: int
    datapoints: int
    seed: int
    protocol: Mapping[str, Any]  # max_epochs, epochs_run, best_epoch, stop_reason, precision, backend, ...
    source: Mapping[str, str]  # {"results": path of the results file in the repository, "run_id": ...}
    test_accuracy: float
    misclassified: int
    test_size: int
    params: int
    weights: str  # file name inside the presets folder
    sha256: str
    size_bytes: int
    hardware: str
    committed: bool  # weights in the repository (else: build it from its recipe)
    paper: str  # the paper's figure for this setup, "–" where it gives none
    #: Temperature and unknown threshold fitted on the dataset's validation split
    #: (:class:`zoo.inference.calibration.Calibration`'s record); None: temperature 1, no threshold.
    calibration: Mapping[str, Any] | None = None
    #: The feature rule's bank (``calibration["feature_distance"]``): a float16 ``.npy`` file beside the
    #: weights, its SHA-256 and size; None where the preset has no feature rule.
    feature_bank: str | None = None
    feature_bank_sha256: str | None = None
    feature_bank_bytes: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preset:
        fields = {field.name for field in dataclasses.fields(cls)}
        optional = {
            field.name for field in dataclasses.fields(cls) if field.default is not dataclasses.MISSING
        }
        missing = sorted(fields - optional - set(data))
        if missing:
            raise UserError(f"{PRESETS_FILE}: preset {data.get('name', '?')!r} lacks {', '.join(missing)}")
        values = {key: data[key] for key in fields if key in data}
        for key in ("toggles", "protocol", "source"):
            values[key] = MappingProxyType(dict(values[key]))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data.update({key: dict(data[key]) for key in ("toggles", "protocol", "source")})
        return data

    def weights_path(self, weights_dir: str | os.PathLike | None = None) -> pathlib.Path:
        """Where this preset's weights file is looked for (see :func:`presets_dir`)."""
        if weights_dir is None and self.committed:
            return SHIPPED_PRESETS_DIR / self.weights
        return presets_dir(weights_dir) / self.weights


def user_presets_dir() -> pathlib.Path:
    """The user's presets folder: ``$SPECTRAZOO_PRESETS``, else ``$XDG_DATA_HOME/spectrazoo/presets``
    (``~/.local/share/spectrazoo/presets``). Rebuilt presets are written and looked for there."""
    configured = os.environ.get(PRESETS_DIR_VARIABLE)
    if configured:
        return pathlib.Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or pathlib.Path.home() / ".local" / "share"
    return pathlib.Path(data_home) / "spectrazoo" / "presets"


def presets_dir(weights_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The folder of a preset's weights: the argument, else the user's presets folder.

    Committed presets are read from :data:`SHIPPED_PRESETS_DIR` when no folder is given
    (:meth:`Preset.weights_path`); everything written goes to a user folder.
    """
    if weights_dir is not None:
        return pathlib.Path(weights_dir)
    return user_presets_dir()


def is_shipped_dir(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is the package's own (shipped, checksummed) weights folder."""
    try:
        return pathlib.Path(folder).resolve() == SHIPPED_PRESETS_DIR.resolve()
    except OSError:
        return False


def _table(path: pathlib.Path = PRESETS_FILE) -> dict[str, Preset]:
    if not path.exists():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    presets = [Preset.from_dict(record) for record in records]
    return {preset.name: preset for preset in presets}


def list_presets() -> list[str]:
    """Names of every preset, in the table's order."""
    return list(_table())


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (one clear error naming the known ones otherwise)."""
    table = _table()
    if name not in table:
        known = ", ".join(table) or "none"
        raise UserError(f"unknown preset {name!r}; known presets: {known}")
    return table[name]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Suffix of the record a local rebuild (``spectrazoo preset build``) writes beside its weights.
BUILT_SUFFIX = ".built.json"


def built_record_path(preset: Preset, weights_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where a local rebuild of ``preset`` records its own checksum and result."""
    return preset.weights_path(weights_dir).with_name(f"{preset.name}{BUILT_SUFFIX}")


def verified_weights(preset: Preset, weights_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The preset's weights file after checking that it exists and its SHA-256 is the expected one.

    Weights rebuilt locally from the recipe must match the checksum their build recorded beside them;
    other weights (the shipped ones, or a copy of them) must match the SHA-256 in the table.
    """
    path = preset.weights_path(weights_dir)
    if not path.is_file():
        how = "" if preset.committed else f" (not committed: spectrazoo preset build {preset.name})"
        raise UserError(f"preset {preset.name!r}: weights file {path} does not exist{how}")
    expected, whose = preset.sha256, "recorded"
    record = built_record_path(preset, weights_dir)
    if not preset.committed or (weights_dir is not None and record.is_file()):
        if not record.is_file():
            raise UserError(f"preset {preset.name!r}: {path} has no build record {record.name}; rebuild it")
        try:
            expected, whose = json.loads(record.read_text(encoding="utf-8"))["sha256"], "built"
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise UserError(
                f"{record}: not a build record (JSON with a sha256); rebuild the preset"
            ) from None
    actual = sha256_of(path)
    if actual != expected:
        raise UserError(
            f"preset {preset.name!r}: {path} has SHA-256 {actual[:12]}…, not the {whose} "
            f"{expected[:12]}… (corrupted or replaced weights)"
        )
    return path


def verified_bank(preset: Preset, weights_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The preset's feature bank file (beside its weights) after checking its SHA-256 against the table."""
    if preset.feature_bank is None:
        raise UserError(f"preset {preset.name!r} has no feature bank")
    path = preset.weights_path(weights_dir).with_name(preset.feature_bank)
    if not path.is_file():
        raise UserError(f"preset {preset.name!r}: feature bank {path} does not exist")
    actual = sha256_of(path)
    if actual != preset.feature_bank_sha256:
        raise UserError(
            f"preset {preset.name!r}: {path} has SHA-256 {actual[:12]}…, not the recorded "
            f"{str(preset.feature_bank_sha256)[:12]}… (corrupted or replaced feature bank)"
        )
    return path


def build_preset_model(preset: Preset) -> keras.Model:
    """The preset's architecture with its toggles, untrained, compiled with the study's optimizer."""
    from zoo.models.registry import build

    return build(preset.model, preset.num_classes, preset.datapoints, **dict(preset.toggles))


def from_preset(name: str, *, weights_dir: str | os.PathLike | None = None) -> keras.Model:
    """The trained Keras model of preset ``name`` (input: max-normalised spectra ``(datapoints, 1)``).

    Raises:
        UserError: an unknown name, a missing weights file or one whose checksum is not the recorded one.
    """
    preset = get_preset(name)
    path = verified_weights(preset, weights_dir)
    model = build_preset_model(preset)
    model.load_weights(path)
    return model


def evaluate_on_test_split(model: keras.Model, dataset: str, batch_size: int = 128) -> tuple[float, int, int]:
    """``(accuracy, misclassified, size)`` of a Keras model on a dataset's test split (NumPy generator)."""
    import numpy as np

    from synthetic_spectra.generator import generate
    from synthetic_spectra.normalize import normalize_max

    x, y = generate(dataset, "test")
    probabilities = model.predict(normalize_max(x)[..., np.newaxis], batch_size=batch_size, verbose=0)
    wrong = int(np.sum(np.argmax(probabilities, axis=-1) != y))
    return 1.0 - wrong / len(y), wrong, len(y)


def preset_table_markdown() -> str:
    """The README's presets table, generated from the registry (one line per preset)."""
    lines = [
        "| preset | model (toggles) | params | data | test accuracy | wrong | paper | "
        "epochs (stop, precision) | seed | weights + feature bank |",
        "|---|---|---:|---|---:|---:|---|---|---:|---|",
    ]
    for preset in _table().values():
        toggles = ", ".join(f"{k}={v}" for k, v in sorted(preset.toggles.items())) or "published"
        protocol = preset.protocol
        size = f"{(preset.size_bytes + preset.feature_bank_bytes) / 1e6:.1f} MB" + (
            "" if preset.committed else " (build from recipe)"
        )
        lines.append(
            f"| `{preset.name}` | {preset.model} ({toggles}) | {preset.params:,} | {preset.dataset} | "
            f"{100 * preset.test_accuracy:.2f} % | {preset.misclassified}/{preset.test_size} | "
            f"{preset.paper} | {protocol['epochs_run']} ({protocol['stop_reason'].replace('_', ' ')}, "
            f"{protocol.get('precision') or 'float32'}) | "
            f"{preset.seed} | {size} |"
        )
    return "\n".join(lines)
