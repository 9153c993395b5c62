"""How well can any classifier do? The Bayes ceiling of a split under the training distribution.

Train and validation samples of class ``c`` (dataset.md §3) move each peak to a uniform integer in
``[p - shift, p + shift - 1]``, draw each varied height uniformly in ``[h - v, h + v]`` and clip it to
``[0, 2]`` (heights of 1.0 stay 1.0 unless ``vary_unit_height``), and draw one sigma for all classes alike.
A peak whose height is clipped to 0 is not in the spectrum: a minor peak of height ``h < v`` vanishes with
probability ``(v - h) / 2v`` (0.15 for ``challenge``'s 0.035 peaks), and the spectrum is then exactly a
sample of the class without that peak. So only the visible peaks (height > 0) count.

Given a sample's visible peaks (what the rendered spectrum shows at best), class ``c'`` can have produced
it when, after some of its vanishable peaks vanished, some one-to-one assignment of the visible peaks to
``c'``'s remaining peaks keeps every position and height in range. Every such way has the same density
for every class (the ranges have the same widths; an exact 1.0 can only come from a fixed peak, so the
classes that fit show as many fixed and varied peaks; the boundary keeps peaks away from the ends) times
the probability that exactly those peaks vanished. So the posterior of ``c'`` is proportional to the sum,
over which of its peaks vanished, of that probability times the number of assignments. The Bayes
classifier picks the class of the largest posterior (a tie at random), and no classifier does better on
average.

The ceiling of a split is that classifier's expected accuracy on the split's samples: an upper bound of
any model's expected accuracy on such data (a model sees the rendered spectrum, which can also hide
overlapping peaks; two peaks on one index are taken as two). For the test split it is the expected
accuracy of a classifier that knows the training distribution exactly and nothing about the test design
(ties broken at random).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from synthetic_spectra.config import HEIGHT_CLIP, DatasetConfig, get_config
from synthetic_spectra.generator import SampleParameters, sample_parameters

#: Tolerance of the height comparisons (the heights are float64 sums of a uniform draw).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Ceiling:
    """The Bayes ceiling of one split."""

    split: str
    size: int
    ceiling: float  # expected accuracy of the Bayes classifier (ties broken at random)
    ambiguous: int  # samples more than one class could have produced
    confusable: dict[int, tuple[int, ...]]  # class -> classes that produced some of its ambiguous samples


@dataclass(frozen=True)
class _Shown:
    """What the classes can show with ``k`` visible peaks: one row per class and set of vanished peaks."""

    labels: np.ndarray  # [t] class of each row
    positions: np.ndarray  # [t, k] the visible peaks' base positions, ascending
    heights: np.ndarray  # [t, k] their base heights, in the same order
    probability: np.ndarray  # [t] probability that exactly the row's hidden peaks vanished
    hidden: np.ndarray  # [t] sum of the hidden peaks' base heights


def vanishing_probability(heights: np.ndarray, config: DatasetConfig) -> np.ndarray:
    """Probability that each base height is drawn at or below 0 and clipped to 0 (its peak is invisible)."""
    heights = np.asarray(heights, dtype=np.float64)
    variation = config.height_variation
    if variation > 0:
        below = (HEIGHT_CLIP[0] - (heights - variation)) / (2 * variation)
    else:
        below = (heights <= HEIGHT_CLIP[0]).astype(np.float64)
    varied = np.ones(heights.shape, bool) if config.vary_unit_height else heights != 1.0
    return np.where(varied, np.clip(below, 0.0, 1.0), 0.0)


@functools.lru_cache(maxsize=4)
def _shown(config: DatasetConfig) -> dict[int, _Shown]:
    """Every way each class of ``config`` can look, by number of visible peaks (at least one)."""
    rows: dict[int, list[tuple[int, np.ndarray, np.ndarray, float, float]]] = {}
    for label, (positions, heights) in enumerate(zip(config.positions, config.heights, strict=True)):
        positions, heights = np.array(positions), np.array(heights, dtype=np.float64)
        order = np.argsort(positions, kind="stable")
        positions, heights = positions[order], heights[order]
        vanish = vanishing_probability(heights, config)
        for hidden in itertools.product(*[(False, True) if p > 0 else (False,) for p in vanish]):
            hidden = np.array(hidden, dtype=bool)
            if hidden.all():
                continue  # no visible peak: an all-zero spectrum, not an input
            probability = float(np.prod(vanish[hidden]))  # > 0: only vanishable peaks are ever hidden
            row = (label, positions[~hidden], heights[~hidden], probability, float(heights[hidden].sum()))
            rows.setdefault(int((~hidden).sum()), []).append(row)
    return {
        count: _Shown(*(np.array([row[field] for row in group]) for field in range(5)))
        for count, group in rows.items()
    }


def _visible(positions: np.ndarray, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sample's peaks that the spectrum shows (padding and heights clipped to 0 dropped), by position."""
    positions, heights = np.asarray(positions), np.asarray(heights, dtype=np.float64)
    live = (positions >= 0) & (heights > 0)
    order = np.argsort(positions[live], kind="stable")
    return positions[live][order], heights[live][order]


def _assignments(
    positions: np.ndarray, heights: np.ndarray, base_positions: np.ndarray, base_heights: np.ndarray,
    config: DatasetConfig,
) -> int:  # fmt: skip
    """Number of one-to-one assignments of a sample's peaks to a class's peaks that keep all in range."""
    shift, variation = config.position_shift, config.height_variation
    offsets = positions[:, None] - base_positions[None, :]
    fits = (offsets >= -shift) & (offsets <= max(shift - 1, 0)) if shift else offsets == 0
    fixed = (base_heights == 1.0) & (not config.vary_unit_height)
    height_fits = np.where(
        fixed[None, :],
        np.abs(heights[:, None] - 1.0) <= TOLERANCE,
        np.abs(heights[:, None] - base_heights[None, :]) <= variation + TOLERANCE,
    )
    unit_observed = np.abs(heights - 1.0) <= TOLERANCE
    if not config.vary_unit_height:  # an exact 1.0 comes from a fixed peak (a drawn one: probability 0)
        height_fits &= ~(unit_observed[:, None] & ~fixed[None, :])
    fits &= height_fits
    if not fits.any(axis=1).all() or not fits.any(axis=0).all():
        return 0
    return _count_matchings(fits)


def _count_matchings(fits: np.ndarray) -> int:
    """Perfect matchings of a square boolean matrix (its permanent), by dynamic programming over subsets."""
    count = fits.shape[0]
    ways = np.zeros(1 << count, dtype=object)  # ways[mask]: the first popcount(mask) rows placed on mask
    ways[0] = 1
    for mask in range(1 << count):
        if not ways[mask]:
            continue
        row = mask.bit_count()
        if row == count:
            continue
        for column in np.flatnonzero(fits[row]):
            bit = 1 << int(column)
            if not mask & bit:
                ways[mask | bit] += ways[mask]
    return int(ways[(1 << count) - 1])


def class_weights(positions: np.ndarray, heights: np.ndarray, training: DatasetConfig) -> dict[int, float]:
    """The classes of ``training`` that can have produced a sample's visible peaks, with their likelihoods
    (up to one factor common to all classes: proportional to the posterior).

    ``positions`` and ``heights`` are one sample's peaks as :func:`sample_parameters` gives them; padding
    (position < 0) and peaks clipped to height 0 are not seen. A class's weight sums, over which of its
    peaks vanished, the probability of that times the number of assignments that keep all in range.
    """
    positions, heights = _visible(positions, heights)
    shown = _shown(training).get(positions.size)
    if shown is None:
        return {}
    shift = training.position_shift
    # With equal-width position ranges, some assignment fits only if the sorted one does.
    gap = positions[None, :] - shown.positions
    inside = ((gap >= -shift) & (gap <= max(shift - 1, 0))) if shift else gap == 0
    weights: dict[int, float] = {}
    for row in np.flatnonzero(inside.all(axis=1)):
        found = _assignments(positions, heights, shown.positions[row], shown.heights[row], training)
        if found:
            label = int(shown.labels[row])
            weights[label] = weights.get(label, 0.0) + found * float(shown.probability[row])
    return weights


def nearest_class(positions: np.ndarray, heights: np.ndarray, training: DatasetConfig) -> int | None:
    """The nearest-template rule on a sample's visible peaks (None if no class shows as many peaks).

    A class's template, with any of its vanishable peaks hidden, that shows as many peaks as the sample:
    ``sum |position offset| / shift + sum |height difference| / variation`` over the sorted peaks, plus
    each hidden peak's height / variation (it went from its height to 0); the nearest wins, the lowest
    class on a tie.
    """
    positions, heights = _visible(positions, heights)
    shown = _shown(training).get(positions.size)
    if shown is None:
        return None
    shift, variation = max(training.position_shift, 1), max(training.height_variation, TOLERANCE)
    distances = (
        np.abs(positions[None, :] - shown.positions).sum(axis=1) / shift
        + (np.abs(heights[None, :] - shown.heights).sum(axis=1) + shown.hidden) / variation
    )
    return int(shown.labels[np.argmin(distances)])


@functools.lru_cache(maxsize=2)
def _samples(config: DatasetConfig, split: str) -> SampleParameters:
    """A split's peaks, kept for the next call (the ceiling and the nearest-template rule read the same)."""
    return sample_parameters(config, split)


def _judged(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None
) -> tuple[SampleParameters, DatasetConfig]:
    """The split's samples and the training config (default: ``config``)."""
    return _samples(get_config(config), split), get_config(config if training is None else training)


def split_ceiling(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None = None
) -> Ceiling:
    """The Bayes ceiling of ``config``'s ``split`` under ``training``'s distribution (default: ``config``'s).

    ``config`` and ``training`` must have the same classes; the split's samples are taken as rendered
    (coupled variations included, see :func:`synthetic_spectra.generator.sample_parameters`).
    """
    samples, training = _judged(config, split, training)
    scores = np.empty(samples.labels.size)
    ambiguous, confusable = 0, {}
    for row, label in enumerate(samples.labels):
        weights = class_weights(samples.positions[row], samples.heights[row], training)
        best = max(weights.values(), default=0.0)
        winners = [c for c, weight in weights.items() if weight >= best * (1 - TOLERANCE)]
        scores[row] = 1.0 / len(winners) if int(label) in winners else 0.0
        if len(weights) > 1:
            ambiguous += 1
            others = set(confusable.get(int(label), ())) | (set(weights) - {int(label)})
            confusable[int(label)] = tuple(sorted(others))
    return Ceiling(split, int(samples.labels.size), float(scores.mean()), ambiguous, confusable)


def nearest_template_accuracy(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None = None
) -> float:
    """Accuracy of the nearest-template rule (:func:`nearest_class`) on a split's visible peaks, a
    reference for the ceiling.

    It is how a model that prefers the closer class breaks the ties the Bayes classifier cannot; above
    the ceiling on a split, it shows that split rewards such a preference.
    """
    samples, training = _judged(config, split, training)
    right = sum(
        nearest_class(positions, heights, training) == label
        for label, positions, heights in zip(samples.labels, samples.positions, samples.heights, strict=True)
    )
    return right / samples.labels.size


@dataclass(frozen=True)
class Separability:
    """How far one held-out class's spectra lie from the known classes' training distribution.

    ``config``'s class labels throughout. ``producible``: the share of the class's samples that some known
    class can produce at all (no detector catches them without false alarms on known spectra);
    ``explained``: the share some known class produces at least as likely as the class itself does;
    ``producers``: per known class, the share of the class's samples it can produce; ``cost``: the share
    of the known classes' samples that this class can produce (the false alarms a detector must raise to
    catch every sample of the class); ``bayes_auroc``: the AUROC of the Bayes detector of all held-out
    classes against this class's samples.
    """

    label: int
    size: int
    nearest: tuple[tuple[int, float, str], ...]  # (known class, template distance, what differs)
    producible: float
    explained: float
    producers: dict[int, float]
    cost: float
    bayes_auroc: float


def _sorted_template(config: DatasetConfig, label: int) -> tuple[np.ndarray, np.ndarray]:
    positions, heights = np.array(config.positions[label]), np.array(config.heights[label], np.float64)
    order = np.argsort(positions, kind="stable")
    return positions[order], heights[order]


def _hidden_sets(heights: np.ndarray, config: DatasetConfig) -> list[np.ndarray]:
    """Every set of a template's peaks that can vanish together, leaving at least one (none first)."""
    vanish = vanishing_probability(heights, config)
    sets = (
        np.array(h, bool) for h in itertools.product(*[(False, True) if v > 0 else (False,) for v in vanish])
    )
    return [hidden for hidden in sets if not hidden.all()]


def template_match(config: DatasetConfig, first: int, second: int) -> tuple[float, str]:
    """How far class ``second``'s template is from class ``first``'s, and what differs.

    The distance of :func:`nearest_class`: over the two templates with some of their vanishable peaks
    hidden (each hidden peak costs its height / variation) and as many peaks left, ``sum |position offset|
    / shift + sum |height difference| / variation`` in position order, the smallest (inf if no way leaves
    as many peaks). The words say it peak by peak: ``"peak at 1300 → 1230 (-70 points)"``, ``"peak at 920
    height 0.155 → 0.08"``, ``"minor peak at 2750 (0.035) absent"``.
    """
    (pa, ha), (pb, hb) = _sorted_template(config, first), _sorted_template(config, second)
    shift, variation = max(config.position_shift, 1), max(config.height_variation, TOLERANCE)
    best: tuple[float, str] = (float("inf"), f"{pa.size} peaks against {pb.size}")
    for hidden_a in _hidden_sets(ha, config):
        for hidden_b in _hidden_sets(hb, config):
            if (~hidden_a).sum() != (~hidden_b).sum():
                continue
            xa, ya, xb, yb = pa[~hidden_a], ha[~hidden_a], pb[~hidden_b], hb[~hidden_b]
            distance = float(
                np.abs(xa - xb).sum() / shift
                + (np.abs(ya - yb).sum() + ha[hidden_a].sum() + hb[hidden_b].sum()) / variation
            )
            if distance >= best[0]:
                continue
            words = [f"peak at {p} ({h:g}) absent" for p, h in zip(pa[hidden_a], ha[hidden_a], strict=True)]
            words += [f"peak at {p} ({h:g}) added" for p, h in zip(pb[hidden_b], hb[hidden_b], strict=True)]
            for p1, p2, h1, h2 in zip(xa, xb, ya, yb, strict=True):
                if p1 != p2:
                    words.append(f"peak at {p1} → {p2} ({p2 - p1:+d} points)")
                if abs(h1 - h2) > TOLERANCE:
                    words.append(f"peak at {p1} height {h1:g} → {h2:g}")
            best = (distance, ", ".join(words) or "the same template")
    return best


def held_out_separability(
    config: DatasetConfig,
    held_out: list[int],
    known_samples: SampleParameters,
    unknown_samples: SampleParameters,
    nearest: int = 2,
) -> list[Separability]:
    """Per held-out class of ``config``: its ``nearest`` known classes by template, and how much of it
    the known classes' training distribution explains (:class:`Separability`).

    ``known_samples`` and ``unknown_samples`` are :func:`sample_parameters` of the known and held-out
    configs of :func:`zoo.inference.calibration.split_classes` (labels renumbered in order within each);
    every sample is judged under ``config``'s distribution with :func:`class_weights`. The Bayes detector
    scores a sample by the posterior of "held out" (the held-out classes' mean likelihood against the known
    classes', equal priors): by the Neyman-Pearson lemma no detector, seeing the spectra, has a larger AUROC
    on these samples.
    """
    from zoo.inference.calibration import auroc

    held = sorted(held_out)
    known = [c for c in range(config.num_classes) if c not in held]

    def likelihoods(samples: SampleParameters, names: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """[n, classes] weights under ``config`` and the samples' labels in ``config``'s numbering."""
        table = np.zeros((samples.labels.size, config.num_classes))
        for row in range(samples.labels.size):
            for label, weight in class_weights(samples.positions[row], samples.heights[row], config).items():
                table[row, label] = weight
        return table, np.array(names)[samples.labels]

    known_table, _ = likelihoods(known_samples, known)
    unknown_table, labels = likelihoods(unknown_samples, held)

    def bayes_known_score(table: np.ndarray) -> np.ndarray:  # higher: more like the known classes
        p_known, p_held = table[:, known].mean(axis=1), table[:, held].mean(axis=1)
        return p_known / np.maximum(p_known + p_held, np.finfo(float).tiny)

    known_scores, unknown_scores = bayes_known_score(known_table), bayes_known_score(unknown_table)
    result = []
    for label in held:
        mine = unknown_table[labels == label]
        by_known = mine[:, known]
        matches = sorted((*template_match(config, label, k), k) for k in known)
        result.append(
            Separability(
                label=label,
                size=int(mine.shape[0]),
                nearest=tuple(
                    (k, distance, words) for distance, words, k in matches[:nearest] if np.isfinite(distance)
                ),
                producible=float((by_known > 0).any(axis=1).mean()),
                explained=float((by_known.max(axis=1) >= mine[:, label] * (1 - TOLERANCE)).mean()),
                producers={
                    k: float(share)
                    for k, share in zip(known, (by_known > 0).mean(axis=0), strict=True)
                    if share > 0
                },
                cost=float((known_table[:, label] > 0).mean()),
                bayes_auroc=auroc(known_scores, unknown_scores[labels == label]),
            )
        )
    return result


def bayes_detection_auroc(separability: list[Separability]) -> float:
    """The Bayes detector's AUROC over all held-out samples (the per-class AUROCs weighted by size)."""
    sizes = np.array([s.size for s in separability], float)
    return float(np.dot(sizes, [s.bayes_auroc for s in separability]) / sizes.sum())


__all__ = [
    "Ceiling",
    "Separability",
    "bayes_detection_auroc",
    "class_weights",
    "held_out_separability",
    "nearest_class",
    "nearest_template_accuracy",
    "split_ceiling",
    "template_match",
    "vanishing_probability",
]
