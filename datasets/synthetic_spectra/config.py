"""Dataset configurations: which classes, how many samples, how they vary (dataset.md §1–§5).

A :class:`DatasetConfig` is immutable and validated on construction. Six are built in
(:data:`BUILTIN_CONFIGS`): ``benchmark`` and ``challenge`` reproduce the published data exactly;
``mini`` is a small, quick variant for tests and demos; ``benchmark_realistic`` and
``challenge_realistic`` add :data:`REALISTIC_OPTIONS` to the published ones; ``challenge_mixtures``
mixes 2-3 challenge classes per spectrum. Custom configs come from JSON or YAML files
(:func:`load_config`) with this layout (see ``configs/example_custom.json``)::

    name: my_spectra              # required; letters, digits, '_', '-', '.'
    description: free text        # optional
    datapoints: 2000              # required; points per spectrum
    boundary: 50                  # default 100; peaks lie in [boundary, datapoints - boundary)
    classes:                      # either an explicit table ...
      - {peak_positions: [300, 900], peak_heights: [0.5, 1.0]}
    draw_classes:                 # ... or one drawn with draw_class_table (datapoints/boundary above)
      {n_classes: 20, seed: 7, peak_count: gamma, max_peaks: 10, min_peaks: 2, max_height: 100}
    n_train: 50                   # default 50 samples per class
    n_val: 10                     # default 10 samples per class
    position_shift: 50            # default 50: train/val position = rng.integers(p - shift, p + shift)
    height_variation: 0.05        # default 0.05: train/val height = rng.uniform(h - v, h + v)
    sigma_range: [2, 5]           # default [2, 5]: train/val peak width = rng.uniform(low, high)
    vary_unit_height: true        # default true; false keeps heights of exactly 1.0 (and draws nothing)
    seed: 2022                    # default 2022: the one default_rng(seed) for train + validation
    test:                         # fixed variations, no random numbers (all keys optional)
      shift: 30                   # s of the L/R patterns (default 30)
      height_variation: 0.04      # v of the H+/H- patterns (default 0.04)
      sigma: 2.0                  # peak width of every test sample (default 2.0)
      patterns: [PH, LH, RH, PH+, LH+, RH+, PH-, LH-, RH-]   # per class, in order (this is the default)
      overrides:                  # per-class changes; a later override wins a field both set
        - {classes: [8, 318], shift: 17}
        - {classes: [9, 12], patterns: [PH, RH]}

Optional sections switch on realistic options (peak_shape, noise, background, coupling) or make
the spectra mixtures of classes (mixture); all are off by default, see :mod:`synthetic_spectra.options`
(``configs/example_realistic.json`` uses most of them).

A test pattern is a position code P (peak positions), L (P - s) or R (P + s), then a height code
H (heights), H+ (H + v) or H- (H - v); a height of exactly 1.0 is never varied. Shifted positions are
clipped to ``[0, datapoints - 1]`` and heights to ``[0, 2]``.

Every problem raises a one-line ``ValueError`` naming the field (``classes[3].peak_heights[1]``,
``test.overrides[0].shift``) and the bad value; :func:`load_config` adds the file name.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from synthetic_spectra._validation import as_float, as_int, as_sequence, check_keys, fail
from synthetic_spectra.classes import challenge_class_table, draw_class_table
from synthetic_spectra.options import (
    OPTION_SECTIONS,
    Background,
    Coupling,
    ExponentialBackground,
    HumpBackground,
    Mixture,
    Noise,
    PeakShape,
    PolynomialBackground,
)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Other accepted spellings of a split name.
SPLIT_ALIASES: Mapping[str, str] = {"val": "validation"}
#: ``benchmark`` and ``challenge`` reproduce the published data; ``*_realistic`` add REALISTIC_OPTIONS.
BUILTIN_CONFIGS: tuple[str, ...] = (
    "benchmark",
    "challenge",
    "mini",
    "benchmark_realistic",
    "challenge_realistic",
    "challenge_mixtures",
)
CONFIG_SUFFIXES: tuple[str, ...] = (".json", ".yaml", ".yml")

#: Position codes of a test pattern -> multiple of the shift s added to every peak position.
POSITION_CODES: Mapping[str, int] = {"P": 0, "L": -1, "R": 1}
#: Height codes of a test pattern -> multiple of the variation v added to every height (but 1.0).
HEIGHT_CODES: Mapping[str, int] = {"H": 0, "H+": 1, "H-": -1}
#: The benchmark's nine test samples per class, in order (dataset.md §4).
BENCHMARK_TEST_PATTERNS: tuple[str, ...] = ("PH", "LH", "RH", "PH+", "LH+", "RH+", "PH-", "LH-", "RH-")
#: Heights are clipped to this range after variation (positions to the spectrum).
HEIGHT_CLIP: tuple[float, float] = (0.0, 2.0)

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PATTERN_SYNTAX = re.compile(r"([PLR])(H[+-]?)")


def default_class_names(num_classes: int) -> list[str]:
    """``["class_000", "class_001", ...]``: zero padded to 3 digits, more for >= 1000 classes.

    The one class naming of the project: datasets, exports and models without metadata all use it.
    """
    width = max(3, len(str(num_classes - 1)))
    return [f"class_{c:0{width}d}" for c in range(num_classes)]


def canonical_split(split: str) -> str:
    """Return the canonical name of a split (``"val"`` -> ``"validation"``); ValueError if unknown."""
    name = SPLIT_ALIASES.get(split, split) if isinstance(split, str) else split
    if name not in SPLITS:
        raise ValueError(f"split: must be one of {', '.join(SPLITS)} (or 'val'), got {split!r}")
    return name


# --------------------------------------------------------------------------------------------- checks
def _pattern(field_name: str, value: Any) -> str:
    text = value.replace("−", "-") if isinstance(value, str) else value  # accept the typographic minus
    if not isinstance(text, str) or not _PATTERN_SYNTAX.fullmatch(text):
        fail(field_name, "must be a position code P/L/R followed by H, H+ or H- (e.g. 'LH+')", value)
    return text


def _patterns(field_name: str, value: Any) -> tuple[str, ...]:
    items = as_sequence(field_name, value)
    return tuple(_pattern(f"{field_name}[{i}]", item) for i, item in enumerate(items))


def _check_extent(datapoints: Any, boundary: Any) -> tuple[int, int]:
    datapoints = as_int("datapoints", datapoints, 1)
    boundary = as_int("boundary", boundary, 0)
    if 2 * boundary >= datapoints:
        fail("boundary", f"must be below datapoints / 2 = {datapoints / 2:g}", boundary)
    return datapoints, boundary


# ------------------------------------------------------------------------------------------ test spec
class ClassTest(NamedTuple):
    """The resolved test variations of one class."""

    shift: int
    height_variation: float
    patterns: tuple[str, ...]


_OVERRIDE_KEYS: tuple[str, ...] = ("classes", "shift", "height_variation", "patterns")


@dataclass(frozen=True)
class TestOverride:
    """Test settings replacing the defaults of :class:`TestSpec` for some classes (None = keep)."""

    __test__ = False  # not a pytest test class

    classes: tuple[int, ...]
    shift: int | None = None
    height_variation: float | None = None
    patterns: tuple[str, ...] | None = None

    def check(self, where: str) -> TestOverride:
        """Return a normalised copy; ValueError naming ``where`` + field for a bad value."""
        classes = as_sequence(f"{where}.classes", self.classes)
        classes = tuple(as_int(f"{where}.classes[{i}]", label, 0) for i, label in enumerate(classes))
        return TestOverride(
            classes=classes,
            shift=None if self.shift is None else as_int(f"{where}.shift", self.shift, 0),
            height_variation=(
                None
                if self.height_variation is None
                else as_float(f"{where}.height_variation", self.height_variation, 0.0)
            ),
            patterns=None if self.patterns is None else _patterns(f"{where}.patterns", self.patterns),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the fields left unset."""
        fields = {
            "classes": list(self.classes),
            "shift": self.shift,
            "height_variation": self.height_variation,
            "patterns": None if self.patterns is None else list(self.patterns),
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class TestSpec:
    """How the test samples of each class vary (dataset.md §4); no random numbers are drawn.

    Every class gets ``patterns`` (one sample each, in order) with shift ``shift`` and height
    variation ``height_variation``, unless one of ``overrides`` names the class.
    """

    __test__ = False  # not a pytest test class

    shift: int = 30
    height_variation: float = 0.04
    sigma: float = 2.0
    patterns: tuple[str, ...] = BENCHMARK_TEST_PATTERNS
    overrides: tuple[TestOverride, ...] = ()

    def __post_init__(self) -> None:
        set_field = functools.partial(object.__setattr__, self)
        set_field("shift", as_int("test.shift", self.shift, 0))
        set_field("height_variation", as_float("test.height_variation", self.height_variation, 0.0))
        set_field("sigma", as_float("test.sigma", self.sigma, positive=True))
        set_field("patterns", _patterns("test.patterns", self.patterns))
        overrides = as_sequence("test.overrides", self.overrides, non_empty=False)
        for i, override in enumerate(overrides):
            if not isinstance(override, TestOverride):
                fail(f"test.overrides[{i}]", "must be a TestOverride", override)
        set_field("overrides", tuple(o.check(f"test.overrides[{i}]") for i, o in enumerate(overrides)))

    def for_class(self, label: int) -> ClassTest:
        """The shift, height variation and patterns of class ``label`` after the overrides."""
        shift, variation, patterns = self.shift, self.height_variation, self.patterns
        for override in self.overrides:
            if label in override.classes:
                shift = shift if override.shift is None else override.shift
                variation = variation if override.height_variation is None else override.height_variation
                patterns = patterns if override.patterns is None else override.patterns
        return ClassTest(shift, variation, patterns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see :meth:`from_dict`)."""
        return {
            "shift": self.shift,
            "height_variation": self.height_variation,
            "sigma": self.sigma,
            "patterns": list(self.patterns),
            "overrides": [override.to_dict() for override in self.overrides],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestSpec:
        """Build from the ``test`` mapping of a config file (every key optional)."""
        check_keys("test", data, ("shift", "height_variation", "sigma", "patterns", "overrides"))
        overrides = []
        for i, item in enumerate(as_sequence("test.overrides", data.get("overrides", ()), non_empty=False)):
            where = f"test.overrides[{i}]"
            check_keys(where, item, _OVERRIDE_KEYS, required=("classes",))
            overrides.append(TestOverride(**item))
        return cls(**{**data, "overrides": tuple(overrides)})


# ---------------------------------------------------------------------------------------- the config
@dataclass(frozen=True)
class DatasetConfig:
    """Everything that defines a synthetic spectra dataset; validated and normalised on creation.

    ``positions[c]``/``heights[c]`` are class ``c``'s peaks (positions ascending, highest height 1.0).
    Train and validation samples vary randomly (one ``default_rng(seed)`` stream, class by class,
    ``n_train`` then ``n_val`` samples each); test samples follow ``test`` (see :class:`TestSpec`).

    The realistic options (:mod:`synthetic_spectra.options`: ``peak_shape``, ``noise``,
    ``background``, ``coupling``) are off by default; when on, they draw from their own streams, so
    the published draws are untouched. With a ``mixture`` the config describes multi-label spectra
    of several classes (:func:`synthetic_spectra.generator.generate_mixtures`) instead.
    """

    name: str
    datapoints: int
    boundary: int
    positions: tuple[tuple[int, ...], ...]
    heights: tuple[tuple[float, ...], ...]
    n_train: int
    n_val: int
    position_shift: int
    height_variation: float
    sigma_range: tuple[float, float]
    vary_unit_height: bool
    seed: int
    test: TestSpec
    description: str = ""
    peak_shape: PeakShape = dataclasses.field(default_factory=PeakShape)
    noise: Noise = dataclasses.field(default_factory=Noise)
    background: Background = dataclasses.field(default_factory=Background)
    coupling: Coupling = dataclasses.field(default_factory=Coupling)
    mixture: Mixture | None = None

    def __post_init__(self) -> None:
        set_field = functools.partial(object.__setattr__, self)
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            fail("name", "must be letters, digits, '_', '-', '.' (a letter or digit first)", self.name)
        if not isinstance(self.description, str):
            fail("description", "must be a string", self.description)
        datapoints, boundary = _check_extent(self.datapoints, self.boundary)
        set_field("datapoints", datapoints)
        set_field("boundary", boundary)
        positions, heights = self._checked_classes()
        set_field("positions", positions)
        set_field("heights", heights)
        set_field("n_train", as_int("n_train", self.n_train, 1))
        set_field("n_val", as_int("n_val", self.n_val, 1))
        set_field("position_shift", as_int("position_shift", self.position_shift, 0))
        set_field("height_variation", as_float("height_variation", self.height_variation, 0.0))
        sigma_range = as_sequence("sigma_range", self.sigma_range)
        if len(sigma_range) != 2:
            fail("sigma_range", "must be [low, high]", self.sigma_range)
        low = as_float("sigma_range[0]", sigma_range[0], positive=True)
        high = as_float("sigma_range[1]", sigma_range[1], low)
        set_field("sigma_range", (low, high))
        if not isinstance(self.vary_unit_height, (bool, np.bool_)):
            fail("vary_unit_height", "must be true or false", self.vary_unit_height)
        set_field("vary_unit_height", bool(self.vary_unit_height))
        set_field("seed", as_int("seed", self.seed, 0))
        if not isinstance(self.test, TestSpec):
            fail("test", "must be a TestSpec", self.test)
        for i, override in enumerate(self.test.overrides):
            for j, label in enumerate(override.classes):
                if label >= len(positions):
                    fail(f"test.overrides[{i}].classes[{j}]", f"must be below {len(positions)}", label)
        for name, kind in OPTION_SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, kind) and not (name == "mixture" and value is None):
                fail(name, f"must be a {kind.__name__}", value)
        if self.mixture is not None and self.mixture.components[1] > len(positions):
            expected = f"must be <= the number of classes {len(positions)}"
            fail("mixture.components[1]", expected, self.mixture.components[1])

    def _checked_classes(self) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]]:
        all_positions = as_sequence("classes", self.positions)
        all_heights = as_sequence("classes", self.heights)
        if len(all_positions) != len(all_heights):
            fail("classes", f"need one height list per position list ({len(all_positions)})", self.heights)
        low, high = self.boundary, self.datapoints - self.boundary
        checked_positions, checked_heights = [], []
        for c, (class_positions, class_heights) in enumerate(zip(all_positions, all_heights, strict=True)):
            where = f"classes[{c}]"
            class_positions = as_sequence(f"{where}.peak_positions", class_positions)
            class_heights = as_sequence(f"{where}.peak_heights", class_heights)
            if len(class_positions) != len(class_heights):
                fail(
                    f"{where}.peak_heights",
                    f"must have one height per position ({len(class_positions)})",
                    list(class_heights),
                )
            ints = [as_int(f"{where}.peak_positions[{i}]", p) for i, p in enumerate(class_positions)]
            for i, p in enumerate(ints):
                if not low <= p < high:
                    expected = f"must lie in [boundary, datapoints - boundary) = [{low}, {high})"
                    fail(f"{where}.peak_positions[{i}]", expected, p)
                if i and p < ints[i - 1]:
                    fail(f"{where}.peak_positions", "must be in ascending order", list(class_positions))
            floats = [as_float(f"{where}.peak_heights[{i}]", h) for i, h in enumerate(class_heights)]
            for i, h in enumerate(floats):
                if not 0.0 < h <= 1.0:
                    fail(f"{where}.peak_heights[{i}]", "must lie in (0, 1]", class_heights[i])
            if max(floats) != 1.0:
                fail(f"{where}.peak_heights", "must contain the maximum height 1.0", list(class_heights))
            checked_positions.append(tuple(ints))
            checked_heights.append(tuple(floats))
        return tuple(checked_positions), tuple(checked_heights)

    # ------------------------------------------------------------------------------------- queries
    @property
    def num_classes(self) -> int:
        """Number of classes (labels 0 … num_classes - 1)."""
        return len(self.positions)

    @property
    def realistic(self) -> bool:
        """Whether any realistic option (peak shape, noise, background, coupling) is on."""
        return not all(getattr(self, name).is_default for name in _REALISTIC_OPTIONS)

    @property
    def is_mixture(self) -> bool:
        """Whether the spectra are mixtures of classes (multi-label; see :class:`Mixture`)."""
        return self.mixture is not None

    def samples_per_class(self, split: str) -> tuple[int, ...]:
        """Number of samples of each class in ``split`` (``"val"`` is accepted for validation).

        A mixture config has no samples of a single class: ValueError.
        """
        split = canonical_split(split)
        if self.mixture is not None:
            raise ValueError(f"config: {self.name} is a mixture config; its spectra have no single class")
        if split == "test":
            return tuple(len(self.test.for_class(c).patterns) for c in range(self.num_classes))
        return (self.n_train if split == "train" else self.n_val,) * self.num_classes

    def split_size(self, split: str) -> int:
        """Number of samples (rows) in ``split``."""
        if self.mixture is not None:
            return self.mixture.split_size(canonical_split(split))
        return sum(self.samples_per_class(split))

    def class_names(self) -> list[str]:
        """``["class_000", "class_001", ...]``: :func:`default_class_names` of ``num_classes``."""
        return default_class_names(self.num_classes)

    # ----------------------------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with an explicit class table; ``from_dict(to_dict())`` gives an equal config.

        Option sections appear only when on, so the published configs keep their original form.
        """
        options = {
            name: section.to_dict()
            for name, section in ((name, getattr(self, name)) for name in OPTION_SECTIONS)
            if section is not None and not (name in _REALISTIC_OPTIONS and section.is_default)
        }
        return {
            "name": self.name,
            "description": self.description,
            "datapoints": self.datapoints,
            "boundary": self.boundary,
            "classes": [
                {"peak_positions": list(p), "peak_heights": list(h)}
                for p, h in zip(self.positions, self.heights, strict=True)
            ],
            "n_train": self.n_train,
            "n_val": self.n_val,
            "position_shift": self.position_shift,
            "height_variation": self.height_variation,
            "sigma_range": list(self.sigma_range),
            "vary_unit_height": self.vary_unit_height,
            "seed": self.seed,
            "test": self.test.to_dict(),
            **options,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetConfig:
        """Build and validate a config from a mapping in the file layout (module docstring)."""
        allowed = (*_REQUIRED_KEYS, *_FILE_DEFAULTS, "classes", "draw_classes", *OPTION_SECTIONS)
        check_keys("", data, allowed, _REQUIRED_KEYS)
        values = {**_FILE_DEFAULTS, **data}
        for name, kind in OPTION_SECTIONS.items():
            if values.get(name) is not None:
                values[name] = kind.from_dict(values[name])
        if ("classes" in values) == ("draw_classes" in values):
            raise ValueError("classes: give exactly one of 'classes' (a list of peaks) or 'draw_classes'")
        if "classes" in values:
            classes = as_sequence("classes", values.pop("classes"))
            positions, heights = [], []
            for c, entry in enumerate(classes):
                check_keys(f"classes[{c}]", entry, _CLASS_KEYS, _CLASS_KEYS)
                positions.append(entry["peak_positions"])
                heights.append(entry["peak_heights"])
        else:
            draw = values.pop("draw_classes")
            positions, heights = _draw_classes(draw, values["datapoints"], values["boundary"])
        test = TestSpec.from_dict(values.pop("test"))
        return cls(positions=tuple(positions), heights=tuple(heights), test=test, **values)


_REQUIRED_KEYS: tuple[str, ...] = ("name", "datapoints")
#: The option sections that change how spectra look (not what they are made of).
_REALISTIC_OPTIONS: tuple[str, ...] = ("peak_shape", "noise", "background", "coupling")
_CLASS_KEYS: tuple[str, ...] = ("peak_positions", "peak_heights")
#: Values of the optional top-level keys of a config file (the study's settings).
_FILE_DEFAULTS: Mapping[str, Any] = {
    "description": "",
    "boundary": 100,
    "n_train": 50,
    "n_val": 10,
    "position_shift": 50,
    "height_variation": 0.05,
    "sigma_range": (2.0, 5.0),
    "vary_unit_height": True,
    "seed": 2022,
    "test": {},
}
#: The most classes a drawn class table may have (drawing is linear in it; the study's largest has 500).
MAX_CLASSES = 10_000
_DRAW_KEYS: tuple[str, ...] = ("n_classes", "seed", "peak_count", "max_peaks", "min_peaks", "max_height")


def _draw_classes(params: Any, datapoints: Any, boundary: Any) -> tuple[Any, Any]:
    """Draw the table a config file's ``draw_classes`` asks for (``n_classes`` required)."""
    check_keys("draw_classes", params, _DRAW_KEYS, required=("n_classes",))
    n_classes = params["n_classes"]
    if not isinstance(n_classes, int) or isinstance(n_classes, bool) or not 1 <= n_classes <= MAX_CLASSES:
        shown = repr(n_classes) if isinstance(n_classes, (int, float, bool)) else type(n_classes).__name__
        raise ValueError(f"draw_classes.n_classes: must be an integer in [1, {MAX_CLASSES:,}], got {shown}")
    datapoints, boundary = _check_extent(datapoints, boundary)
    try:
        return draw_class_table(datapoints=datapoints, boundary=boundary, **params)
    except ValueError as exc:  # its messages start with the parameter name
        raise ValueError(f"draw_classes.{exc}") from None


# ------------------------------------------------------------------------------------ built-in configs
#: The study's train/validation variations, shared by benchmark and challenge.
_STUDY_VARIATIONS: Mapping[str, Any] = {
    "datapoints": 5000,
    "boundary": 100,
    "n_train": 50,
    "n_val": 10,
    "position_shift": 50,
    "height_variation": 0.05,
    "sigma_range": (2.0, 5.0),
    "seed": 2022,
}

_CHALLENGE_DEFAULT_PATTERNS = ("PH", "LH", "RH", "PH-", "LH-", "RH-")


def _benchmark() -> DatasetConfig:
    positions, heights = draw_class_table(500, 5000, seed=2022, boundary=100)
    return DatasetConfig(
        name="benchmark",
        positions=positions,
        heights=heights,
        vary_unit_height=True,
        test=TestSpec(
            shift=30,
            height_variation=0.04,
            sigma=2.0,
            patterns=BENCHMARK_TEST_PATTERNS,
            overrides=(  # keep neighbouring test classes apart (dataset.md §4)
                TestOverride(classes=(8, 318), shift=17),
                TestOverride(classes=(164, 219, 281, 347), height_variation=0.025),
            ),
        ),
        description=(
            "The study's benchmark: 500 classes of 2-10 Gaussian peaks drawn with seed 2022 "
            "(gamma peak counts), 5000 points, 50/10 random train/validation samples and 9 fixed "
            "test variations per class."
        ),
        **_STUDY_VARIATIONS,
    )


def _challenge() -> DatasetConfig:
    positions, heights = challenge_class_table()
    return DatasetConfig(
        name="challenge",
        positions=positions,
        heights=heights,
        vary_unit_height=False,
        test=TestSpec(
            shift=30,
            height_variation=0.03,
            sigma=2.0,
            patterns=_CHALLENGE_DEFAULT_PATTERNS,
            overrides=(
                TestOverride(classes=(9, 12, 15), patterns=("PH", "RH", "PH+", "RH+", "PH-", "RH-")),
                TestOverride(classes=(10, 13, 16), patterns=("LH", "RH", "LH+", "RH+", "LH-", "RH-")),
                TestOverride(classes=(11, 14, 17), patterns=("PH", "LH", "PH+", "LH+", "PH-", "LH-")),
                TestOverride(classes=(18, 21, 24), patterns=("PH", "LH", "RH", "PH+", "LH+", "RH+")),
                TestOverride(classes=(19, 22, 25), patterns=("PH-", "LH-", "RH-", "PH+", "LH+", "RH+")),
            ),
        ),
        description=(
            "The study's challenge: 27 hand-made classes in triplets provoking minor-peak, "
            "position-overlap and intensity-overlap confusions, 5000 points, 50/10 random "
            "train/validation samples (heights of 1.0 kept) and 6 fixed test variations per class."
        ),
        **_STUDY_VARIATIONS,
    )


_MINI_DRAW: Mapping[str, int] = {"n_classes": 10, "datapoints": 1000, "seed": 2022, "boundary": 50}


def _mini() -> DatasetConfig:
    positions, heights = draw_class_table(**_MINI_DRAW)
    return DatasetConfig(
        name="mini",
        datapoints=_MINI_DRAW["datapoints"],
        boundary=_MINI_DRAW["boundary"],
        positions=positions,
        heights=heights,
        n_train=20,
        n_val=5,
        position_shift=10,
        height_variation=0.05,
        sigma_range=(2.0, 5.0),
        vary_unit_height=True,
        seed=2022,
        test=TestSpec(shift=6, height_variation=0.04, sigma=2.0, patterns=BENCHMARK_TEST_PATTERNS),
        description=(
            "A small benchmark-like dataset for tests and demos: 10 classes drawn like the benchmark's "
            "(seed 2022, gamma peak counts, boundary 50) on 1000 points; position shifts scaled to the "
            "shorter spectra (train/validation +-10, test +-6 instead of +-50 and +-30), widths and "
            "heights varied as in the study; 20/5 train/validation samples and the benchmark's 9 test "
            "variations per class."
        ),
    )


#: The options of the ``*_realistic`` configs: pseudo-Voigt peaks, counting and detector noise and a
#: background of a polynomial, an exponential decay and one or two amorphous humps.
REALISTIC_OPTIONS: Mapping[str, Any] = {
    "peak_shape": PeakShape(kind="pseudo_voigt", eta=(0.2, 0.8)),
    "noise": Noise(snr=(100.0, 500.0), counts=(5000.0, 50000.0)),
    "background": Background(
        polynomial=PolynomialBackground(degree=3, amplitude=(0.0, 0.2)),
        exponential=ExponentialBackground(amplitude=(0.0, 0.3), decay=(0.05, 0.3)),
        humps=HumpBackground(count=(1, 2), amplitude=(0.05, 0.2), center=(0.1, 0.9), width=(0.03, 0.1)),
    ),
}
_REALISTIC_DESCRIPTION = (
    " plus realistic options drawn per spectrum (test spectra included) from streams of their own, so "
    "peak positions, heights and widths stay those of {name!r}: pseudo-Voigt peaks (eta 0.2-0.8, the "
    "FWHM of the Gaussian of the same sigma), Poisson noise (5,000-50,000 counts at the maximum), "
    "Gaussian noise (SNR 100-500) and a background of a cubic polynomial (up to 20 % of the highest "
    "peak), an exponential decay (up to 30 %) and 1-2 broad humps (5-20 % each)."
)


def _realistic(name: str) -> DatasetConfig:
    base = _builtin(name)
    description = f"The study's {name} classes and variations" + _REALISTIC_DESCRIPTION.format(name=name)
    return dataclasses.replace(base, name=f"{name}_realistic", description=description, **REALISTIC_OPTIONS)


def _challenge_mixtures() -> DatasetConfig:
    return dataclasses.replace(
        _builtin("challenge"),
        name="challenge_mixtures",
        mixture=Mixture(n_train=2700, n_val=540, n_test=540, components=(2, 3), min_fraction=0.1),
        description=(
            "Mixtures of the 27 challenge classes: each spectrum sums 2-3 distinct classes with random "
            "fractions (each >= 0.1, summing to 1), every component varied like a challenge training "
            "sample; 2,700 / 540 / 540 spectra with multi-hot labels and fractions."
        ),
    )


_BUILDERS = {
    "benchmark": _benchmark,
    "challenge": _challenge,
    "mini": _mini,
    "benchmark_realistic": functools.partial(_realistic, "benchmark"),
    "challenge_realistic": functools.partial(_realistic, "challenge"),
    "challenge_mixtures": _challenge_mixtures,
}


@functools.cache
def _builtin(name: str) -> DatasetConfig:
    return _BUILDERS[name]()


# ------------------------------------------------------------------------------------------- loading
def load_config(path: str | os.PathLike[str]) -> DatasetConfig:
    """Read a config from a ``.json``, ``.yaml`` or ``.yml`` file.

    Raises:
        FileNotFoundError: the file does not exist (one line naming it).
        ValueError: the file is empty, not valid JSON/YAML, describes an invalid config, or takes a
            built-in config's name without being that config; the one-line message names the file,
            the field and the bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ValueError(f"{path}: config files must end in {', '.join(CONFIG_SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the file ({_first_line(exc)})") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        if kind == "JSON":
            data = json.loads(text)
        else:
            import yaml  # only needed for YAML files

            data = yaml.safe_load(text)
    except RecursionError:
        raise ValueError(
            f"{path}: {kind} nested too deeply to read (more than ~{MAX_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ValueError(f"{path}: not valid JSON ({_first_line(exc)})") from None
    except Exception as exc:  # yaml.YAMLError and its subclasses
        raise ValueError(f"{path}: not valid YAML ({_first_line(exc)})") from None
    check_size(data, str(path))
    try:
        config = DatasetConfig.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if config.name in BUILTIN_CONFIGS and config != _builtin(config.name):  # an exact copy may keep it
        raise ValueError(
            f"{path}: name {config.name!r} is a built-in config's; give this config another name"
        )
    return config


#: Bounds of a config file's contents, checked before anything is built from it (or echoed in a message).
MAX_DEPTH = 100
MAX_VALUES = 200_000


def check_size(data: Any, where: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
    """ValueError unless ``data`` (parsed JSON/YAML) is at most ``max_depth`` deep and holds at most
    ``max_values`` values, counting a YAML alias each time it is used (so an alias bomb stops early)."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > max_values:
            raise ValueError(f"{where}: more than {max_values:,} values (repeated YAML aliases?)")
        if depth > max_depth:
            raise ValueError(f"{where}: nested more than {max_depth} levels deep")
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def get_config(name_or_config_or_path: str | os.PathLike[str] | DatasetConfig) -> DatasetConfig:
    """Resolve a built-in name, a :class:`DatasetConfig` (returned as is) or a config file path."""
    value = name_or_config_or_path
    if isinstance(value, DatasetConfig):
        return value
    if isinstance(value, str) and value in BUILTIN_CONFIGS:
        return _builtin(value)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.suffix.lower() in CONFIG_SUFFIXES or path.is_file():
            return load_config(path)
    expected = f"must be one of {', '.join(BUILTIN_CONFIGS)} or a {'/'.join(CONFIG_SUFFIXES)} file"
    raise ValueError(f"config: {expected}, got {value!r}")


def fresh_draw(config: DatasetConfig, seed: int) -> DatasetConfig:
    """``config``'s classes with the training and validation splits drawn again with ``seed``.

    Named ``<name>_fresh<seed>``. The test split is a fixed design and draws no published random numbers,
    so it is the same as ``config``'s; only realistic options (if any) are drawn with the new seed.
    """
    return dataclasses.replace(config, name=f"{config.name}_fresh{seed}", seed=seed)


def class_table(name_or_config: str | os.PathLike[str] | DatasetConfig) -> list[dict[str, list]]:
    """Return a config's class table in the published JSON layout.

    ``name_or_config`` is anything :func:`synthetic_spectra.config.get_config` accepts. The result is
    ``[{"peak_positions": [...], "peak_heights": [...]}, ...]``, one entry per class in label order.
    """
    config = get_config(name_or_config)
    return [
        {"peak_positions": list(positions), "peak_heights": list(heights)}
        for positions, heights in zip(config.positions, config.heights, strict=True)
    ]


__all__ = [
    "BENCHMARK_TEST_PATTERNS",
    "BUILTIN_CONFIGS",
    "HEIGHT_CLIP",
    "HEIGHT_CODES",
    "POSITION_CODES",
    "REALISTIC_OPTIONS",
    "SPLITS",
    "SPLIT_ALIASES",
    "ClassTest",
    "DatasetConfig",
    "TestOverride",
    "TestSpec",
    "canonical_split",
    "class_table",
    "get_config",
    "load_config",
]
