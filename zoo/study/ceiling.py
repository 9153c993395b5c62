"""How well can any classifier do? The Bayes ceiling of a split under the training distribution.

Train and validation samples of class ``c`` (dataset.md §3) move each peak to a uniform integer in
``[p - shift, p + shift - 1]``, draw each varied height uniformly in ``[h - v, h + v]`` (heights of 1.0
stay 1.0 unless ``vary_unit_height``) and one sigma for all classes alike. Given a sample's exact peaks
(what the rendered spectrum shows at best), class ``c'`` can have produced it when some one-to-one
assignment of the sample's peaks to ``c'``'s peaks keeps every position and height in range. All such
classes give the sample the same density per assignment (the ranges have the same widths for every
class; the boundary keeps peaks away from the ends), so the posterior of ``c'`` is proportional to its
number of assignments. The Bayes classifier picks the class of the largest posterior (a tie at
random), and no classifier does better on average.

The ceiling of a split is that classifier's expected accuracy on the split's samples: an upper bound of
any model's expected accuracy on such data (a model sees the rendered spectrum, which can hide
overlapping peaks). For the test split it is the expected accuracy of a classifier that knows the
training distribution exactly and nothing about the test design (ties broken at random).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from synthetic_spectra.config import DatasetConfig, get_config
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


@functools.lru_cache(maxsize=2)
def _samples(config: DatasetConfig, split: str) -> SampleParameters:
    """A split's peaks, kept for the next call (the ceiling and the nearest-template rule read the same)."""
    return sample_parameters(config, split)


def _judged(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None
) -> tuple[SampleParameters, DatasetConfig, list[tuple[np.ndarray, np.ndarray]]]:
    """The split's samples, the training config (default: ``config``) and its class templates."""
    samples = _samples(get_config(config), split)
    training = get_config(config if training is None else training)
    templates = [
        (np.array(p), np.array(h)) for p, h in zip(training.positions, training.heights, strict=True)
    ]
    return samples, training, templates


def split_ceiling(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None = None
) -> Ceiling:
    """The Bayes ceiling of ``config``'s ``split`` under ``training``'s distribution (default: ``config``'s).

    ``config`` and ``training`` must have the same classes; the split's samples are taken as rendered
    (coupled variations included, see :func:`synthetic_spectra.generator.sample_parameters`).
    """
    samples, config, base = _judged(config, split, training)
    counts = np.array([len(p) for p, _ in base])
    sorted_base = {c: np.sort(base[c][0]) for c in range(len(base))}
    shift = config.position_shift
    scores = np.empty(samples.labels.size)
    ambiguous, confusable = 0, {}
    for row, label in enumerate(samples.labels):
        live = samples.positions[row] >= 0
        positions, heights = samples.positions[row][live], samples.heights[row][live]
        observed = np.sort(positions)
        weights = {}
        for other in np.flatnonzero(counts == positions.size):
            # With equal-width position ranges, some assignment fits only if the sorted one does.
            gap = observed - sorted_base[other]
            outside = ((gap < -shift) | (gap > shift - 1)) if shift else gap != 0
            if outside.any():
                continue
            found = _assignments(positions, heights, *base[other], config)
            if found:
                weights[int(other)] = found
        best = max(weights.values(), default=0)
        winners = [c for c, weight in weights.items() if weight == best]
        scores[row] = 1.0 / len(winners) if int(label) in winners else 0.0
        if len(weights) > 1:
            ambiguous += 1
            others = set(confusable.get(int(label), ())) | (set(weights) - {int(label)})
            confusable[int(label)] = tuple(sorted(others))
    return Ceiling(split, int(samples.labels.size), float(scores.mean()), ambiguous, confusable)


def nearest_template_accuracy(
    config: str | DatasetConfig, split: str, training: str | DatasetConfig | None = None
) -> float:
    """Accuracy of the nearest-template rule on a split's exact peaks, a reference for the ceiling.

    Each sample goes to the class (with as many peaks) whose sorted peak positions and heights are
    nearest: ``sum |position offset| / shift + sum |height difference| / variation`` with ``training``'s
    ranges. It is how a model that prefers the closer class breaks the ties the Bayes classifier
    cannot; above the ceiling on a split, it shows that split rewards such a preference.
    """
    samples, config, templates = _judged(config, split, training)
    shift, variation = max(config.position_shift, 1), max(config.height_variation, TOLERANCE)
    right = 0
    for label, positions, heights in zip(samples.labels, samples.positions, samples.heights, strict=True):
        live = positions >= 0
        order = np.argsort(positions[live])
        observed, observed_heights = positions[live][order], heights[live][order]
        distances = {
            c: np.abs(observed - p).sum() / shift + np.abs(observed_heights - h).sum() / variation
            for c, (p, h) in enumerate(templates)
            if len(p) == observed.size
        }
        right += min(distances, key=distances.__getitem__) == label
    return right / samples.labels.size


__all__ = ["Ceiling", "nearest_template_accuracy", "split_ceiling"]
