"""The vectorised generator (:mod:`synthetic_spectra.generator`) against the published data and scipy."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

import synthetic_spectra.generator as generator
from synthetic_spectra.config import DatasetConfig, TestSpec, get_config
from synthetic_spectra.generator import gaussian_kernels, generate, iter_class_batches, render

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[1]
GOLDEN: dict[str, dict[str, float]] = json.loads((FIXTURES / "golden_rows.json").read_text())
GOLDEN_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def published_row(config_name: str, split: str, row: int) -> tuple[np.ndarray, int]:
    """One canonical row, generating only the classes up to it."""
    for start, x, y in iter_class_batches(config_name, split):
        if row < start + len(x):
            return x[row - start], int(y[row - start])
    raise IndexError(row)


def figures(spectrum: np.ndarray) -> dict[str, float]:
    """The figures golden_rows.json records of a row."""
    nonzero = np.flatnonzero(spectrum)
    argmax = int(np.argmax(spectrum))
    return {
        "sum": float(spectrum.sum()),
        "max": float(spectrum.max()),
        "argmax": argmax,
        "first_nonzero": int(nonzero[0]),
        "last_nonzero": int(nonzero[-1]),
        "value_at_argmax": float(spectrum[argmax]),
    }


# --- the published rows ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_golden_row(key: str) -> None:
    config_name, split, row = key.split("/")
    spectrum, label = published_row(config_name, GOLDEN_SPLITS[split], int(row))
    expected = GOLDEN[key]
    assert label == expected["label"]
    got = figures(spectrum)
    for name in ("argmax", "first_nonzero", "last_nonzero"):
        assert got[name] == expected[name], name
    for name in ("sum", "max", "value_at_argmax"):
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def test_golden_rows_cover_every_config_and_split() -> None:
    assert {tuple(key.split("/")[:2]) for key in GOLDEN} == {
        (config, split) for config in ("benchmark", "challenge") for split in GOLDEN_SPLITS
    }


# --- rendering -----------------------------------------------------------------------------------


def scipy_render(positions: np.ndarray, heights: np.ndarray, sigmas: np.ndarray, points: int) -> np.ndarray:
    """dataset.md §2 literally, one spectrum at a time (padding: indices outside the spectrum)."""
    spectra = np.zeros((len(sigmas), points))
    for row, (peaks, peak_heights, sigma) in enumerate(zip(positions, heights, sigmas, strict=True)):
        scan = np.zeros(points)
        live = (peaks >= 0) & (peaks < points)
        scan[peaks[live]] = peak_heights[live]
        spectra[row] = gaussian_filter1d(scan, sigma, mode="constant")
    return spectra


def test_render_matches_gaussian_filter1d_including_edges_collisions_and_padding() -> None:
    rng = np.random.default_rng(0)
    datapoints, n, k = 300, 200, 6
    positions = rng.integers(-3, datapoints + 3, (n, k))  # some outside: padding
    positions[:20, 1] = positions[:20, 0]  # collisions: the later peak wins ...
    positions[20:40, 2] = positions[20:40, 4]
    positions[40:50] = rng.integers(0, 4, (10, k))  # ... also on the first and last points
    positions[50:60] = rng.integers(datapoints - 4, datapoints, (10, k))
    heights = rng.uniform(0.0, 2.0, (n, k))
    heights[:10, 1] = 0.0  # a later zero height still overwrites
    sigmas = rng.uniform(0.3, 9.0, n)
    expected = scipy_render(positions, heights, sigmas, datapoints)
    np.testing.assert_allclose(render(positions, heights, sigmas, datapoints), expected, atol=1e-15)


def test_render_adds_into_a_view_and_writes_nothing_else() -> None:
    big = np.zeros((5, 50))
    positions, heights, sigmas = np.array([[10], [40]]), np.array([[1.0], [0.5]]), np.array([2.0, 3.0])
    assert np.shares_memory(render(positions, heights, sigmas, 50, out=big[1:3]), big)
    np.testing.assert_allclose(big[1:3], scipy_render(positions, heights, sigmas, 50), atol=1e-15)
    assert not big[[0, 3, 4]].any()


def test_render_of_rows_without_live_peaks_is_zero() -> None:
    assert not render(np.full((3, 2), -1), np.ones((3, 2)), np.ones(3), 20).any()
    assert render(np.zeros((0, 4), dtype=int), np.zeros((0, 4)), np.zeros(0), 20).shape == (0, 20)


PEAKS = np.zeros((2, 3), dtype=int)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((PEAKS.astype(float), np.zeros((2, 3)), np.ones(2)), "positions: must be integers"),
        ((PEAKS[0], np.zeros(3), np.ones(1)), "positions: must be integers"),
        ((PEAKS, np.zeros((2, 2)), np.ones(2)), "heights: must have the shape"),
        ((PEAKS, np.zeros((2, 3)), np.ones(3)), "sigmas: must be 2 positive"),
        ((PEAKS, np.zeros((2, 3)), np.array([1.0, 0.0])), "sigmas: must be 2 positive"),
    ],
)
def test_render_rejects_bad_arguments(arguments: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(*arguments, 10)


@pytest.mark.parametrize(
    "out",
    [np.zeros((2, 11)), np.zeros((2, 10), dtype=np.float32), np.zeros((2, 20))[:, ::2]],
    ids=["shape", "dtype", "strided"],
)
def test_render_rejects_a_bad_out(out: np.ndarray) -> None:
    with pytest.raises(ValueError, match="out: must be a C-contiguous float64"):
        render(np.zeros((2, 1), dtype=int), np.ones((2, 1)), np.ones(2), 10, out=out)


def test_gaussian_kernels_are_normalised_and_truncated_at_four_sigma() -> None:
    weights = gaussian_kernels(np.array([2.0, 5.0, 0.1]))
    assert weights.shape == (3, 21)  # radius int(4 * 5 + 0.5)
    np.testing.assert_allclose(2 * weights.sum(axis=1) - weights[:, 0], 1.0, rtol=1e-15)
    np.testing.assert_array_equal(np.count_nonzero(weights, axis=1), [9, 21, 1])
    impulse = np.zeros(41)
    impulse[20] = 1.0
    response = gaussian_filter1d(impulse, 2.0, mode="constant")
    np.testing.assert_allclose(weights[0, :9], response[20:29], rtol=1e-15)


# --- emulated scalar draws -------------------------------------------------------------------------


def random_schedule(rng: np.random.Generator, samples: int, span: int) -> tuple:
    """Random per-sample counts of integer and uniform draws with their bounds."""
    int_counts = rng.integers(0, 5, samples)
    uniform_counts = rng.integers(0, 4, samples)
    low = rng.integers(-1000, 5000, int_counts.sum())
    uniform_low = rng.uniform(-1.0, 3.0, uniform_counts.sum())
    uniform_high = uniform_low + rng.uniform(0.0, 2.0, uniform_low.size)
    return int_counts, (low, low + span), uniform_counts, (uniform_low, uniform_high)


def draw_with(draw: Callable, seed: int, schedule: tuple, warm_up: int) -> tuple:
    """The numbers ``draw`` gives, the state it leaves and the numbers drawn after it."""
    rng = np.random.default_rng(seed)
    for _ in range(warm_up):  # an odd count leaves a half word waiting
        rng.integers(0, 7)
    ints, floats = draw(rng, *schedule)
    state = rng.bit_generator.state
    return ints.tolist(), floats.tolist(), state, rng.integers(0, 100, 3).tolist(), rng.random()


@pytest.mark.parametrize("warm_up", [0, 1, 2])
@pytest.mark.parametrize("span", [2, 7, 100, 2**31 - 1])
def test_bulk_draws_equal_scalar_draws(span: int, warm_up: int) -> None:
    rng = np.random.default_rng(span + warm_up)
    for seed in range(12):
        schedule = random_schedule(rng, int(rng.integers(1, 60)), span)
        bulk = draw_with(generator._draw_schedule, seed, schedule, warm_up)
        assert bulk == draw_with(generator._draw_scalar, seed, schedule, warm_up)


def test_bulk_draws_do_not_fall_back_for_the_study_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scalar_draws(*args: object) -> None:
        raise AssertionError("fell back to scalar draws")

    monkeypatch.setattr(generator, "_draw_scalar", no_scalar_draws)
    rng = np.random.default_rng(5)
    generator._draw_schedule(rng, *random_schedule(rng, 2000, 100))


def test_bulk_draws_fall_back_exactly_when_lemire_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    scalar, calls = generator._draw_scalar, []
    monkeypatch.setattr(generator, "_draw_scalar", lambda *args: calls.append(args) or scalar(*args))
    schedule = random_schedule(np.random.default_rng(1), 40, 3 * 2**30)  # a quarter of the draws are rejected
    bulk = draw_with(generator._draw_schedule, 3, schedule, 1)
    assert len(calls) == 1
    assert bulk == draw_with(scalar, 3, schedule, 1)


# --- splits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_generate_equals_iter_class_batches_in_canonical_order(split: str) -> None:
    config = get_config("challenge")
    x, y = generate(config, split)
    assert x.dtype == np.float64 and y.dtype == np.int64
    assert x.shape == (config.split_size(split), config.datapoints)
    labels = np.repeat(np.arange(config.num_classes), config.samples_per_class(split))
    np.testing.assert_array_equal(y, labels)
    next_row = 0
    for start, x_class, y_class in iter_class_batches(config, split):
        assert start == next_row and len(set(y_class.tolist())) == 1
        np.testing.assert_array_equal(x_class, x[start : start + len(x_class)])
        next_row += len(x_class)
    assert next_row == len(x)


def test_split_sizes_of_the_published_configs() -> None:
    assert [get_config("challenge").split_size(s) for s in ("train", "val", "test")] == [1350, 270, 162]
    assert [get_config("benchmark").split_size(s) for s in ("train", "val", "test")] == [25000, 5000, 4500]


def test_val_is_an_alias_of_validation() -> None:
    np.testing.assert_array_equal(generate("mini", "val")[0], generate("mini", "validation")[0])


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"split: must be one of train, validation, test .*'dev'"):
        generate("mini", "dev")


def test_every_spectrum_has_a_positive_maximum() -> None:
    for split in ("train", "validation", "test"):
        assert (generate("challenge", split)[0].max(axis=1) > 0).all()


def load_benchmark_script() -> ModuleType:
    path = ROOT / "benchmarks" / "measure" / "generation.py"
    spec = importlib.util.spec_from_file_location("generation_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EDGE_CASES = DatasetConfig(
    name="edges",
    datapoints=60,
    boundary=0,
    # peaks on the first/last points and closer than the shift, so they clip and collide
    positions=((0, 2, 59), (1, 30, 31, 58), (29,)),
    heights=((1.0, 0.02, 0.5), (0.3, 1.0, 0.9, 1.0), (1.0,)),
    n_train=7,
    n_val=3,
    position_shift=4,
    height_variation=0.05,
    sigma_range=(0.5, 6.0),
    vary_unit_height=False,
    seed=3,
    test=TestSpec(shift=3, height_variation=0.04, sigma=1.5, patterns=("LH-", "RH+", "PH")),
)


@pytest.mark.parametrize(
    "config",
    [get_config("mini"), EDGE_CASES, dataclasses.replace(EDGE_CASES, position_shift=0)],
    ids=["mini", "edges", "no-shift"],
)
def test_generate_matches_the_scipy_loop_of_the_benchmark_script(config: DatasetConfig) -> None:
    loop_generate = load_benchmark_script().loop_generate
    for split in ("train", "validation", "test"):
        x, y = generate(config, split)
        x_loop, y_loop = loop_generate(config, split)
        np.testing.assert_array_equal(y, y_loop)
        np.testing.assert_allclose(x, x_loop, rtol=0, atol=1e-12)


def test_generating_the_first_benchmark_classes_is_quick() -> None:
    batches = iter_class_batches("benchmark", "validation")
    start, x, y = next(batches)
    assert (start, x.shape, int(y[0])) == (0, (10, 5000), 0)
    start, x, y = next(batches)
    assert (start, int(y[0])) == (10, 1)


def test_generator_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from synthetic_spectra.generator import generate; generate('mini', 'test'); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_rendering_threads_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks rendered on several threads give the arrays one thread gives, bit for bit."""
    import synthetic_spectra.generator as generator

    threaded = {split: generate("mini", split) for split in ("train", "test")}
    batches = list(iter_class_batches("mini", "train", dtype=np.float32))
    monkeypatch.setattr(generator, "RENDER_THREADS", 1)
    for split, (x, y) in threaded.items():
        x1, y1 = generate("mini", split)
        assert np.array_equal(x, x1) and np.array_equal(y, y1)
    for (start, x, y), (start1, x1, y1) in zip(batches, iter_class_batches("mini", "train"), strict=True):
        assert start == start1 and x.dtype == np.float32 and np.array_equal(x, x1.astype(np.float32))
        assert np.array_equal(y, y1)
