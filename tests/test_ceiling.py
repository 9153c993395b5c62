"""The Bayes ceiling of a split (zoo.study.ceiling) on configs where it is known in closed form."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from synthetic_spectra.config import DatasetConfig, TestSpec
from synthetic_spectra.generator import sample_parameters
from synthetic_spectra.options import Coupling
from zoo.study.ceiling import _count_matchings, nearest_template_accuracy, split_ceiling


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
