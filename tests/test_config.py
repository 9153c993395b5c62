"""Dataset configs and class tables: :mod:`synthetic_spectra.config`, :mod:`synthetic_spectra.classes`."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import yaml

from synthetic_spectra.classes import CHALLENGE_CLASSES, draw_class_table
from synthetic_spectra.config import (
    BENCHMARK_TEST_PATTERNS,
    BUILTIN_CONFIGS,
    DatasetConfig,
    TestSpec,
    canonical_split,
    class_table,
    fresh_draw,
    get_config,
    load_config,
)

FIXTURES = Path(__file__).parent / "fixtures"
BUILTIN_LIST = ", ".join(BUILTIN_CONFIGS)
EXAMPLES = sorted((Path(__file__).parents[1] / "datasets" / "synthetic_spectra" / "configs").glob("*.json"))

# --- class tables ------------------------------------------------------------------------------------


def test_benchmark_table_is_the_published_one() -> None:
    published = json.loads((FIXTURES / "benchmark_classes.json").read_text())
    drawn = draw_class_table(published["classes"], published["datapoints"], seed=2022)
    expected = [published["spectra"][str(c)] for c in range(published["classes"])]
    assert class_table("benchmark") == expected
    assert [list(p) for p in drawn[0]] == [entry["peak_positions"] for entry in expected]
    assert [list(h) for h in drawn[1]] == [entry["peak_heights"] for entry in expected]


def test_challenge_table_is_the_spec_table() -> None:
    table = class_table("challenge")
    assert len(table) == 27 == len(CHALLENGE_CLASSES)
    assert table[0] == {"peak_positions": [700, 3000], "peak_heights": [0.7, 1.0]}
    assert table[8] == {"peak_positions": [500, 2100, 2260, 2750], "peak_heights": [0.9, 1.0, 0.035, 0.035]}
    assert table[26] == {"peak_positions": [299, 2750, 4202], "peak_heights": [0.23, 1.0, 0.23]}
    assert [len(entry["peak_positions"]) for entry in table[9:18]] == [2] * 6 + [3] * 3


@pytest.mark.parametrize("peak_count", ["gamma", "uniform"])
def test_drawn_tables_respect_their_parameters(peak_count: str) -> None:
    positions, heights = draw_class_table(
        300, 800, seed=5, boundary=40, min_peaks=3, max_peaks=5, max_height=20, peak_count=peak_count
    )
    counts = [len(p) for p in positions]
    assert min(counts) >= (3 if peak_count == "uniform" else 2) and max(counts) <= 5
    if peak_count == "uniform":
        assert set(counts) == {3, 4, 5}
    for class_positions, class_heights in zip(positions, heights, strict=True):
        assert list(class_positions) == sorted(class_positions)
        assert all(40 <= p < 760 for p in class_positions)
        assert max(class_heights) == 1.0 and min(class_heights) >= round(1 / 20, 3)
    assert draw_class_table(300, 800, seed=5, boundary=40, peak_count=peak_count) != draw_class_table(
        300, 800, seed=6, boundary=40, peak_count=peak_count
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_classes": 0}, "n_classes: must be an integer >= 1, got 0"),
        ({"n_classes": 2.0}, "n_classes: must be an integer >= 1, got 2.0"),
        ({"datapoints": 200, "boundary": 100}, "boundary: must be below datapoints / 2 = 100, got 100"),
        ({"seed": -1}, "seed: must be an integer >= 0, got -1"),
        ({"min_peaks": 0}, "min_peaks: must be an integer >= 1, got 0"),
        ({"min_peaks": 4, "max_peaks": 3}, "max_peaks: must be an integer >= 4, got 3"),
        ({"max_height": 0}, "max_height: must be an integer >= 1, got 0"),
        ({"max_height": 5000}, "max_height: must be <= 1000 .*, got 5000"),
        ({"peak_count": "poisson"}, "peak_count: must be one of gamma, uniform, got 'poisson'"),
    ],
)
def test_draw_class_table_rejects_bad_parameters(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_class_table(**{"n_classes": 3, **arguments})


# --- built-in configs ----------------------------------------------------------------------------------


def test_builtin_configs_are_cached_and_complete() -> None:
    assert BUILTIN_CONFIGS == (
        "benchmark", "challenge", "mini", "benchmark_realistic", "challenge_realistic", "challenge_mixtures",
    )  # fmt: skip
    for name in BUILTIN_CONFIGS:
        config = get_config(name)
        assert config.name == name and config.description
        assert get_config(name) is config and get_config(config) is config


def test_a_fresh_draw_keeps_the_classes_and_the_test_design_and_redraws_the_rest() -> None:
    from synthetic_spectra.generator import generate

    mini = get_config("mini")
    fresh = fresh_draw(mini, 7)
    assert (fresh.name, fresh.seed) == ("mini_fresh7", 7)
    assert class_table(fresh) == class_table(mini)
    for split, same in (("test", True), ("validation", False), ("train", False)):
        (x_fresh, y_fresh), (x_published, y_published) = generate(fresh, split), generate(mini, split)
        np.testing.assert_array_equal(y_fresh, y_published)
        assert np.array_equal(x_fresh, x_published) is same, split
    with pytest.raises(ValueError, match="seed"):
        fresh_draw(mini, -1)


CHALLENGE_DEFAULT = (30, 0.03, ("PH", "LH", "RH", "PH-", "LH-", "RH-"))


def test_the_published_test_variations() -> None:
    benchmark, challenge = get_config("benchmark").test, get_config("challenge").test
    assert benchmark.for_class(0) == (30, 0.04, BENCHMARK_TEST_PATTERNS)
    assert [benchmark.for_class(c).shift for c in (8, 318, 9)] == [17, 17, 30]
    variations = [benchmark.for_class(c).height_variation for c in (164, 219, 281, 347, 165)]
    assert variations == [0.025] * 4 + [0.04]
    assert challenge.for_class(4) == challenge.for_class(26) == CHALLENGE_DEFAULT
    assert challenge.for_class(13).patterns == ("LH", "RH", "LH+", "RH+", "LH-", "RH-")
    assert challenge.for_class(22).patterns == ("PH-", "LH-", "RH-", "PH+", "LH+", "RH+")
    assert get_config("challenge").vary_unit_height is False and get_config("benchmark").vary_unit_height


def test_mini_classes_are_separable_by_their_variations() -> None:
    """Classes with as many peaks differ somewhere by more than the position variation can bridge."""
    config = get_config("mini")
    assert config.num_classes == 10 and config.datapoints == 1000
    assert [config.split_size(split) for split in ("train", "validation", "test")] == [200, 50, 90]
    reach = 2 * config.position_shift
    for a in range(config.num_classes):
        for b in range(a):
            pa, pb = np.array(config.positions[a]), np.array(config.positions[b])
            assert len(pa) != len(pb) or np.abs(pa - pb).max() > reach, (a, b)


def test_class_names_are_zero_padded() -> None:
    assert get_config("challenge").class_names()[:2] == ["class_000", "class_001"]
    many = DatasetConfig.from_dict({"name": "many", "datapoints": 300, "draw_classes": {"n_classes": 1001}})
    assert many.class_names()[0] == "class_0000" and many.class_names()[-1] == "class_1000"


def test_split_names() -> None:
    assert [canonical_split(s) for s in ("train", "val", "validation", "test")] == [
        "train",
        "validation",
        "validation",
        "test",
    ]
    assert get_config("mini").samples_per_class("val") == (5,) * 10


# --- files and round trips --------------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "name": "tiny",
    "description": "a test config",
    "datapoints": 400,
    "boundary": 20,
    "classes": [
        {"peak_positions": [50, 200], "peak_heights": [0.5, 1.0]},
        {"peak_positions": [120, 300, 301], "peak_heights": [1.0, 0.2, 0.3]},
    ],
    "n_train": 4,
    "n_val": 2,
    "position_shift": 5,
    "height_variation": 0.05,
    "sigma_range": [2, 5],
    "vary_unit_height": False,
    "seed": 1,
    "test": {
        "shift": 3,
        "height_variation": 0.04,
        "sigma": 2,
        "patterns": ["PH", "LH+", "RH-"],
        "overrides": [{"classes": [1], "shift": 2, "patterns": ["PH", "PH−"]}],
    },
}


def test_from_dict_normalises_and_round_trips() -> None:
    config = DatasetConfig.from_dict(VALID)
    assert config.positions == ((50, 200), (120, 300, 301)) and config.heights[0] == (0.5, 1.0)
    assert config.sigma_range == (2.0, 5.0) and isinstance(config.test.sigma, float)
    assert config.test.for_class(1) == (2, 0.04, ("PH", "PH-"))  # typographic minus accepted
    assert config.samples_per_class("test") == (3, 2)
    assert DatasetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("source", [*BUILTIN_CONFIGS, *EXAMPLES], ids=lambda s: getattr(s, "name", s))
def test_every_config_round_trips_through_to_dict(source: str | Path) -> None:
    config = get_config(source)
    assert DatasetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_minimal_file_takes_the_study_defaults(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text("name: minimal\ndatapoints: 5000\ndraw_classes: {n_classes: 4}\n")
    config = get_config(path)
    assert config.positions == get_config("benchmark").positions[:4]
    assert (config.n_train, config.n_val) == (50, 10)
    assert (config.position_shift, config.height_variation) == (50, 0.05)
    assert (config.sigma_range, config.seed, config.test) == ((2.0, 5.0), 2022, TestSpec())


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_config_files_load_by_path_or_string(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"tiny{suffix}"
    path.write_text(json.dumps(VALID) if suffix == ".json" else yaml.safe_dump(VALID))
    assert load_config(path) == get_config(str(path)) == DatasetConfig.from_dict(VALID)


def test_example_configs_are_valid_and_documented() -> None:
    assert {path.name for path in EXAMPLES} >= {"example_custom.json"}
    for path in EXAMPLES:
        config = load_config(path)
        assert config.name == path.stem and config.description


# --- validation errors ----------------------------------------------------------------------------------


class Invalid(NamedTuple):
    """A change to a valid config dict and the one-line error it must cause."""

    path: str  # dotted keys / list indices of the value to set, e.g. "classes.0.peak_heights.1"
    value: Any
    problem: str  # text the message must contain
    field: str = ""  # the field the message starts with; default: ``path`` written as classes[0].x
    got: str | None = ""  # the message ends with "got <got>"; default: repr(value); None: no check

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(data)
        *parents, last = [int(part) if part.isdigit() else part for part in self.path.split(".")]
        target = data
        for part in parents:
            target = target[part]
        if self.value is REMOVE:
            del target[last]
        else:
            target[last] = self.value
        return data

    def check(self, data: dict[str, Any]) -> None:
        with pytest.raises(ValueError) as raised:
            DatasetConfig.from_dict(self.apply(data))
        message = str(raised.value)
        field = self.field or re.sub(r"\.(\d+)", r"[\1]", self.path)
        assert "\n" not in message and message.startswith(f"{field}: "), message
        assert self.problem in message, message
        if self.got is not None:
            assert message.endswith(f"got {self.got or repr(self.value)}"), message


class _Removed:
    """The key is left out (its repr names the test the same in every process, as pytest-xdist needs)."""

    def __repr__(self) -> str:
        return "<removed>"


REMOVE = _Removed()
INVALID: list[Invalid] = [
    Invalid("colour", "red", "unknown key (allowed: background, boundary, classes, ", got=None),
    Invalid("test.sift", 3, "(allowed: height_variation, overrides, patterns, shift, sigma)", got=None),
    Invalid("test.overrides.0.shfit", 3, "unknown key", got=None),
    Invalid("classes.1.widths", [1], "unknown key (allowed: peak_heights, peak_positions)", got=None),
    Invalid("name", REMOVE, "missing required key", got=None),
    Invalid("datapoints", REMOVE, "missing required key", got=None),
    Invalid("classes", REMOVE, "give exactly one of 'classes'", got=None),
    Invalid("draw_classes", {"n_classes": 2}, "give exactly one of 'classes'", field="classes", got=None),
    Invalid("name", "my data/set", "must be letters, digits"),
    Invalid("name", "", "must be letters, digits"),
    Invalid("description", 5, "must be a string"),
    Invalid("datapoints", 0, "must be >= 1"),
    Invalid("datapoints", 400.0, "must be an integer"),
    Invalid("boundary", -1, "must be >= 0"),
    Invalid("boundary", 200, "must be below datapoints / 2 = 200"),
    Invalid("classes", [], "must not be empty"),
    Invalid("classes", {"peak_positions": [1]}, "must be a list"),
    Invalid("classes.0", [50], "must be a mapping of keys to values"),
    Invalid("classes.1", {"peak_positions": [120]}, "missing required key", "classes[1].peak_heights", None),
    Invalid("classes.0.peak_positions", [], "must not be empty"),
    Invalid("classes.0.peak_positions", [50], "per position (1)", "classes[0].peak_heights", "[0.5, 1.0]"),
    Invalid("classes.0.peak_positions.0", 19, "must lie in [boundary, datapoints - boundary) = [20, 380)"),
    Invalid("classes.0.peak_positions.1", 380, "must lie in [boundary, datapoints - boundary) = [20, 380)"),
    Invalid("classes.0.peak_positions.1", 45, "ascending order", "classes[0].peak_positions", "[50, 45]"),
    Invalid("classes.0.peak_positions.1", "200", "must be an integer"),
    Invalid("classes.0.peak_heights.0", 0.0, "must lie in (0, 1]"),
    Invalid("classes.0.peak_heights.0", 1.5, "must lie in (0, 1]"),
    Invalid("classes.0.peak_heights.0", True, "must be a finite number"),
    Invalid("classes.0.peak_heights.0", float("inf"), "must be a finite number"),
    Invalid("classes.0.peak_heights.1", 0.9, "maximum height 1.0", "classes[0].peak_heights", "[0.5, 0.9]"),
    Invalid("n_train", 0, "must be >= 1"),
    Invalid("n_val", -2, "must be >= 1"),
    Invalid("position_shift", -1, "must be >= 0"),
    Invalid("height_variation", -0.01, "must be >= 0"),
    Invalid("sigma_range", [5, 2], "must be >= 5", "sigma_range[1]", "2"),
    Invalid("sigma_range", [0, 2], "must be > 0", "sigma_range[0]", "0"),
    Invalid("sigma_range", [2], "must be [low, high]"),
    Invalid("sigma_range", 3, "must be a list"),
    Invalid("vary_unit_height", "no", "must be true or false"),
    Invalid("seed", -5, "must be >= 0"),
    Invalid("test", [1], "must be a mapping of keys to values"),
    Invalid("test.shift", -3, "must be >= 0"),
    Invalid("test.height_variation", "big", "must be a finite number"),
    Invalid("test.sigma", 0, "must be > 0"),
    Invalid("test.patterns", [], "must not be empty"),
    Invalid("test.patterns.1", "XH", "must be a position code P/L/R followed by H, H+ or H-"),
    Invalid("test.patterns.1", "PH++", "must be a position code"),
    Invalid("test.overrides", {"classes": [1]}, "must be a list"),
    Invalid("test.overrides.0", {"shift": 2}, "missing required key", "test.overrides[0].classes", None),
    Invalid("test.overrides.0.classes", [2], "must be below 2", "test.overrides[0].classes[0]", "2"),
    Invalid("test.overrides.0.classes", [-1], "must be >= 0", "test.overrides[0].classes[0]", "-1"),
    Invalid("test.overrides.0.classes", [], "must not be empty"),
    Invalid("test.overrides.0.shift", -2, "must be >= 0"),
    Invalid("test.overrides.0.height_variation", -1, "must be >= 0"),
    Invalid("test.overrides.0.patterns", ["P"], "a position code", "test.overrides[0].patterns[0]", "'P'"),
]
DRAWN: dict[str, Any] = {key: value for key, value in VALID.items() if key != "classes"}
DRAWN["draw_classes"] = {"n_classes": 2}
DRAW_INVALID: list[Invalid] = [
    Invalid("draw_classes.colour", 1, "unknown key (allowed: max_height, max_peaks, ", got=None),
    Invalid("draw_classes.n_classes", REMOVE, "missing required key", got=None),
    Invalid("draw_classes.n_classes", 0, "must be an integer in [1, 10,000]"),
    Invalid("draw_classes.seed", -1, "must be an integer >= 0"),
    Invalid("draw_classes.peak_count", "x", "must be one of gamma, uniform"),
    Invalid("draw_classes.max_height", 5000, "must be <= 1000"),
    Invalid("draw_classes", [2], "must be a mapping of keys to values"),
    Invalid("boundary", 300, "must be below datapoints / 2 = 200"),
]


@pytest.mark.parametrize("invalid", INVALID, ids=lambda invalid: f"{invalid.path}={invalid.value!r}")
def test_invalid_config_is_rejected_naming_field_and_value(invalid: Invalid) -> None:
    invalid.check(VALID)


@pytest.mark.parametrize("invalid", DRAW_INVALID, ids=lambda invalid: f"{invalid.path}={invalid.value!r}")
def test_invalid_draw_request_is_rejected_naming_field_and_value(invalid: Invalid) -> None:
    invalid.check(DRAWN)


def test_a_drawn_config_is_valid() -> None:
    assert DatasetConfig.from_dict(DRAWN).positions == draw_class_table(2, 400, boundary=20)[0]


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match=r"^config: must be a mapping of keys to values, got \[1\]$"):
        DatasetConfig.from_dict([1])  # type: ignore[arg-type]


def test_direct_construction_is_validated_too() -> None:
    config = DatasetConfig.from_dict(VALID)
    with pytest.raises(ValueError, match=r"classes\[1\].peak_heights\[2\]: must lie in \(0, 1\], got 2.0"):
        dataclasses.replace(config, heights=((0.5, 1.0), (1.0, 0.2, 2.0)))
    with pytest.raises(ValueError, match="test: must be a TestSpec"):
        dataclasses.replace(config, test={"shift": 3})
    with pytest.raises(ValueError, match=r"test.overrides\[0\]: must be a TestOverride"):
        TestSpec(overrides=({"classes": [0]},))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("  \n", "the file is empty"),
        ('{"name": "x",', "not valid JSON"),
        ("[1, 2]", "config: must be a mapping of keys to values, got [1, 2]"),
        (
            json.dumps({"name": "x", "datapoints": 1000, "draw_classes": {"n_classes": 2}, "n_val": 0}),
            "n_val: must be >= 1, got 0",
        ),
    ],
)
def test_bad_json_files_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {message}")) as raised:
        load_config(path)
    assert "\n" not in str(raised.value)


def test_bad_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: not valid YAML")) as raised:
        load_config(path)
    assert "\n" not in str(raised.value)


def test_missing_file_and_unknown_names(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{missing}: config file not found")):
        get_config(missing)
    (tmp_path / "config.txt").write_text("{}")
    with pytest.raises(ValueError, match=re.escape("config.txt: config files must end in .json, .yaml")):
        load_config(tmp_path / "config.txt")
    for unknown in ("benchmarks", tmp_path):  # neither a built-in name nor a file
        with pytest.raises(ValueError, match=rf"^config: must be one of {BUILTIN_LIST} or a "):
            get_config(unknown)
