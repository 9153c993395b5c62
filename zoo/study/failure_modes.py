"""Misclassification analysis: which failure mode explains confusing one class with another.

The study names three failure modes, and its `challenge` dataset is built around them: a missed
*minor peak*, *overlapping peak positions* and *overlapping intensities*. :func:`failure_mode` assigns
one of them to a (true class, predicted class) pair from the two class fingerprints alone, by this rule.

Tolerances (from the dataset config, so that they follow its variation ranges):

* a peak is **minor** when its height is at most 5 % of its class's highest peak (heights are compared
  relative to the class maximum throughout);
* two peaks are at the **same position** when they are at most ``4 · test.sigma`` apart (the radius of
  the Gaussian kernel the test spectra are rendered with: their profiles overlap);
* the **position window** is ``2 · (position_shift + test.shift)``: a test peak and a training peak of
  one class can be up to ``position_shift + test.shift`` apart either way, so this is the range of
  position offsets seen *within* a class; a between-class offset below it is an overlap;
* the **height window** is ``2 · (height_variation + test.height_variation)``, the same for heights.

The dataset-wide test variations are used; per-class test overrides (which only narrow them, for a few
`benchmark` classes) are not. For `challenge`: 8 points, 160 points and 0.16.

Matching: peaks of the two classes are paired one-to-one, nearest positions first (ties: lower peak
index first). Two major peaks may match up to (excluding) the position window; a minor peak matches
only at the same position, since a weak peak elsewhere is a different feature, not a shifted one.

Each difference between the fingerprints is then one of:

* an unmatched **minor** peak → *minor peak*; an unmatched **major** peak → *other*;
* a matched pair whose heights differ by more than the height window → *other*;
* a matched pair further apart than the same-position tolerance → *position overlap*;
* a matched pair at the same position whose heights differ → *intensity overlap*.

The mode of the pair is *other* if any difference is *other* (the classes differ by more than the
three modes explain); otherwise the first present of *position overlap* > *intensity overlap* >
*minor peak* — the most salient cue the model failed to use (a displaced major peak is a stronger cue
than a height change inside the variation range, which is stronger than a peak of at most 5 %).
Without any difference the fingerprints are equal within resolution: *indistinguishable*.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.study.paper import MINOR_PEAK_FRACTION

MINOR_PEAK = "minor peak"
POSITION_OVERLAP = "position overlap"
INTENSITY_OVERLAP = "intensity overlap"
INDISTINGUISHABLE = "indistinguishable"
OTHER = "other"
#: Every failure mode, in report order.
MODES: tuple[str, ...] = (MINOR_PEAK, POSITION_OVERLAP, INTENSITY_OVERLAP, INDISTINGUISHABLE, OTHER)
#: Which kind of difference names the pair when several are present (first wins).
_PRECEDENCE: tuple[str, ...] = (OTHER, POSITION_OVERLAP, INTENSITY_OVERLAP, MINOR_PEAK)
#: Relative heights closer than this are equal (tables give heights to 3 decimals).
_HEIGHT_EPS = 1e-6


@dataclass(frozen=True)
class Tolerances:
    """The thresholds of the failure-mode rule (see the module docstring)."""

    same_position: float
    position_window: float
    height_window: float
    minor_fraction: float = MINOR_PEAK_FRACTION

    @classmethod
    def from_config(cls, config: Any) -> Tolerances:
        """Tolerances for a ``synthetic_spectra`` ``DatasetConfig`` (its variation ranges)."""
        return cls(
            same_position=4.0 * float(config.test.sigma),
            position_window=2.0 * (float(config.position_shift) + float(config.test.shift)),
            height_window=2.0 * (float(config.height_variation) + float(config.test.height_variation)),
        )

    def describe(self) -> str:
        """One line stating the thresholds."""
        return (
            f"minor peak ≤ {100 * self.minor_fraction:g} % of the class maximum; same position ≤ "
            f"{self.same_position:g} points; position window < {self.position_window:g} points; "
            f"height window ≤ {self.height_window:g} (relative height)"
        )


@dataclass(frozen=True)
class Peak:
    """One peak of a class fingerprint: integer position and height relative to the class maximum."""

    position: int
    height: float

    @property
    def label(self) -> str:
        return f"{self.position} ({self.height:.3g})"


@dataclass(frozen=True)
class Difference:
    """One difference between two fingerprints: its kind (a failure mode or *other*) and a description."""

    kind: str
    text: str


@dataclass(frozen=True)
class Comparison:
    """The result of comparing two fingerprints: the failure mode and the differences that decided it."""

    mode: str
    differences: tuple[Difference, ...]

    @property
    def evidence(self) -> str:
        """The differences of the deciding kind, as one short line."""
        if self.mode == INDISTINGUISHABLE:
            return "same peaks and heights within tolerance"
        return "; ".join(d.text for d in self.differences if d.kind == self.mode)


def fingerprint(config: Any, class_index: int) -> tuple[Peak, ...]:
    """The peaks of one class of ``config``, heights relative to the class maximum."""
    n_classes = len(config.positions)
    if not 0 <= class_index < n_classes:
        raise ValueError(f"class: {class_index} is not a class index of this dataset (0 … {n_classes - 1})")
    positions, heights = config.positions[class_index], config.heights[class_index]
    if not positions or len(positions) != len(heights) or max(heights) <= 0:
        raise ValueError(f"class {class_index}: needs as many positions as heights and a positive maximum")
    top = float(max(heights))
    return tuple(Peak(int(p), float(h) / top) for p, h in zip(positions, heights, strict=True))


def _can_match(a: Peak, b: Peak, tol: Tolerances) -> bool:
    """Two major peaks match within the position window; a minor peak only at the same position."""
    distance = abs(a.position - b.position)
    if a.height > tol.minor_fraction and b.height > tol.minor_fraction:
        return distance < tol.position_window
    return distance <= tol.same_position


def _match(true_peaks: Sequence[Peak], pred_peaks: Sequence[Peak], tol: Tolerances) -> list[tuple[int, int]]:
    """One-to-one peak pairs (indices into both sequences), nearest positions first."""
    candidates = sorted(
        (abs(a.position - b.position), i, j)
        for i, a in enumerate(true_peaks)
        for j, b in enumerate(pred_peaks)
        if _can_match(a, b, tol)
    )
    used_true: set[int] = set()
    used_pred: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_true and j not in used_pred:
            used_true.add(i)
            used_pred.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def _pair_difference(a: Peak, b: Peak, tol: Tolerances) -> Difference | None:
    """The difference between two matched peaks (``a`` of the true class, ``b`` of the predicted)."""
    shift, change = b.position - a.position, b.height - a.height
    heights = f"height {a.height:.3g} → {b.height:.3g}"
    if abs(change) > tol.height_window + _HEIGHT_EPS:
        return Difference(OTHER, f"peak {a.position}: {heights} (beyond ±{tol.height_window:g})")
    if abs(shift) > tol.same_position:
        return Difference(POSITION_OVERLAP, f"peak {a.position} → {b.position} (Δ {shift:+d})")
    if abs(change) > _HEIGHT_EPS:
        return Difference(INTENSITY_OVERLAP, f"peak {a.position}: {heights}")
    return None


def _unmatched_difference(peak: Peak, side: str, tol: Tolerances) -> Difference:
    kind = MINOR_PEAK if peak.height <= tol.minor_fraction else OTHER
    word = "minor" if kind == MINOR_PEAK else "major"
    return Difference(kind, f"{word} peak {peak.label} only in {side} class")


def compare(true_peaks: Sequence[Peak], pred_peaks: Sequence[Peak], tol: Tolerances) -> Comparison:
    """Compare two fingerprints and name the failure mode (the rule of the module docstring)."""
    pairs = _match(true_peaks, pred_peaks, tol)
    differences = [_pair_difference(true_peaks[i], pred_peaks[j], tol) for i, j in pairs]
    matched_true = {i for i, _ in pairs}
    matched_pred = {j for _, j in pairs}
    differences += [
        _unmatched_difference(p, "true", tol) for i, p in enumerate(true_peaks) if i not in matched_true
    ]
    differences += [
        _unmatched_difference(p, "predicted", tol) for j, p in enumerate(pred_peaks) if j not in matched_pred
    ]
    found = tuple(d for d in differences if d is not None)
    kinds = {d.kind for d in found}
    mode = next((kind for kind in _PRECEDENCE if kind in kinds), INDISTINGUISHABLE)
    return Comparison(mode, found)


def compare_classes(config: Any, true_class: int, pred_class: int) -> Comparison:
    """Compare two classes of a dataset config (tolerances from the config)."""
    tol = Tolerances.from_config(config)
    return compare(fingerprint(config, true_class), fingerprint(config, pred_class), tol)


def failure_mode(config: Any, true_class: int, pred_class: int) -> str:
    """The failure mode (one of :data:`MODES`) explaining ``true_class`` predicted as ``pred_class``."""
    return compare_classes(config, true_class, pred_class).mode


@dataclass(frozen=True)
class ConfusedPair:
    """A (true, predicted) class pair, how often it was confused and the comparison of the classes."""

    true: int
    pred: int
    count: int
    comparison: Comparison

    @property
    def mode(self) -> str:
        return self.comparison.mode


@dataclass(frozen=True)
class ConfusionSummary:
    """Misclassifications grouped by class pair (most frequent first) and counted per failure mode."""

    pairs: tuple[ConfusedPair, ...]
    mode_counts: dict[str, int]
    total: int


def summarize(config: Any, samples: Iterable[tuple[int, int]]) -> ConfusionSummary:
    """Group misclassified samples, given as ``(true, pred)`` class pairs, and count them per failure mode."""
    counts = Counter((int(t), int(p)) for t, p in samples)
    for true, pred in counts:
        if true == pred:
            raise ValueError(f"misclassified sample: true and predicted class are both {true}")
    tol = Tolerances.from_config(config)
    pairs = tuple(
        ConfusedPair(t, p, n, compare(fingerprint(config, t), fingerprint(config, p), tol))
        for (t, p), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )
    mode_counts = dict.fromkeys(MODES, 0)
    for pair in pairs:
        mode_counts[pair.mode] += pair.count
    return ConfusionSummary(pairs, mode_counts, sum(counts.values()))
