"""Vectorised NumPy generator of the synthetic spectra (dataset.md §2–§5), without TensorFlow.

The published generator renders one spectrum at a time (``scipy.ndimage.gaussian_filter1d``) and
draws every random number with its own scalar call. This module reproduces its output exactly, a
few dozen classes at a time:

* :func:`render` builds many spectra at once from the closed-form truncated Gaussian kernel and
  writes only the points near each peak;
* the scalar draws are emulated from one block of raw 64-bit words of the same PCG64 stream
  (:func:`_draw_schedule`), consuming it exactly like the scalar calls; where the emulation cannot
  be exact (a rejected bounded-integer draw, about once in 45 million draws of the study's ranges)
  the block is redrawn with the scalar calls themselves.

Rows come in canonical order (class-major, dataset.md §5); memory stays O(one chunk of classes)
beyond the arrays being filled.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from synthetic_spectra.config import (
    HEIGHT_CLIP,
    HEIGHT_CODES,
    POSITION_CODES,
    DatasetConfig,
    canonical_split,
    get_config,
)

ConfigLike = str | os.PathLike[str] | DatasetConfig

#: gaussian_filter1d's default: the kernel ends at int(TRUNCATE * sigma + 0.5) points from its centre.
TRUNCATE = 4.0
#: Samples drawn and rendered together (whole classes; a bigger class is a chunk of its own).
CHUNK_SAMPLES = 128
_LOW_HALF = np.uint64(0xFFFFFFFF)
_DOUBLE_SCALE = 1.0 / 9007199254740992.0  # 2**-53: numpy's next_double from a word's top 53 bits


# ------------------------------------------------------------------------------------------ rendering
def gaussian_kernels(sigmas: np.ndarray) -> np.ndarray:
    """One-sided normalised truncated Gaussian kernels, one row per sigma, as ``gaussian_filter1d`` uses.

    Column ``j`` is the weight at offsets ``+j`` and ``-j``: ``exp(-j**2 / (2 sigma**2))`` divided by
    the sum over the whole kernel, zero beyond the kernel's radius ``int(4 sigma + 0.5)``. Returns
    float64 ``[n, r + 1]`` for the largest radius ``r``.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    radii = (TRUNCATE * sigmas + 0.5).astype(np.int64)
    offsets = np.arange(int(radii.max(initial=0)) + 1)
    weights = np.multiply.outer(-0.5 / (sigmas * sigmas), offsets * offsets)
    np.exp(weights, out=weights)
    weights[offsets > radii[:, None]] = 0.0
    weights /= (2.0 * weights.sum(axis=1) - weights[:, 0])[:, None]  # each offset but 0 counts twice
    return weights


def render(
    positions: np.ndarray,
    heights: np.ndarray,
    sigmas: np.ndarray,
    datapoints: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Render spectra: peaks of ``heights`` at ``positions``, blurred by Gaussians of width ``sigmas``.

    Row ``i`` equals ``gaussian_filter1d(scan, sigmas[i], mode="constant")`` of a zero ``scan`` with
    ``scan[positions[i]] = heights[i]`` (of two peaks on one index the later wins), to rounding.

    Args:
        positions: int ``[n, k]`` peak indices. Pad rows with fewer peaks with an index outside
            ``[0, datapoints)``, e.g. -1 (with any height, e.g. 0): such entries are ignored.
        heights: float ``[n, k]`` peak heights.
        sigmas: float ``[n]`` Gaussian widths (> 0).
        datapoints: points per spectrum.
        out: optional zero-filled, C-contiguous float64 ``[n, datapoints]`` array (e.g. rows of a
            bigger array) the spectra are added into; only points near peaks are written.

    Returns:
        float64 ``[n, datapoints]`` (``out`` when given).
    """
    positions = np.asarray(positions)
    heights = np.asarray(heights, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if positions.ndim != 2 or not np.issubdtype(positions.dtype, np.integer):
        raise ValueError(f"positions: must be integers [n, k], got {positions.dtype} {positions.shape}")
    n, k = positions.shape
    if heights.shape != (n, k):
        raise ValueError(f"heights: must have the shape of positions {(n, k)}, got {heights.shape}")
    if sigmas.shape != (n,) or not np.all(sigmas > 0):
        raise ValueError(f"sigmas: must be {n} positive widths, got shape {sigmas.shape}: {sigmas[:5]}")
    if out is None:
        out = np.zeros((n, datapoints))
    elif out.shape != (n, datapoints) or out.dtype != np.float64 or not out.flags.c_contiguous:
        expected = f"must be a C-contiguous float64 array {(n, datapoints)}"
        raise ValueError(f"out: {expected}, got {out.dtype} {out.shape}")

    rows, peaks = np.nonzero((positions >= 0) & (positions < datapoints))
    if rows.size == 0:
        return out
    flat = rows * datapoints + positions[rows, peaks]
    # scan[positions] = heights: of the peaks on one index only the last one counts.
    _, last = np.unique(flat[::-1], return_index=True)
    keep = flat.size - 1 - last
    rows, flat, values = rows[keep], flat[keep], heights[rows[keep], peaks[keep]]
    columns = flat - rows * datapoints
    weights = gaussian_kernels(sigmas)
    largest = weights.shape[1] - 1
    near_edge = columns.min() < largest or columns.max() >= datapoints - largest
    target = out.reshape(-1)
    for offset in range(largest + 1):  # the kernel is symmetric: +offset and -offset share a weight
        contribution = values * weights[:, offset][rows]
        for step in (offset, -offset) if offset else (0,):
            # Within a row the kept peaks sit on distinct indices, so no target repeats in one step.
            if near_edge:
                inside = (columns + step >= 0) & (columns + step < datapoints)
                target[flat[inside] + step] += contribution[inside]
            else:
                target[flat + step] += contribution
    return out


# ------------------------------------------------------------------------------------- random draws
def _ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every pair of ``starts`` and ``lengths``."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if ends.size else 0)


def _draw_scalar(
    rng: np.random.Generator,
    int_counts: np.ndarray,
    int_bounds: tuple[np.ndarray, np.ndarray],
    uniform_counts: np.ndarray,
    uniform_bounds: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Draw with one scalar call per number, sample after sample.

    Sample ``s`` takes ``int_counts[s]`` draws ``rng.integers(low, high)`` and then
    ``uniform_counts[s]`` draws ``rng.uniform(low, high)``; the bounds of all draws are listed in
    order in ``int_bounds`` / ``uniform_bounds`` (``(low, high)`` arrays). Returns the int64 and
    float64 results in the same order.
    """
    int_pairs = iter(zip(*(bound.tolist() for bound in int_bounds), strict=True))
    uniform_pairs = iter(zip(*(bound.tolist() for bound in uniform_bounds), strict=True))
    ints: list[int] = []
    floats: list[float] = []
    for n_int, n_uniform in zip(int_counts.tolist(), uniform_counts.tolist(), strict=True):
        ints.extend(rng.integers(*next(int_pairs)) for _ in range(n_int))
        floats.extend(rng.uniform(*next(uniform_pairs)) for _ in range(n_uniform))
    return np.array(ints, dtype=np.int64), np.array(floats, dtype=np.float64)


def _draw_schedule(
    rng: np.random.Generator,
    int_counts: np.ndarray,
    int_bounds: tuple[np.ndarray, np.ndarray],
    uniform_counts: np.ndarray,
    uniform_bounds: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of :func:`_draw_scalar`, leaving ``rng`` in the same state, computed in bulk.

    NumPy's PCG64 serves a scalar ``integers`` call (range below 2**32) by Lemire's method from one
    32-bit half of a 64-bit word: the low half first, while the high half waits (``has_uint32``,
    ``uinteger``) for the next such call. A scalar ``uniform`` takes a whole word:
    ``low + (high - low) * (word >> 11) * 2**-53``. Here all words are taken with one
    ``random_raw`` call and dealt out in that order. If Lemire's method would reject a draw (and
    take another half word), the state is restored and :func:`_draw_scalar` does the work.
    """
    int_low, int_high = int_bounds
    span = (int_high - int_low).astype(np.uint64)  # numpy's "rng_excl"; 1 draws nothing, so fall back
    if not isinstance(rng.bit_generator, np.random.PCG64) or not np.all((span >= 2) & (span < 2**32)):
        return _draw_scalar(rng, int_counts, int_bounds, uniform_counts, uniform_bounds)
    saved = rng.bit_generator.state
    pending = int(saved["has_uint32"])  # a half word left over by an earlier integers call
    # Sample s starts with a waiting half word when pending + (integer draws before s) is odd.
    waiting = (pending + np.cumsum(int_counts) - int_counts) % 2
    int_words = (int_counts - waiting + 1) // 2
    words_per_sample = int_words + uniform_counts
    words = rng.bit_generator.random_raw(int(words_per_sample.sum()))
    place = _ragged_arange(np.zeros_like(words_per_sample), words_per_sample)  # index within its sample
    is_int_word = place < np.repeat(int_words, words_per_sample)
    halves = words[is_int_word]
    halves = np.stack([halves & _LOW_HALF, halves >> np.uint64(32)], axis=1).reshape(-1)
    if pending:
        halves = np.concatenate([np.array([saved["uinteger"]], dtype=np.uint64), halves])
    scaled = halves[: span.size] * span  # < 2**64
    if np.any((scaled & _LOW_HALF) < (np.uint64(2**32) - span) % span):  # Lemire's rejection threshold
        rng.bit_generator.state = saved
        return _draw_scalar(rng, int_counts, int_bounds, uniform_counts, uniform_bounds)
    ints = int_low + (scaled >> np.uint64(32)).astype(np.int64)
    uniform_low, uniform_high = uniform_bounds
    unit = (words[~is_int_word] >> np.uint64(11)) * _DOUBLE_SCALE
    floats = uniform_low + (uniform_high - uniform_low) * unit
    state = rng.bit_generator.state
    state["has_uint32"] = int(halves.size > span.size)
    state["uinteger"] = int(halves[-1]) if halves.size else saved["uinteger"]  # as next_uint32 leaves it
    rng.bit_generator.state = state
    return ints, floats


# --------------------------------------------------------------------------------------- sample plans
class _Chunk(NamedTuple):
    """Peaks and widths of consecutive samples (whole classes), ready for :func:`render`."""

    start: int  # canonical row of the first sample
    labels: np.ndarray  # int64 [m]
    positions: np.ndarray  # int64 [m, k], padded with -1
    heights: np.ndarray  # float64 [m, k]
    sigmas: np.ndarray  # float64 [m]


class _Table(NamedTuple):
    """A config's class table flattened: class c's peaks are ``starts[c] : starts[c] + counts[c]``."""

    counts: np.ndarray
    starts: np.ndarray
    positions: np.ndarray
    heights: np.ndarray


@functools.lru_cache(maxsize=8)
def _table(config: DatasetConfig) -> _Table:
    counts = np.array([len(p) for p in config.positions], dtype=np.int64)
    return _Table(
        counts,
        np.cumsum(counts) - counts,
        np.array([p for peaks in config.positions for p in peaks], dtype=np.int64),
        np.array([h for peaks in config.heights for h in peaks], dtype=np.float64),
    )


def _class_chunks(samples_per_class: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """``(first, stop)`` class ranges of about :data:`CHUNK_SAMPLES` samples (at least one class)."""
    first, total = 0, 0
    for label, count in enumerate(samples_per_class):
        if total and total + count > CHUNK_SAMPLES:
            yield first, label
            first, total = label, 0
        total += count
    yield first, len(samples_per_class)


def _make_chunk(
    config: DatasetConfig,
    start: int,
    sample_class: np.ndarray,
    peak_counts: np.ndarray,
    positions: np.ndarray,
    heights: np.ndarray,
    sigmas: np.ndarray,
) -> _Chunk:
    """Clip flat per-peak values (dataset.md §3/§4) and pad them into ``[samples, max peaks]`` arrays."""
    rows = np.repeat(np.arange(sample_class.size), peak_counts)
    columns = _ragged_arange(np.zeros_like(peak_counts), peak_counts)
    padded_positions = np.full((sample_class.size, int(peak_counts.max())), -1, dtype=np.int64)
    padded_positions[rows, columns] = np.clip(positions, 0, config.datapoints - 1)
    padded_heights = np.zeros(padded_positions.shape)
    padded_heights[rows, columns] = np.clip(heights, *HEIGHT_CLIP)
    return _Chunk(start, sample_class, padded_positions, padded_heights, sigmas)


def _random_chunks(config: DatasetConfig, split: str) -> Iterator[_Chunk]:
    """Train or validation samples: the dataset.md §3 loop over one ``default_rng(seed)`` stream.

    Every class draws its ``n_train`` then ``n_val`` samples; per sample one ``integers`` call per
    peak position (none when ``position_shift`` is 0), one ``uniform`` call per varied height
    (heights of 1.0 are skipped unless ``vary_unit_height``) and one ``uniform`` for sigma.
    """
    table = _table(config)
    rng = np.random.default_rng(config.seed)
    drawn = config.n_train + config.n_val
    kept = slice(0, config.n_train) if split == "train" else slice(config.n_train, drawn)
    kept_per_class = kept.stop - kept.start
    shift, variation = config.position_shift, config.height_variation
    varied = np.ones(table.heights.size, dtype=bool) if config.vary_unit_height else table.heights != 1.0
    varied_per_class = np.add.reduceat(varied.astype(np.int64), table.starts)
    for first, stop in _class_chunks((drawn,) * config.num_classes):
        sample_class = np.repeat(np.arange(first, stop), drawn)
        peak_counts = table.counts[sample_class]
        peak_index = _ragged_arange(table.starts[sample_class], peak_counts)  # into the flat table
        base_positions, base_heights = table.positions[peak_index], table.heights[peak_index]
        peak_varied = varied[peak_index]
        uniform_counts = varied_per_class[sample_class] + 1  # the varied heights, then sigma
        sigma_slot = np.cumsum(uniform_counts) - 1
        height_slot = np.delete(np.arange(sigma_slot[-1] + 1), sigma_slot)
        uniform_low = np.empty(sigma_slot[-1] + 1)
        uniform_high = np.empty_like(uniform_low)
        uniform_low[height_slot] = base_heights[peak_varied] - variation
        uniform_high[height_slot] = base_heights[peak_varied] + variation
        uniform_low[sigma_slot], uniform_high[sigma_slot] = config.sigma_range
        int_counts = peak_counts if shift else np.zeros_like(peak_counts)
        int_bounds = (base_positions - shift, base_positions + shift) if shift else (base_positions[:0],) * 2
        uniform_bounds = (uniform_low, uniform_high)
        ints, floats = _draw_schedule(rng, int_counts, int_bounds, uniform_counts, uniform_bounds)

        positions = ints if shift else base_positions
        heights = base_heights.copy()
        heights[peak_varied] = floats[height_slot]
        keep_sample = np.tile(np.arange(drawn), stop - first)
        keep_sample = (keep_sample >= kept.start) & (keep_sample < kept.stop)
        keep_peak = np.repeat(keep_sample, peak_counts)
        yield _make_chunk(
            config,
            first * kept_per_class,
            sample_class[keep_sample],
            peak_counts[keep_sample],
            positions[keep_peak],
            heights[keep_peak],
            floats[sigma_slot][keep_sample],
        )


def _test_chunks(config: DatasetConfig) -> Iterator[_Chunk]:
    """Test samples: the fixed dataset.md §4 variations (no random numbers, sigma fixed)."""
    table = _table(config)
    per_class = config.samples_per_class("test")
    tests = [config.test.for_class(label) for label in range(config.num_classes)]
    start = 0
    for first, stop in _class_chunks(per_class):
        patterns = [pattern for test in tests[first:stop] for pattern in test.patterns]
        sample_class = np.repeat(np.arange(first, stop), per_class[first:stop])
        shifts = np.array([test.shift for test in tests[first:stop]], dtype=np.int64)
        variations = np.array([test.height_variation for test in tests[first:stop]])
        shift = np.array([POSITION_CODES[p[0]] for p in patterns]) * shifts[sample_class - first]
        variation = np.array([HEIGHT_CODES[p[1:]] for p in patterns]) * variations[sample_class - first]
        peak_counts = table.counts[sample_class]
        peak_index = _ragged_arange(table.starts[sample_class], peak_counts)
        base_heights = table.heights[peak_index]
        heights = np.where(base_heights == 1.0, 1.0, base_heights + np.repeat(variation, peak_counts))
        positions = table.positions[peak_index] + np.repeat(shift, peak_counts)
        sigmas = np.full(sample_class.size, config.test.sigma)
        yield _make_chunk(config, start, sample_class, peak_counts, positions, heights, sigmas)
        start += sample_class.size


def _chunks(config: DatasetConfig, split: str) -> Iterator[_Chunk]:
    split = canonical_split(split)
    return _test_chunks(config) if split == "test" else _random_chunks(config, split)


# ------------------------------------------------------------------------------------------ datasets
def iter_class_batches(config: ConfigLike, split: str) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(first_row, x float64 [m, datapoints], y int64 [m])`` class by class, in canonical order.

    The random stream is consumed exactly as the published generator does, so these are the
    published rows ``first_row … first_row + m - 1``. Each class is rendered on its own, so memory
    stays O(one class); stop iterating early to generate only the first classes.
    """
    config = get_config(config)
    for chunk in _chunks(config, split):
        bounds = [0, *(np.flatnonzero(np.diff(chunk.labels)) + 1).tolist(), chunk.labels.size]
        for low, high in itertools.pairwise(bounds):
            rows = slice(low, high)
            x = render(chunk.positions[rows], chunk.heights[rows], chunk.sigmas[rows], config.datapoints)
            yield chunk.start + low, x, chunk.labels[rows]


def generate(config: ConfigLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Generate one whole split: spectra ``x`` float64 ``[n, datapoints]`` and labels ``y`` int64 ``[n]``.

    ``config`` is a built-in name, a config file or a :class:`DatasetConfig`; ``split`` is
    ``train``, ``validation`` (or ``val``) or ``test``. Beyond the returned arrays only one chunk
    of classes is held at a time.
    """
    config = get_config(config)
    size = config.split_size(split)
    x = np.zeros((size, config.datapoints))
    y = np.empty(size, dtype=np.int64)
    for chunk in _chunks(config, split):
        rows = slice(chunk.start, chunk.start + chunk.labels.size)
        render(chunk.positions, chunk.heights, chunk.sigmas, config.datapoints, out=x[rows])
        y[rows] = chunk.labels
    return x, y
