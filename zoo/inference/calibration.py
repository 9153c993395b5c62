"""Calibrated confidence and "unknown" for spectra unlike the training data (NumPy only).

A classifier's softmax gives a probability whatever the input. This module measures how far that
probability can be trusted and turns it into a decision an export ships:

* **measuring** — :func:`expected_calibration_error` and :func:`reliability` (confidence bins against
  accuracy), :func:`auroc` (how well a score separates known from unknown spectra) and
  :func:`selective_curve` (accuracy on the spectra accepted, against the fraction accepted);
* **temperature scaling** — :func:`fit_temperature` finds the ``T`` that minimises the negative
  log-likelihood of ``softmax(logits / T)`` on held-out labelled spectra (the validation split): one number,
  the ranking of classes unchanged;
* **scores** — :func:`max_probability` (the calibrated confidence), :func:`energy_score` (``T·logsumexp``
  of the logits), :func:`predictive_entropy`;
* **a threshold** — :func:`threshold_for_false_alarms`: the confidence below which a spectrum is called
  unknown, chosen so that a stated fraction of known spectra (e.g. 5 %) is rejected;
* :class:`Calibration` — temperature and threshold as stored in an export's ``metadata.json``
  (``"calibration"``); an export without one has temperature 1 and no threshold;
* :func:`split_classes` — a dataset config split into the classes a model is trained on and held-out
  classes whose spectra play the unknowns.

Logits are the inputs of the final softmax. For a model that only gives probabilities, ``log(p)`` is the
same up to a constant per spectrum, which none of these functions depends on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from synthetic_spectra.config import DatasetConfig

#: Bins of the expected calibration error and the reliability diagram (equal width in confidence).
DEFAULT_BINS = 15
#: The false-alarm rate on known classes at which a shipped threshold is chosen.
DEFAULT_FALSE_ALARM_RATE = 0.05
#: The range searched for the temperature (log-spaced, golden-section search on log T).
TEMPERATURE_RANGE = (0.01, 100.0)
#: The score a shipped threshold applies to.
SCORE = "max_probability"


# ------------------------------------------------------------------------------------------ basics
def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``log softmax(logits / temperature)`` along the last axis, in float64 (stable for large logits)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` along the last axis (float64)."""
    return np.exp(log_softmax(logits, temperature))


def logits_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``log(p)``: logits up to a constant per row (a zero probability becomes the float32 floor's log)."""
    floor = np.finfo(np.float32).tiny
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), floor))


def max_probability(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The highest class probability per spectrum after temperature scaling (the confidence)."""
    return softmax(logits, temperature).max(axis=-1)


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy ``T · logsumexp(logits / T)``: higher means more like the training data.

    Unlike :func:`max_probability` it depends on the logits' absolute level, so logits recovered from
    probabilities (:func:`logits_from_probabilities`) do not give it.
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    top = scaled.max(axis=-1)
    return temperature * (top + np.log(np.exp(scaled - top[:, None]).sum(axis=-1)))


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of probabilities."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-300, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean ``-log softmax(logits / T)[label]``."""
    labels = _labels(labels, len(logits))
    return float(-log_softmax(logits, temperature)[np.arange(len(labels)), labels].mean())


# ----------------------------------------------------------------------------------- calibration
@dataclasses.dataclass(frozen=True)
class Reliability:
    """A reliability diagram's bins: edges, and per bin the count, mean confidence and accuracy."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray  # NaN for an empty bin
    accuracy: np.ndarray  # NaN for an empty bin

    @property
    def ece(self) -> float:
        """Expected calibration error: ``Σ n_b/N · |accuracy_b − confidence_b|``."""
        used = self.counts > 0
        gaps = np.abs(self.accuracy[used] - self.confidence[used])
        return float((self.counts[used] * gaps).sum() / self.counts.sum())

    @property
    def max_gap(self) -> float:
        """Maximum calibration error: the largest ``|accuracy_b − confidence_b|`` of a non-empty bin."""
        used = self.counts > 0
        return float(np.abs(self.accuracy[used] - self.confidence[used]).max())


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> Reliability:
    """Bin spectra by confidence (the top probability; ``bins`` equal-width bins on [0, 1], the last one
    closed) and compare each bin's mean confidence with its accuracy."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = _labels(labels, len(probabilities))
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / counts
        accuracy = np.bincount(index, correct.astype(np.float64), bins) / counts
    return Reliability(edges, counts, mean_confidence, accuracy)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    """ECE of probabilities ``[n, classes]`` against integer labels (:func:`reliability`'s bins)."""
    return reliability(probabilities, labels, bins).ece


def ece_noise_floor(
    probabilities: np.ndarray, bins: int = DEFAULT_BINS, draws: int = 50, seed: int = 0
) -> float:
    """The mean ECE of a perfectly calibrated model with these probabilities on this many spectra: labels
    drawn from the probabilities themselves, ``draws`` times. A measured ECE near it is within the noise
    of a finite set (binned ECE is biased upwards on small sets)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    rng = np.random.default_rng(seed)
    cumulative = probabilities.cumsum(axis=1)
    cumulative /= cumulative[:, -1:]
    values = []
    for _ in range(draws):
        labels = (rng.uniform(size=(len(probabilities), 1)) > cumulative).sum(axis=1)
        values.append(
            expected_calibration_error(probabilities, np.minimum(labels, probabilities.shape[1] - 1), bins)
        )
    return float(np.mean(values))


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_RANGE
) -> float:
    """The temperature minimising :func:`negative_log_likelihood` on ``(logits, labels)``.

    The likelihood is convex in ``1/T``, hence unimodal in ``log T``: a golden-section search on
    ``log T`` within ``bounds`` finds it to about 1e-6 relative.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = _labels(labels, len(logits))
    low, high = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(logits, labels, math.exp(log_t))

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    while high - low > 1e-7:
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return math.exp((low + high) / 2.0)


# -------------------------------------------------------------------------------- unknown detection
def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling known (higher score) from unknown spectra: the probability
    that a random known spectrum scores above a random unknown one (ties count half)."""
    known, unknown = np.asarray(known_scores, np.float64), np.asarray(unknown_scores, np.float64)
    if known.size == 0 or unknown.size == 0:
        raise ValueError("auroc needs at least one known and one unknown score")
    scores = np.concatenate([known, unknown])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1)
    sorted_scores = scores[order]  # ties share their average rank
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    for start, end in zip(starts, ends, strict=True):
        if end - start > 1:
            ranks[order[start:end]] = (start + 1 + end) / 2.0
    known_rank_sum = ranks[: known.size].sum()
    return float((known_rank_sum - known.size * (known.size + 1) / 2.0) / (known.size * unknown.size))


def knn_score(reference: np.ndarray, features: np.ndarray, k: int = 10, chunk: int = 512) -> np.ndarray:
    """Negative distance from each of ``features`` to its ``k``-th nearest neighbour among ``reference``
    (both L2-normalised per row; higher: more like the reference, e.g. the training spectra's features).

    A score on the model's features rather than its softmax: a spectrum unlike every training spectrum
    scores low even where the softmax is confident.
    """

    def unit_rows(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)

    reference, features = unit_rows(reference), unit_rows(features)
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be between 1 and the {len(reference)} reference rows, got {k!r}")
    scores = []
    for start in range(0, len(features), chunk):
        # |a - b|^2 = 2 - 2 a.b for unit vectors
        squared = np.maximum(2.0 - 2.0 * features[start : start + chunk] @ reference.T, 0.0)
        scores.append(-np.sqrt(np.partition(squared, k - 1, axis=1)[:, k - 1]))
    return np.concatenate(scores)


def threshold_for_false_alarms(known_scores: np.ndarray, rate: float = DEFAULT_FALSE_ALARM_RATE) -> float:
    """The score below which a spectrum is called unknown, such that at most ``rate`` of ``known_scores``
    fall below it (the largest such threshold among the scores themselves)."""
    scores = np.sort(np.asarray(known_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("threshold_for_false_alarms needs at least one known score")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    allowed = math.floor(rate * scores.size + 1e-9)  # known spectra that may fall below the threshold
    return float(scores[allowed])


def rejected(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which spectra are called unknown: score strictly below ``threshold`` (none without a threshold)."""
    scores = np.asarray(scores)
    if threshold is None:
        return np.zeros(scores.shape, dtype=bool)
    return scores < threshold


@dataclasses.dataclass(frozen=True)
class SelectiveCurve:
    """Accuracy on the accepted spectra against coverage, accepting the most confident first."""

    coverage: np.ndarray  # fraction accepted, 1/n … 1
    accuracy: np.ndarray  # accuracy on those accepted
    thresholds: np.ndarray  # the score of the last spectrum accepted

    def accuracy_at(self, coverage: float) -> float:
        """Accuracy on the most confident ``coverage`` fraction (at least one spectrum)."""
        index = max(0, math.ceil(coverage * len(self.coverage) - 1e-9) - 1)
        return float(self.accuracy[index])

    def area(self) -> float:
        """Mean accuracy over coverage (area under the curve; higher is better)."""
        return float(self.accuracy.mean())


def selective_curve(scores: np.ndarray, correct: np.ndarray) -> SelectiveCurve:
    """:class:`SelectiveCurve` of spectra with confidence ``scores`` and correctness ``correct``."""
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, dtype=bool)
    if scores.shape != correct.shape or scores.ndim != 1 or scores.size == 0:
        raise ValueError(
            f"scores and correct must be equal-length 1-D arrays, got {scores.shape}, {correct.shape}"
        )
    order = np.argsort(-scores, kind="mergesort")
    accepted = np.arange(1, scores.size + 1)
    return SelectiveCurve(accepted / scores.size, np.cumsum(correct[order]) / accepted, scores[order])


def selective_accuracy(
    scores: np.ndarray, correct: np.ndarray, threshold: float | None
) -> tuple[float, float]:
    """``(coverage, accuracy on accepted)`` at ``threshold`` (accuracy NaN when nothing is accepted)."""
    accepted = ~rejected(scores, threshold)
    correct = np.asarray(correct, dtype=bool)
    coverage = float(accepted.mean())
    return coverage, float(correct[accepted].mean()) if accepted.any() else float("nan")


# ------------------------------------------------------------------------------- the shipped record
@dataclasses.dataclass(frozen=True)
class Calibration:
    """What an export stores about its confidence: a temperature, and optionally an unknown threshold.

    ``predict`` returns ``softmax(logits / temperature)``; a spectrum whose highest such probability is
    below ``threshold`` is called unknown. ``notes`` records how both were chosen (data, rates, ECE).
    """

    temperature: float = 1.0
    threshold: float | None = None
    false_alarm_rate: float | None = None
    score: str = SCORE
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        temperature = self.temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"calibration.temperature must be a number, got {temperature!r:.60}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"calibration.temperature must be a positive finite number, got {temperature!r}")
        object.__setattr__(self, "temperature", float(temperature))
        threshold = self.threshold
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
                raise ValueError(f"calibration.threshold must be a number or null, got {threshold!r:.60}")
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"calibration.threshold must lie in [0, 1], got {threshold!r}")
            object.__setattr__(self, "threshold", float(threshold))
        if self.score != SCORE:
            raise ValueError(f"calibration.score must be {SCORE!r}, got {self.score!r:.60}")
        if not isinstance(self.notes, Mapping):
            raise ValueError("calibration.notes must be a mapping")

    @property
    def is_identity(self) -> bool:
        """Temperature 1 and no threshold: what an export without calibration means."""
        return self.temperature == 1.0 and self.threshold is None

    def to_dict(self) -> dict[str, Any]:
        """The ``metadata.json`` record."""
        return {
            "temperature": self.temperature,
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "score": self.score,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Read :meth:`to_dict`'s record (ValueError naming a bad field); None or absent → the identity."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"calibration must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"temperature", "threshold", "false_alarm_rate", "score", "notes"})
        if unknown:
            raise ValueError(f"calibration: unknown field {unknown[0]!r}")
        return cls(
            temperature=data.get("temperature", 1.0),
            threshold=data.get("threshold"),
            false_alarm_rate=data.get("false_alarm_rate"),
            score=data.get("score", SCORE),
            notes=dict(data.get("notes") or {}),
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float32) of logits ``[n, classes]``."""
        return softmax(logits, self.temperature).astype(np.float32)

    def unknown(self, logits: np.ndarray) -> np.ndarray:
        """Which spectra are called unknown (boolean ``[n]``)."""
        return rejected(max_probability(logits, self.temperature), self.threshold)


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    false_alarm_rate: float | None = DEFAULT_FALSE_ALARM_RATE,
    bins: int = DEFAULT_BINS,
    data: str = "",
) -> Calibration:
    """Temperature fitted on ``(logits, labels)`` (a validation split) and, unless ``false_alarm_rate`` is
    None, the threshold that rejects that fraction of the same spectra; ``notes`` records ECE before/after."""
    labels = _labels(labels, len(logits))
    temperature = fit_temperature(logits, labels)
    threshold = None
    if false_alarm_rate is not None:
        threshold = threshold_for_false_alarms(max_probability(logits, temperature), false_alarm_rate)
    notes = {
        "fitted_on": data,
        "spectra": len(labels),
        "ece_before": expected_calibration_error(softmax(logits), labels, bins),
        "ece_after": expected_calibration_error(softmax(logits, temperature), labels, bins),
        "bins": bins,
    }
    return Calibration(temperature, threshold, false_alarm_rate, SCORE, notes)


# ------------------------------------------------------------------------------------- held-out data
def split_classes(config: DatasetConfig, held_out: Sequence[int]) -> tuple[DatasetConfig, DatasetConfig]:
    """``config`` split into the classes a model is trained on and the held-out ones, as two configs
    (``<name>_known<k>``, ``<name>_unknown<u>``) with ``config``'s variations, seed and options.

    Labels are renumbered in order within each config. Test-split overrides (which name classes) are
    dropped: each config's test split uses ``config.test``'s shared shift, variation and patterns.
    """
    held = sorted(set(int(c) for c in held_out))
    if not held or held[0] < 0 or held[-1] >= config.num_classes or len(held) >= config.num_classes:
        raise ValueError(
            f"held_out: expected some (not all) of classes 0..{config.num_classes - 1}, got {held}"
        )
    kept = [c for c in range(config.num_classes) if c not in held]
    test = dataclasses.replace(config.test, overrides=())

    def subset(classes: Sequence[int], name: str) -> DatasetConfig:
        return dataclasses.replace(
            config,
            name=name,
            positions=tuple(config.positions[c] for c in classes),
            heights=tuple(config.heights[c] for c in classes),
            test=test,
        )

    return subset(kept, f"{config.name}_known{len(kept)}"), subset(held, f"{config.name}_unknown{len(held)}")


def _labels(labels: Any, n: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers (one per spectrum), got shape {array.shape}")
    return array.astype(np.int64)


__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_FALSE_ALARM_RATE",
    "Calibration",
    "Reliability",
    "SelectiveCurve",
    "auroc",
    "ece_noise_floor",
    "energy_score",
    "expected_calibration_error",
    "fit_calibration",
    "fit_temperature",
    "knn_score",
    "log_softmax",
    "logits_from_probabilities",
    "max_probability",
    "negative_log_likelihood",
    "predictive_entropy",
    "rejected",
    "reliability",
    "selective_accuracy",
    "selective_curve",
    "softmax",
    "split_classes",
    "threshold_for_false_alarms",
]
