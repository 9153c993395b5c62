"""Measuring confidence: how well trained models' probabilities are calibrated and how well scores tell
spectra of unseen classes, or spectra the model gets wrong, from the rest.

A :class:`Unit` is a model (or a deep ensemble of models) with its scores per spectrum: max softmax
probability, temperature-scaled probability, energy, k-NN feature distance, Monte Carlo dropout, the
ensemble's mean probability and the rule an export ships (:mod:`zoo.inference.calibration`). The ``*_rows``
functions measure a unit and return result rows (plain dicts, one per model/score/set) that
:mod:`~zoo.study.confidence_report` turns into the report; ``benchmarks/experiments/calibration.py`` is the
command that trains the held-out models, runs the measurements and writes the rows.

Nothing here trains a model or reads a test split's labels to choose anything: temperatures and thresholds
come from validation splits only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from zoo.study import paper

#: Seeds of the fresh draws the calibration and the unknowns are measured on (the published draw is 2022).
FRESH_SEEDS = (1, 2)
MC_PASSES = 20
#: Seed of the larger draw a temperature is fitted on in the temperature-fit comparison (validation data
#: drawn anew).
FIT_SEED = 3
#: False alarms on known classes' validation spectra at which every threshold is set.
DEFAULT_RATE = 0.05
#: The panel's groups of perturbed sets of the training classes (``zoo.study.panel``).
PERTURBED_GROUPS = ("test-like", "noise", "background", "peak shape", "shift", "realistic")


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


def is_capped(record: dict[str, Any]) -> bool:
    """A training that ended at an epoch cap below the study protocol's (500): not at the protocol's end."""
    return record["stop_reason"] == "max_epochs" and record["max_epochs"] < paper.MAX_EPOCHS


def held_out_configs(dataset: str, hold_out: Sequence[int]) -> tuple[Any, Any]:
    """The configs of ``dataset``'s known classes and of its ``hold_out`` classes (``split_classes``)."""
    from synthetic_spectra.config import get_config
    from zoo.inference.calibration import split_classes

    return split_classes(get_config(dataset), hold_out)


def normalised(spectra: np.ndarray) -> np.ndarray:
    """Spectra scaled to a maximum of 1, float32: what the models see."""
    from synthetic_spectra.normalize import normalize_max

    return normalize_max(spectra).astype(np.float32)


class Outputs:
    """Each model's logits and features on named sets of spectra, computed once per (model, set) and shared
    by every unit that holds the model (a seed's own unit and the ensembles of its seeds)."""

    def __init__(self) -> None:
        # keyed by (model id, set key); the model is kept beside its logits so that its id stays unique
        self._logits: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}
        self._features: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}

    def logits(self, model: Any, key: str, spectra: np.ndarray) -> np.ndarray:
        """``model``'s logits on the max-normalised ``spectra`` of the set named ``key``."""
        from zoo.inference.logits import predict_logits

        if (id(model), key) not in self._logits:
            self._logits[(id(model), key)] = (model, predict_logits(model, spectra))
        return self._logits[(id(model), key)][1]

    def features(self, model: Any, key: str, spectra: np.ndarray) -> np.ndarray:
        """``model``'s features (the softmax layer's input) on the set named ``key``."""
        from zoo.inference.logits import predict_features

        if (id(model), key) not in self._features:
            self._features[(id(model), key)] = (model, predict_features(model, spectra))
        return self._features[(id(model), key)][1]


class Spectra:
    """Max-normalised spectra and labels of dataset splits and panel sets, generated once and shared by
    every unit measured on them; :meth:`clear` frees them before the next dataset."""

    def __init__(self) -> None:
        self._arrays: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def split(self, config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``config``'s ``split`` (``synthetic_spectra.generator.generate``), max-normalised."""
        from synthetic_spectra.generator import generate

        if (config, split) not in self._arrays:
            x, y = generate(config, split)
            self._arrays[(config, split)] = normalised(x), y
        return self._arrays[(config, split)]

    def panel(self, panel_set: Any) -> tuple[np.ndarray, np.ndarray]:
        """A panel set's spectra (``zoo.study.panel``), max-normalised."""
        if panel_set not in self._arrays:
            x, y = panel_set.generate()
            self._arrays[panel_set] = normalised(x), y
        return self._arrays[panel_set]

    def clear(self) -> None:
        """Forget every set (the next dataset's are generated anew)."""
        self._arrays.clear()


class Unit:
    """A model (or an ensemble of models) that gives, for spectra, a prediction and a score per method.

    An ensemble's prediction is its members' mean probability; its logits (:meth:`combined_logits`) are
    the log of that mean, so a temperature on them (``temperature``, None until fitted) calibrates the
    ensemble as a whole: ``softmax(log(mean) / T)``.

    ``scores`` names the scores measured (:data:`SCORES` by default: the others are left out of every
    row); ``outputs`` the cache of model outputs to share with other units (an ensemble and its seeds)."""

    def __init__(
        self,
        label: str,
        models: list[Any],
        temperature: float | None,
        mc_passes: int,
        *,
        scores: Collection[str] = SCORES,
        outputs: Outputs | None = None,
    ) -> None:
        self.label, self.models, self.temperature, self.mc_passes = label, models, temperature, mc_passes
        self.wanted = frozenset(scores)
        self.outputs = Outputs() if outputs is None else outputs
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
        return self.outputs.features(self.models[0], key, spectra)

    @property
    def is_ensemble(self) -> bool:
        return len(self.models) > 1

    def logits(self, key: str, spectra: np.ndarray) -> list[np.ndarray]:
        """Each model's logits on max-normalised spectra (cached by model and key in :attr:`outputs`)."""
        return [self.outputs.logits(model, key, spectra) for model in self.models]

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
        """``{score: (score per spectrum, predicted class)}`` for max-normalised spectra, the wanted scores
        the unit has (cached by key); ``mc=False`` leaves Monte Carlo dropout out (its passes cost
        ``mc_passes`` forward passes). An ensemble's scores: its mean probability (``ensemble``), that
        probability temperature-scaled (``temperature``, once fitted) and its members' mean energy
        (``energy``)."""
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
            if mc and self.mc_passes and "mc_dropout" in self.wanted and has_dropout(self.models[0]):
                mean = mc_dropout_probabilities(self.models[0], spectra, passes=self.mc_passes)
                result["mc_dropout"] = (mean.max(axis=1), mean.argmax(axis=1))
        result = {score: value for score, value in result.items() if score in self.wanted}
        self._cache[(key, mc)] = result
        return result


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
    unit: Unit, sets: list[tuple[str, Any, str]], base: dict[str, Any], spectra: Spectra
) -> list[dict[str, Any]]:
    """ECE/NLL/accuracy before and after temperature scaling on each (name, config, split)."""
    from zoo.inference import calibration as cal

    rows = []
    for name, config, split in sets:
        x, y = spectra.split(config, split)
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
    }


def misclassification_rows(
    unit: Unit,
    sets: list[Any],
    thresholds: dict[str, float],
    clean_accuracy: float,
    base: dict[str, Any],
    spectra: Spectra,
) -> list[dict[str, Any]]:
    """On each panel set: for each score, AUROC of telling right from wrong predictions, coverage and
    accuracy on the accepted spectra at the threshold, and the coverage at which the accepted spectra are
    as accurate as the clean validation split."""
    from zoo.inference import calibration as cal

    rows = []
    for panel_set in sets:
        x, labels = spectra.panel(panel_set)
        for score, (values, predicted) in unit.scores(f"panel:{panel_set.name}", x).items():
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
    for score in (s for s in SCORES if s in known_scores):
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
