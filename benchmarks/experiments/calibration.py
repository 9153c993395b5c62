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

The benchmark variant (450 of 500 classes known) to the protocol's end is too expensive for a 2-core CPU;
its command is

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
             calibration (fitted on their validation splits) from the rows into zoo/models/presets.json
             and copies their feature banks (checked against the rows' SHA-256) beside their weights.

Usage:  python benchmarks/experiments/calibration.py train [--dataset challenge] [--hold-out 6-8,13,21-23]
                                              [--models prnet,vgg] [--seeds 0-2] [--max-epochs N]
                                              [--patience N] [--lr-patience N]
        python benchmarks/experiments/calibration.py evaluate [--presets NAME,...] [--out DIR] [--quick]
        python benchmarks/experiments/calibration.py separability [--dataset challenge] [--hold-out ...]
                                              [--per-class 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.tfquiet import import_tensorflow_quietly

DEFAULT_OUT = Path("benchmarks/results/calibration")
DEFAULT_MODELS_DIR = Path("saved_models/calibration")
#: The presets' feature banks written by ``evaluate``, copied into the package by ``ship``.
DEFAULT_BANKS_DIR = Path("saved_models/calibration_banks")
DEFAULT_HOLD_OUT = "6-8,13,21-23"
#: The study's exports measured by ``evaluate --part study`` (``<setup>-seed<N>``).
DEFAULT_STUDY_DIR = Path("saved_models/challenge")
DEFAULT_PRESETS = ("vgg_relu_challenge", "prnet_challenge", "prnet_v4_challenge")
#: Seed of the fresh draws the calibration and the unknowns are measured on (the published draw is 2022).
FRESH_SEEDS = (1, 2)
MC_PASSES = 20
#: Seed of the larger draw ``temperature-fit`` fits a temperature on (validation data drawn anew).
FIT_SEED = 3
#: Under --models-dir: each training's per-epoch backups and logs (``RUNS_FOLDER/<export name>/``).
RUNS_FOLDER = "runs"
DEFAULT_RATE = 0.05


def parse_classes(text: str) -> list[int]:
    """``"6-8,13"`` → ``[6, 7, 8, 13]``."""
    from zoo.training.protocol import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise UserError(f"--hold-out: {str(exc).removeprefix('seeds: ')}") from None


def is_capped(record: dict[str, Any]) -> bool:
    """A training that ended at an epoch cap below the study protocol's (500): not at the protocol's end."""
    from zoo.training.protocol import Protocol

    return record["stop_reason"] == "max_epochs" and record["max_epochs"] < Protocol().max_epochs


def held_out_configs(dataset: str, hold_out: Sequence[int]) -> tuple[Any, Any]:
    from synthetic_spectra.config import get_config
    from zoo.inference.calibration import split_classes

    return split_classes(get_config(dataset), hold_out)


def normalised(spectra: np.ndarray) -> np.ndarray:
    from synthetic_spectra.normalize import normalize_max

    return normalize_max(spectra).astype(np.float32)


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


# ------------------------------------------------------------------------------------------ evaluate
#: Coverage grid at which the selective accuracy curves are stored in the rows.
COVERAGE_GRID = tuple(round(0.05 * i, 2) for i in range(1, 21))
SCORES = ("msp", "temperature", "energy", "knn", "shipped", "mc_dropout", "ensemble")
#: Scores that are a decision (1 accepted, 0 unknown), not a ranking: no AUROC, no coverage curve.
DECISIONS = ("shipped",)
KNN_K = 10
#: Spectra per class kept in the bank, measured against the full bank on the held-out models.
BANK_PER_CLASS = (50, 25, 10, 5, 2, 1)
SCORE_LABELS = {
    "msp": "max softmax probability",
    "temperature": "temperature-scaled probability",
    "energy": "energy score",
    "knn": f"feature-space distance (k-NN, k = {KNN_K})",
    "shipped": "shipped rule: softmax threshold or feature distance, 5 % together",
    "mc_dropout": f"Monte Carlo dropout ({MC_PASSES} passes)",
    "ensemble": "deep ensemble of the seeds",
}


class Unit:
    """A model (or an ensemble of models) that gives, for spectra, a prediction and a score per method.

    An ensemble's prediction is its members' mean probability; its logits (:meth:`combined_logits`) are
    the log of that mean, so a temperature on them (``temperature``, None until fitted) calibrates the
    ensemble as a whole: ``softmax(log(mean) / T)``."""

    def __init__(self, label: str, models: list[Any], temperature: float | None, mc_passes: int) -> None:
        self.label, self.models, self.temperature, self.mc_passes = label, models, temperature, mc_passes
        self._cache: dict[tuple[str, bool], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        #: Features of the training spectra (the k-NN score's reference), set by :meth:`fit_reference`.
        self.reference: np.ndarray | None = None
        #: The rule an export ships (``zoo.inference.calibration.Calibration`` with a feature rule and its
        #: bank): its decision is the ``shipped`` score.
        self.calibration: Any = None

    def fit_reference(self, spectra: np.ndarray) -> None:
        """Store the model's features of (max-normalised) training spectra for the k-NN score."""
        from zoo.inference.logits import predict_features

        self.reference = predict_features(self.models[0], spectra)

    def features(self, key: str, spectra: np.ndarray) -> np.ndarray:
        """The first model's features of max-normalised spectra (cached by model and key)."""
        from zoo.inference.logits import predict_features

        if (id(self.models[0]), key) not in _FEATURES:
            _FEATURES[(id(self.models[0]), key)] = predict_features(self.models[0], spectra)
        return _FEATURES[(id(self.models[0]), key)]

    @property
    def is_ensemble(self) -> bool:
        return len(self.models) > 1

    def logits(self, key: str, spectra: np.ndarray) -> list[np.ndarray]:
        """Each model's logits on max-normalised spectra (cached by model and key, shared by every unit)."""
        from zoo.inference.logits import predict_logits

        for model in self.models:
            if (id(model), key) not in _LOGITS:
                _LOGITS[(id(model), key)] = (
                    model,
                    predict_logits(model, spectra),
                )  # the model kept: ids stay
        return [_LOGITS[(id(model), key)][1] for model in self.models]

    def combined_logits(self, key: str, spectra: np.ndarray) -> np.ndarray:
        """The model's logits; an ensemble's: the log of its members' mean probability."""
        from zoo.inference.calibration import softmax

        logits = self.logits(key, spectra)
        if not self.is_ensemble:
            return logits[0]
        mean = np.mean([softmax(z) for z in logits], axis=0)
        return np.log(np.maximum(mean, np.finfo(np.float64).tiny))

    def fit_temperature(self, config: Any, validation: tuple[np.ndarray, np.ndarray], rate: float) -> Any:
        """Fit the temperature (and the softmax threshold at ``rate`` false alarms) on ``config``'s
        validation split (``zoo.inference.calibration.fit_calibration``); returns the record."""
        from zoo.inference.calibration import fit_calibration

        record = fit_calibration(
            self.combined_logits(validation_key(config.name), validation[0]),
            validation[1],
            false_alarm_rate=rate,
            data=f"{config.name} validation (seed {config.seed})",
        )
        self.temperature = record.temperature
        self._cache.clear()  # the temperature-scaled score changes
        return record

    def scores(
        self, key: str, spectra: np.ndarray, *, mc: bool = True
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{score: (score per spectrum, predicted class)}`` for max-normalised spectra (cached by key);
        ``mc=False`` leaves Monte Carlo dropout out (its passes cost ``mc_passes`` forward passes). An
        ensemble's scores: its mean probability (``ensemble``), that probability temperature-scaled
        (``temperature``, once fitted) and its members' mean energy (``energy``)."""
        if (key, mc) in self._cache:
            return self._cache[(key, mc)]
        from zoo.inference import calibration as cal
        from zoo.inference.logits import has_dropout, mc_dropout_probabilities

        logits = self.logits(key, spectra)
        if self.is_ensemble:
            z = self.combined_logits(key, spectra)
            predicted = z.argmax(axis=1)
            result = {
                "ensemble": (cal.max_probability(z), predicted),
                "energy": (np.mean([cal.energy_score(m) for m in logits], axis=0), predicted),
            }
            if self.temperature is not None:
                result["temperature"] = (cal.max_probability(z, self.temperature), predicted)
        else:
            z, temperature = logits[0], self.temperature
            predicted = z.argmax(axis=1)
            result = {
                "msp": (cal.max_probability(z), predicted),
                "temperature": (cal.max_probability(z, temperature), predicted),
                "energy": (cal.energy_score(z), predicted),
            }
            if self.reference is not None:
                features = self.features(key, spectra)
                result["knn"] = (cal.knn_score(self.reference, features, KNN_K), predicted)
            rule = None if self.calibration is None else self.calibration.feature_distance
            if rule is not None:
                unknown = self.calibration.unknown(z, rule.scores(self.features(key, spectra)))
                result["shipped"] = ((~unknown).astype(np.float64), predicted)
            if mc and self.mc_passes and has_dropout(self.models[0]):
                mean = mc_dropout_probabilities(self.models[0], spectra, passes=self.mc_passes)
                result["mc_dropout"] = (mean.max(axis=1), mean.argmax(axis=1))
        self._cache[(key, mc)] = result
        return result


#: The scores measured in this run (``--scores``).
WANTED: set[str] = set(SCORES)
#: Logits by (model id, set key), shared by a model's own unit and the ensembles holding it.
_LOGITS: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}
#: Features (the softmax layer's input) by (model id, set key).
_FEATURES: dict[tuple[int, str], np.ndarray] = {}


#: Max-normalised spectra and labels by (config, split) or panel set, shared by every unit of a part
#: (each part clears it for the next dataset).
_ARRAYS: dict[Any, tuple[np.ndarray, np.ndarray]] = {}


def _set_arrays(config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    from synthetic_spectra.generator import generate

    if (config, split) not in _ARRAYS:
        x, y = generate(config, split)
        _ARRAYS[(config, split)] = normalised(x), y
    return _ARRAYS[(config, split)]


def _panel_arrays(panel_set: Any) -> tuple[np.ndarray, np.ndarray]:
    if panel_set not in _ARRAYS:
        x, y = panel_set.generate()
        _ARRAYS[panel_set] = normalised(x), y
    return _ARRAYS[panel_set]


def validation_key(dataset: str) -> str:
    """The name (and logits cache key) of the validation split of the dataset named ``dataset``."""
    return f"{dataset} validation"


def calibration_sets(config: Any, fresh_per_class: int) -> list[tuple[str, Any, str]]:
    """The sets calibration is measured on: the validation split, the fresh draws' validation splits and,
    for fewer than 100 classes, a larger fresh draw (``fresh_per_class`` per class)."""
    from synthetic_spectra.config import fresh_draw

    sets = [(validation_key(config.name), config, "validation")]
    sets += [
        (f"fresh draw {seed} validation", fresh_draw(config, seed), "validation") for seed in FRESH_SEEDS
    ]
    if config.num_classes < 100:  # a larger fresh draw: ECE on a few hundred spectra is mostly noise
        large = dataclasses.replace(fresh_draw(config, FRESH_SEEDS[0]), n_train=fresh_per_class)
        sets.append((f"fresh draw {FRESH_SEEDS[0]} train ({fresh_per_class} per class)", large, "train"))
    return sets


def clean_accuracy(unit: Unit, validation: tuple[np.ndarray, np.ndarray], key: str = "validation") -> float:
    """The unit's accuracy on the (clean) validation split: the bar of the perturbed sets."""
    return float(np.mean(unit.combined_logits(key, validation[0]).argmax(axis=1) == validation[1]))


def _curve(scores: np.ndarray, correct: np.ndarray) -> list[float]:
    from zoo.inference.calibration import selective_curve

    curve = selective_curve(scores, correct)
    return [curve.accuracy_at(c) for c in COVERAGE_GRID]


def _max_coverage_at(scores: np.ndarray, correct: np.ndarray, accuracy: float) -> float:
    """The largest coverage whose accepted spectra are at least ``accuracy`` correct (0 if none)."""
    from zoo.inference.calibration import selective_curve

    curve = selective_curve(scores, correct)
    good = np.flatnonzero(curve.accuracy >= accuracy - 1e-12)
    return float(curve.coverage[good[-1]]) if good.size else 0.0


def calibration_rows(
    unit: Unit, sets: list[tuple[str, Any, str]], base: dict[str, Any]
) -> list[dict[str, Any]]:
    """ECE/NLL/accuracy before and after temperature scaling on each (name, config, split)."""
    from zoo.inference import calibration as cal

    rows = []
    for name, config, split in sets:
        x, y = _set_arrays(config, split)
        z = unit.combined_logits(name, x)
        for stage, temperature in (("raw", 1.0), ("calibrated", unit.temperature)):
            p = cal.softmax(z, temperature)
            diagram = cal.reliability(p, y)
            rows.append(
                {
                    **base,
                    "kind": "calibration",
                    "set": name,
                    "dataset": config.name,
                    "split": split,
                    "data_seed": config.seed,
                    "size": int(y.size),
                    "stage": stage,
                    "temperature": temperature,
                    "accuracy": float(np.mean(p.argmax(axis=1) == y)),
                    "ece": diagram.ece,
                    "mce": diagram.max_gap,
                    "nll": cal.negative_log_likelihood(z, y, temperature),
                    "ece_noise_floor": cal.ece_noise_floor(p),
                    "bins": {
                        "counts": diagram.counts.tolist(),
                        "confidence": _nan_list(diagram.confidence),
                        "accuracy": _nan_list(diagram.accuracy),
                    },
                }
            )
    return rows


def _nan_list(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values]


def thresholds_on(
    unit: Unit, validation: tuple[np.ndarray, np.ndarray], rate: float, key: str = "validation"
) -> dict[str, float]:
    """Each score's threshold at ``rate`` false alarms on the validation split (0.5 for decisions)."""
    from zoo.inference.calibration import threshold_for_false_alarms

    scores = unit.scores(key, validation[0])
    return {
        name: 0.5 if name in DECISIONS else threshold_for_false_alarms(s, rate)  # decisions: 1 or 0
        for name, (s, _) in scores.items()
        if name in WANTED
    }


def misclassification_rows(
    unit: Unit, sets: list[Any], thresholds: dict[str, float], clean_accuracy: float, base: dict[str, Any]
) -> list[dict[str, Any]]:
    """On each panel set: for each score, AUROC of telling right from wrong predictions, coverage and
    accuracy on the accepted spectra at the threshold, and the coverage at which the accepted spectra are
    as accurate as the clean validation split."""
    from zoo.inference import calibration as cal

    rows = []
    for panel_set in sets:
        spectra, labels = _panel_arrays(panel_set)
        scores = unit.scores(f"panel:{panel_set.name}", spectra)
        for score, (values, predicted) in scores.items():
            if score not in WANTED:
                continue
            correct = predicted == labels
            coverage, accepted = cal.selective_accuracy(values, correct, thresholds[score])
            ranked = score not in DECISIONS and 0 < correct.sum() < correct.size
            auc = cal.auroc(values[correct], values[~correct]) if ranked else None
            rows.append(
                {
                    **base,
                    "kind": "perturbed",
                    "set": panel_set.name,
                    "group": panel_set.group,
                    "data_seed": panel_set.seed,
                    "size": int(labels.size),
                    "score": score,
                    "accuracy": float(correct.mean()),
                    "auroc_wrong": auc,
                    "threshold": thresholds[score],
                    "coverage": coverage,
                    "accepted_accuracy": accepted,
                    "clean_accuracy": clean_accuracy,
                    "coverage_at_clean_accuracy": None
                    if score in DECISIONS
                    else _max_coverage_at(values, correct, clean_accuracy),
                    "curve": None if score in DECISIONS else _curve(values, correct),
                }
            )
    return rows


def unseen_rows(
    unit: Unit,
    known: tuple[np.ndarray, np.ndarray],
    unknown: tuple[np.ndarray, np.ndarray],
    thresholds: dict[str, float],
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """Known classes' fresh spectra against held-out classes' spectra: AUROC, false alarms on known,
    unknowns caught at the threshold, per held-out class AUROC, accuracy on accepted known spectra."""
    from zoo.inference import calibration as cal

    rows = []
    known_scores = unit.scores("known", known[0])
    unknown_scores = unit.scores("unknown", unknown[0])
    for score in (s for s in SCORES if s in known_scores and s in WANTED):
        k_values, predicted = known_scores[score]
        u_values = unknown_scores[score][0]
        threshold = thresholds[score]
        correct = predicted == known[1]
        coverage, accepted = cal.selective_accuracy(k_values, correct, threshold)
        per_class = {
            str(int(c)): None if score in DECISIONS else cal.auroc(k_values, u_values[unknown[1] == c])
            for c in np.unique(unknown[1])
        }
        per_class_detected = {
            str(int(c)): float(cal.rejected(u_values[unknown[1] == c], threshold).mean())
            for c in np.unique(unknown[1])
        }
        rows.append(
            {
                **base,
                "kind": "unseen",
                "score": score,
                "auroc": None if score in DECISIONS else cal.auroc(k_values, u_values),
                "threshold": threshold,
                "false_alarm_rate": float(cal.rejected(k_values, threshold).mean()),
                "detected": float(cal.rejected(u_values, threshold).mean()),
                "known_size": int(k_values.size),
                "unknown_size": int(u_values.size),
                "known_accuracy": float(correct.mean()),
                "known_coverage": coverage,
                "known_accepted_accuracy": accepted,
                "auroc_per_held_out_class": per_class,
                "detected_per_held_out_class": per_class_detected,
                "known_scores_hist": np.histogram(k_values, bins=20, range=_range(score, k_values, u_values))[
                    0
                ].tolist(),
                "unknown_scores_hist": np.histogram(
                    u_values, bins=20, range=_range(score, k_values, u_values)
                )[0].tolist(),
                "hist_range": list(_range(score, k_values, u_values)),
            }
        )
    return rows


def bank_size_rows(
    unit: Unit,
    train_labels: np.ndarray,
    sets: dict[str, np.ndarray],
    rate: float,
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """The k-NN score with banks of fewer training spectra per class (the first ones of each class, k
    scaled to keep its density quantile, ``zoo.inference.calibration.scaled_k``): AUROC on unseen classes,
    false alarms and unknowns caught at its own threshold (``rate`` on validation), the bank's size."""
    from zoo.inference import calibration as cal

    full = int(np.bincount(train_labels).min())
    rows = []
    for per_class in (n for n in BANK_PER_CLASS if n <= full):
        subset = cal.per_class_subset(train_labels, per_class)
        bank, k = cal.feature_bank(unit.reference[subset]), cal.scaled_k(per_class, full, KNN_K)
        values = {key: cal.knn_score(bank, sets[key], k) for key in ("validation", "known", "unknown")}
        threshold = cal.threshold_for_false_alarms(values["validation"], rate)
        rows.append(
            {
                **base,
                "kind": "bank_size",
                "set": f"bank of {per_class} per class",
                "per_class": per_class,
                "k": k,
                "bank_size": int(bank.shape[0]),
                "features": int(bank.shape[1]),
                "bank_bytes": int(bank.nbytes),
                "auroc": cal.auroc(values["known"], values["unknown"]),
                "false_alarm_rate": float(cal.rejected(values["known"], threshold).mean()),
                "detected": float(cal.rejected(values["unknown"], threshold).mean()),
            }
        )
    return rows


def _range(score: str, *arrays: np.ndarray) -> tuple[float, float]:
    if score in ("msp", "temperature", "mc_dropout", "ensemble"):  # probabilities
        return (0.0, 1.0)
    values = np.concatenate(arrays)
    return (float(values.min()), float(values.max()))


def evaluate(args: argparse.Namespace) -> int:
    """Measure the presets and the held-out models; write rows, table and figures to --out."""
    import zoo
    from synthetic_spectra.config import fresh_draw, get_config
    from zoo.inference.predict import read_feature_bank
    from zoo.models.presets import get_preset
    from zoo.study.panel import panel_sets
    from zoo.training.environment import hardware

    out: Path = args.out
    if not 0.0 <= args.false_alarm_rate < 1.0:
        raise UserError(f"--false-alarm-rate: must be in [0, 1), got {args.false_alarm_rate!r}")
    if args.mc_passes < 0 or args.fresh_per_class < 1:
        raise UserError("--mc-passes must be >= 0 and --fresh-per-class >= 1")
    study = study_plan(args) if args.part == "study" else []
    import_tensorflow_quietly()
    WANTED.clear()
    WANTED.update(score for score in args.scores.split(",") if score)
    unknown_scores = sorted(WANTED - set(SCORES))
    if unknown_scores:
        raise UserError(
            f"--scores: unknown score {unknown_scores[0]!r}; expected some of {', '.join(SCORES)}"
        )
    if "mc_dropout" not in WANTED:
        args.mc_passes = 0
    out.mkdir(parents=True, exist_ok=True)
    machine = hardware()
    rows: list[dict[str, Any]] = []
    keep = args.keep_other_rows

    def save() -> None:  # rows measured now replace the same rows measured before; other rows are kept
        measured = {_identity(row) for row in rows}
        trained = {row["model"]: row.get("training") for row in rows}
        # a model retrained since (another training record under the same name): all its old rows go
        kept = [
            row
            for row in (_read_rows(out) if keep else [])
            if row["model"] not in trained or row.get("training") == trained[row["model"]]
        ]
        _write(out, [row for row in kept if _identity(row) not in measured] + rows)

    rate = args.false_alarm_rate
    perturbed_groups = ("test-like", "noise", "background", "peak shape", "shift", "realistic")

    def panel_subset(config: Any) -> list[Any]:
        return [
            s for s in panel_sets(config) if s.group in perturbed_groups and _wanted_set(s.name, args.sets)
        ]

    # 1. presets: calibration on validation and fresh draws, thresholds, perturbed panel sets
    for name in [p for p in args.presets.split(",") if p and args.part in ("all", "presets")]:
        preset = get_preset(name)
        config = get_config(preset.dataset)
        model = zoo.from_preset(name)
        unit = Unit(name, [model], 1.0, args.mc_passes)
        validation = _set_arrays(config, "validation")
        record = unit.fit_temperature(config, validation, rate)
        x_train, y_train = _set_arrays(config, "train")
        if "knn" in WANTED:
            unit.fit_reference(x_train)
        bank_record = None
        if "shipped" in WANTED:
            record, bank_record = preset_rule(unit, config, (x_train, y_train), validation, rate, args)
        base = {
            "model": name,
            "source": f"preset:{name}",
            "trained_on": config.name,
            "model_seed": preset.seed,
            "hardware": machine,
            "load": _load(),
        }
        panel = panel_subset(config) if not args.no_panel and config.num_classes < 100 else []
        rows += unit_rows(unit, config, validation, base, args, panel)
        rows.append(
            {
                **base,
                "kind": "preset_calibration",
                "calibration": record.to_dict(),
                "feature_bank": bank_record,
            }
        )
        print(f"{name}: T {record.temperature:.3f}, threshold {record.threshold:.4f}", flush=True)
        save()
        _ARRAYS.clear()

    # 2. held-out models: unseen classes, perturbed panel sets of the known classes, ensembles of the seeds
    exports = sorted(p for p in args.models_dir.glob("*-seed*") if (p / "metadata.json").is_file())
    exports = exports if args.part in ("all", "held-out") else []
    by_arch: dict[str, list[Path]] = {}
    for path in exports:
        by_arch.setdefault(path.name.rsplit("-seed", 1)[0], []).append(path)
    for arch, paths in by_arch.items():
        training = [json.loads((p / "training.json").read_text()) for p in paths]
        hold_out = training[0]["hold_out"]
        dataset = zoo.load(paths[0]).metadata["dataset"]
        known_config, unknown_config = held_out_configs(dataset.split("_known")[0], hold_out)
        validation = _set_arrays(known_config, "validation")
        known = _set_arrays(fresh_draw(known_config, FRESH_SEEDS[0]), "train")
        unknown = _set_arrays(fresh_draw(unknown_config, FRESH_SEEDS[0]), "train")
        units = []
        known_train, train_labels = _set_arrays(known_config, "train")
        for path, record in zip(paths, training, strict=True):
            predictor = zoo.load(path)
            unit = Unit(
                path.name, [zoo.load_keras_model(path)], predictor.calibration.temperature, args.mc_passes
            )
            if predictor.calibration.feature_distance is not None:  # the shipped rule, bank and all
                unit.calibration = predictor.calibration.with_bank(read_feature_bank(path))
            if "knn" in WANTED:
                unit.fit_reference(known_train)
            units.append((unit, record))
        ensemble = Unit(f"{arch}-ensemble", [u.models[0] for u, _ in units], None, 0)
        members = [*units, (ensemble, None)] if len(units) > 1 else units  # an ensemble needs two seeds
        for unit, record in members:
            seeds = [r["seed"] for _, r in units] if record is None else [record["seed"]]
            base = {
                "model": unit.label,
                "source": str(args.models_dir),
                "trained_on": known_config.name,
                "model_seeds": seeds,
                "hold_out": hold_out,
                "hardware": machine,
                "load": _load(),
                "training": record or [r for _, r in units],
                "capped": any(is_capped(r) for r in ([record] if record else [r for _, r in units])),
                "known_set": f"{known_config.name} fresh draw {FRESH_SEEDS[0]} train",
                "unknown_set": f"{unknown_config.name} fresh draw {FRESH_SEEDS[0]} train",
            }
            thresholds = thresholds_on(unit, validation, rate)
            rows += unseen_rows(unit, known, unknown, thresholds, base)
            if unit.reference is not None and not unit.is_ensemble:
                sets = {
                    key: unit.features(key, values[0])
                    for key, values in (("validation", validation), ("known", known), ("unknown", unknown))
                }
                rows += bank_size_rows(unit, train_labels, sets, rate, base)
            if not args.no_panel and (not unit.is_ensemble or args.ensemble_panel):
                clean = clean_accuracy(unit, validation)
                rows += misclassification_rows(unit, panel_subset(known_config), thresholds, clean, base)
            print(f"{unit.label}: done", flush=True)
            save()
        _ARRAYS.clear()

    # 3. the study's exports (--part study): each seed and the deep ensemble of a setup's seeds
    for setup, members in study:
        dataset = members[0][2]["dataset"]
        config = get_config(dataset)
        validation = _set_arrays(config, "validation")
        panel = [] if args.no_panel else panel_subset(config)
        units = [(Unit(f"{dataset}/{m[0].name}", [zoo.load_keras_model(m[0])], 1.0, 0), [m]) for m in members]
        if len(units) > 1:  # an ensemble needs two seeds
            units.append(
                (Unit(f"{dataset}/{setup}-ensemble", [u.models[0] for u, _ in units], None, 0), members)
            )
        for unit, seeds in units:
            start = time.perf_counter()
            unit.fit_temperature(config, validation, rate)
            base = study_base(unit, setup, seeds, args, machine)
            measured = unit_rows(unit, config, validation, base, args, panel)
            rows += measured
            save()
            ece = {r["stage"]: r["ece"] for r in measured if r["set"] == validation_key(config.name)}
            print(
                f"{unit.label}: T {unit.temperature:.3f}, validation ECE {ece['raw']:.2%} raw, "
                f"{ece['calibrated']:.2%} calibrated; {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    save()
    report(argparse.Namespace(out=out))
    return 0


def _wanted_set(name: str, wanted: str) -> bool:
    """Whether a panel set's name contains one of the comma-separated ``--sets`` parts (all if empty)."""
    parts = [part.strip() for part in wanted.split(",") if part.strip()]
    return not parts or any(part in name for part in parts)


def unit_rows(
    unit: Unit,
    config: Any,
    validation: tuple[np.ndarray, np.ndarray],
    base: dict[str, Any],
    args: argparse.Namespace,
    panel: list[Any],
) -> list[dict[str, Any]]:
    """A calibrated unit's calibration rows (:func:`calibration_sets`) and, on the ``panel`` sets, its
    perturbed rows (thresholds at --false-alarm-rate on the validation split, the bar: its validation
    accuracy)."""
    key = validation_key(config.name)
    rows = calibration_rows(unit, calibration_sets(config, args.fresh_per_class), base)
    if panel:
        thresholds = thresholds_on(unit, validation, args.false_alarm_rate, key)
        rows += misclassification_rows(unit, panel, thresholds, clean_accuracy(unit, validation, key), base)
    return rows


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


def _identity(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a row measures: a later row with the same identity replaces it."""
    return tuple(str(row.get(key)) for key in ("model", "kind", "set", "stage", "score"))


def _read_rows(out: Path) -> list[dict[str, Any]]:
    path = out / "rows.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(out: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, sort_keys=True, default=float) + "\n" for row in rows)
    (out / "rows.jsonl").write_text(text)


def _replace_rows(out: Path, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to ``out``'s rows.jsonl; earlier rows with the same identity give way to them."""
    identities = {_identity(row) for row in rows}
    out.mkdir(parents=True, exist_ok=True)
    _write(out, [row for row in _read_rows(out) if _identity(row) not in identities] + rows)


# -------------------------------------------------------------------------------------------- report
def _pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.2f} %"


def _auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _epochs(record: dict[str, Any]) -> str:
    """``"91 epochs of at most 500 (early_stopping)"``; a capped training says so in capitals."""

    def epochs(n: int) -> str:
        return f"{n} epoch{'' if n == 1 else 's'}"

    text = f"{epochs(record['epochs_run'])} of at most {record['max_epochs']} ({record['stop_reason']})"
    if is_capped(record):
        return f"**CAPPED** at {epochs(record['max_epochs'])} (the protocol: 500): {text}"
    return text


def _capped_label(row: dict[str, Any]) -> str:
    """`` [capped: 30 of 30 epochs, max_epochs]`` for a row of a capped training, else ``""``."""
    records = row.get("training")
    records = records if isinstance(records, list) else [records] if records else []
    capped = [t for t in records if is_capped(t)]
    if not capped:
        return ""
    return (
        " [capped: "
        + "; ".join(f"{t['epochs_run']} of {t['max_epochs']} epochs, {t['stop_reason']}" for t in capped)
        + "]"
    )


def _per_class_cell(per_class: dict[int, float], decision: bool) -> str:
    """Each held-out class's AUROC (or share caught); beyond 10 classes the spread and the lowest five."""

    def text(value: float) -> str:
        return _pct(value) + " caught" if decision else f"{value:.3f}"

    items = sorted(per_class.items())
    if len(items) <= 10:
        return ", ".join(f"{c}: {text(v)}" for c, v in items)
    values = np.array([v for _, v in items])
    lowest = sorted(items, key=lambda item: item[1])[:5]
    return (
        f"{len(items)} classes: min {text(values.min())}, median {text(float(np.median(values)))}, "
        f"max {text(values.max())}; lowest: " + ", ".join(f"{c}: {text(v)}" for c, v in lowest)
    )


def _models_line(rows: list[dict[str, Any]]) -> str:
    """Every model of the rows with its training record (budget, epochs, stop reason)."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows if r["kind"] != "separability"):
        row = next(r for r in rows if r["model"] == model)
        if row["source"].startswith("preset:"):
            lines.append(
                f"- **{model}**: the shipped preset (`zoo.from_preset`), trained on {row['trained_on']}, "
                f"seed {row['model_seed']}"
            )
            continue
        records = row["training"] if isinstance(row["training"], list) else [row["training"]]
        parts = [
            f"seed {t['seed']}: {_epochs(t)}, "
            f"patience {t['es_patience']}, best epoch {t['best_epoch']}, validation accuracy "
            f"{_pct(t['val_accuracy'])}, {t['train_seconds']:.0f} s"
            + (f" ({t['train_cpu_seconds'] / 60:.0f} CPU-minutes)" if "train_cpu_seconds" in t else "")
            for t in records
        ]
        lines.append(
            f"- **{model}**: {row['trained_on']} (classes {_classes(row['hold_out'])} of the full dataset "
            f"held out), exports in `{row['source']}`; " + "; ".join(parts)
        )
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    """calibration.md and the figures from rows.jsonl in --out (no model is evaluated)."""
    out: Path = args.out
    rows = _read_rows(out)
    if not rows:
        raise UserError(f"{out / 'rows.jsonl'}: no rows")
    hardware = rows[0]["hardware"]
    study = [r for r in rows if "study" in r]  # the study's seeds and ensembles: a section of their own
    rows = [r for r in rows if "study" not in r]
    lines = [
        "# Calibration and unknown detection",
        "",
        "Generated by `python benchmarks/experiments/calibration.py report` from `rows.jsonl` "
        "(written by `evaluate`). "
        f"Machine: {hardware}; loads while measuring: "
        + ", ".join(sorted({r["load"] for r in rows if "load" in r})[:3])
        + " (a shared machine).",
        "",
        "## Models",
        "",
        _models_line(rows),
        "",
    ]
    lines += study_section(study)
    cal_rows = [r for r in rows if r["kind"] == "calibration"]
    if cal_rows:
        lines += [
            "## Calibration: expected calibration error before and after temperature scaling",
            "",
            "The temperature is fitted on the validation split only (negative log-likelihood); the fresh "
            "draws "
            "are the same classes' training and validation splits drawn with other seeds "
            "(`synthetic_spectra.config.fresh_draw`). ECE: 15 equal-width confidence bins. Noise floor: the "
            "mean "
            "ECE a perfectly calibrated model with the calibrated confidences would show on a set this size "
            "(labels drawn from its own probabilities, 50 draws; "
            "`zoo.inference.calibration.ece_noise_floor`).",
            "",
            "| model | set (data seed) | spectra | accuracy | T | ECE raw | ECE calibrated | noise floor | "
            "NLL raw | NLL calibrated |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for r in cal_rows:
            pairs.setdefault((r["model"], r["set"]), {})[r["stage"]] = r
        for (model, name), stages in pairs.items():
            raw, calibrated = stages["raw"], stages["calibrated"]
            lines.append(
                f"| {model} | {name} ({raw['data_seed']}) | {raw['size']} | {_pct(raw['accuracy'])} | "
                f"{calibrated['temperature']:.3f} | {_pct(raw['ece'])} | {_pct(calibrated['ece'])} | "
                f"{_pct(calibrated['ece_noise_floor'])} | "
                f"{raw['nll']:.3f} | {calibrated['nll']:.3f} |"
            )
        lines.append("")
    shipped = [r for r in rows if r["kind"] == "preset_calibration"]
    if shipped:
        lines += [
            "## What the presets ship",
            "",
            "Both rules are fitted on the validation split: the softmax threshold rejects "
            f"{_pct(DEFAULT_RATE / 2)} of it, the feature-distance threshold the most that keeps the two "
            f"rules together at {_pct(DEFAULT_RATE)} (`zoo.inference.calibration.fit_calibration`). The "
            "bank: the first spectra of each training class, as many as fit in "
            "`zoo.inference.calibration.MAX_BANK_BYTES` (float16), k scaled to the share kept.",
            "",
            "| preset | temperature | softmax threshold | feature threshold (k) | bank (per class, size) | "
            "false alarms on validation: softmax / feature / together | fitted on |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in shipped:
            c = r["calibration"]
            rule, notes, bank = c.get("feature_distance"), c["notes"], r.get("feature_bank")
            feature = "–" if rule is None else f"{rule['threshold']:.4f} ({rule['k']})"
            kept = "–" if rule is None else f"{rule['notes']['bank']} ({bank['bytes'] / 1e6:.2f} MB)"
            alarms = (
                _pct(c["false_alarm_rate"])
                if rule is None
                else " / ".join(
                    _pct(notes[key])
                    for key in (
                        "softmax_false_alarm_rate",
                        "feature_false_alarm_rate",
                        "total_false_alarm_rate",
                    )
                )
            )
            lines.append(
                f"| {r['model']} | {c['temperature']:.4f} | {c['threshold']:.4f} | {feature} | {kept} | "
                f"{alarms} | {notes['fitted_on']} |"
            )
        lines.append("")
    for (known_set, capped), unseen in _experiments([r for r in rows if r["kind"] == "unseen"]):
        first = unseen[0]
        lines += [
            f"## Unseen classes: {first['trained_on']}" + (CAPPED_HEADING if capped else ""),
            "",
            f"Known: {known_set} ({first['known_size']} spectra); unknown: {first['unknown_set']} "
            f"({first['unknown_size']} spectra of the held-out classes {_classes(first['hold_out'])}). "
            f"Thresholds at {_pct(DEFAULT_RATE)} false alarms on the known classes' validation split, for "
            "each score its own; the shipped rule: the export's own thresholds."
            + (CAPPED_NOTE if capped else ""),
            "",
            "| model (seeds) | score | AUROC | false alarms (known) | unknowns caught | accuracy on accepted "
            "known (coverage) | per held-out class (class of the full dataset: AUROC; for the shipped rule "
            "the share caught) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in _by_model_and_score(unseen):
            decision = r["score"] in DECISIONS  # per class: the share caught, not an AUROC
            by_class = r["detected_per_held_out_class"] if decision else r["auroc_per_held_out_class"]
            per_class = {r["hold_out"][int(k)]: v for k, v in by_class.items()}
            lines.append(
                f"| {r['model']} ({', '.join(map(str, r['model_seeds']))}){_capped_label(r)} | "
                f"{SCORE_LABELS[r['score']]} | "
                f"{_auc(r['auroc'])} | {_pct(r['false_alarm_rate'])} | {_pct(r['detected'])} | "
                f"{_pct(r['known_accepted_accuracy'])} ({_pct(r['known_coverage'])}) | "
                f"{_per_class_cell(per_class, decision)} |"
            )
        lines.append("")
    for (known_set, capped), sized in _experiments([r for r in rows if r["kind"] == "bank_size"]):
        lines += [
            f"## How many training spectra the bank needs: {sized[0]['trained_on']}"
            + (CAPPED_HEADING if capped else ""),
            "",
            f"The k-NN score with a bank of the first spectra of each training class only, k scaled to the "
            f"share kept (`zoo.inference.calibration.scaled_k`, {KNN_K} for the full split); threshold at "
            f"{_pct(DEFAULT_RATE)} false alarms on the validation split; known ({known_set}) and unknown "
            f"({sized[0]['unknown_set']}) sets as above." + (CAPPED_NOTE if capped else ""),
            "",
            "| model (seeds) | per class (k) | bank: vectors × features, float16 | AUROC | false alarms "
            "(known) | unknowns caught |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in sized:
            lines.append(
                f"| {r['model']} ({', '.join(map(str, r['model_seeds']))}){_capped_label(r)} | "
                f"{r['per_class']} ({r['k']}) | "
                f"{r['bank_size']} × {r['features']}, {r['bank_bytes'] / 1e6:.2f} MB | {r['auroc']:.3f} | "
                f"{_pct(r['false_alarm_rate'])} | {_pct(r['detected'])} |"
            )
        lines.append("")
    lines += separability_section([r for r in rows if r["kind"] == "separability"])
    lines += temperature_fit_section([r for r in rows if r["kind"] == "temperature_fit"])
    perturbed = [r for r in rows if r["kind"] == "perturbed"]
    if perturbed:
        lines += [
            '## Perturbed panel sets: is "unknown" right where the model would be wrong?',
            "",
            "Per model and set, each score with its threshold at 5 % false alarms on the validation split: "
            "accuracy on all spectra, the fraction accepted (coverage), the accuracy on the accepted ones "
            "(– where none is accepted), and the largest coverage at which the accepted spectra are at least "
            "as accurate as the clean validation split. AUROC: how well the score tells right from wrong "
            "predictions (– where all are right).",
            "",
        ]
        for score in ("temperature", "knn", "shipped"):
            chosen = [r for r in perturbed if r["score"] == score]
            if not chosen:
                continue
            lines += [
                f"### {SCORE_LABELS[score]}",
                "",
                "| model | set (seed) | spectra | accuracy | coverage | accuracy on accepted | "
                "clean validation "
                "accuracy | coverage at clean accuracy | AUROC right/wrong |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for r in chosen:
                mark = "" if r["accepted_accuracy"] >= r["clean_accuracy"] else " ✗"
                auc = _auc(r["auroc_wrong"])
                lines.append(
                    f"| {r['model']} | {r['set']} ({r['data_seed']}) | {r['size']} | {_pct(r['accuracy'])} | "
                    f"{_pct(r['coverage'])} | {_pct(r['accepted_accuracy'])}{mark} | "
                    f"{_pct(r['clean_accuracy'])} | {_pct(r['coverage_at_clean_accuracy'])} | {auc} |"
                )
            lines.append("")
        lines += [
            "✗: below the clean validation accuracy at the threshold (or nothing accepted).",
            "",
            "Scores compared (mean over the perturbed sets):",
            "",
            "| model | score | mean AUROC right/wrong | mean coverage at threshold | "
            "mean accuracy on accepted "
            "| sets at or above clean accuracy | of the others: sets refused whole |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for model in dict.fromkeys(r["model"] for r in perturbed):
            for score in SCORES:
                group = [r for r in perturbed if r["model"] == model and r["score"] == score]
                if not group:
                    continue
                aucs = [r["auroc_wrong"] for r in group if r["auroc_wrong"] is not None]
                ok = sum(r["accepted_accuracy"] >= r["clean_accuracy"] for r in group)
                refused = sum(r["coverage"] == 0 for r in group)
                lines.append(
                    f"| {model} | {SCORE_LABELS[score]} | {_auc(float(np.mean(aucs)) if aucs else None)} | "
                    f"{_pct(float(np.mean([r['coverage'] for r in group])))} | "
                    f"{_pct(_mean_accepted(group))} | {ok} of {len(group)} | {refused} |"
                )
        lines.append("")
    figures = plot(rows, out)
    lines += ["## Figures", ""] + [f"- `{name}`: {what}" for name, what in figures] + [""]
    (out / "calibration.md").write_text("\n".join(lines))
    return 0


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _ece_cell(stages: dict[str, dict[str, Any]] | None) -> str:
    """``"5.60 % → 2.10 %"``: ECE raw → after temperature."""
    if not stages:
        return "–"
    return f"{_pct(stages['raw']['ece'])} → {_pct(stages['calibrated']['ece'])}"


#: The calibration rows' stages: raw softmax, then temperature-scaled.
STAGES = ("raw", "calibrated")


def _goal(rows: list[dict[str, Any]]) -> list[bool]:
    """Per perturbed set: accuracy on the accepted spectra at least the clean validation accuracy."""
    return [r["accepted_accuracy"] >= r["clean_accuracy"] for r in rows]


def study_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on the study's exports: per setup, each seed's and the deep ensemble's ECE
    and the perturbed sets where the accepted spectra are as accurate as clean validation spectra."""
    if not rows:
        return []
    loads = sorted({r["load"] for r in rows})
    sets = list(dict.fromkeys(r["set"] for r in rows if r["kind"] == "calibration"))
    # the split each temperature was fitted on leads (by name: the rows' order depends on what ran first)
    own = {validation_key(r["trained_on"]) for r in rows}
    sets.sort(key=lambda name: name not in own)
    cal: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for r in (r for r in rows if r["kind"] == "calibration"):
        cal.setdefault(r["model"], {}).setdefault(r["set"], {})[r["stage"]] = r
    sizes = {r["set"]: r["size"] for r in rows if r["kind"] == "calibration"}
    perturbed = [r for r in rows if r["kind"] == "perturbed"]
    panel = list(dict.fromkeys(r["set"] for r in perturbed))
    first: dict[str, dict[str, Any]] = {}  # each model's first row, in the rows' order
    for r in rows:
        first.setdefault(r["model"], r)
    setups = list(dict.fromkeys(r["study"] for r in rows))
    members = {
        (setup, ensemble): [
            m for m in first if first[m]["study"] == setup and first[m]["ensemble"] == ensemble
        ]
        for setup in setups
        for ensemble in (False, True)
    }

    def name(model: str) -> str:
        seeds = ", ".join(map(str, first[model]["model_seeds"]))
        return f"**ensemble** ({seeds})" if first[model]["ensemble"] else f"{model} ({seeds})"

    def ece_line(setup: str, model: str) -> str:
        stages, record = cal.get(model, {}), first[model]["training"]
        validation = stages.get(sets[0], {}).get("calibrated")
        training = (
            "the seeds'"
            if isinstance(record, list)
            else f"{record['epochs_run']} epochs ({record['stop_reason']})"
        )
        fitted = (
            f"{_pct(validation['accuracy'])} | {validation['temperature']:.3f}" if validation else "– | –"
        )
        return (
            f"| {setup} | {name(model)} | {training} | {fitted} | "
            + " | ".join(_ece_cell(stages.get(s)) for s in sets)
            + " |"
        )

    lines = [
        "## The study's seeds and their deep ensemble",
        "",
        "Generated from the rows of `evaluate --part study`: the study's exports ("
        + ", ".join(sorted({p for r in rows for p in r["precision"]}))
        + ", trained to early stopping; training rows: "
        + ", ".join(f"`{f}`" for f in sorted({r["study_rows"] for r in rows}))
        + "), each seed on its own and the deep ensemble of a setup's seeds: its probability is the "
        "members' mean, its temperature is fitted, like each seed's, on the validation split "
        "(negative log-likelihood), on the log of that mean, i.e. `softmax(log(mean) / T)`. "
        f"Measured on {rows[0]['hardware']}, {loads[0]}"
        + (f" to {loads[-1]}" if len(loads) > 1 else "")
        + " (a shared machine). ECE as above (spectra per set in brackets): raw → after temperature.",
        "",
        "| setup | model (seeds) | training | validation accuracy | T | "
        + " | ".join(f"ECE {s} ({sizes[s]})" for s in sets)
        + " |",
        "|---|---|---|---:|---:|" + "---:|" * len(sets),
    ]
    for setup in setups:
        seeds = [m for m in members[(setup, False)] if m in cal]
        lines += [ece_line(setup, m) for m in seeds]
        medians = [
            " → ".join(
                _pct(_median([cal[m][s][stage]["ece"] for m in seeds if s in cal[m]])) for stage in STAGES
            )
            for s in sets
        ]
        accuracy = _median([cal[m][sets[0]]["raw"]["accuracy"] for m in seeds if sets[0] in cal[m]])
        lines.append(f"| {setup} | seeds' median | | {_pct(accuracy)} | | " + " | ".join(medians) + " |")
        lines += [ece_line(setup, m) for m in members[(setup, True)] if m in cal]
    lines.append("")
    if not perturbed:
        return lines
    lines += [
        f"On the {len(panel)} perturbed panel sets ({', '.join(panel)}): thresholds at {_pct(DEFAULT_RATE)} "
        "false alarms on the validation split; a set *meets the goal* when the accuracy on the spectra "
        "accepted is at least the model's own clean validation accuracy. Temperature-scaled probability "
        "first; the raw probability (the ensemble's: its mean probability) and the energy score (the "
        "ensemble's: its members' mean) for comparison.",
        "",
        "| setup | model (seeds) | clean validation accuracy | sets meeting the goal: temperature / raw / "
        "energy | mean coverage | mean accuracy on accepted | worst set: accuracy on accepted (coverage) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]

    def goal_line(setup: str, model: str) -> tuple[str, tuple[int, float, float]]:
        mine = [r for r in perturbed if r["model"] == model]
        by_score = {score: [r for r in mine if r["score"] == score] for score in SCORES}
        main, raw = by_score["temperature"], by_score["ensemble"] or by_score["msp"]
        worst = min(main, key=lambda r: np.nan_to_num(r["accepted_accuracy"]) - r["clean_accuracy"])
        summary = (sum(_goal(main)), float(np.mean([r["coverage"] for r in main])), _mean_accepted(main))
        return (
            f"| {setup} | {name(model)} | {_pct(main[0]['clean_accuracy'])} | {summary[0]} / "
            f"{sum(_goal(raw))} / {sum(_goal(by_score['energy']))} of {len(main)} | {_pct(summary[1])} | "
            f"{_pct(summary[2])} | {worst['set']}: {_pct(worst['accepted_accuracy'])} "
            f"({_pct(worst['coverage'])}) |",
            summary,
        )

    for setup in setups:
        scored = {r["model"] for r in perturbed if r["score"] == "temperature"}
        seeds = [goal_line(setup, m) for m in members[(setup, False)] if m in scored]
        lines += [line for line, _ in seeds]
        if seeds:
            met, coverage, accepted = (_median([summary[i] for _, summary in seeds]) for i in range(3))
            lines.append(
                f"| {setup} | seeds' median | | {met:g} of {len(panel)} (temperature) | {_pct(coverage)} | "
                f"{_pct(accepted)} | |"
            )
        lines += [goal_line(setup, m)[0] for m in members[(setup, True)] if m in scored]
    lines += [
        "",
        "Per set (temperature-scaled probability): the ensemble's accuracy on accepted spectra (coverage), "
        "✓ where it meets the goal; the seeds: how many meet it, their median accuracy on accepted (median "
        "coverage).",
        "",
        "| set | " + " | ".join(f"{s}: ensemble | {s}: seeds" for s in setups) + " |",
        "|---|" + "---:|---:|" * len(setups),
    ]
    for panel_set in panel:
        cells = []
        for setup in setups:
            chosen = [
                r
                for r in perturbed
                if (r["study"], r["set"], r["score"]) == (setup, panel_set, "temperature")
            ]
            ensemble = [r for r in chosen if r["ensemble"]]
            seeds = [r for r in chosen if not r["ensemble"]]
            cells.append(
                f"{_pct(ensemble[0]['accepted_accuracy'])} ({_pct(ensemble[0]['coverage'])})"
                + (" ✓" if _goal(ensemble)[0] else "")
                if ensemble
                else "–"
            )
            median_accepted = _median([r["accepted_accuracy"] for r in seeds])
            cells.append(
                f"{sum(_goal(seeds))} of {len(seeds)}; {_pct(median_accepted)} "
                f"({_pct(_median([r['coverage'] for r in seeds]))})"
            )
        lines.append(f"| {panel_set} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


CAPPED_HEADING = " — capped trainings, not at the protocol's end"
CAPPED_NOTE = (
    " **These models stopped at an epoch cap, not at the protocol's end** (early stopping with patience "
    "25 within at most 500 epochs): their numbers are not comparable with those of models trained to the "
    "protocol's end, and every row says how many epochs ran."
)


def _is_capped_row(row: dict[str, Any]) -> bool:
    """Whether a row comes from a capped training (its ``capped`` field, else its training records)."""
    if "capped" in row:
        return bool(row["capped"])
    records = row.get("training")
    records = records if isinstance(records, list) else [records] if records else []
    return any(is_capped(t) for t in records)


def _experiments(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, bool], list[dict[str, Any]]]]:
    """Rows grouped by (known set, capped), in first-seen order with the capped groups last."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["known_set"], _is_capped_row(row)), []).append(row)
    return sorted(groups.items(), key=lambda item: item[0][1])  # stable: first-seen order within


def _classes(labels: Sequence[int]) -> str:
    """``[6, 7, 8, 13]`` → ``"6-8, 13"``."""
    labels = sorted(labels)
    runs: list[list[int]] = []
    for label in labels:
        if runs and label == runs[-1][-1] + 1:
            runs[-1].append(label)
        else:
            runs.append([label])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _by_model_and_score(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by model (first-seen order), scores in :data:`SCORES` order within a model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    return sorted(rows, key=lambda r: (models.index(r["model"]), SCORES.index(r["score"])))


def _mean_accepted(group: list[dict[str, Any]]) -> float:
    """Mean accuracy on accepted spectra over the sets where any spectrum was accepted (NaN if none)."""
    values = [r["accepted_accuracy"] for r in group if r["accepted_accuracy"] == r["accepted_accuracy"]]
    return float(np.mean(values)) if values else float("nan")


def plot(rows: list[dict[str, Any]], out: Path) -> list[tuple[str, str]]:
    """reliability.png, coverage.png and unseen.png from the rows; returns (file, description) pairs."""
    from matplotlib import colormaps

    from zoo.study.plots import new_figure

    written = []
    cal_rows = [
        r
        for r in rows
        if r["kind"] == "calibration" and (r["set"].endswith("validation") or "train (" in r["set"])
    ]
    chosen = [r for r in cal_rows if r["set"].endswith(" validation") and "fresh" not in r["set"]]
    chosen += [r for r in cal_rows if "train (" in r["set"]]
    panels = list(dict.fromkeys((r["model"], r["set"]) for r in chosen))
    if panels:
        columns = max(2, (len(panels) + 1) // 2)
        figure = new_figure(3.2 * columns + 0.5, 6.4)
        for index, (model, name) in enumerate(panels):
            axes = figure.add_subplot(2, columns, index + 1)
            for r in (r for r in chosen if (r["model"], r["set"]) == (model, name)):
                bins = r["bins"]
                conf = [c for c in bins["confidence"]]
                acc = [a for a in bins["accuracy"]]
                keep = [i for i, c in enumerate(conf) if c is not None]
                axes.plot(
                    [conf[i] for i in keep],
                    [acc[i] for i in keep],
                    "o-",
                    ms=3,
                    label=f"{r['stage']} (T {r['temperature']:.2f}), ECE {100 * r['ece']:.1f} %",
                )
            axes.plot([0, 1], [0, 1], ":", color="grey")
            axes.set_title(f"{model}\n{name} (data seed {r['data_seed']}, {r['size']} spectra)", fontsize=7)
            axes.set_xlabel("confidence", fontsize=7)
            axes.set_ylabel("accuracy", fontsize=7)
            axes.legend(fontsize=6)
            axes.tick_params(labelsize=6)
        figure.suptitle(
            "Reliability diagrams: raw softmax against temperature-scaled (15 bins); presets of model seed "
            + ", ".join(sorted({str(r.get("model_seed")) for r in chosen}))
            + f"; rows: {out / 'rows.jsonl'}",
            fontsize=9,
        )
        figure.savefig(out / "reliability.png", dpi=110)
        written.append(
            ("reliability.png", "reliability diagrams of " + ", ".join(f"{m} on {n}" for m, n in panels))
        )
    perturbed = [r for r in rows if r["kind"] == "perturbed" and r["score"] == "temperature"]
    models = list(dict.fromkeys(r["model"] for r in perturbed))
    if models:
        columns = min(4, len(models))
        grid_rows = (len(models) + columns - 1) // columns
        figure = new_figure(4.0 * columns, 3.6 * grid_rows + 0.6)
        for index, model in enumerate(models):
            axes = figure.add_subplot(grid_rows, columns, index + 1)
            group = [r for r in perturbed if r["model"] == model]
            axes.set_prop_cycle(color=colormaps["tab20"].colors)  # 17 sets: one colour each
            for r in group:
                axes.plot(COVERAGE_GRID, r["curve"], lw=0.9, label=r["set"])
            axes.axhline(
                group[0]["clean_accuracy"], color="black", ls="--", lw=0.8, label="clean validation accuracy"
            )
            axes.set_title(
                f"{model} (seeds {group[0].get('model_seeds') or group[0].get('model_seed')})", fontsize=8
            )
            axes.set_xlabel("coverage (most confident first)", fontsize=7)
            axes.set_ylabel("accuracy on accepted", fontsize=7)
            axes.tick_params(labelsize=6)
            axes.set_ylim(0, 1.02)
        axes.legend(fontsize=5, loc="lower left", ncol=2)
        figure.suptitle(
            "Selective accuracy against coverage on the panel's perturbed sets "
            "(temperature-scaled probability; sets and data seeds: zoo.study.panel, in the rows)\n"
            f"rows: {out / 'rows.jsonl'}",
            fontsize=9,
        )
        figure.savefig(out / "coverage.png", dpi=110)
        written.append(
            ("coverage.png", "coverage curves of " + ", ".join(models) + " on the perturbed panel sets")
        )
    unseen = _by_model_and_score([r for r in rows if r["kind"] == "unseen" and r["score"] not in DECISIONS])
    if unseen:
        scored = list(dict.fromkeys((r["model"], r["score"]) for r in unseen))
        columns = 4
        figure = new_figure(3.2 * columns, 2.4 * ((len(scored) + columns - 1) // columns))
        for index, (model, score) in enumerate(scored):
            r = next(r for r in unseen if (r["model"], r["score"]) == (model, score))
            axes = figure.add_subplot((len(scored) + columns - 1) // columns, columns, index + 1)
            edges = np.linspace(*r["hist_range"], 21)
            for key, label in (("known_scores_hist", "known"), ("unknown_scores_hist", "held-out")):
                counts = np.asarray(r[key], float)
                axes.stairs(counts / max(counts.sum(), 1), edges, label=label)
            axes.axvline(r["threshold"], color="black", ls="--", lw=0.8)
            seeds = ",".join(map(str, r["model_seeds"]))
            capped = _capped_label(r).replace(" [", "\n[")
            axes.set_title(
                f"{model} (seeds {seeds}): {r['score']}, AUROC {r['auroc']:.3f}{capped}", fontsize=6
            )
            axes.tick_params(labelsize=6)
            axes.legend(fontsize=6)
        sets = dict.fromkeys(
            f"{r['known_set']} against {r['unknown_set']} (classes {_classes(r['hold_out'])})" for r in unseen
        )
        figure.suptitle(
            "Scores of known and held-out spectra:\n" + "\n".join(sets) + "\n"
            "dashed: the threshold at 5 % false alarms; model seeds (and any epoch cap) in each title; "
            f"rows: {out / 'rows.jsonl'}",
            fontsize=8,
        )
        figure.savefig(out / "unseen.png", dpi=110)
        written.append(
            (
                "unseen.png",
                "score histograms, known against held-out classes, for "
                + ", ".join(dict.fromkeys(m for m, _ in scored)),
            )
        )
    return written


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
    _replace_rows(args.out, rows)
    print(
        f"{known.name}: Bayes detector AUROC {rows[-1]['bayes_auroc']:.4f}; "
        + ", ".join(f"class {r['label']}: {_pct(r['producible'])} producible" for r in rows[:-1][:10]),
        flush=True,
    )
    return report(argparse.Namespace(out=args.out))


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
    for name, preset in zip(names, presets, strict=True):
        config = get_config(preset.dataset)
        draws = {
            seed: dataclasses.replace(fresh_draw(config, seed), n_train=args.per_class)
            for seed in (FIT_SEED, FRESH_SEEDS[0])
        }
        unit = Unit(name, [zoo.from_preset(name)], None, 0)
        fit_sets = {
            f"{validation_key(config.name)} ({config.split_size('validation')})": (
                validation_key(config.name),
                _set_arrays(config, "validation"),
            ),
            f"{draws[FIT_SEED].name} train ({args.per_class} per class)": (
                f"fit draw {FIT_SEED}",
                _set_arrays(draws[FIT_SEED], "train"),
            ),
        }
        judged_on = f"{draws[FRESH_SEEDS[0]].name} train ({args.per_class} per class)"
        x, y = _set_arrays(draws[FRESH_SEEDS[0]], "train")
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
        _ARRAYS.clear()
    _replace_rows(args.out, rows)
    return report(argparse.Namespace(out=args.out))


def temperature_fit_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on fitting the temperature on the validation split or on a larger draw."""
    if not rows:
        return []
    lines = [
        "## Does a temperature fitted on more spectra calibrate better?",
        "",
        "Generated by `python benchmarks/experiments/calibration.py temperature-fit`: each preset's "
        "temperature fitted (negative log-likelihood) on its validation split and on a larger fresh draw of "
        f"the same classes (seed {FIT_SEED}: validation data drawn anew), both judged on another fresh draw "
        "with the ECE (15 bins) and that set's noise floor (the ECE a perfectly calibrated model shows on a "
        f"set that size). {rows[0]['hardware']}, {rows[0]['load']}.",
        "",
        "| preset | judged on (spectra) | accuracy | ECE raw | fitted on (spectra) | T | ECE | noise floor |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['set']} ({r['size']:,}) | {_pct(r['accuracy'])} | {_pct(r['ece_raw'])} | "
            f"{r['stage'].rsplit(' (', 1)[0]} ({r['fit_size']:,}) | {r['temperature']:.3f} | "
            f"{_pct(r['ece'])} | {_pct(r['noise_floor'])} |"
        )
    return [*lines, ""]


def separability_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on which held-out classes can be detected at all (from ``separability``
    rows)."""
    lines: list[str] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        group = [r for r in rows if r["model"] == model]
        classes = [r for r in group if "label" in r]
        pooled = next(r for r in group if "label" not in r)
        lines += [
            f"## Which held-out classes can be detected at all: {pooled['trained_on']}",
            "",
            f"Generated by `python benchmarks/experiments/calibration.py separability` "
            f"(`zoo.study.ceiling.held_out_separability`; {pooled['seconds']:.0f} s). Each held-out "
            f"spectrum's peaks ({pooled['unknown_set']}; known: {pooled['known_set']}) are judged under the "
            "training distribution of the full dataset, as the Bayes ceiling does: which classes can have "
            "produced them, and how likely. *Producible*: the share of a held-out class's spectra that some "
            "known class can produce — no detector catches those without false alarms on known spectra, so "
            "at zero false alarms at most the rest is caught. *Explained as well*: the share a known class "
            "produces at least as likely as the held-out class itself. *Cost*: the share of the known "
            "classes' spectra the held-out class can produce — the false alarms a detector must raise to "
            "catch all of it. *Bayes AUROC*: the detector that knows both distributions (the posterior of "
            "held out, equal priors); by the Neyman-Pearson lemma no detector that sees the spectra does "
            "better. Nothing here depends on a model or was chosen by looking at scores.",
            "",
            f"**Bayes detector over all held-out classes: AUROC {pooled['bayes_auroc']:.4f}.**",
            "",
        ]
        if len(classes) <= 10:
            lines += [
                "| held-out class | nearest known classes (template distance: what differs) | producible | "
                "explained as well | known classes that produce its spectra (share) | cost | Bayes AUROC |",
                "|---:|---|---:|---:|---|---:|---:|",
            ]
            for r in classes:
                nearest = "; ".join(f"{k} ({d:.2f}: {words})" for k, d, words in r["nearest"]) or "–"
                producers = ", ".join(f"{k}: {_pct(v)}" for k, v in r["producers"].items()) or "none"
                lines.append(
                    f"| {r['label']} | {nearest} | {_pct(r['producible'])} | {_pct(r['explained'])} | "
                    f"{producers} | {_pct(r['cost'])} | {r['bayes_auroc']:.4f} |"
                )
        else:
            overlapping = [r for r in classes if r["producible"] > 0]
            lines.append(
                f"{len(classes)} held-out classes; {len(overlapping)} with spectra a known class can produce"
                + (
                    ": "
                    + ", ".join(
                        f"{r['label']} ({_pct(r['producible'])}, cost {_pct(r['cost'])})" for r in overlapping
                    )
                    if overlapping
                    else ""
                )
                + f". Bayes AUROC per class: min {min(r['bayes_auroc'] for r in classes):.4f}. Closest to a "
                "known class (template distance: what differs): "
                + "; ".join(
                    f"{r['label']} → {r['nearest'][0][0]} ({r['nearest'][0][1]:.2f}: {r['nearest'][0][2]})"
                    for r in sorted((r for r in classes if r["nearest"]), key=lambda r: r["nearest"][0][1])[
                        :3
                    ]
                )
                + "."
            )
        lines.append("")
    return lines


def merge(args: argparse.Namespace) -> int:
    """Add the rows of other --out folders (runs measured apart) to --out's; a row of the same identity
    (model, kind, set, stage, score) replaces the one there."""
    rows = _read_rows(args.out)
    for folder in args.sources:
        added = _read_rows(folder)
        if not added:
            raise UserError(f"{folder / 'rows.jsonl'}: no rows")
        identities = {_identity(row) for row in added}
        rows = [row for row in rows if _identity(row) not in identities] + added
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out, rows)
    print(f"{args.out / 'rows.jsonl'}: {len(rows)} rows")
    return 0


def ship(args: argparse.Namespace) -> int:
    """Write each preset's calibration (temperature, threshold, feature rule) from rows.jsonl into the
    presets table, and copy its feature bank (checked against the row's SHA-256) beside its weights."""
    import shutil

    from zoo.models.presets import MAX_PRESET_BYTES, PRESETS_FILE, SHIPPED_PRESETS_DIR, sha256_of

    rows = {r["model"]: r for r in _read_rows(args.out) if r["kind"] == "preset_calibration"}
    if not rows:
        raise UserError(
            f"{args.out / 'rows.jsonl'}: no preset calibration rows (run evaluate --part presets)"
        )
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
        calibration = rows[record["name"]]["calibration"]
        calibration["notes"]["rows"] = str(args.out / "rows.jsonl")
        record["calibration"] = calibration
        if record["name"] in banks:
            source, bank = banks[record["name"]]
            shutil.copyfile(source, SHIPPED_PRESETS_DIR / bank["file"])
            record.update(
                feature_bank=bank["file"],
                feature_bank_sha256=bank["sha256"],
                feature_bank_bytes=bank["bytes"],
            )
    PRESETS_FILE.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"{PRESETS_FILE}: calibration of {', '.join(sorted(rows))}; "
        f"feature banks of {', '.join(sorted(banks))}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
