"""The realistic dataset options: peak shapes, noise, backgrounds, coupled variations and mixtures."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.signal import find_peaks

from synthetic_spectra import realistic
from synthetic_spectra.config import (
    BUILTIN_CONFIGS,
    REALISTIC_OPTIONS,
    DatasetConfig,
    TestSpec,
    get_config,
    load_config,
)
from synthetic_spectra.generator import (
    gaussian_kernels,
    generate,
    generate_mixtures,
    iter_class_batches,
    iter_mixture_batches,
    peak_kernels,
    render,
)
from synthetic_spectra.options import (
    Background,
    Coupling,
    ExponentialBackground,
    HumpBackground,
    Mixture,
    Noise,
    PeakShape,
    PolynomialBackground,
)
from synthetic_spectra.realistic import FWHM_PER_SIGMA, lorentzian_kernels

ROOT = Path(__file__).parents[1]
OFF = {"peak_shape": PeakShape(), "noise": Noise(), "background": Background(), "coupling": Coupling()}


def variant(base: str | DatasetConfig = "mini", **changes: Any) -> DatasetConfig:
    """A copy of a config with some fields changed."""
    return dataclasses.replace(get_config(base), **{"name": "variant", **changes})


def two_peaks(**changes: Any) -> DatasetConfig:
    """Two classes of two well separated peaks on 1000 points, no independent variation but width 3."""
    fields: dict[str, Any] = {
        "name": "two_peaks",
        "datapoints": 1000,
        "boundary": 50,
        "positions": ((150, 800), (300, 700)),
        "heights": ((1.0, 0.6), (0.5, 1.0)),
        "n_train": 30,
        "n_val": 5,
        "position_shift": 0,
        "height_variation": 0.0,
        "sigma_range": (3.0, 3.0),
        "vary_unit_height": True,
        "seed": 4,
        "test": TestSpec(shift=0, patterns=("PH",)),
    }
    return DatasetConfig(**{**fields, **changes})


def fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum of a single peak, linearly interpolated between points."""
    top = int(np.argmax(profile))
    half = profile[top] / 2
    above = np.flatnonzero(profile >= half)
    left, right = above[0], above[-1]
    left_edge = left - (profile[left] - half) / (profile[left] - profile[left - 1])
    right_edge = right + (profile[right] - half) / (profile[right] - profile[right + 1])
    return float(right_edge - left_edge)


# --- peak shapes -----------------------------------------------------------------------------------

SHAPES = {"gaussian": None, "lorentzian": 1.0, "pseudo_voigt": 0.4}


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("sigma", [2.0, 5.0, 11.0])
def test_every_shape_keeps_the_area_and_the_gaussian_fwhm(kind: str, sigma: float) -> None:
    eta = None if SHAPES[kind] is None else np.array([SHAPES[kind]])
    spectrum = render(np.array([[1000]]), np.array([[0.7]]), np.array([sigma]), 2000, eta=eta)[0]
    assert spectrum.sum() == pytest.approx(0.7, rel=1e-12)  # a peak's height is its area
    assert fwhm(spectrum) == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.03)


def test_lorentzian_tails_are_heavy_and_end_at_truncate_fwhms() -> None:
    sigma, truncate = 4.0, 12.0
    width = FWHM_PER_SIGMA * sigma
    lorentzian = lorentzian_kernels(np.array([sigma]), truncate)[0]
    assert np.count_nonzero(lorentzian) == int(truncate * width + 0.5) + 1
    at_five_fwhm = round(5 * width)
    expected = 1.0 / (1.0 + (2.0 * at_five_fwhm / width) ** 2)  # 1 / (1 + (x / gamma)²)
    assert lorentzian[at_five_fwhm] / lorentzian[0] == pytest.approx(expected, rel=1e-12)
    assert gaussian_kernels(np.array([sigma])).shape[1] <= at_five_fwhm  # the Gaussian ended long before


def test_pseudo_voigt_mixes_the_two_kernels_by_eta() -> None:
    sigmas, eta = np.array([2.0, 3.5, 5.0]), np.array([0.0, 0.3, 1.0])
    mixed = peak_kernels(sigmas, eta, truncate=8.0)
    gaussian, lorentzian = gaussian_kernels(sigmas), lorentzian_kernels(sigmas, 8.0)
    expected = eta[:, None] * lorentzian
    expected[:, : gaussian.shape[1]] += (1 - eta[:, None]) * gaussian
    np.testing.assert_allclose(mixed, expected, rtol=0, atol=1e-17)
    np.testing.assert_array_equal(peak_kernels(sigmas), gaussian)


def test_per_peak_widths_render_like_per_spectrum_widths() -> None:
    rng = np.random.default_rng(0)
    positions, heights, sigmas = (
        rng.integers(0, 300, (20, 4)),
        rng.uniform(0, 1, (20, 4)),
        rng.uniform(1, 6, 20),
    )
    eta = rng.uniform(0, 1, 20)
    per_peak = np.repeat(sigmas[:, None], 4, axis=1)
    np.testing.assert_allclose(
        render(positions, heights, per_peak, 300), render(positions, heights, sigmas, 300)
    )
    np.testing.assert_allclose(
        render(positions, heights, per_peak, 300, eta=eta), render(positions, heights, sigmas, 300, eta=eta)
    )


def test_eta_is_drawn_per_spectrum_in_its_range() -> None:
    rng = np.random.default_rng(1)
    eta = realistic.draw_eta(PeakShape(kind="pseudo_voigt", eta=(0.2, 0.8)), rng, 500)
    assert eta is not None and 0.2 <= eta.min() < 0.25 and 0.75 < eta.max() <= 0.8
    np.testing.assert_array_equal(realistic.draw_eta(PeakShape(kind="lorentzian"), rng, 3), 1.0)
    assert realistic.draw_eta(PeakShape(), rng, 3) is None


def test_render_rejects_a_bad_eta() -> None:
    with pytest.raises(ValueError, match=r"^eta: must be 2 fractions in \[0, 1\]"):
        render(np.zeros((2, 1), dtype=int), np.ones((2, 1)), np.ones(2), 10, eta=np.array([0.5, 1.5]))


def test_a_lorentzian_config_puts_the_same_area_at_the_same_places() -> None:
    base = two_peaks()
    x, _ = generate(base, "train")
    lorentzian, _ = generate(dataclasses.replace(base, peak_shape=PeakShape(kind="lorentzian")), "train")
    np.testing.assert_allclose(lorentzian.sum(axis=1), x.sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(lorentzian.argmax(axis=1), x.argmax(axis=1))
    assert (lorentzian.max(axis=1) < x.max(axis=1)).all()  # same FWHM: a lower, heavier-tailed peak


# --- noise -----------------------------------------------------------------------------------------


def noise_of(config: DatasetConfig, noise: Noise, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The noiseless spectra of a split and the noise a Noise setting adds to them."""
    clean, _ = generate(config, split)
    noisy, _ = generate(dataclasses.replace(config, noise=noise), split)
    return clean, noisy - clean


@pytest.mark.parametrize("split", ["train", "test"])
def test_gaussian_noise_reaches_the_snr_asked_for(split: str) -> None:
    clean, noise = noise_of(get_config("mini"), Noise(snr=20.0), split)
    achieved = clean.max(axis=1) / noise.std(axis=1)
    np.testing.assert_allclose(achieved, 20.0, rtol=0.12)  # std of 1000 normal draws: +-2.2 % (1 sd)
    assert abs(np.median(achieved) / 20.0 - 1) < 0.02
    assert abs(noise.mean()) < 0.01 * noise.std()


def test_snr_is_drawn_per_spectrum_from_its_range() -> None:
    clean, noise = noise_of(get_config("mini"), Noise(snr=(10.0, 40.0)))
    achieved = clean.max(axis=1) / noise.std(axis=1)
    assert 10.0 * 0.88 < achieved.min() < 13.0 and 35.0 < achieved.max() < 40.0 * 1.12


def test_poisson_noise_counts_at_the_level_asked_for() -> None:
    counts = 500.0
    clean, noise = noise_of(get_config("mini"), Noise(counts=counts))
    per_unit = counts / clean.max(axis=1, keepdims=True)
    observed = (clean + noise) * per_unit
    np.testing.assert_allclose(observed, np.rint(observed), atol=1e-6)  # whole counts
    variance_ratio = (noise**2 * per_unit).sum(axis=1) / clean.sum(axis=1)  # Poisson: variance = mean
    assert abs(np.median(variance_ratio) - 1) < 0.1
    assert ((clean + noise) >= 0).all()


def test_noise_is_fresh_per_spectrum_and_class() -> None:
    _, noise = noise_of(two_peaks(n_train=3), Noise(snr=50.0))
    correlation = np.corrcoef(noise)
    assert np.abs(correlation[~np.eye(len(noise), dtype=bool)]).max() < 0.2


# --- backgrounds -----------------------------------------------------------------------------------


def background_of(
    background: Background, config: DatasetConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A background setting's backgrounds (with minus without) and the highest peak of each spectrum."""
    config = config or get_config("mini")
    clean, _ = generate(config, "train")
    with_background, _ = generate(dataclasses.replace(config, background=background), "train")
    return with_background - clean, clean.max(axis=1)


def test_polynomial_background_is_a_polynomial_in_its_range() -> None:
    added, peak = background_of(Background(polynomial=PolynomialBackground(degree=3, amplitude=(0.2, 0.5))))
    relative = added / peak[:, None]
    assert relative.min() >= -1e-12 and relative.max() <= 0.5 + 1e-12
    assert relative.max(axis=1).min() > 0.02
    fourth_differences = np.diff(relative, n=4, axis=1)  # zero for a cubic, to rounding
    assert np.abs(fourth_differences).max() < 1e-9
    assert np.abs(np.diff(relative, n=3, axis=1)).max() > 1e-12


def test_exponential_background_decays_at_the_drawn_rate() -> None:
    decay = (0.1, 0.3)
    added, peak = background_of(
        Background(exponential=ExponentialBackground(amplitude=(0.2, 0.6), decay=decay))
    )
    relative = added / peak[:, None]
    assert (np.diff(relative, axis=1) <= 1e-15).all()
    assert relative[:, 0].min() >= 0.2 - 1e-12 and relative[:, 0].max() <= 0.6 + 1e-12
    t = 100 / (added.shape[1] - 1)
    rates = -t / np.log(relative[:, 100] / relative[:, 0])
    assert decay[0] - 1e-9 <= rates.min() and rates.max() <= decay[1] + 1e-9


def test_hump_background_is_broad_gaussian_humps_in_their_ranges() -> None:
    humps = HumpBackground(count=1, amplitude=(0.1, 0.3), center=(0.4, 0.6), width=(0.05, 0.1))
    added, peak = background_of(Background(humps=humps))
    relative = added / peak[:, None]
    assert relative.min() >= 0 and relative.max(axis=1).min() >= 0.1 * (1 - 1e-3)
    assert relative.max() <= 0.3 + 1e-12
    centres = relative.argmax(axis=1) / (added.shape[1] - 1)
    assert centres.min() >= 0.4 - 1e-3 and centres.max() <= 0.6 + 1e-3
    widths = np.array([fwhm(row) for row in relative]) / (added.shape[1] - 1) / FWHM_PER_SIGMA
    assert widths.min() >= 0.05 * 0.99 and widths.max() <= 0.1 * 1.01


def test_several_humps_add_up_to_at_most_their_amplitudes() -> None:
    humps = HumpBackground(count=(2, 3), amplitude=0.2, width=0.02)
    added, peak = background_of(Background(humps=humps))
    relative = added / peak[:, None]
    assert relative.max() <= 3 * 0.2 + 1e-12
    peaks_per_row = [len(find_peaks(row, prominence=0.05)[0]) for row in relative]
    assert min(peaks_per_row) >= 1 and max(peaks_per_row) == 3


def test_background_kinds_draw_independently() -> None:
    polynomial = Background(polynomial=PolynomialBackground())
    humps = Background(humps=HumpBackground())
    both, _ = background_of(Background(polynomial=PolynomialBackground(), humps=HumpBackground()))
    np.testing.assert_allclose(both, background_of(polynomial)[0] + background_of(humps)[0], atol=1e-15)


# --- coupled variations ----------------------------------------------------------------------------


def peak_positions(spectra: np.ndarray) -> np.ndarray:
    """Positions of the two peaks of each spectrum."""
    return np.array([find_peaks(row, height=0.05 * row.max())[0] for row in spectra])


def test_strain_scales_all_positions_of_a_spectrum_together() -> None:
    config = two_peaks(coupling=Coupling(strain=(0.02, 0.05)))
    found = peak_positions(generate(config, "train")[0])
    base = np.array(config.positions[0])  # class 0, the first 30 rows
    factors = found[:30, 1] / base[1]
    assert factors.min() >= 1.02 - 1e-3 and factors.max() <= 1.05 + 1e-3 and np.ptp(factors) > 0.01
    assert np.abs(found[:30, 0] - base[0] * factors).max() <= 1  # the same factor, to rounding


def test_strain_applies_on_top_of_the_independent_shifts() -> None:
    base = two_peaks(position_shift=5)
    strained = dataclasses.replace(base, coupling=Coupling(strain=0.01))
    shifted, moved = (
        peak_positions(generate(base, "train")[0]),
        peak_positions(generate(strained, "train")[0]),
    )
    np.testing.assert_array_equal(moved, np.rint(shifted * 1.01))


def test_broadening_widens_peaks_together_along_the_axis() -> None:
    config = two_peaks(coupling=Coupling(broadening=2.0))
    spectra, _ = generate(config, "train")
    first, second = config.positions[0]
    for row in spectra[:5]:
        widths = [fwhm(row[p - 100 : p + 100]) / FWHM_PER_SIGMA for p in (first, second)]
        expected = [3.0 * (1 + 2.0 * p / 999) for p in (first, second)]
        np.testing.assert_allclose(widths, expected, rtol=0.03)


def test_coupling_off_leaves_positions_heights_and_widths_alone() -> None:
    rng = np.random.default_rng(0)
    positions, heights, sigmas = np.array([[10, 500, -1]]), np.array([[1.0, 0.5, 0.0]]), np.array([2.5])
    coupled = realistic.couple(Coupling(), rng, positions, heights, sigmas, 1000)
    assert coupled[0] is positions and coupled[1] is heights and coupled[2] is sigmas


def test_shift_moves_all_peaks_of_a_spectrum_by_the_same_whole_number() -> None:
    base = two_peaks(position_shift=5)
    shifted = dataclasses.replace(base, coupling=Coupling(shift=(-20, 20)))
    before, after = peak_positions(generate(base, "train")[0]), peak_positions(generate(shifted, "train")[0])
    moves = after - before
    np.testing.assert_array_equal(moves[:, 0], moves[:, 1])  # together
    assert moves.min() >= -20 and moves.max() <= 20 and len(np.unique(moves[:, 0])) > 10
    fixed = dataclasses.replace(base, coupling=Coupling(shift=7))
    np.testing.assert_array_equal(peak_positions(generate(fixed, "train")[0]) - before, 7)


def test_height_offset_changes_every_lower_peak_by_the_same_amount() -> None:
    rng = np.random.default_rng(0)
    positions = np.array([[10, 500, 700, -1]] * 200)
    heights = np.tile([[1.0, 0.5, 0.02, 0.0]], (200, 1))
    offset = Coupling(height_offset=(-0.03, 0.03))
    _, new_heights, _ = realistic.couple(offset, rng, positions, heights, np.ones(200), 1000)
    np.testing.assert_array_equal(new_heights[:, 0], 1.0)  # the highest peak keeps its height
    change = new_heights[:, 1] - 0.5
    assert np.abs(change).max() <= 0.03 and np.ptp(change) > 0.04
    np.testing.assert_allclose(new_heights[:, 2], np.maximum(0.02 + change, 0.0))  # the same change, >= 0
    np.testing.assert_array_equal(new_heights[:, 3], 0.0)  # padding untouched


def test_new_coupled_variations_keep_the_draws_of_strain_and_broadening() -> None:
    old = two_peaks(coupling=Coupling(strain=(0.0, 0.05), broadening=(0.0, 1.0)))
    both = Coupling(strain=(0.0, 0.05), broadening=(0.0, 1.0), height_offset=0)
    new = dataclasses.replace(old, coupling=both)
    np.testing.assert_array_equal(generate(old, "train")[0], generate(new, "train")[0])


# --- mixtures --------------------------------------------------------------------------------------

MIXED = variant(mixture=Mixture(n_train=300, n_val=40, n_test=50, components=(2, 3), min_fraction=0.15))


def test_mixture_fractions_sum_to_one_over_the_labelled_classes() -> None:
    part = generate_mixtures(MIXED, "train")
    assert part.spectra.shape == (300, 1000) and part.labels.shape == part.fractions.shape == (300, 10)
    np.testing.assert_allclose(part.fractions.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(part.labels, part.fractions > 0)
    assert set(part.labels.sum(axis=1).tolist()) == {2, 3}
    assert part.fractions[part.labels == 1].min() >= 0.15 - 1e-12
    assert (part.labels.sum(axis=0) > 0).all()  # every class takes part


def test_a_mixture_is_the_fraction_weighted_sum_of_its_classes() -> None:
    config = dataclasses.replace(two_peaks(), mixture=Mixture(n_train=20, components=2))
    part = generate_mixtures(config, "train")
    areas = np.array([sum(heights) for heights in config.heights])
    np.testing.assert_allclose(part.spectra.sum(axis=1), part.fractions @ areas, rtol=1e-12)
    expected_peaks = {150: 1.0 * part.fractions[0, 0], 300: 0.5 * part.fractions[0, 1]}
    for position, area in expected_peaks.items():
        assert part.spectra[0, position - 20 : position + 20].sum() == pytest.approx(area, rel=1e-9)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_mixtures_are_deterministic_and_stream_block_by_block(split: str) -> None:
    part = generate_mixtures(MIXED, split)
    assert len(part.spectra) == MIXED.split_size(split)
    again = generate_mixtures(MIXED, split)
    for array, repeat in zip(part, again, strict=True):
        np.testing.assert_array_equal(array, repeat)
    starts = [start for start, _ in iter_mixture_batches(MIXED, split)]
    assert starts == list(range(0, len(part.spectra), realistic.MIXTURE_BLOCK))
    other = generate_mixtures(dataclasses.replace(MIXED, seed=MIXED.seed + 1), split)
    assert not np.array_equal(part.labels, other.labels)


def test_mixture_splits_differ_and_take_the_realistic_options() -> None:
    train, test = generate_mixtures(MIXED, "train"), generate_mixtures(MIXED, "test")
    assert not np.array_equal(train.labels[:50], test.labels)
    noisy = generate_mixtures(dataclasses.replace(MIXED, noise=Noise(snr=30.0)), "train")
    np.testing.assert_array_equal(noisy.fractions, train.fractions)
    residual = noisy.spectra - train.spectra
    np.testing.assert_allclose(train.spectra.max(axis=1) / residual.std(axis=1), 30.0, rtol=0.15)


def test_composition_draws_distinct_classes() -> None:
    rng = np.random.default_rng(3)
    classes, fractions = realistic.draw_composition(Mixture(components=(1, 4)), rng, 400, 5)
    for row in classes:
        live = row[row >= 0]
        assert 1 <= live.size <= 4 and len(set(live.tolist())) == live.size
    assert (fractions[classes < 0] == 0).all()


def test_mixture_and_single_label_apis_refuse_each_other() -> None:
    with pytest.raises(ValueError, match=r"^config: variant is a mixture config; use generate_mixtures"):
        generate(MIXED, "train")
    with pytest.raises(ValueError, match=r"^config: variant is a mixture config"):
        next(iter_class_batches(MIXED, "train"))
    with pytest.raises(ValueError, match=r"^config: mini has no mixture section"):
        generate_mixtures("mini", "train")
    with pytest.raises(ValueError, match="no single class"):
        MIXED.samples_per_class("train")
    assert [MIXED.split_size(split) for split in ("train", "val", "test")] == [300, 40, 50]


# --- determinism, independence, published data ---------------------------------------------------

EVERYTHING = variant(
    peak_shape=PeakShape(kind="pseudo_voigt", eta=(0.1, 0.9), truncate=10.0),
    noise=Noise(snr=(30.0, 60.0), counts=(500.0, 5000.0)),
    background=REALISTIC_OPTIONS["background"],
    coupling=Coupling(strain=(-0.01, 0.01), broadening=(0.0, 1.0)),
)


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_realistic_spectra_are_deterministic_per_seed(split: str) -> None:
    x, y = generate(EVERYTHING, split)
    np.testing.assert_array_equal(x, generate(EVERYTHING, split)[0])
    np.testing.assert_array_equal(y, generate("mini", split)[1])
    batches = list(iter_class_batches(EVERYTHING, split))
    np.testing.assert_array_equal(np.concatenate([spectra for _, spectra, _ in batches]), x)
    other, _ = generate(dataclasses.replace(EVERYTHING, seed=EVERYTHING.seed + 1), split)
    assert not np.allclose(other, x)


def test_realistic_options_leave_the_published_draws_alone() -> None:
    published, _ = generate("challenge", "validation")
    with_background, _ = generate(
        variant("challenge", background=REALISTIC_OPTIONS["background"]), "validation"
    )
    offset = with_background - published  # the background alone: smooth, so the peaks did not move
    assert np.abs(np.diff(offset, n=2, axis=1)).max() < 1e-3 * published.max()  # peaks: ~0.1
    assert offset.min() >= -1e-15


def test_options_at_their_defaults_give_the_published_data_and_form() -> None:
    for name in ("benchmark", "challenge", "mini"):
        config = get_config(name)
        assert not config.realistic and not config.is_mixture
        assert not set(config.to_dict()) & {"peak_shape", "noise", "background", "coupling", "mixture"}
        assert dataclasses.replace(config, **OFF) == config
    explicit = variant("challenge", **OFF)
    for split in ("train", "test"):
        np.testing.assert_array_equal(generate(explicit, split)[0], generate("challenge", split)[0])


@pytest.mark.parametrize("name", ["benchmark", "challenge"])
def test_realistic_builtins_are_the_published_configs_plus_options(name: str) -> None:
    config = get_config(f"{name}_realistic")
    assert config.realistic and config.peak_shape.kind == "pseudo_voigt"
    assert config.noise.snr and config.background.humps and config.coupling.is_default
    plain = dataclasses.replace(config, name=name, description=get_config(name).description, **OFF)
    assert plain == get_config(name)


def test_challenge_realistic_test_spectra_are_noisy_but_keep_their_peaks() -> None:
    published, labels = generate("challenge", "test")
    spectra, realistic_labels = generate("challenge_realistic", "test")
    np.testing.assert_array_equal(labels, realistic_labels)
    assert (np.abs(spectra - published).max(axis=1) > 0).all()
    rows, tops = np.arange(len(labels)), published.argmax(axis=1)
    beside = np.maximum(spectra[rows, tops - 15], spectra[rows, tops + 15])
    assert (spectra[rows, tops] - beside > 0.3 * published.max(axis=1)).all()  # still a peak there


def test_challenge_mixtures_builtin() -> None:
    config = get_config("challenge_mixtures")
    assert config.is_mixture and config.positions == get_config("challenge").positions
    assert [config.split_size(split) for split in ("train", "validation", "test")] == [2700, 540, 540]
    _, first = next(iter_mixture_batches(config, "test"))
    assert first.labels.shape == (realistic.MIXTURE_BLOCK, 27)


# --- config schema --------------------------------------------------------------------------------

BASE: dict[str, Any] = {"name": "opts", "datapoints": 400, "boundary": 20, "draw_classes": {"n_classes": 3}}
SECTIONS: dict[str, Any] = {
    "peak_shape": {"kind": "pseudo_voigt", "eta": [0.2, 0.8], "truncate": 15},
    "noise": {"snr": [20, 80], "counts": 1000},
    "background": {
        "polynomial": {"degree": 1, "amplitude": [0, 0.1]},
        "exponential": {},
        "humps": {"count": [1, 3], "width": 0.1},
    },
    "coupling": {"strain": [-0.002, 0.003], "broadening": 0.5},
    "mixture": {"n_train": 30, "n_val": 5, "n_test": 5, "components": [2, 3], "min_fraction": 0.2},
}


def test_option_sections_load_normalise_and_round_trip(tmp_path: Path) -> None:
    config = DatasetConfig.from_dict({**BASE, **SECTIONS})
    assert config.peak_shape == PeakShape("pseudo_voigt", (0.2, 0.8), 15.0)
    assert config.noise == Noise(snr=(20.0, 80.0), counts=(1000.0, 1000.0))
    assert config.background.exponential == ExponentialBackground()
    assert config.background.humps == HumpBackground(count=(1, 3), width=(0.1, 0.1))
    assert config.coupling == Coupling(strain=(-0.002, 0.003), broadening=(0.5, 0.5))
    assert config.mixture == Mixture(30, 5, 5, (2, 3), 0.2)
    assert DatasetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    default_mixture = dataclasses.replace(config, mixture=Mixture())
    assert DatasetConfig.from_dict(default_mixture.to_dict()) == default_mixture
    path = tmp_path / "opts.yaml"
    path.write_text(yaml.safe_dump({**BASE, **SECTIONS}))
    assert load_config(path) == config


def test_every_builtin_and_example_round_trips() -> None:
    examples = sorted((ROOT / "datasets" / "synthetic_spectra" / "configs").glob("*.json"))
    assert "example_realistic.json" in {path.name for path in examples}
    for source in (*BUILTIN_CONFIGS, *examples):
        config = get_config(source)
        assert DatasetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    example = get_config(ROOT / "datasets" / "synthetic_spectra" / "configs" / "example_realistic.json")
    assert example.realistic and not example.coupling.is_default
    assert generate(example, "validation")[0].shape == (300, 2000)


INVALID: list[tuple[dict[str, Any], str, str]] = [
    (
        {"peak_shape": {"kind": "voigt"}},
        "peak_shape.kind",
        "must be one of gaussian, lorentzian, pseudo_voigt",
    ),
    ({"peak_shape": {"kind": "pseudo_voigt"}}, "peak_shape.eta", "required for pseudo_voigt"),
    ({"peak_shape": {"kind": "lorentzian", "eta": 0.5}}, "peak_shape.eta", "only for kind pseudo_voigt"),
    ({"peak_shape": {"kind": "pseudo_voigt", "eta": [0.2, 1.5]}}, "peak_shape.eta[1]", "must be <= 1"),
    ({"peak_shape": {"kind": "pseudo_voigt", "eta": [0.8, 0.2]}}, "peak_shape.eta[1]", "must be >= "),
    ({"peak_shape": {"kind": "pseudo_voigt", "eta": [0.1, 0.2, 0.3]}}, "peak_shape.eta", "[low, high]"),
    ({"peak_shape": {"kind": "lorentzian", "truncate": 0}}, "peak_shape.truncate", "must be > 0"),
    ({"peak_shape": {"truncate": 5}}, "peak_shape.truncate", "only for lorentzian and pseudo_voigt"),
    ({"peak_shape": {"width": 5}}, "peak_shape.width", "unknown key (allowed: eta, kind, truncate)"),
    ({"noise": 5}, "noise", "must be a mapping of keys to values"),
    ({"noise": {"snr": 0}}, "noise.snr", "must be > 0"),
    ({"noise": {"snr": "high"}}, "noise.snr", "must be a number or [low, high]"),
    ({"noise": {"counts": [100, True]}}, "noise.counts[1]", "must be a finite number"),
    ({"background": {"wave": {}}}, "background.wave", "unknown key"),
    ({"background": {"polynomial": {"degree": -1}}}, "background.polynomial.degree", "must be >= 0"),
    ({"background": {"polynomial": {"amplitude": -0.1}}}, "background.polynomial.amplitude", "must be >= 0"),
    ({"background": {"exponential": {"decay": [0, 1]}}}, "background.exponential.decay[0]", "must be > 0"),
    ({"background": {"humps": {"count": [0, 2]}}}, "background.humps.count[0]", "must be >= 1"),
    ({"background": {"humps": {"count": 1.5}}}, "background.humps.count", "must be an integer"),
    ({"background": {"humps": {"center": 1.5}}}, "background.humps.center", "must be <= 1"),
    ({"coupling": {"strain": 0.7}}, "coupling.strain", "must be <= 0.5"),
    ({"coupling": {"broadening": -0.1}}, "coupling.broadening", "must be >= 0"),
    ({"mixture": {"components": [2, 4]}}, "mixture.components[1]", "must be <= the number of classes 3"),
    ({"mixture": {"components": [3, 2]}}, "mixture.components[1]", "must be >= mixture.components[0] = 3"),
    ({"mixture": {"min_fraction": 0.4}}, "mixture.min_fraction", "must be <= 0.333333"),
    ({"mixture": {"n_test": 0}}, "mixture.n_test", "must be >= 1"),
]


@pytest.mark.parametrize(("section", "field", "problem"), INVALID, ids=lambda item: str(item)[:60])
def test_invalid_options_are_rejected_naming_field_and_value(section: dict, field: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        DatasetConfig.from_dict({**BASE, **section})
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{field}: ") and problem in message, message
    assert re.search(r"(, got .+|\(allowed: .+\))$", message), message


def test_direct_construction_checks_the_section_types() -> None:
    with pytest.raises(ValueError, match=r"^noise: must be a Noise, got \{'snr': 3\}$"):
        variant(noise={"snr": 3})
    with pytest.raises(ValueError, match=r"^background.humps: must be a HumpBackground"):
        Background(humps={"count": 2})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^mixture: must be a Mixture"):
        variant(mixture=(2, 3))


# --- TFDS and the figure ----------------------------------------------------------------------------


def test_tfds_builds_a_mixture_config_with_multi_label_features(tmp_path: Path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from synthetic_spectra.synthetic_spectra_dataset_builder import Builder, builder

    assert {config.name for config in Builder.BUILDER_CONFIGS} == set(BUILTIN_CONFIGS)
    config = dataclasses.replace(MIXED, name="tiny_mix", mixture=Mixture(n_train=12, n_val=4, n_test=6))
    tfds_builder = builder(config, data_dir=tmp_path)
    tfds_builder.download_and_prepare()
    assert tfds_builder.info.supervised_keys == ("spectrum", "labels")
    expected = generate_mixtures(config, "test")
    examples = list(tfds.as_numpy(tfds_builder.as_dataset(split="test", shuffle_files=False)))
    assert [int(example["index"]) for example in examples] == list(range(6))
    for example in examples:
        row = int(example["index"])
        np.testing.assert_array_equal(example["labels"], expected.labels[row])
        np.testing.assert_array_equal(example["fractions"], expected.fractions[row].astype(np.float32))
        np.testing.assert_array_equal(example["spectrum"], expected.spectra[row].astype(np.float32))
    from synthetic_spectra.pipeline import read_batches

    batches = list(tfds.as_numpy(read_batches(tfds_builder, "test", 4)))  # the batched reader: the same
    assert [len(batch["index"]) for batch in batches] == [4, 2]
    for key in ("spectrum", "labels", "fractions", "index"):
        read = np.concatenate([batch[key] for batch in batches])
        reference = np.stack([example[key] for example in examples])
        assert read.dtype == reference.dtype and read.tobytes() == reference.tobytes(), key


def test_the_figure_script_writes_a_png(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "realistic_examples", ROOT / "benchmarks" / "experiments" / "realistic_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = tmp_path / "figure.png"
    assert (
        module.main(["--config", "mini", "--label", "2", "--zoom", "100", "400", "--output", str(output)])
        == 0
    )
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_realistic_generation_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from synthetic_spectra.generator import generate, generate_mixtures; "
        "generate('challenge_realistic', 'test'); generate_mixtures('challenge_mixtures', 'test'); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
