"""Make a preset from a finished run (``spectrazoo preset make``), or retrain one from its recipe
(``spectrazoo preset build NAME``) and say whether it reproduced.

A preset is made from a results row and its export (:func:`make_preset`): the export's weights are copied
into the preset's architecture, which must reproduce the row's misclassification count on its dataset's
test split exactly; then its entry is written to the table (:func:`write_entry`).

The recipe is what the preset records: model and toggles, dataset, seed, the protocol's settings and the
precision it trained in. The run goes through the same runner as every study row; its best weights are
written to the user's presets folder (:func:`zoo.models.presets.user_presets_dir`, never the shipped one)
with a build record beside them (their SHA-256, the rebuilt test numbers and whether they equal the
recorded ones), so :func:`zoo.from_preset` loads the rebuilt model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from typing import Any

from zoo.errors import UserError
from zoo.inference.predict import METADATA_FILE, load_keras_model, read_feature_bank, read_metadata
from zoo.models.presets import (
    FEATURE_BANK_SUFFIX,
    MAX_PRESET_BYTES,
    PRESETS_FILE,
    SHIPPED_PRESETS_DIR,
    Preset,
    build_preset_model,
    built_record_path,
    evaluate_on_test_split,
    is_shipped_dir,
    presets_dir,
    sha256_of,
)
from zoo.paths import check_output_dir
from zoo.training.protocol import Protocol, plan_runs
from zoo.training.results import RESULTS_FILE, read_results
from zoo.training.runner import run_benchmark

#: A preset's name: also its weights file's name.
PRESET_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The row's fields a preset records as its protocol.
PROTOCOL_KEYS = ("max_epochs", "epochs_run", "best_epoch", "stop_reason", "precision", "backend",
                 "lr_factor", "batch_size", "jit_compile")  # fmt: skip
#: The source checkout (the folder above ``zoo/``): a preset names its results file relative to it.
CHECKOUT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class PresetBuild:
    """What a rebuild gave: its results row, where the weights went, and whether it reproduced."""

    row: dict[str, Any]
    weights: pathlib.Path
    reproduced: bool

    def summary(self) -> str:
        """One line for people: rebuilt numbers against the recorded ones."""
        row = self.row
        verdict = "reproduced" if self.reproduced else "did NOT reproduce"
        return (
            f"{row['run_id']}: {row['misclassified']}/{row['test_size']} wrong "
            f"({100 * row['test_accuracy']:.2f} %), {row['epochs_run']} epochs ({row['stop_reason']}); "
            f"{verdict} the recorded result; weights {self.weights}"
        )


def recipe_protocol(preset: Preset, max_epochs: int | None = None) -> Protocol:
    """The preset's protocol (``max_epochs`` overrides its epoch limit, e.g. for a quick check)."""
    recorded = preset.protocol
    return Protocol(
        max_epochs=max_epochs or int(recorded["max_epochs"]),
        batch_size=int(recorded["batch_size"]),
        lr_factor=float(recorded["lr_factor"]),
    )


def check_build_folders(weights_dir: str | os.PathLike | None, work_dir: str | os.PathLike) -> pathlib.Path:
    """The folder a build writes its weights to, after checking it and the run folder can be written.

    The package's shipped folder is refused: checksummed weights are never written over.
    """
    folder = presets_dir(weights_dir)
    if is_shipped_dir(folder):
        raise UserError(
            f"--weights-dir {folder}: the shipped presets folder is read-only; build into another folder"
        )
    check_output_dir(folder, "--weights-dir")
    check_output_dir(work_dir, "--work")
    return folder


def build_preset(
    preset: Preset,
    work_dir: str | os.PathLike,
    *,
    weights_dir: str | os.PathLike | None = None,
    max_epochs: int | None = None,
    verbose: int = 2,
) -> PresetBuild:
    """Train ``preset`` from its recipe in ``work_dir`` (resumable); store its weights; compare its result.

    The weights go to ``weights_dir`` (default: the user's presets folder); the package's shipped folder
    is refused, so checksummed weights are never written over.
    """
    folder = check_build_folders(weights_dir, work_dir)
    toggles = dict(preset.toggles)
    activation = toggles.pop("fc_activation", None)
    (spec,) = plan_runs(preset.dataset, [preset.model], [activation], seeds=[preset.seed], hparams=toggles)
    work_dir = pathlib.Path(work_dir)
    exports = work_dir / "exports"
    run_benchmark(
        [spec],
        recipe_protocol(preset, max_epochs),
        work_dir,
        saved_models_dir=exports,
        precision=str(preset.protocol.get("precision") or "float32"),
        jit_compile=preset.protocol.get("jit_compile", "auto"),
        verbose=verbose,
    )
    row = {r["run_id"]: r for r in read_results(work_dir / RESULTS_FILE)}[spec.run_id]
    model = load_keras_model(row["export_dir"])
    target = folder / preset.weights
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(target)
    reproduced = (row["misclassified"], row["test_size"]) == (preset.misclassified, preset.test_size)
    record = {
        "sha256": sha256_of(target),
        "run_id": row["run_id"],
        "misclassified": row["misclassified"],
        "test_size": row["test_size"],
        "test_accuracy": row["test_accuracy"],
        "epochs_run": row["epochs_run"],
        "stop_reason": row["stop_reason"],
        "max_epochs": row["max_epochs"],
        "reproduced": reproduced,
        "hardware": row["hardware"],
    }
    built_record_path(preset, folder).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return PresetBuild(row=row, weights=target, reproduced=reproduced)


def finished_row(name: str, results: pathlib.Path, run_id: str, export: pathlib.Path) -> dict[str, Any]:
    """The row ``run_id`` of ``results``, after checking the preset's name and that the files exist."""
    if not PRESET_NAME.fullmatch(name):
        raise UserError(f"--name: lower-case letters, digits and '_' (a letter first), got {name!r}")
    if not results.is_file():
        raise UserError(f"--results: no such file {str(results)!r}")
    if not export.exists():
        raise UserError(f"--export: {str(export)!r} does not exist")
    rows = {row["run_id"]: row for row in read_results(results)}
    if run_id not in rows:
        raise UserError(f"{results}: no row with run_id {run_id!r}")
    return rows[run_id]


def make_preset(
    name: str,
    results: pathlib.Path,
    run_id: str,
    export: pathlib.Path,
    *,
    paper: str = "–",
    recipe_only: bool = False,
    weights_dir: str | os.PathLike | None = None,
) -> Preset:
    """The preset ``name`` made from row ``run_id`` of ``results`` and its ``export``, weights saved.

    The weights go to ``weights_dir`` (default: the package's shipped folder, in a source checkout) as
    ``NAME.weights.h5`` without optimizer state; the model must reproduce the row's misclassification
    count on its test split exactly. ``recipe_only`` records the checksum but keeps no weights file. The
    export's calibration goes into the entry; its feature rule's bank (where it has one) beside the weights
    as ``NAME.features.npy`` (weights and bank together under ``MAX_PRESET_BYTES``).
    """
    import numpy as np

    from synthetic_spectra.config import get_config

    row = finished_row(name, results, run_id, export)
    folder = check_output_dir(weights_dir or SHIPPED_PRESETS_DIR, "--weights-dir")
    config = get_config(row["dataset"])
    weights = f"{name}.weights.h5"
    source = results.resolve()
    draft = Preset(
        name=name, model=row["model"],
        toggles={k: v for k, v in row["toggles"].items() if v is not None},
        dataset=row["dataset"], num_classes=config.num_classes, datapoints=config.datapoints,
        seed=row["seed"],
        protocol={key: row.get(key, "float32" if key == "precision" else None) for key in PROTOCOL_KEYS},
        source={
            "results": str(source.relative_to(CHECKOUT) if source.is_relative_to(CHECKOUT) else source),
            "run_id": row["run_id"],
        },
        test_accuracy=row["test_accuracy"], misclassified=row["misclassified"], test_size=row["test_size"],
        params=row["params"], weights=weights, sha256="", size_bytes=0, hardware=row["hardware"],
        committed=not recipe_only, paper=paper,
    )  # fmt: skip
    trained = load_keras_model(export)
    calibration = read_metadata(export / METADATA_FILE).get("calibration")
    bank = read_feature_bank(export)
    model = build_preset_model(draft)
    model.set_weights(trained.get_weights())
    _, wrong, size = evaluate_on_test_split(model, draft.dataset)
    if (wrong, size) != (draft.misclassified, draft.test_size):
        raise UserError(
            f"{export}: {wrong}/{size} wrong on the {draft.dataset} test split, but the row records "
            f"{draft.misclassified}/{draft.test_size}: not the row's model"
        )
    target = folder / weights
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(target)
    values = draft.to_dict()
    values.update(sha256=sha256_of(target), size_bytes=target.stat().st_size, calibration=calibration)
    written = [target]
    if bank is not None:
        bank_file = folder / f"{name}{FEATURE_BANK_SUFFIX}"
        np.save(bank_file, bank)
        written.append(bank_file)
        values.update(
            feature_bank=bank_file.name,
            feature_bank_sha256=sha256_of(bank_file),
            feature_bank_bytes=bank_file.stat().st_size,
        )
    total = values["size_bytes"] + values["feature_bank_bytes"]
    if recipe_only or total >= MAX_PRESET_BYTES:
        for path in written:
            path.unlink()
    if not recipe_only and total >= MAX_PRESET_BYTES:
        raise UserError(
            f"{export}: weights and feature bank take {total / 1e6:.1f} MB; a preset stays under "
            f"{MAX_PRESET_BYTES / 1e6:.0f} MB (fit the feature rule on fewer training spectra per class)"
        )
    return Preset.from_dict(values)


def write_entry(preset: Preset, path: pathlib.Path = PRESETS_FILE) -> None:
    """Add ``preset`` to the table (replacing an entry of the same name), keeping the others' order."""
    records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    records = [r for r in records if r["name"] != preset.name] + [preset.to_dict()]
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
