"""Failure modes of misclassifications (zoo.study.failure_modes): the challenge's
groups and hand-built pairs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from synthetic_spectra import get_config
from zoo.study.failure_modes import (
    INDISTINGUISHABLE,
    INTENSITY_OVERLAP,
    MINOR_PEAK,
    MODES,
    OTHER,
    POSITION_OVERLAP,
    Tolerances,
    compare_classes,
    failure_mode,
    summarize,
)

#: The challenge's three groups of nine classes (three triplets each), in class order.
CHALLENGE_GROUPS = (MINOR_PEAK, POSITION_OVERLAP, INTENSITY_OVERLAP)

#: The reference class of the hand-built pairs: major peaks at 1000 and 2000.
BASE = ((1000, 1.0), (2000, 0.5))


def two_class_config(other: tuple[tuple[int, float], ...], base=BASE, shift=50, test_shift=30):
    """A duck-typed dataset config with class 0 = ``base`` and class 1 = ``other`` (position, height)."""
    classes = (base, other)
    return SimpleNamespace(
        positions=tuple(tuple(p for p, _ in c) for c in classes),
        heights=tuple(tuple(h for _, h in c) for c in classes),
        position_shift=shift,
        height_variation=0.05,
        test=SimpleNamespace(shift=test_shift, height_variation=0.03, sigma=2.0),
    )


@pytest.fixture(scope="module")
def challenge():
    return get_config("challenge")


def test_tolerances_follow_the_config(challenge):
    tol = Tolerances.from_config(challenge)
    assert (tol.same_position, tol.position_window) == (8.0, 160.0)  # 4·2; 2·(50 + 30)
    assert tol.height_window == pytest.approx(0.16)  # 2·(0.05 + 0.03)
    assert tol.minor_fraction == 0.05


@pytest.mark.parametrize(
    ("true", "pred", "mode"),
    [(1, 0, MINOR_PEAK), (10, 9, POSITION_OVERLAP), (19, 18, INTENSITY_OVERLAP)],
)
def test_named_challenge_confusions(challenge, true, pred, mode):
    assert failure_mode(challenge, true, pred) == mode


def test_every_within_triplet_confusion_gets_its_groups_mode(challenge):
    triplet_pairs = [(t, p) for t in range(27) for p in range(27) if t != p and t // 3 == p // 3]
    assert len(triplet_pairs) == 9 * 6
    wrong = {(t, p): failure_mode(challenge, t, p) for t, p in triplet_pairs}
    wrong = {pair: mode for pair, mode in wrong.items() if mode != CHALLENGE_GROUPS[pair[0] // 9]}
    assert wrong == {}


def test_confusions_across_triplets_are_other(challenge):
    # Different triplets share no near-duplicate fingerprints (0 vs 9: same positions, swapped heights).
    modes = {failure_mode(challenge, t, p) for t in range(27) for p in range(27) if t // 3 != p // 3}
    assert modes == {OTHER}


@pytest.mark.parametrize(
    ("other", "mode"),
    [
        (((1000, 1.0), (2000, 0.5), (3000, 0.04)), MINOR_PEAK),  # an extra 4 % peak
        (((1000, 1.0),), OTHER),  # a missing 50 % peak
        (((1000, 1.0), (2000, 0.5), (3000, 0.06)), OTHER),  # 6 % is not minor
        (((1000, 1.0), (2100, 0.5)), POSITION_OVERLAP),
        (((1000, 1.0), (2159, 0.5)), POSITION_OVERLAP),  # just inside 2·(50 + 30)
        (((1000, 1.0), (2160, 0.5)), OTHER),  # at the window: unmatched major peaks
        (((1000, 1.0), (2000, 0.6)), INTENSITY_OVERLAP),
        (((1000, 1.0), (2000, 0.66)), INTENSITY_OVERLAP),  # exactly the window 2·(0.05 + 0.03)
        (((1000, 1.0), (2000, 0.7)), OTHER),
        (((1000, 1.0), (2005, 0.6)), INTENSITY_OVERLAP),  # 5 points is the same position (≤ 4σ)
        (((1000, 1.0), (2009, 0.5)), POSITION_OVERLAP),  # 9 points is not
        (((1000, 1.0), (2005, 0.5)), INDISTINGUISHABLE),  # jitter only
        (((1000, 2.0), (2000, 1.0)), INDISTINGUISHABLE),  # heights are relative to the class maximum
        # precedence: other > position overlap > intensity overlap > minor peak
        (((1000, 1.0), (2100, 0.5), (3000, 0.03)), POSITION_OVERLAP),
        (((1000, 1.0), (2000, 0.6), (3000, 0.03)), INTENSITY_OVERLAP),
        (((1080, 1.0), (2000, 0.6)), POSITION_OVERLAP),
        (((1080, 1.0), (2000, 0.5), (4000, 0.3)), OTHER),
    ],
)
def test_hand_built_pairs(other, mode):
    config = two_class_config(other)
    assert failure_mode(config, 0, 1) == mode
    assert failure_mode(config, 1, 0) == mode  # the rule is symmetric


def test_a_displaced_minor_peak_is_a_minor_peak_not_a_position_overlap():
    base = ((1000, 1.0), (3000, 0.03))
    config = two_class_config(((1000, 1.0), (3100, 0.03)), base=base)
    comparison = compare_classes(config, 0, 1)
    assert comparison.mode == MINOR_PEAK
    assert (
        comparison.evidence
        == "minor peak 3000 (0.03) only in true class; minor peak 3100 (0.03) only in predicted class"
    )


def test_position_window_scales_with_the_configured_shifts():
    other = ((1000, 1.0), (2040, 0.5))
    assert failure_mode(two_class_config(other), 0, 1) == POSITION_OVERLAP
    assert failure_mode(two_class_config(other, shift=10, test_shift=6), 0, 1) == OTHER  # window 32


def test_evidence_names_the_deciding_difference(challenge):
    assert compare_classes(challenge, 10, 9).evidence == "peak 3070 → 3000 (Δ -70)"
    assert compare_classes(challenge, 19, 18).evidence == "peak 920: height 0.155 → 0.08"
    assert compare_classes(challenge, 0, 1).evidence == "minor peak 1800 (0.035) only in predicted class"


def test_summarize_counts_pairs_and_modes(challenge):
    samples = [(1, 0), (10, 9), (1, 0), (19, 18), (0, 9), (1, 0), (10, 9)]
    summary = summarize(challenge, samples)
    assert [(p.true, p.pred, p.count, p.mode) for p in summary.pairs] == [
        (1, 0, 3, MINOR_PEAK),
        (10, 9, 2, POSITION_OVERLAP),
        (0, 9, 1, OTHER),
        (19, 18, 1, INTENSITY_OVERLAP),
    ]
    assert list(summary.mode_counts) == list(MODES)
    assert summary.mode_counts == {
        MINOR_PEAK: 3,
        POSITION_OVERLAP: 2,
        INTENSITY_OVERLAP: 1,
        INDISTINGUISHABLE: 0,
        OTHER: 1,
    }
    assert summary.total == len(samples)


@pytest.mark.parametrize(("samples", "message"), [([(3, 3)], "both 3"), ([(0, 27)], "27 is not a class")])
def test_summarize_rejects_bad_samples(challenge, samples, message):
    with pytest.raises(ValueError, match=message):
        summarize(challenge, samples)
