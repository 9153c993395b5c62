"""Calibrated confidence and unknown detection: rows, tables and figures in benchmarks/results/calibration/.

Two steps, each writing what the next reads:

``train``    trains models on a dataset with some classes held out
             (``zoo.inference.calibration.split_classes``; default: challenge without classes 6, 7, 8, 13,
             21, 22, 23, i.e. 20 known classes), one export per
             (model, seed) under --models-dir, calibrated on the known classes' validation split with the
             shipped rule (temperature, probability threshold and feature rule, its bank the training
             split's features). The protocol's callbacks (ReduceLROnPlateau, EarlyStopping on val_loss,
             best weights restored) with --max-epochs, --patience and --lr-patience (the study's protocol:
             500, 25, 10): the budget, epochs run and stop reason go into each export's metrics and the rows.
             Each training backs up every epoch under --models-dir/runs/: repeating a killed command
             resumes it after its last finished epoch (exports that exist are skipped).
``evaluate`` measures, on the presets and the held-out models: calibration (ECE, reliability) on the
             validation split and fresh draws before/after temperature scaling; unknown detection with five
             scores (max softmax probability, temperature-scaled probability, energy, k-NN feature distance,
             Monte Carlo dropout, a deep ensemble of the seeds) and the shipped rule (probability or
             distance, 5 % together): AUROC, false alarms on known classes, selective accuracy against
             coverage on unseen classes and on the generalisation panel's perturbed sets, and the k-NN score
             with smaller banks (``bank_size`` rows). Fits each preset's shipped rule (bank within
             ``MAX_BANK_BYTES``) and writes its bank to --banks-dir. Writes ``rows.jsonl`` (one row per
             model/score/set), ``calibration.md`` and the figures.

The measurements and the report live in the library's analysis room: ``zoo.study.confidence`` (the units
and their scores, one function per kind of row) and ``zoo.study.confidence_report`` (rows file, report,
figures); this script resolves the arguments, trains, and calls them.

The benchmark variant (450 of 500 classes known) takes hours per model on a 2-core CPU (the held-out VGG:
83 epochs to early stopping); its command is

    python benchmarks/experiments/calibration.py train --dataset benchmark --hold-out 450-499 \
        --models vgg,prnet --seeds 0-2 --max-epochs 500 --patience 25 --lr-patience 10 \
        --models-dir saved_models/calibration_benchmark

A training that ends at a --max-epochs below the protocol's 500 is *capped* (``is_capped``): its records
and rows say so (``capped``, epochs run, the cap, the stop reason, CPU seconds), and the report puts its
rows in tables of their own, never beside models trained to the protocol's end.

``separability`` judges, with no model, each held-out class's spectra under the full dataset's training
             distribution (``zoo.study.ceiling.held_out_separability``): its nearest known classes and what
             differs, the share of its spectra a known class can produce, the false alarms needed to catch
             all of it, the Bayes detector's AUROC (no detector does better); rows ``kind: separability``.
``report``   regenerates calibration.md and the figures from rows.jsonl; ``merge`` adds rows measured into
             other folders (runs measured apart); ``ship`` writes the presets'
             calibration (fitted on their validation splits) from the rows into zoo/models/presets.json,
             with the confidence maps ``calibrators.py`` fitted on a large fresh draw, and copies their
             feature banks (checked against the rows' SHA-256) beside their weights.

Usage:  python benchmarks/experiments/calibration.py train [--dataset challenge] [--hold-out 6-8,13,21-23]
                                              [--models prnet,vgg] [--seeds 0-2] [--max-epochs N]
                                              [--patience N] [--lr-patience N]
        python benchmarks/experiments/calibration.py evaluate [--part all|presets|held-out|study]
                                              [--presets NAME,...] [--scores msp,...] [--out DIR]
        python benchmarks/experiments/calibration.py separability [--dataset challenge] [--hold-out ...]
                                              [--per-class 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.checks import OneLineParser
from zoo.errors import UserError
from zoo.study.confidence import (
    DEFAULT_RATE,
    FIT_SEED,
    FRESH_SEEDS,
    KNN_K,
    MC_PASSES,
    PERTURBED_GROUPS,
    SCORES,
    Outputs,
    Spectra,
    Unit,
    bank_size_rows,
    calibration_rows,
    calibration_sets,
    clean_accuracy,
    held_out_configs,
    is_capped,
    misclassification_rows,
    normalised,
    thresholds_on,
    unseen_rows,
    validation_key,
)
from zoo.study.confidence_report import (
    ROWS_FILE,
    read_rows,
    replace_rows,
    row_identity,
    write_report,
    write_rows,
)
from zoo.tfquiet import import_tensorflow_quietly

DEFAULT_OUT = Path("benchmarks/results/calibration")
DEFAULT_MODELS_DIR = Path("saved_models/calibration")
#: The presets' feature banks written by ``evaluate``, copied into the package by ``ship``.
DEFAULT_BANKS_DIR = Path("saved_models/calibration_banks")
DEFAULT_HOLD_OUT = "6-8,13,21-23"
#: The rows of ``calibrators.py`` (beside rows.jsonl): the presets' confidence maps, which ``ship`` adds.
CALIBRATORS_FILE = "calibrators.jsonl"
#: The study's exports measured by ``evaluate --part study`` (``<setup>-seed<N>``).
DEFAULT_STUDY_DIR = Path("saved_models/challenge")
DEFAULT_PRESETS = ("vgg_relu_challenge", "prnet_challenge", "prnet_v4_challenge")
#: Under --models-dir: each training's per-epoch backups and logs (``RUNS_FOLDER/<export name>/``).
RUNS_FOLDER = "runs"


def parse_classes(text: str) -> list[int]:
    """``"6-8,13"`` → ``[6, 7, 8, 13]``."""
    from zoo.training.protocol import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise UserError(f"--hold-out: {str(exc).removeprefix('seeds: ')}") from None


def train(args: argparse.Namespace) -> int:
    """Train each (model, seed) on the known classes, fit its calibration, export it."""
    import_tensorflow_quietly()
    import keras

    from synthetic_spectra.generator import generate
    from zoo.inference.calibration import fit_calibration
    from zoo.inference.export import export
    from zoo.inference.logits import predict_features, predict_logits
    from zoo.models.compile import compile_model
    from zoo.models.registry import build, list_models
    from zoo.training.callbacks import make_callbacks
    from zoo.training.environment import hardware, set_seed
    from zoo.training.protocol import Protocol, parse_seeds
    from zoo.training.results import epochs_backed_up, read_history

    hold_out = parse_classes(args.hold_out)
    known, _ = held_out_configs(args.dataset, hold_out)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown_models = [m for m in models if m not in list_models()] or ([] if models else ["(none)"])
    if unknown_models:
        raise UserError(f"--models: unknown model {unknown_models[0]!r}; see spectrazoo models")
    lr_patience = max(1, args.patience // 2) if args.lr_patience is None else args.lr_patience
    protocol = Protocol(max_epochs=args.max_epochs, es_patience=args.patience, lr_patience=lr_patience)
    x_train, y_train = generate(known, "train")
    x_val, y_val = generate(known, "validation")
    x_train, x_val = normalised(x_train)[..., None], normalised(x_val)[..., None]
    one_hot = keras.utils.to_categorical
    for model_name in models:
        for seed in parse_seeds(args.seeds):
            target = args.models_dir / f"{known.name}-{model_name}-seed{seed}"
            if target.exists() and not args.overwrite:
                print(f"{target}: exists, skipped (--overwrite to retrain)", flush=True)
                continue
            # Per-epoch backups, logs and the callbacks' state: a killed training resumes at its last
            # finished epoch when the command is repeated (its later shuffles differ from an unbroken run's).
            run_dir = args.models_dir / RUNS_FOLDER / target.name
            if args.overwrite and run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            set_seed(seed)
            toggles = {"fc_activation": "relu"} if model_name == "vgg" else {}
            model = compile_model(
                build(model_name, known.num_classes, known.datapoints, compile=False, **toggles)
            )
            callbacks, early_stopping = make_callbacks(protocol, run_dir, verbose=0)
            resumed_at = epochs_backed_up(run_dir / "backup")
            if resumed_at:
                print(f"{target.name}: resuming after epoch {resumed_at}", flush=True)
            cpu_start = time.process_time()
            model.fit(
                x_train,
                one_hot(y_train, known.num_classes),
                batch_size=protocol.batch_size,
                epochs=protocol.max_epochs,
                validation_data=(x_val, one_hot(y_val, known.num_classes)),
                callbacks=callbacks,
                shuffle=True,
                verbose=0,
            )
            history = read_history(run_dir / "history.csv")  # every epoch, across resumes
            seconds = float(sum(history["epoch_seconds"]))
            # every epoch's CPU time when the log has it for all of them (runs begun before it was logged
            # count this process alone, and say so)
            cpu_seconds = float(sum(history.get("epoch_cpu_seconds", [])))
            cpu_scope = "every epoch" if cpu_seconds else "this process's epochs"
            cpu_seconds = cpu_seconds or time.process_time() - cpu_start
            epochs_run = len(history["loss"])
            stop = "early_stopping" if early_stopping.stopped_epoch else "max_epochs"
            best_epoch = int(np.argmin(history["val_loss"])) + 1
            logits = predict_logits(model, x_val[..., 0])
            calibration = fit_calibration(
                logits,
                y_val,
                data=f"{known.name} validation (seed {known.seed})",
                features=predict_features(model, x_val[..., 0]),
                reference=predict_features(model, x_train[..., 0]),
                bank_notes={"bank": f"{known.name} train (seed {known.seed}), every spectrum"},
            )
            accuracy = float(np.mean(logits.argmax(axis=1) == y_val))
            metrics = {
                "seed": seed,
                "epochs_run": epochs_run,
                "best_epoch": best_epoch,
                "max_epochs": protocol.max_epochs,
                "es_patience": protocol.es_patience,
                "lr_patience": protocol.lr_patience,
                "val_accuracy": accuracy,
                "train_seconds": seconds,
                "train_cpu_seconds": cpu_seconds,
                "resumed_after_epoch": resumed_at,
            }
            export(
                model,
                target,
                dataset_config=known,
                metrics=metrics,
                calibration=calibration,
                overwrite=args.overwrite,
            )
            record = {
                **metrics,
                "stop_reason": stop,
                "train_cpu_seconds_cover": cpu_scope,
                "capped": is_capped({"stop_reason": stop, "max_epochs": protocol.max_epochs}),
                "protocol_max_epochs": Protocol().max_epochs,
                "hold_out": hold_out,
                "hardware": hardware(),
                "model": model_name,
            }
            (target / "training.json").write_text(json.dumps(record, indent=2) + "\n")
            print(
                f"{target.name}: {epochs_run} epochs of at most {protocol.max_epochs} ({stop}"
                f"{', capped' if record['capped'] else ''}, best {best_epoch}), "
                f"val accuracy {accuracy:.2%}, "
                f"T {calibration.temperature:.3f}, {seconds:.0f} s ({cpu_seconds:.0f} CPU-s)",
                flush=True,
            )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Measure the presets, the held-out models and (``--part study``) the study's exports; write rows,
    table and figures to --out."""
    from zoo.training.environment import hardware

    if not 0.0 <= args.false_alarm_rate < 1.0:
        raise UserError(f"--false-alarm-rate: must be in [0, 1), got {args.false_alarm_rate!r}")
    if args.mc_passes < 0 or args.fresh_per_class < 1:
        raise UserError("--mc-passes must be >= 0 and --fresh-per-class >= 1")
    study = study_plan(args) if args.part == "study" else []
    wanted = frozenset(score for score in args.scores.split(",") if score)
    unknown_scores = sorted(wanted - set(SCORES))
    if unknown_scores:
        raise UserError(
            f"--scores: unknown score {unknown_scores[0]!r}; expected some of {', '.join(SCORES)}"
        )
    import_tensorflow_quietly()
    args.out.mkdir(parents=True, exist_ok=True)
    measurement = Measurement(args, wanted, hardware())
    if args.part in ("all", "presets"):
        _measure_presets(measurement)
    if args.part in ("all", "held-out"):
        _measure_held_out(measurement)
    _measure_study(measurement, study)
    measurement.save()
    write_report(args.out)
    return 0


class Measurement:
    """One ``evaluate`` run: its arguments, the scores wanted, the machine, the caches every unit shares
    (an ensemble reuses its seeds' logits) and the rows measured so far."""

    def __init__(self, args: argparse.Namespace, wanted: frozenset[str], machine: str) -> None:
        self.args, self.wanted, self.machine = args, wanted, machine
        self.outputs, self.spectra = Outputs(), Spectra()
        self.rows: list[dict[str, Any]] = []

    @property
    def rate(self) -> float:
        return self.args.false_alarm_rate

    def unit(self, label: str, models: list[Any], temperature: float | None, mc: bool = False) -> Unit:
        """A unit of the wanted scores with the shared caches (Monte Carlo dropout only with ``mc``)."""
        passes = self.args.mc_passes if mc and "mc_dropout" in self.wanted else 0
        return Unit(label, models, temperature, passes, scores=self.wanted, outputs=self.outputs)

    def save(self) -> None:
        """Write the rows: rows measured now replace the same rows measured before; with
        --keep-other-rows the other models' rows stay, except those of a model retrained since (another
        training record under the same name)."""
        measured = {row_identity(row) for row in self.rows}
        trained = {row["model"]: row.get("training") for row in self.rows}
        kept = [
            row
            for row in (read_rows(self.args.out) if self.args.keep_other_rows else [])
            if row["model"] not in trained or row.get("training") == trained[row["model"]]
        ]
        write_rows(self.args.out, [row for row in kept if row_identity(row) not in measured] + self.rows)

    def panel(self, config: Any) -> list[Any]:
        """The perturbed panel sets of ``config``'s classes named by --sets (none with --no-panel)."""
        from zoo.study.panel import panel_sets

        if self.args.no_panel:
            return []
        wanted = [part.strip() for part in self.args.sets.split(",") if part.strip()]
        return [
            s
            for s in panel_sets(config)
            if s.group in PERTURBED_GROUPS and (not wanted or any(part in s.name for part in wanted))
        ]

    def unit_rows(
        self,
        unit: Unit,
        config: Any,
        validation: tuple[np.ndarray, np.ndarray],
        base: dict[str, Any],
        panel: list[Any],
    ) -> list[dict[str, Any]]:
        """A calibrated unit's calibration rows (``calibration_sets``) and, on the ``panel`` sets, its
        perturbed rows (thresholds at --false-alarm-rate on the validation split, the bar: its validation
        accuracy)."""
        key = validation_key(config.name)
        sets = calibration_sets(config, self.args.fresh_per_class)
        rows = calibration_rows(unit, sets, base, self.spectra)
        if panel:
            thresholds = thresholds_on(unit, validation, self.rate, key)
            clean = clean_accuracy(unit, validation, key)
            rows += misclassification_rows(unit, panel, thresholds, clean, base, self.spectra)
        return rows


def _measure_presets(m: Measurement) -> None:
    """The presets: calibration on validation and fresh draws, the shipped rule, perturbed panel sets."""
    import zoo
    from synthetic_spectra.config import get_config
    from zoo.models.presets import get_preset

    for name in [p for p in m.args.presets.split(",") if p]:
        preset = get_preset(name)
        config = get_config(preset.dataset)
        unit = m.unit(name, [zoo.from_preset(name)], 1.0, mc=True)
        validation = m.spectra.split(config, "validation")
        record = unit.fit_temperature(config, validation, m.rate)
        x_train, y_train = m.spectra.split(config, "train")
        if "knn" in m.wanted:
            unit.fit_reference(x_train)
        bank_record = None
        if "shipped" in m.wanted:
            record, bank_record = preset_rule(unit, config, (x_train, y_train), validation, m.rate, m.args)
        base = {
            "model": name,
            "source": f"preset:{name}",
            "trained_on": config.name,
            "model_seed": preset.seed,
            "hardware": m.machine,
            "load": _load(),
        }
        panel = m.panel(config) if config.num_classes < 100 else []
        m.rows += m.unit_rows(unit, config, validation, base, panel)
        calibration = {"kind": "preset_calibration", "calibration": record.to_dict()}
        m.rows.append({**base, **calibration, "feature_bank": bank_record})
        print(f"{name}: T {record.temperature:.3f}, threshold {record.threshold:.4f}", flush=True)
        m.save()
        m.spectra.clear()


def _measure_held_out(m: Measurement) -> None:
    """The held-out models of --models-dir, by architecture: unseen classes, smaller banks, perturbed
    panel sets of the known classes; each seed and the ensemble of the seeds."""
    import zoo
    from synthetic_spectra.config import fresh_draw
    from zoo.inference.predict import read_feature_bank

    exports = sorted(p for p in m.args.models_dir.glob("*-seed*") if (p / "metadata.json").is_file())
    by_arch: dict[str, list[Path]] = {}
    for path in exports:
        by_arch.setdefault(path.name.rsplit("-seed", 1)[0], []).append(path)
    for arch, paths in by_arch.items():
        training = [json.loads((p / "training.json").read_text()) for p in paths]
        hold_out = training[0]["hold_out"]
        dataset = zoo.load(paths[0]).metadata["dataset"]
        known_config, unknown_config = held_out_configs(dataset.split("_known")[0], hold_out)
        validation = m.spectra.split(known_config, "validation")
        known = m.spectra.split(fresh_draw(known_config, FRESH_SEEDS[0]), "train")
        unknown = m.spectra.split(fresh_draw(unknown_config, FRESH_SEEDS[0]), "train")
        known_train, train_labels = m.spectra.split(known_config, "train")
        units = []
        for path, record in zip(paths, training, strict=True):
            predictor = zoo.load(path)
            model = zoo.load_keras_model(path)
            unit = m.unit(path.name, [model], predictor.calibration.temperature, mc=True)
            if predictor.calibration.feature_distance is not None:  # the shipped rule, bank and all
                unit.calibration = predictor.calibration.with_bank(read_feature_bank(path))
            if "knn" in m.wanted:
                unit.fit_reference(known_train)
            units.append((unit, record))
        ensemble = m.unit(f"{arch}-ensemble", [u.models[0] for u, _ in units], None)
        members = [*units, (ensemble, None)] if len(units) > 1 else units  # an ensemble needs two seeds
        for unit, record in members:
            records = [record] if record else [r for _, r in units]
            base = {
                "model": unit.label,
                "source": str(m.args.models_dir),
                "trained_on": known_config.name,
                "model_seeds": [r["seed"] for r in records],
                "hold_out": hold_out,
                "hardware": m.machine,
                "load": _load(),
                "training": record or records,
                "capped": any(is_capped(r) for r in records),
                "known_set": f"{known_config.name} fresh draw {FRESH_SEEDS[0]} train",
                "unknown_set": f"{unknown_config.name} fresh draw {FRESH_SEEDS[0]} train",
            }
            thresholds = thresholds_on(unit, validation, m.rate)
            m.rows += unseen_rows(unit, known, unknown, thresholds, base)
            if unit.reference is not None and not unit.is_ensemble:
                sets = {
                    key: unit.features(key, values[0])
                    for key, values in (("validation", validation), ("known", known), ("unknown", unknown))
                }
                m.rows += bank_size_rows(unit, train_labels, sets, m.rate, base)
            if not unit.is_ensemble or m.args.ensemble_panel:
                panel = m.panel(known_config)
                clean = clean_accuracy(unit, validation)
                m.rows += misclassification_rows(unit, panel, thresholds, clean, base, m.spectra)
            print(f"{unit.label}: done", flush=True)
            m.save()
        m.spectra.clear()


def _measure_study(m: Measurement, study: list[tuple[str, list[tuple[Path, str, dict[str, Any]]]]]) -> None:
    """The study's exports (``study_plan``): each seed and the deep ensemble of a setup's seeds."""
    import zoo
    from synthetic_spectra.config import get_config

    for setup, members in study:
        dataset = members[0][2]["dataset"]
        config = get_config(dataset)
        validation = m.spectra.split(config, "validation")
        panel = m.panel(config)
        units = [
            (m.unit(f"{dataset}/{member[0].name}", [zoo.load_keras_model(member[0])], 1.0), [member])
            for member in members
        ]
        if len(units) > 1:  # an ensemble needs two seeds
            ensemble = m.unit(f"{dataset}/{setup}-ensemble", [u.models[0] for u, _ in units], None)
            units.append((ensemble, members))
        for unit, seeds in units:
            start = time.perf_counter()
            unit.fit_temperature(config, validation, m.rate)
            base = study_base(unit, setup, seeds, m.args, m.machine)
            measured = m.unit_rows(unit, config, validation, base, panel)
            m.rows += measured
            m.save()
            ece = {r["stage"]: r["ece"] for r in measured if r["set"] == validation_key(config.name)}
            print(
                f"{unit.label}: T {unit.temperature:.3f}, validation ECE {ece['raw']:.2%} raw, "
                f"{ece['calibrated']:.2%} calibrated; {time.perf_counter() - start:.0f} s",
                flush=True,
            )


#: Fields of a study row (``benchmarks/results/study/<dataset>/results.jsonl``) kept as a training record.
STUDY_FIELDS = ("run_id", "export_dir", "seed", "precision", "epochs_run", "best_epoch", "max_epochs",
                "stop_reason", "val_accuracy", "test_accuracy", "wall_time_s", "hardware")  # fmt: skip


def study_plan(args: argparse.Namespace) -> list[tuple[str, list[tuple[Path, str, dict[str, Any]]]]]:
    """The study's exports in --study-dir by setup (``<setup>-seed<N>``, --study-setups or every setup),
    each with its run id and its training record from the study's rows (--study-rows, default
    ``benchmarks/results/study/<dataset>/results.jsonl``). Checks everything; one-line errors."""
    from zoo.training.results import read_results

    folder: Path = args.study_dir
    if not folder.is_dir():
        raise UserError(f"--study-dir {folder}: not a directory")
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*-seed*")):
        setup, _, seed = path.name.rpartition("-seed")
        if seed.isdigit() and (path / "metadata.json").is_file():
            found.setdefault(setup, []).append(path)
    wanted = [s.strip() for s in args.study_setups.split(",") if s.strip()] or sorted(found)
    if not wanted:
        raise UserError(f"--study-dir {folder}: no exports (<setup>-seed<N>/metadata.json)")
    missing = [s for s in wanted if s not in found]
    if missing:
        raise UserError(
            f"--study-dir {folder}: no exports of setup {missing[0]!r} ({missing[0]}-seed<N>/metadata.json); "
            f"found: {', '.join(sorted(found)) or 'none'}"
        )
    plan = []
    rows_cache: dict[Path, dict[str, dict[str, Any]]] = {}
    for setup in wanted:
        members = []
        for path in sorted(found[setup], key=lambda p: int(p.name.rpartition("-seed")[2])):
            try:
                dataset = json.loads((path / "metadata.json").read_text())["dataset"]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path / 'metadata.json'}: not an export's metadata (no dataset)") from None
            rows_file = args.study_rows or Path("benchmarks/results/study") / dataset / "results.jsonl"
            if not rows_file.is_file():
                raise UserError(f"--study-rows {rows_file}: no such file (the study's rows of {dataset})")
            if rows_file not in rows_cache:
                rows_cache[rows_file] = {r.get("run_id"): r for r in read_results(rows_file)}
            run_id = f"{dataset}/{path.name}"
            row = rows_cache[rows_file].get(run_id)
            if row is None or any(
                key not in row for key in ("seed", "epochs_run", "max_epochs", "stop_reason")
            ):
                raise UserError(f"{rows_file}: no complete row for run {run_id!r} (the export {path})")
            record = {key: row[key] for key in STUDY_FIELDS if key in row}
            members.append((path, str(rows_file), {**record, "dataset": dataset}))
        if len({m[2]["dataset"] for m in members}) > 1:
            raise UserError(
                f"--study-dir {folder}: the exports of {setup!r} were trained on different datasets"
            )
        plan.append((setup, members))
    return plan


def study_base(
    unit: Unit,
    setup: str,
    members: list[tuple[Path, str, dict[str, Any]]],
    args: argparse.Namespace,
    machine: str,
) -> dict[str, Any]:
    """The fields every row of a study unit carries: model, setup, seeds, exports and rows it came from,
    training records, hardware and load."""
    records = [record for _, _, record in members]
    return {
        "model": unit.label,
        "study": setup,
        "source": str(members[0][0]) if len(members) == 1 else str(args.study_dir),
        "exports": [str(path) for path, _, _ in members],
        "study_rows": members[0][1],
        "trained_on": records[0]["dataset"],
        "model_seeds": [r["seed"] for r in records],
        "precision": sorted({str(r.get("precision")) for r in records}),
        "training": records[0] if len(records) == 1 else records,
        "capped": any(is_capped(r) for r in records),
        "ensemble": unit.is_ensemble,
        "hardware": machine,
        "load": _load(),
    }


def preset_rule(
    unit: Unit,
    config: Any,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    rate: float,
    args: argparse.Namespace,
) -> tuple[Any, dict[str, Any]]:
    """A preset's shipped rule fitted on its validation split: temperature, softmax threshold and a feature
    rule whose bank keeps the first spectra of each training class within
    ``zoo.inference.calibration.MAX_BANK_BYTES`` (k scaled to match); the bank is written to --banks-dir
    for ``ship``. Returns the calibration (with bank) and the bank's file record."""
    from zoo.inference import calibration as cal
    from zoo.models.presets import FEATURE_BANK_SUFFIX, sha256_of

    (x_train, y_train), (x_val, y_val) = train, validation
    full = int(np.bincount(y_train).min())
    features = unit.features(validation_key(config.name), x_val)
    per_class = cal.bank_per_class(config.num_classes, features.shape[1], full)
    subset = cal.per_class_subset(y_train, per_class)
    k = cal.scaled_k(per_class, full, KNN_K)
    reference = (
        unit.reference[subset] if unit.reference is not None else unit.features("bank", x_train[subset])
    )
    record = cal.fit_calibration(
        unit.logits(validation_key(config.name), x_val)[0],
        y_val,
        false_alarm_rate=rate,
        data=f"{config.name} validation (seed {config.seed})",
        features=features,
        reference=reference,
        k=k,
        bank_notes={
            "bank": f"{config.name} train (seed {config.seed}), the first {per_class} of {full} per class",
            "max_bank_bytes": cal.MAX_BANK_BYTES,
        },
    )
    unit.calibration = record
    args.banks_dir.mkdir(parents=True, exist_ok=True)
    path = args.banks_dir / f"{unit.label}{FEATURE_BANK_SUFFIX}"
    np.save(path, record.feature_distance.bank)
    return record, {"file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}


def _load() -> str:
    import os

    return "load average {:.1f}/{:.1f}/{:.1f} on {} cores".format(*os.getloadavg(), os.cpu_count())


def separability(args: argparse.Namespace) -> int:
    """Which held-out classes any detector can tell from the known ones: ``separability`` rows (one per
    held-out class and one for all of them, ``zoo.study.ceiling.held_out_separability``) replace those of
    the same experiment in --out's rows.jsonl; then the report. No model is involved: nothing is chosen."""
    from synthetic_spectra.config import fresh_draw, get_config
    from synthetic_spectra.generator import sample_parameters
    from zoo.study.ceiling import bayes_detection_auroc, held_out_separability
    from zoo.training.environment import hardware

    if args.per_class < 1:
        raise UserError(f"--per-class: must be a positive integer, got {args.per_class!r}")
    hold_out = parse_classes(args.hold_out)
    known, unknown = held_out_configs(args.dataset, hold_out)
    draws = [
        dataclasses.replace(fresh_draw(c, FRESH_SEEDS[0]), n_train=args.per_class) for c in (known, unknown)
    ]
    start = time.perf_counter()
    result = held_out_separability(
        get_config(args.dataset), hold_out, *(sample_parameters(d, "train") for d in draws)
    )
    base = {
        "kind": "separability",
        "model": f"{known.name}: the data",
        "source": "zoo.study.ceiling.held_out_separability",
        "trained_on": known.name,
        "hold_out": hold_out,
        "known_set": f"{draws[0].name} train ({args.per_class} per class)",
        "unknown_set": f"{draws[1].name} train ({args.per_class} per class)",
        "hardware": hardware(),
        "load": _load(),
        "seconds": time.perf_counter() - start,
    }
    rows = [
        {
            **base,
            "set": f"class {item.label}",
            "label": item.label,
            "size": item.size,
            "nearest": [list(n) for n in item.nearest],
            "producible": item.producible,
            "explained": item.explained,
            "producers": {str(k): v for k, v in item.producers.items()},
            "cost": item.cost,
            "bayes_auroc": item.bayes_auroc,
        }
        for item in result
    ]
    rows.append({**base, "set": "all held-out classes", "bayes_auroc": bayes_detection_auroc(result)})
    replace_rows(args.out, rows)
    print(
        f"{known.name}: Bayes detector AUROC {rows[-1]['bayes_auroc']:.4f}; "
        + ", ".join(f"class {r['label']}: {100 * r['producible']:.2f} % producible" for r in rows[:-1][:10]),
        flush=True,
    )
    write_report(args.out)
    return 0


def temperature_fit(args: argparse.Namespace) -> int:
    """Does a temperature fitted on more spectra calibrate better? For each preset of --presets, the
    temperature fitted on its validation split and the one fitted on a larger fresh draw of the same
    classes (--per-class spectra per class, seed ``FIT_SEED``: validation data the generator draws anew,
    never a test split), both judged by the ECE on fresh draw ``FRESH_SEEDS[0]`` (--per-class per class)
    beside that set's noise floor. Rows ``kind: temperature_fit`` replace earlier ones; then the report."""
    from zoo.models.presets import get_preset

    if args.per_class < 1:
        raise UserError(f"--per-class: must be a positive integer, got {args.per_class!r}")
    names = [name.strip() for name in args.presets.split(",") if name.strip()]
    if not names:
        raise UserError("--presets: name at least one preset")
    presets = [get_preset(name) for name in names]  # an unknown name: one line, before any work
    import_tensorflow_quietly()
    import zoo
    from synthetic_spectra.config import fresh_draw, get_config
    from zoo.inference import calibration as cal
    from zoo.training.environment import hardware

    rows = []
    outputs, spectra = Outputs(), Spectra()
    for name, preset in zip(names, presets, strict=True):
        config = get_config(preset.dataset)
        draws = {
            seed: dataclasses.replace(fresh_draw(config, seed), n_train=args.per_class)
            for seed in (FIT_SEED, FRESH_SEEDS[0])
        }
        unit = Unit(name, [zoo.from_preset(name)], None, 0, outputs=outputs)
        fit_sets = {
            f"{validation_key(config.name)} ({config.split_size('validation')})": (
                validation_key(config.name),
                spectra.split(config, "validation"),
            ),
            f"{draws[FIT_SEED].name} train ({args.per_class} per class)": (
                f"fit draw {FIT_SEED}",
                spectra.split(draws[FIT_SEED], "train"),
            ),
        }
        judged_on = f"{draws[FRESH_SEEDS[0]].name} train ({args.per_class} per class)"
        x, y = spectra.split(draws[FRESH_SEEDS[0]], "train")
        z = unit.combined_logits(judged_on, x)
        for fit_name, (key, (fx, fy)) in fit_sets.items():
            temperature = cal.fit_temperature(unit.combined_logits(key, fx), fy)
            probabilities = cal.softmax(z, temperature)
            rows.append(
                {
                    "kind": "temperature_fit",
                    "model": name,
                    "source": f"preset:{name}",
                    "trained_on": config.name,
                    "model_seed": preset.seed,
                    "set": judged_on,
                    "size": len(y),
                    "stage": fit_name,
                    "fit_size": len(fy),
                    "temperature": temperature,
                    "accuracy": float(np.mean(z.argmax(axis=1) == y)),
                    "ece_raw": cal.expected_calibration_error(cal.softmax(z), y),
                    "ece": cal.expected_calibration_error(probabilities, y),
                    "noise_floor": cal.ece_noise_floor(probabilities),
                    "hardware": hardware(),
                    "load": _load(),
                }
            )
            print(f"{name}: T {temperature:.3f} fitted on {fit_name}: ECE {rows[-1]['ece']:.2%}", flush=True)
        spectra.clear()
    replace_rows(args.out, rows)
    write_report(args.out)
    return 0


def report(args: argparse.Namespace) -> int:
    """Regenerate calibration.md and the figures from --out's rows (no model is evaluated)."""
    print(write_report(args.out))
    return 0


def merge(args: argparse.Namespace) -> int:
    """Add the rows of other --out folders (runs measured apart) to --out's; a row of the same identity
    (model, kind, set, stage, score) replaces the one there."""
    sources = [(folder, read_rows(folder)) for folder in args.sources]
    empty = [folder for folder, added in sources if not added]
    if empty:  # checked before anything is written
        raise UserError(f"{empty[0] / ROWS_FILE}: no rows")
    rows = read_rows(args.out)
    for _, added in sources:
        identities = {row_identity(row) for row in added}
        rows = [row for row in rows if row_identity(row) not in identities] + added
    write_rows(args.out, rows)
    print(f"{args.out / ROWS_FILE}: {len(rows)} rows")
    return 0


def confidence_maps(path: Path, temperatures: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The confidence map of each preset in ``temperatures`` that ``calibrators.py`` measured in ``path``
    (none without the file), with its ECE in the notes: on the largest set it was judged on (the fresh
    draw) and on each other (the validation split). UserError where a map is not valid, or sits on another
    temperature than the preset's calibration: fit it again."""
    from zoo.inference.calibration import ConfidenceMap

    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    maps = {}
    for name, temperature in temperatures.items():
        judged = sorted((r for r in rows if r["preset"] == name and "confidence_map" in r),
                        key=lambda r: -r["judged_size"])  # fmt: skip
        if not judged:
            continue
        row = judged[0]
        again = f"(run calibrators.py --presets {name} again)"
        if not math.isclose(row["temperature"], temperature, rel_tol=1e-9):
            raise UserError(
                f"{path}: {name}'s confidence map sits on temperature {row['temperature']:.6g}, its "
                f"calibration has {temperature:.6g} {again}"
            )
        try:
            ConfidenceMap.from_dict(row["confidence_map"])
        except ValueError as exc:
            raise UserError(f"{path}: {name}: {exc} {again}") from None
        notes = {**row["confidence_map"]["notes"], "rows": str(path),
                 "judged": [{"on": r["judged_on"], "ece": r["ece"], "noise_floor": r["noise_floor"]}
                            for r in judged]}  # fmt: skip
        maps[name] = {**row["confidence_map"], "notes": notes}
    return maps


def ship(args: argparse.Namespace) -> int:
    """Write each preset's calibration (temperature, threshold, feature rule) from rows.jsonl into the
    presets table, with its confidence map from calibrators.jsonl where ``calibrators.py`` fitted one, and
    copy its feature bank (checked against the row's SHA-256) beside its weights."""
    import shutil

    from zoo.models.presets import MAX_PRESET_BYTES, PRESETS_FILE, SHIPPED_PRESETS_DIR, sha256_of

    rows = {r["model"]: r for r in read_rows(args.out) if r["kind"] == "preset_calibration"}
    if not rows:
        raise UserError(
            f"{args.out / 'rows.jsonl'}: no preset calibration rows (run evaluate --part presets)"
        )
    temperatures = {name: row["calibration"]["temperature"] for name, row in rows.items()}
    maps = confidence_maps(args.out / CALIBRATORS_FILE, temperatures)
    records = json.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    banks = {}
    for record in (r for r in records if r["name"] in rows):  # check everything before writing anything
        bank = rows[record["name"]].get("feature_bank")
        if bank is not None:
            source = args.banks_dir / bank["file"]
            if not source.is_file() or sha256_of(source) != bank["sha256"]:
                raise UserError(f"{source}: missing or not the bank the rows record (run evaluate again)")
            if record["size_bytes"] + bank["bytes"] >= MAX_PRESET_BYTES:
                raise UserError(f"{record['name']}: weights and feature bank would reach 15 MB")
            banks[record["name"]] = (source, bank)
    for record in (r for r in records if r["name"] in rows):
        if "confidence_map" in (record.get("calibration") or {}) and record["name"] not in maps:
            print(f"note: {record['name']}: no confidence map in {CALIBRATORS_FILE}; its map is dropped")
        calibration = rows[record["name"]]["calibration"]
        calibration["notes"]["rows"] = str(args.out / "rows.jsonl")
        if record["name"] in maps:
            calibration["confidence_map"] = maps[record["name"]]
        record["calibration"] = calibration
        if record["name"] in banks:
            source, bank = banks[record["name"]]
            target = SHIPPED_PRESETS_DIR / bank["file"]
            if source.resolve() != target.resolve():  # --banks-dir may be the shipped folder itself
                shutil.copyfile(source, target)
            record.update(
                feature_bank=bank["file"],
                feature_bank_sha256=bank["sha256"],
                feature_bank_bytes=bank["bytes"],
            )
    PRESETS_FILE.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"{PRESETS_FILE}: calibration of {', '.join(sorted(rows))}; "
        f"feature banks of {', '.join(sorted(banks))}; confidence maps of {', '.join(sorted(maps)) or 'none'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train", help="train models with held-out classes")
    trainer.add_argument("--dataset", default="challenge")
    trainer.add_argument("--hold-out", default=DEFAULT_HOLD_OUT, metavar="CLASSES")
    trainer.add_argument("--models", default="prnet,vgg")
    trainer.add_argument("--seeds", default="0-2")
    trainer.add_argument("--max-epochs", type=int, default=60)
    trainer.add_argument("--patience", type=int, default=10)
    trainer.add_argument(
        "--lr-patience", type=int, default=None, help="ReduceLROnPlateau patience (default: --patience // 2)"
    )
    trainer.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    trainer.add_argument("--overwrite", action="store_true")
    trainer.set_defaults(handler=train)
    evaluator = commands.add_parser(
        "evaluate", help="measure presets and held-out models, write rows and report"
    )
    evaluator.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    evaluator.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    evaluator.add_argument("--out", type=Path, default=DEFAULT_OUT)
    evaluator.add_argument(
        "--banks-dir", type=Path, default=DEFAULT_BANKS_DIR, help="where the presets' feature banks go"
    )
    evaluator.add_argument("--false-alarm-rate", type=float, default=DEFAULT_RATE)
    evaluator.add_argument("--mc-passes", type=int, default=MC_PASSES)
    evaluator.add_argument(
        "--fresh-per-class", type=int, default=200, help="spectra per class, large fresh draw"
    )
    evaluator.add_argument(
        "--sets", default="", help="only panel sets whose name contains one of these (comma-separated)"
    )
    evaluator.add_argument(
        "--part",
        choices=("all", "presets", "held-out", "study"),
        default="all",
        help="all: presets and held-out models; study (only when named): the study's exports, seeds and "
        "their ensembles",
    )
    evaluator.add_argument(
        "--study-dir", type=Path, default=DEFAULT_STUDY_DIR, help="the study's exports (<setup>-seed<N>)"
    )
    evaluator.add_argument(
        "--study-setups", default="", help="setups of --study-dir, comma-separated (default: every setup)"
    )
    evaluator.add_argument(
        "--study-rows",
        type=Path,
        default=None,
        help="the study's rows (default: benchmarks/results/study/<dataset>/results.jsonl)",
    )
    evaluator.add_argument(
        "--keep-other-rows",
        action="store_true",
        help="keep the rows of models not measured now in rows.jsonl",
    )
    evaluator.add_argument(
        "--scores", default=",".join(SCORES), help="scores to measure (default: all); others' rows are kept"
    )
    evaluator.add_argument("--no-panel", action="store_true", help="skip the perturbed panel sets")
    evaluator.add_argument(
        "--ensemble-panel", action="store_true", help="the ensembles on the panel sets too"
    )
    evaluator.set_defaults(handler=evaluate)
    reporter = commands.add_parser("report", help="calibration.md and figures from rows.jsonl")
    reporter.add_argument("--out", type=Path, default=DEFAULT_OUT)
    reporter.set_defaults(handler=report)
    separator = commands.add_parser(
        "separability", help="which held-out classes any detector can tell apart (no model; rows and report)"
    )
    separator.add_argument("--dataset", default="challenge")
    separator.add_argument("--hold-out", default=DEFAULT_HOLD_OUT, metavar="CLASSES")
    separator.add_argument("--per-class", type=int, default=1000, help="spectra drawn per class")
    separator.add_argument("--out", type=Path, default=DEFAULT_OUT)
    separator.set_defaults(handler=separability)
    fitter = commands.add_parser(
        "temperature-fit", help="the temperature fitted on the validation split or on a larger draw"
    )
    fitter.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    fitter.add_argument("--per-class", type=int, default=200, help="spectra per class of the larger draws")
    fitter.add_argument("--out", type=Path, default=DEFAULT_OUT)
    fitter.set_defaults(handler=temperature_fit)
    merger = commands.add_parser("merge", help="add rows measured into other folders to --out's rows")
    merger.add_argument("sources", nargs="+", type=Path, metavar="DIR")
    merger.add_argument("--out", type=Path, default=DEFAULT_OUT)
    merger.set_defaults(handler=merge)
    shipper = commands.add_parser("ship", help="write the presets' calibration into zoo/models/presets.json")
    shipper.add_argument("--out", type=Path, default=DEFAULT_OUT)
    shipper.add_argument("--banks-dir", type=Path, default=DEFAULT_BANKS_DIR)
    shipper.set_defaults(handler=ship)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (UserError, ValueError) as exc:
        sys.stderr.write(f"calibration.py: error: {str(exc).splitlines()[0]}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
