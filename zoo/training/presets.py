"""Retrain a preset from its recipe (``spectrazoo preset build NAME``) and say whether it reproduced.

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
from typing import Any

from zoo.errors import UserError
from zoo.inference.predict import load_keras_model
from zoo.models.presets import Preset, built_record_path, is_shipped_dir, presets_dir, sha256_of
from zoo.paths import check_output_dir
from zoo.training.protocol import Protocol, plan_runs
from zoo.training.results import RESULTS_FILE, read_results
from zoo.training.runner import run_benchmark


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
