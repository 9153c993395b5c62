"""Shared fixtures: a TFDS data directory with the `mini` dataset prepared once per session."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tfds_data_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A fresh TFDS data dir holding the prepared `mini` config (also exported as TFDS_DATA_DIR)."""
    import synthetic_spectra

    data_dir = tmp_path_factory.mktemp("tensorflow_datasets")
    synthetic_spectra.builder("mini", data_dir=data_dir).download_and_prepare()
    previous = os.environ.get("TFDS_DATA_DIR")
    os.environ["TFDS_DATA_DIR"] = str(data_dir)
    yield data_dir
    if previous is None:
        os.environ.pop("TFDS_DATA_DIR", None)
    else:
        os.environ["TFDS_DATA_DIR"] = previous


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``spectrazoo ARGS`` in-process; return (exit status, stdout, stderr)."""
    from zoo.commands.cli import main

    def run(*argv: str | pathlib.Path) -> tuple[int, str, str]:
        status = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
