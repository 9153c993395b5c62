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
* **a feature-space rule** — :class:`FeatureDistance`: :func:`knn_score` of a spectrum's features (the
  input of the softmax layer) against a bank of training spectra's features, with its own threshold; a
  spectrum unlike every training spectrum scores low even where the softmax is confident;
* **a confidence map** — :class:`ConfidenceMap` (:func:`fit_confidence_map`): a non-decreasing
  piecewise-linear map from the temperature-scaled top probability to the chance that the prediction is
  right (an isotonic regression fitted on many labelled spectra); it corrects a miscalibration one
  temperature cannot (the ranking of classes and of spectra unchanged);
* :class:`Calibration` — temperature, threshold, (optionally) the confidence map and the feature rule as
  stored in an export's ``metadata.json`` (``"calibration"``); an export without one has temperature 1 and
  no threshold;
* :func:`split_classes` — a dataset config split into the classes a model is trained on and held-out
  classes whose spectra play the unknowns.

Logits are the inputs of the final softmax. For a model that only gives probabilities, ``log(p)`` is the
same up to a constant per spectrum, which none of these functions depends on.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
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
#: The score of the feature-space rule (:class:`FeatureDistance`).
FEATURE_SCORE = "knn_feature_distance"
#: Neighbours of the k-NN score with the full training split as bank (50 spectra per class).
DEFAULT_K = 10
#: The share of the false-alarm budget the softmax threshold takes when a feature rule is fitted beside it
#: (:func:`fit_calibration`); the feature rule takes what is left of the budget on the same spectra.
DEFAULT_SOFTMAX_SHARE = 0.5
#: The largest feature bank shipped by default (bytes, float16): presets keep weights and bank under 15 MB.
MAX_BANK_BYTES = 4_000_000
#: The fewest labelled spectra :func:`fit_confidence_map` accepts: an isotonic map fitted on fewer follows
#: the noise of its spectra (a validation split of a few hundred) rather than the model.
MIN_MAP_SPECTRA = 2000


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
    """Bin spectra by confidence (the top probability; ``bins`` equal-width bins on [0, 1], each closed on
    the right, the first also on the left) and compare each bin's mean confidence with its accuracy."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = _labels(labels, len(probabilities))
    return confidence_reliability(probabilities.max(axis=1), probabilities.argmax(axis=1) == labels, bins)


def confidence_reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> Reliability:
    """:func:`reliability` of a confidence per spectrum (e.g. a recalibrated top probability) and whether
    the prediction it belongs to is right."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
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


def confidence_noise_floor(
    confidence: np.ndarray, bins: int = DEFAULT_BINS, draws: int = 50, seed: int = 0
) -> float:
    """:func:`ece_noise_floor` for a confidence per spectrum (e.g. a mapped top probability, which has no
    probability vector): the mean ECE (:func:`confidence_reliability`) when each prediction is right with
    exactly its confidence, ``draws`` times."""
    confidence = np.asarray(confidence, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                confidence_reliability(confidence, rng.uniform(size=len(confidence)) < confidence, bins).ece
                for _ in range(draws)
            ]
        )
    )


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


def unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float64; a zero row stays zero): the k-NN score's normalisation."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def knn_score(
    reference: np.ndarray, features: np.ndarray, k: int = DEFAULT_K, chunk: int = 512
) -> np.ndarray:
    """Negative distance from each of ``features`` to its ``k``-th nearest neighbour among ``reference``
    (both L2-normalised per row; higher: more like the reference, e.g. the training spectra's features).

    A score on the model's features rather than its softmax: a spectrum unlike every training spectrum
    scores low even where the softmax is confident.
    """
    reference, features = unit_rows(reference), unit_rows(features)
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be between 1 and the {len(reference)} reference rows, got {k!r}")
    scores = []
    for start in range(0, len(features), chunk):
        # |a - b|^2 = 2 - 2 a.b for unit vectors
        squared = np.maximum(2.0 - 2.0 * features[start : start + chunk] @ reference.T, 0.0)
        scores.append(-np.sqrt(np.partition(squared, k - 1, axis=1)[:, k - 1]))
    return np.concatenate(scores)


def feature_bank(features: np.ndarray) -> np.ndarray:
    """The bank an export stores: training spectra's features as L2-normalised rows in float16."""
    return unit_rows(features).astype(np.float16)


def per_class_subset(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` spectra of each class (in the split's order): a smaller bank
    that keeps every class."""
    labels = np.asarray(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]))


def bank_per_class(num_classes: int, features: int, available: int, max_bytes: int = MAX_BANK_BYTES) -> int:
    """How many training spectra per class a float16 bank of ``features``-long vectors keeps within
    ``max_bytes`` (all ``available`` where they fit; at least one)."""
    return int(max(1, min(available, max_bytes // (2 * num_classes * features))))


def scaled_k(per_class: int, full_per_class: int, k: int = DEFAULT_K) -> int:
    """The k that keeps the k-NN score's density quantile when the bank keeps ``per_class`` of
    ``full_per_class`` spectra per class: ``round(k · per_class / full_per_class)``, at least 1."""
    return max(1, min(k, round(k * per_class / full_per_class)))


def threshold_for_false_alarms(known_scores: np.ndarray, rate: float = DEFAULT_FALSE_ALARM_RATE) -> float:
    """The score below which a spectrum is called unknown, such that at most ``rate`` of ``known_scores``
    fall below it (halfway between the highest score rejected and the lowest accepted: a threshold that
    does not sit on a spectrum's own score, which float32 and float64 may round to either side)."""
    scores = np.sort(np.asarray(known_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("threshold_for_false_alarms needs at least one known score")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    return _threshold_rejecting(scores, math.floor(rate * scores.size + 1e-9))


def joint_threshold(scores: np.ndarray, already_rejected: np.ndarray, rate: float) -> float:
    """The threshold on ``scores`` such that, with the spectra ``already_rejected`` by another rule, at
    most ``rate`` of all spectra are rejected (placed as :func:`threshold_for_false_alarms` places its
    own; ``-inf`` where the other rule alone uses up the budget)."""
    scores, already = np.asarray(scores, np.float64), np.asarray(already_rejected, dtype=bool)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    budget = math.floor(rate * scores.size + 1e-9) - int(already.sum())
    remaining = np.sort(scores[~already])
    if budget < 0 or remaining.size == 0:
        return -math.inf
    return _threshold_rejecting(remaining, min(budget, remaining.size - 1))


def _threshold_rejecting(ascending: np.ndarray, count: int) -> float:
    """A threshold with (at most, with ties) the ``count`` lowest of ``ascending`` scores strictly below."""
    if count == 0:
        return float(ascending[0])
    return float((ascending[count - 1] + ascending[count]) / 2.0)


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


# -------------------------------------------------------------------------------- the confidence map
_MAP = "calibration.confidence_map"
_MAP_FIELDS = {"x", "y", "notes"}


@dataclasses.dataclass(frozen=True, eq=False)
class ConfidenceMap:
    """A non-decreasing piecewise-linear map from a top probability (after temperature) to the chance that
    the prediction is right: knots ``x`` (strictly increasing, in [0, 1]) and ``y`` (non-decreasing, in
    [0, 1]); between knots it interpolates linearly, outside them it holds the end values.
    """

    x: np.ndarray
    y: np.ndarray
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            x, y = (np.asarray(values, dtype=np.float64) for values in (self.x, self.y))
        except (TypeError, ValueError):
            raise ValueError(f"{_MAP}: x and y must be lists of numbers") from None
        if x.ndim != 1 or x.shape != y.shape or x.size < 1:
            raise ValueError(f"{_MAP}: x and y must be equal-length non-empty lists")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"{_MAP}: x and y must be finite")
        if x.min() < 0.0 or x.max() > 1.0 or y.min() < 0.0 or y.max() > 1.0:
            raise ValueError(f"{_MAP}: x and y must lie in [0, 1]")
        if np.any(np.diff(x) <= 0.0):
            raise ValueError(f"{_MAP}: x must be strictly increasing")
        if np.any(np.diff(y) < 0.0):
            raise ValueError(f"{_MAP}: y must be non-decreasing")
        if not isinstance(self.notes, Mapping):
            raise ValueError(f"{_MAP}.notes must be a mapping")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfidenceMap):
            return NotImplemented
        return (
            np.array_equal(self.x, other.x) and np.array_equal(self.y, other.y) and self.notes == other.notes
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def __call__(self, top_probability: np.ndarray) -> np.ndarray:
        """The mapped confidence of top probabilities (any shape; NaN stays NaN)."""
        values = np.asarray(top_probability, dtype=np.float64)
        return np.where(np.isnan(values), np.nan, np.interp(values, self.x, self.y))

    def to_dict(self) -> dict[str, Any]:
        """The ``metadata.json`` record."""
        return {"x": self.x.tolist(), "y": self.y.tolist(), "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, data: Any) -> ConfidenceMap:
        """Read :meth:`to_dict`'s record (ValueError naming a bad field)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{_MAP} must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _MAP_FIELDS)
        if unknown:
            raise ValueError(f"{_MAP}: unknown field {unknown[0]!r}")
        if "x" not in data or "y" not in data:
            raise ValueError(f"{_MAP}: needs x and y")
        return cls(data["x"], data["y"], _notes(data, _MAP))


def fit_confidence_map(
    top_probability: np.ndarray,
    correct: np.ndarray,
    *,
    min_spectra: int = MIN_MAP_SPECTRA,
    notes: Mapping[str, Any] | None = None,
) -> ConfidenceMap:
    """The isotonic regression of "the prediction is right" (``correct``) on ``top_probability`` (the
    temperature-scaled top probability of the same spectra), as a :class:`ConfidenceMap`: the
    non-decreasing map with the least squared error (:func:`scipy.optimize.isotonic_regression`; equal
    probabilities pooled), kept as the ends of its constant pieces.

    Fit it on labelled spectra the model did not train on, never a test split, and on many of them
    (``min_spectra``; ValueError below): e.g. a fresh draw of the training classes from the generator.
    """
    from scipy.optimize import isotonic_regression

    confidence = np.asarray(top_probability, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if confidence.ndim != 1 or confidence.shape != hits.shape:
        raise ValueError(
            "top_probability and correct must be equal-length 1-D arrays, "
            f"got {confidence.shape}, {hits.shape}"
        )
    if confidence.size < min_spectra:
        raise ValueError(
            f"a confidence map needs at least {min_spectra} labelled spectra, got {confidence.size}: fitted "
            "on fewer it follows their noise (use a larger fresh draw)"
        )
    if not confidence.size:
        raise ValueError("a confidence map needs labelled spectra, got none")
    if not np.isfinite(confidence).all() or confidence.min() < 0.0 or confidence.max() > 1.0:
        raise ValueError("top_probability must be finite and lie in [0, 1]")
    if not np.isin(hits, (0.0, 1.0)).all():
        raise ValueError("correct must say, per spectrum, whether its prediction is right (True/False, 1/0)")
    x, inverse = np.unique(confidence, return_inverse=True)
    weights = np.bincount(inverse).astype(np.float64)
    fitted = isotonic_regression(np.bincount(inverse, hits) / weights, weights=weights).x
    fitted = np.clip(fitted, 0.0, 1.0)
    # a constant piece is fixed by its first and last knot: drop the knots inside it
    changes = np.flatnonzero(np.diff(fitted) != 0.0)
    keep = np.unique(np.concatenate([[0, x.size - 1], changes, changes + 1]))
    return ConfidenceMap(x[keep], fitted[keep], dict(notes or {}, spectra=int(confidence.size)))


# ------------------------------------------------------------------------------- the shipped record
#: The lowest :func:`knn_score` of unit vectors (distance 2): a feature threshold there rejects nothing.
LOWEST_FEATURE_SCORE = -2.0
_RULE = "calibration.feature_distance"
_FEATURE_FIELDS = {"score", "k", "threshold", "bank_size", "features", "notes"}


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureDistance:
    """The feature-space rule an export stores beside the softmax threshold: a spectrum whose
    :func:`knn_score` against ``bank`` (training spectra's features, :func:`feature_bank`) is below
    ``threshold`` is called unknown.

    ``bank`` is None in a record read without its vectors (``metadata.json`` alone: an export's SavedModel
    holds them and computes the score itself); ``bank_size`` and ``features`` give its shape.
    """

    threshold: float
    k: int = DEFAULT_K
    bank: np.ndarray | None = dataclasses.field(default=None, repr=False)
    bank_size: int = 0
    features: int = 0
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        threshold, k = self.threshold, self.k
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f"{_RULE}.threshold must be a number, got {threshold!r:.60}")
        if not LOWEST_FEATURE_SCORE <= threshold <= 0.0:
            raise ValueError(f"{_RULE}.threshold must lie in [-2, 0], got {threshold!r}")
        object.__setattr__(self, "threshold", float(threshold))
        if self.bank is not None:
            bank = np.asarray(self.bank)
            if bank.ndim != 2 or not len(bank) or not np.isfinite(bank).all():
                raise ValueError(
                    f"feature bank: expected finite vectors [n, features], got shape {bank.shape}"
                )
            object.__setattr__(self, "bank", bank.astype(np.float16))
            for name, size in (("bank_size", bank.shape[0]), ("features", bank.shape[1])):
                if getattr(self, name) not in (0, size):
                    raise ValueError(
                        f"feature bank: {size} {'rows' if name == 'bank_size' else 'features'}, but the "
                        f"record says {name} {getattr(self, name)}"
                    )
                object.__setattr__(self, name, int(size))
        for name in ("k", "bank_size", "features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "k" else 0):
                raise ValueError(f"{_RULE}.{name} must be a non-negative integer")
        if self.bank_size and not k <= self.bank_size:
            raise ValueError(f"{_RULE}.k must be at most the bank's {self.bank_size} rows")
        if not isinstance(self.notes, Mapping):
            raise ValueError(f"{_RULE}.notes must be a mapping")

    def scores(self, features: np.ndarray) -> np.ndarray:
        """:func:`knn_score` of features ``[n, features]`` against the bank (higher: more like training)."""
        if self.bank is None:
            raise ValueError("feature distance: this record was read without its bank")
        return knn_score(self.bank, features, self.k)

    def to_dict(self) -> dict[str, Any]:
        """The ``metadata.json`` record (the bank's vectors are stored apart)."""
        return {
            "score": FEATURE_SCORE,
            "k": self.k,
            "threshold": self.threshold,
            "bank_size": self.bank_size,
            "features": self.features,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Any, bank: np.ndarray | None = None) -> FeatureDistance:
        """Read :meth:`to_dict`'s record (ValueError naming a bad field), with its bank if given."""
        if not isinstance(data, Mapping):
            raise ValueError(f"calibration.feature_distance must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _FEATURE_FIELDS)
        if unknown:
            raise ValueError(f"calibration.feature_distance: unknown field {unknown[0]!r}")
        if data.get("score", FEATURE_SCORE) != FEATURE_SCORE:
            raise ValueError(f"{_RULE}.score must be {FEATURE_SCORE!r}")
        if "threshold" not in data:
            raise ValueError("calibration.feature_distance: no threshold")
        return cls(
            threshold=data["threshold"],
            k=data.get("k", DEFAULT_K),
            bank=bank,
            bank_size=data.get("bank_size", 0),
            features=data.get("features", 0),
            notes=_notes(data, _RULE),
        )

    def with_bank(self, bank: np.ndarray) -> FeatureDistance:
        """This rule with its bank's vectors (checked against ``bank_size`` and ``features``)."""
        return dataclasses.replace(self, bank=bank)


_FIELDS = {
    "temperature", "threshold", "false_alarm_rate", "score", "notes", "feature_distance", "confidence_map"
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What an export stores about its confidence: a temperature, optionally an unknown threshold, a
    confidence map (:class:`ConfidenceMap`) and a feature-space rule (:class:`FeatureDistance`).

    ``predict`` returns ``softmax(logits / temperature)``; the confidence in the best class is its
    probability there, passed through ``confidence_map`` where there is one. A spectrum whose highest such
    probability (before the map) is below ``threshold``, or whose feature score is below the feature rule's
    threshold, is called unknown.
    ``false_alarm_rate`` is the share of the validation split the two rules reject together; ``notes``
    records how they were chosen (data, rates, ECE).
    """

    temperature: float = 1.0
    threshold: float | None = None
    false_alarm_rate: float | None = None
    score: str = SCORE
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    feature_distance: FeatureDistance | None = dataclasses.field(default=None, compare=False)
    confidence_map: ConfidenceMap | None = None

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
        if self.feature_distance is not None and not isinstance(self.feature_distance, FeatureDistance):
            raise ValueError("calibration.feature_distance must be a FeatureDistance")
        if self.confidence_map is not None and not isinstance(self.confidence_map, ConfidenceMap):
            raise ValueError("calibration.confidence_map must be a ConfidenceMap")

    @property
    def is_identity(self) -> bool:
        """Temperature 1, no threshold, no map: what an export without calibration means."""
        return (
            self.temperature == 1.0
            and self.threshold is None
            and self.feature_distance is None
            and self.confidence_map is None
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``metadata.json`` record (a feature rule's bank is stored apart)."""
        record = {
            "temperature": self.temperature,
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "score": self.score,
            "notes": dict(self.notes),
        }
        if self.feature_distance is not None:
            record["feature_distance"] = self.feature_distance.to_dict()
        if self.confidence_map is not None:
            record["confidence_map"] = self.confidence_map.to_dict()
        return record

    @classmethod
    def from_dict(cls, data: Any, bank: np.ndarray | None = None) -> Calibration:
        """Read :meth:`to_dict`'s record (ValueError naming a bad field); None or absent → the identity.
        ``bank``: the feature rule's vectors, where the record has one and the caller has them."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"calibration must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise ValueError(f"calibration: unknown field {unknown[0]!r}")
        feature, confidence_map = data.get("feature_distance"), data.get("confidence_map")
        return cls(
            temperature=data.get("temperature", 1.0),
            threshold=data.get("threshold"),
            false_alarm_rate=data.get("false_alarm_rate"),
            score=data.get("score", SCORE),
            notes=_notes(data, "calibration"),
            feature_distance=None if feature is None else FeatureDistance.from_dict(feature, bank),
            confidence_map=None if confidence_map is None else ConfidenceMap.from_dict(confidence_map),
        )

    def with_bank(self, bank: np.ndarray | None) -> Calibration:
        """This calibration with its feature rule's bank attached (ValueError: no rule, or a bank of
        another shape than the record's)."""
        if self.feature_distance is None:
            raise ValueError("calibration: no feature rule to attach a bank to")
        if bank is None:
            raise ValueError("calibration: its feature rule's bank is missing")
        return dataclasses.replace(self, feature_distance=self.feature_distance.with_bank(bank))

    def with_confidence_map(
        self, logits: np.ndarray, labels: np.ndarray, notes: Mapping[str, Any] | None = None
    ) -> Calibration:
        """This calibration with a :class:`ConfidenceMap` fitted (:func:`fit_confidence_map`) on labelled
        spectra's logits ``[n, classes]``, on top of this calibration's temperature. Use spectra the model
        never trained on, never a test split, and many of them (at least :data:`MIN_MAP_SPECTRA`)."""
        labels = _labels(labels, len(logits))
        right = np.asarray(logits).argmax(axis=1) == labels
        confidence_map = fit_confidence_map(max_probability(logits, self.temperature), right, notes=notes)
        return dataclasses.replace(self, confidence_map=confidence_map)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float32) of logits ``[n, classes]``."""
        return softmax(logits, self.temperature).astype(np.float32)

    def confidence(self, logits: np.ndarray) -> np.ndarray:
        """The confidence in the best class (float32 ``[n]``): its probability after temperature, passed
        through the confidence map where the calibration has one."""
        return self._confidence_of_top(max_probability(logits, self.temperature))

    def unknown(self, logits: np.ndarray, feature_scores: np.ndarray | None = None) -> np.ndarray:
        """Which spectra are called unknown (boolean ``[n]``): calibrated top probability below
        ``threshold``, or (with a feature rule and the spectra's ``feature_scores``) feature score below
        its threshold."""
        return self._unknown_of_top(max_probability(logits, self.temperature), feature_scores)

    def assess(
        self, logits: np.ndarray, feature_scores: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probabilities, confidence, unknown)`` of logits, as :meth:`probabilities`, :meth:`confidence`
        and :meth:`unknown` give them, from one softmax."""
        probabilities = softmax(logits, self.temperature)
        top = probabilities.max(axis=-1)
        return (
            probabilities.astype(np.float32),
            self._confidence_of_top(top),
            self._unknown_of_top(top, feature_scores),
        )

    def _confidence_of_top(self, top: np.ndarray) -> np.ndarray:
        return (top if self.confidence_map is None else self.confidence_map(top)).astype(np.float32)

    def _unknown_of_top(self, top: np.ndarray, feature_scores: np.ndarray | None) -> np.ndarray:
        flags = rejected(top, self.threshold)
        if self.feature_distance is not None and feature_scores is not None:
            flags |= rejected(feature_scores, self.feature_distance.threshold)
        return flags


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    false_alarm_rate: float | None = DEFAULT_FALSE_ALARM_RATE,
    bins: int = DEFAULT_BINS,
    data: str = "",
    features: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    k: int = DEFAULT_K,
    softmax_share: float = DEFAULT_SOFTMAX_SHARE,
    bank_notes: Mapping[str, Any] | None = None,
) -> Calibration:
    """Temperature fitted on ``(logits, labels)`` (a validation split) and, unless ``false_alarm_rate`` is
    None, the threshold that rejects that fraction of the same spectra; ``notes`` records ECE before/after.

    With ``reference`` (features of the training spectra, :func:`zoo.inference.logits.predict_features`)
    and ``features`` (the same spectra's as ``logits``), the export also gets a :class:`FeatureDistance`
    rule with those training features as its bank. The budget is then shared: the softmax threshold
    rejects ``softmax_share · false_alarm_rate`` of the validation spectra, and the feature threshold is
    the largest that keeps the two rules *together* at ``false_alarm_rate`` (:func:`joint_threshold`).
    ``bank_notes`` (e.g. how the bank was chosen) go into the rule's notes.
    """
    labels = _labels(labels, len(logits))
    temperature = fit_temperature(logits, labels)
    at_bound = next((b for b in TEMPERATURE_RANGE if math.isclose(temperature, b, rel_tol=1e-4)), None)
    if at_bound is not None:  # e.g. every validation spectrum right: the likelihood wants T -> 0
        warnings.warn(
            f"the temperature fitted on {data or 'these spectra'} sits at its bound {at_bound:g}: the "
            "spectra do not pin it down (all predicted right, or none); calibrate on more or harder spectra",
            stacklevel=2,
        )
    with_features = reference is not None or features is not None
    if with_features and (reference is None or features is None or false_alarm_rate is None):
        raise ValueError("a feature rule needs reference and features (and a false_alarm_rate)")
    if not 0.0 <= softmax_share <= 1.0:
        raise ValueError(f"softmax_share must be in [0, 1], got {softmax_share!r}")
    threshold = feature_rule = None
    notes: dict[str, Any] = {"fitted_on": data, "spectra": len(labels)}
    if at_bound is not None:
        notes["temperature_at_bound"] = at_bound
    if false_alarm_rate is not None:
        confidence = max_probability(logits, temperature)
        softmax_rate = false_alarm_rate * (softmax_share if with_features else 1.0)
        threshold = threshold_for_false_alarms(confidence, softmax_rate)
    if with_features:
        bank = feature_bank(reference)
        scores = knn_score(bank, features, k)
        by_softmax = rejected(confidence, threshold)
        feature_threshold = max(joint_threshold(scores, by_softmax, false_alarm_rate), LOWEST_FEATURE_SCORE)
        by_features = rejected(scores, feature_threshold)
        notes.update(
            softmax_false_alarm_rate=float(by_softmax.mean()),
            feature_false_alarm_rate=float(by_features.mean()),
            total_false_alarm_rate=float((by_softmax | by_features).mean()),
            softmax_share=softmax_share,
        )
        feature_rule = FeatureDistance(feature_threshold, k, bank, notes=dict(bank_notes or {}))
    notes.update(
        ece_before=expected_calibration_error(softmax(logits), labels, bins),
        ece_after=expected_calibration_error(softmax(logits, temperature), labels, bins),
        bins=bins,
    )
    return Calibration(temperature, threshold, false_alarm_rate, SCORE, notes, feature_rule)


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


def _notes(data: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A record's ``notes`` (absent or null: none); ValueError naming the field where they are no mapping."""
    notes = data.get("notes")
    if notes is None:
        return {}
    if not isinstance(notes, Mapping):
        raise ValueError(f"{field}.notes must be an object, got {type(notes).__name__}")
    return dict(notes)


def _labels(labels: Any, n: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers (one per spectrum), got shape {array.shape}")
    return array.astype(np.int64)


__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_FALSE_ALARM_RATE",
    "DEFAULT_K",
    "DEFAULT_SOFTMAX_SHARE",
    "FEATURE_SCORE",
    "MAX_BANK_BYTES",
    "MIN_MAP_SPECTRA",
    "Calibration",
    "ConfidenceMap",
    "FeatureDistance",
    "Reliability",
    "SelectiveCurve",
    "auroc",
    "bank_per_class",
    "confidence_noise_floor",
    "ece_noise_floor",
    "energy_score",
    "expected_calibration_error",
    "feature_bank",
    "fit_calibration",
    "fit_confidence_map",
    "fit_temperature",
    "joint_threshold",
    "knn_score",
    "log_softmax",
    "logits_from_probabilities",
    "max_probability",
    "negative_log_likelihood",
    "per_class_subset",
    "predictive_entropy",
    "rejected",
    "reliability",
    "scaled_k",
    "selective_accuracy",
    "selective_curve",
    "softmax",
    "split_classes",
    "threshold_for_false_alarms",
    "unit_rows",
]
