"""Class tables ("fingerprints"): lists of peak positions and heights, one list per class.

Two tables are built in (``dataset.md`` §1):

* ``benchmark`` — 500 classes drawn by :func:`draw_class_table` (seed 2022, gamma peak counts);
* ``challenge`` — the 27 hand-made classes of :data:`CHALLENGE_CLASSES`.

:func:`draw_class_table` draws new tables of any size with the published algorithm, so custom
datasets (see :mod:`synthetic_spectra.config`) can ask for one instead of listing every peak.
"""

from __future__ import annotations

import numpy as np

#: Per class: peak positions (ascending) and their heights.
Positions = tuple[tuple[int, ...], ...]
Heights = tuple[tuple[float, ...], ...]

PEAK_COUNT_DISTRIBUTIONS: tuple[str, ...] = ("gamma", "uniform")

#: Gamma(shape, scale) of the number of peaks beyond two (``n = round(gamma + 2)``).
_GAMMA_SHAPE = 1.2
_GAMMA_SCALE = 1.2
#: Heights are integers 1 … max_height divided by their maximum, rounded to this many decimals.
_HEIGHT_DECIMALS = 3
#: Above this, ``1 / max_height`` rounds to a height of 0.0 (no peak at all).
_MAX_HEIGHT_LIMIT = 10**_HEIGHT_DECIMALS

#: The ``challenge`` table (dataset.md §1b): three groups (minor peak, position overlap,
#: intensity overlap) of three triplets, as (positions, heights) per class.
CHALLENGE_CLASSES: tuple[tuple[tuple[int, ...], tuple[float, ...]], ...] = (
    # Minor peak: a 3.5 % peak appears next to the main ones.
    ((700, 3000), (0.7, 1.0)),
    ((700, 1800, 3000), (0.7, 0.035, 1.0)),
    ((700, 3000, 4200), (0.7, 1.0, 0.035)),
    ((920, 1115), (1.0, 0.4)),
    ((923, 1112, 1500), (1.0, 0.4, 0.035)),
    ((918, 1116, 1630), (1.0, 0.4, 0.035)),
    ((500, 2100), (0.9, 1.0)),
    ((500, 2100, 2260), (0.9, 1.0, 0.035)),
    ((500, 2100, 2260, 2750), (0.9, 1.0, 0.035, 0.035)),
    # Position overlap: one peak moves by 70 points between the classes of a triplet.
    ((700, 3000), (1.0, 0.7)),
    ((700, 3070), (1.0, 0.7)),
    ((700, 3140), (1.0, 0.7)),
    ((1230, 2103), (0.15, 1.0)),
    ((1300, 2101), (0.15, 1.0)),
    ((1370, 2098), (0.15, 1.0)),
    ((1230, 1750, 4700), (0.15, 0.2, 1.0)),
    ((1300, 1820, 4700), (0.15, 0.2, 1.0)),
    ((1370, 1890, 4700), (0.15, 0.2, 1.0)),
    # Intensity overlap: one peak's height changes by 0.075 between the classes of a triplet.
    ((920, 1500), (0.08, 1.0)),
    ((920, 1500), (0.155, 1.0)),
    ((920, 1500), (0.23, 1.0)),
    ((1147, 2261), (1.0, 0.20)),
    ((1151, 2258), (1.0, 0.275)),
    ((1153, 2262), (1.0, 0.35)),
    ((302, 2750, 4198), (0.08, 1.0, 0.22)),
    ((300, 2750, 4200), (0.155, 1.0, 0.21)),
    ((299, 2750, 4202), (0.23, 1.0, 0.23)),
)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def draw_class_table(
    n_classes: int,
    datapoints: int = 5000,
    *,
    seed: int = 2022,
    boundary: int = 100,
    max_peaks: int = 10,
    min_peaks: int = 2,
    max_height: int = 100,
    peak_count: str = "gamma",
) -> tuple[Positions, Heights]:
    """Draw a class table with the published algorithm (dataset.md §1a).

    One ``default_rng(seed)`` serves the whole table. Per class the number of peaks is
    ``round(gamma(1.2, 1.2) + 2)`` (``peak_count="gamma"``, at least 2) or uniform in
    ``[min_peaks, max_peaks]`` (``"uniform"``); that many positions in ``[boundary,
    datapoints - boundary)`` and integer heights in ``[1, max_height]`` are drawn and cut to
    ``max_peaks``; heights are divided by their maximum and rounded to 3 decimals; peaks are
    sorted by position. ``draw_class_table(500)`` is the ``benchmark`` table.
    """
    _check_int("n_classes", n_classes, 1)
    _check_int("datapoints", datapoints, 1)
    _check_int("seed", seed, 0)
    _check_int("boundary", boundary, 0)
    _check_int("min_peaks", min_peaks, 1)
    _check_int("max_peaks", max_peaks, min_peaks)
    _check_int("max_height", max_height, 1)
    if max_height > _MAX_HEIGHT_LIMIT:
        raise ValueError(
            f"max_height: must be <= {_MAX_HEIGHT_LIMIT} (heights are rounded to {_HEIGHT_DECIMALS} "
            f"decimals), got {max_height!r}"
        )
    if 2 * boundary >= datapoints:
        raise ValueError(f"boundary: must be below datapoints / 2 = {datapoints / 2:g}, got {boundary!r}")
    if peak_count not in PEAK_COUNT_DISTRIBUTIONS:
        choices = ", ".join(PEAK_COUNT_DISTRIBUTIONS)
        raise ValueError(f"peak_count: must be one of {choices}, got {peak_count!r}")

    rng = np.random.default_rng(seed)
    positions: list[tuple[int, ...]] = []
    heights: list[tuple[float, ...]] = []
    for _ in range(n_classes):
        if peak_count == "gamma":
            n = round(rng.gamma(_GAMMA_SHAPE, _GAMMA_SCALE) + 2)  # Python's round of a float: an int
        else:
            n = int(rng.integers(min_peaks, max_peaks, endpoint=True))
        peak_positions = rng.integers(boundary, datapoints - boundary, n)[:max_peaks]
        raw_heights = rng.integers(1, max_height, n, endpoint=True)[:max_peaks]
        peak_heights = np.round(raw_heights / raw_heights.max(), _HEIGHT_DECIMALS)
        order = np.argsort(peak_positions, kind="stable")
        positions.append(tuple(int(p) for p in peak_positions[order]))
        heights.append(tuple(float(h) for h in peak_heights[order]))
    return tuple(positions), tuple(heights)


def challenge_class_table() -> tuple[Positions, Heights]:
    """Return the 27-class ``challenge`` table (dataset.md §1b) as (positions, heights)."""
    return (
        tuple(positions for positions, _ in CHALLENGE_CLASSES),
        tuple(heights for _, heights in CHALLENGE_CLASSES),
    )
