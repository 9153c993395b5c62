"""``spectrazoo generate``: writing a dataset's splits as .npy files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synthetic_spectra.config import BUILTIN_CONFIGS, get_config, load_config
from synthetic_spectra.generator import generate
from zoo.commands.cli import main

ERROR = "spectrazoo generate: error: "
FILE_SUFFIXES = {"train": "train", "validation": "val", "test": "test"}
ALL_FILES = {f"{prefix}_{suffix}.npy" for prefix in ("x", "y") for suffix in FILE_SUFFIXES.values()}
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``spectrazoo generate ARGS``; return (exit status, stdout, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        status = main(["generate", *map(str, argv)])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_writes_every_split_exactly(tmp_path: Path, cli: Cli) -> None:
    status, out, err = cli("--config", "mini", "--out", tmp_path / "mini")
    assert status == 0
    assert {path.name for path in (tmp_path / "mini").iterdir()} == ALL_FILES | {"config.json"}  # no partials
    for split, suffix in FILE_SUFFIXES.items():
        x, y = generate("mini", split)
        x_file, y_file = (np.load(tmp_path / "mini" / f"{prefix}_{suffix}.npy") for prefix in ("x", "y"))
        assert x_file.dtype == np.float64 and y_file.dtype == np.int64
        np.testing.assert_array_equal(x_file, x)
        np.testing.assert_array_equal(y_file, y)
    assert load_config(tmp_path / "mini" / "config.json") == get_config("mini")
    assert "wrote mini (train 200, validation 50, test 90 spectra x 1000 points, float64)" in out
    assert "mini train: 100%" in err  # the progress bar


def test_refuses_to_overwrite_without_force(tmp_path: Path, cli: Cli) -> None:
    arguments = ("--config", "mini", "--out", tmp_path, "--splits", "test", "--no-progress")
    assert cli(*arguments)[0] == 0
    before = (tmp_path / "x_test.npy").stat().st_mtime_ns
    status, _, err = cli(*arguments)
    assert status == 2
    assert err == f"{ERROR}{tmp_path / 'x_test.npy'}: already exists (use --force to overwrite)\n"
    assert (tmp_path / "x_test.npy").stat().st_mtime_ns == before
    assert cli(*arguments, "--force")[0] == 0
    assert (tmp_path / "x_test.npy").stat().st_mtime_ns != before


def test_more_splits_of_the_same_config_can_be_added(tmp_path: Path, cli: Cli) -> None:
    assert cli("--config", "mini", "--out", tmp_path, "--splits", "test", "--no-progress")[0] == 0
    assert cli("--config", "mini", "--out", tmp_path, "--splits", "val", "--no-progress")[0] == 0
    status, _, err = cli("--config", "challenge", "--out", tmp_path, "--splits", "train")
    assert status == 2 and err.startswith(f"{ERROR}{tmp_path / 'config.json'}: already exists")


def test_float32_from_a_config_file(tmp_path: Path, cli: Cli) -> None:
    config_file = tmp_path / "custom.json"
    config_file.write_text(json.dumps(get_config("mini").to_dict() | {"name": "custom", "n_val": 2}))
    out = tmp_path / "out"
    assert cli("--config", config_file, "--out", out, "--splits", "val", "--dtype", "float32")[0] == 0
    assert {path.name for path in (tmp_path / "out").iterdir()} == {"x_val.npy", "y_val.npy", "config.json"}
    x = np.load(tmp_path / "out" / "x_val.npy")
    assert x.dtype == np.float32 and x.shape == (20, 1000)
    np.testing.assert_array_equal(x, generate(config_file, "validation")[0].astype(np.float32))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "nonsense",
            "config: must be one of "
            + ", ".join(BUILTIN_CONFIGS)
            + " or a .json/.yaml/.yml file, got 'nonsense'",
        ),
        ("missing.json", "missing.json: config file not found"),
    ],
)
def test_a_bad_config_is_one_line_and_status_2(tmp_path: Path, cli: Cli, config: str, message: str) -> None:
    assert cli("--config", config, "--out", tmp_path / "out") == (2, "", f"{ERROR}{message}\n")
    assert not (tmp_path / "out").exists()


def test_an_invalid_config_file_names_file_and_field(tmp_path: Path, cli: Cli) -> None:
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("name: bad\ndatapoints: 1000\ndraw_classes: {n_classes: 3}\nn_train: 0\n")
    status, _, err = cli("--config", config_file, "--out", tmp_path / "out")
    assert (status, err) == (2, f"{ERROR}{config_file}: n_train: must be >= 1, got 0\n")


def test_out_must_be_a_directory(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "file").write_text("")
    status, _, err = cli("--config", "mini", "--out", tmp_path / "file")
    assert (status, err) == (2, f"{ERROR}--out {tmp_path / 'file'}: is a file, not a folder\n")


def test_unknown_split_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--config", "mini", "--out", str(tmp_path), "--splits", "dev"])
    assert exited.value.code == 2
    assert "invalid choice: 'dev'" in capsys.readouterr().err
