"""The Bayes ceiling of a split (zoo.study.ceiling) on configs where it is known in closed form, and on
`challenge` against peaks read off the rendered spectra."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from synthetic_spectra.config import DatasetConfig, TestSpec, get_config
from synthetic_spectra.generator import generate, render, sample_parameters
from synthetic_spectra.options import Coupling
from zoo.study.ceiling import (
    _count_matchings,
    class_weights,
    nearest_class,
    nearest_template_accuracy,
    split_ceiling,
    vanishing_probability,
)


def single_peaks(first: int, second: int, **changes: object) -> DatasetConfig:
    """Two classes of one peak each (heights 1.0 fixed), jittered by +-50 points."""
    fields = {
        "name": "two", "datapoints": 1000, "boundary": 100, "positions": ((first,), (second,)),
        "heights": ((1.0,), (1.0,)), "n_train": 4000, "n_val": 10, "position_shift": 50,
        "height_variation": 0.05, "sigma_range": (2.0, 3.0), "vary_unit_height": False, "seed": 3,
        "test": TestSpec(shift=30, patterns=("PH", "LH", "RH")),
    }  # fmt: skip
    return DatasetConfig(**{**fields, **changes})


def test_overlapping_position_ranges_give_the_closed_form_ceiling():
    # Positions 450-549 against 480-579: 70 of 100 shared, so 0.3 + 0.7 / 2 = 0.65.
    ceiling = split_ceiling(single_peaks(500, 530), "train")
    assert ceiling.ceiling == pytest.approx(0.65, abs=0.015)
    assert ceiling.confusable == {0: (1,), 1: (0,)}
    assert ceiling.ambiguous == pytest.approx(0.7 * ceiling.size, rel=0.05)


def test_separated_classes_and_the_test_design():
    assert split_ceiling(single_peaks(300, 700), "train").ceiling == 1.0
    # Test spectra at +-30 of 500 and 530: 470 and 560 are one class's only, the other four shared.
    test = split_ceiling(single_peaks(500, 530), "test")
    assert test.size == 6 and test.ceiling == pytest.approx((2 * 1.0 + 4 * 0.5) / 6)


def test_heights_tell_classes_apart_where_positions_cannot():
    config = dataclasses.replace(
        single_peaks(500, 500), positions=((300, 700), (300, 700)), heights=((1.0, 0.5), (1.0, 0.58))
    )
    # Heights 0.45-0.55 against 0.53-0.63: 0.02 of 0.1 shared, so 0.8 + 0.2 / 2 = 0.9.
    assert split_ceiling(config, "train").ceiling == pytest.approx(0.9, abs=0.015)


def test_samples_are_judged_as_rendered_under_the_training_distribution():
    training = single_peaks(300, 700)
    moved = dataclasses.replace(training, coupling=Coupling(shift=100))  # beyond training's +-50
    np.testing.assert_array_equal(
        sample_parameters(moved, "test").positions, sample_parameters(training, "test").positions + 100
    )
    assert split_ceiling(training, "test").ceiling == 1.0
    assert split_ceiling(moved, "test", training).ceiling == 0.0  # no class of training can produce them


def test_the_nearest_template_breaks_the_ties_the_ceiling_cannot():
    config = single_peaks(500, 530)
    # Test spectra at 470, 500, 530 (class 0) and 500, 530, 560 (class 1): the nearest template is right
    # for 470, 560 and the two unshifted ones; 530 (class 0) and 500 (class 1) are nearer the other.
    assert nearest_template_accuracy(config, "test") == pytest.approx(4 / 6)
    assert nearest_template_accuracy(single_peaks(300, 700), "train") == 1.0


def test_matchings_are_the_permanent():
    rng = np.random.default_rng(0)
    for _ in range(100):
        size = int(rng.integers(1, 6))
        fits = rng.random((size, size)) < 0.6
        brute = sum(
            all(fits[i, order[i]] for i in range(size)) for order in itertools.permutations(range(size))
        )
        assert _count_matchings(fits) == brute


def test_a_vanishing_peak_gives_the_closed_form_ceiling():
    # Class 1 is class 0 plus a minor peak of 0.035 +- 0.05: drawn <= 0 (clipped, invisible) in 15 % of
    # its samples, which are then samples of class 0 (1 against 0.15): 1 - 0.15 / 2 = 0.925.
    config = dataclasses.replace(
        single_peaks(500, 500), positions=((500,), (500, 800)), heights=((1.0,), (1.0, 0.035))
    )
    np.testing.assert_allclose(vanishing_probability(np.array([1.0, 0.035, 0.2]), config), [0, 0.15, 0])
    samples = sample_parameters(config, "train")
    assert np.mean(samples.heights[samples.labels == 1, 1] == 0.0) == pytest.approx(0.15, abs=0.02)
    assert split_ceiling(config, "train").ceiling == pytest.approx(0.925, abs=0.015)
    assert nearest_template_accuracy(config, "train") == pytest.approx(0.925, abs=0.015)


@pytest.mark.parametrize(("label", "other"), [(1, 0), (2, 0), (4, 3), (5, 3), (7, 6), (8, 7), (8, 6)])
def test_a_clipped_sample_is_the_other_classes_sample_to_both_rules(label, other):
    # A sample of `label` whose minor peaks were drawn <= 0 and clipped to height 0 renders exactly as a
    # sample of `other` (the class without them): neither rule can tell the two apart.
    config = get_config("challenge")
    rng = np.random.default_rng(label * 10 + other)
    base_positions, base_heights = np.array(config.positions[label]), np.array(config.heights[label])
    shown = np.abs(base_positions[:, None] - np.array(config.positions[other])).min(axis=1) <= 10
    assert (base_heights[~shown] == 0.035).all() and shown.sum() == len(config.positions[other])
    positions = base_positions + rng.integers(-5, 5, base_positions.size)  # inside both classes' ranges
    heights = np.where(base_heights == 1.0, 1.0, base_heights + rng.uniform(-0.03, 0.03, base_heights.size))
    heights = np.where(shown, heights, 0.0)
    spectra = render(
        np.stack([positions, np.where(shown, positions, -1)]), np.stack([heights, heights]),
        np.array([3.3, 3.3]), config.datapoints,
    )  # fmt: skip
    np.testing.assert_array_equal(spectra[0], spectra[1])
    other_sample = (positions[shown], heights[shown])  # a sample of `other`
    weights = class_weights(positions, heights, config)
    assert weights == class_weights(*other_sample, config)
    assert max(weights, key=weights.__getitem__) == other and weights[label] < weights[other]
    assert nearest_class(positions, heights, config) == nearest_class(*other_sample, config) == other


def test_the_published_validation_split_has_clipped_peaks():
    samples = sample_parameters(get_config("challenge"), "validation")
    clipped = ((samples.positions >= 0) & (samples.heights == 0.0)).any(axis=1)
    assert set(samples.labels[clipped]) <= {1, 2, 4, 5, 7, 8} and clipped.sum() >= 5


def peaks_of(spectrum: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The peaks a rendered spectrum shows: apex positions and areas (every kernel sums to 1), for peaks
    further apart than ``window`` plus their kernels' radius."""
    inner = spectrum[1:-1]
    apexes = np.flatnonzero((inner > spectrum[:-2]) & (inner >= spectrum[2:])) + 1
    areas = np.array([spectrum[max(p - window, 0) : p + window + 1].sum() for p in apexes])
    return apexes, areas


def brute_force_weights(
    positions: np.ndarray, heights: np.ndarray, config: DatasetConfig
) -> dict[int, float]:
    """Each class's likelihood of the visible peaks, summed over every set of vanished peaks and every
    permutation: the rule of zoo.study.ceiling written out the long way, for an independent check."""
    shift, variation = config.position_shift, config.height_variation

    def fits(position: int, height: float, p: int, h: float) -> bool:
        close = abs(height - 1.0) < 1e-9 if h == 1.0 else abs(height - h) <= variation + 1e-9
        return -shift <= position - p < shift and close

    weights = {}
    for label, table in enumerate(zip(config.positions, config.heights, strict=True)):
        peaks, total = list(zip(*table, strict=True)), 0.0
        for hidden in itertools.product((False, True), repeat=len(peaks)):
            kept = [peak for peak, gone in zip(peaks, hidden, strict=True) if not gone]
            chance = math.prod(
                0.0 if h == 1.0 else max(0.0, (variation - h) / (2 * variation))
                for (_, h), gone in zip(peaks, hidden, strict=True)
                if gone
            )
            if chance and len(kept) == len(positions):
                for order in itertools.permutations(kept):
                    total += chance * all(map(fits, positions, heights, *zip(*order, strict=True)))
        if total:
            weights[label] = total
    return weights


def test_the_ceiling_of_challenge_validation_from_its_rendered_spectra():
    # Read each spectrum's peaks off the rendered validation split (challenge's peaks are >= 55 points
    # apart, kernels reach 20 at most), weigh the classes the long way: the expected Bayes accuracy is
    # split_ceiling's, 85.00 % (counting the clipped minor peaks as present would give 89.07 %).
    config = get_config("challenge")
    spectra, labels = generate(config, "validation")
    scores = []
    for spectrum, label in zip(spectra, labels, strict=True):
        weights = brute_force_weights(*peaks_of(spectrum, window=25), config)
        best = max(weights.values())
        winners = [c for c, weight in weights.items() if weight > best * (1 - 1e-9)]
        scores.append(1 / len(winners) if label in winners else 0.0)
    assert np.mean(scores) == pytest.approx(split_ceiling(config, "validation").ceiling, abs=1e-12)
    assert split_ceiling(config, "validation").ceiling == pytest.approx(0.85, abs=1e-12)
