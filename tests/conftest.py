"""Shared fixtures: a TFDS data directory with the `mini` dataset prepared once per session."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files marked ``slow`` first (a stable sort keeps the order within each group).

    ``make test`` hands whole files to the pytest-xdist workers in this order; started last, a file that
    costs minutes would leave the other workers idle at the end.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


@pytest.fixture
def script_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run a benchmark script as ``__main__`` in this interpreter; return (exit status, stdout, stderr).

    The scripts import TensorFlow before they parse their arguments, so a fresh process costs seconds of
    start-up per case; tests of argument checks run them here, and keep one fresh-process case per file for
    what only a real process shows (nothing else on stderr).
    """
    import runpy
    import sys

    def run(script: pathlib.Path, *argv: str | pathlib.Path) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", [str(script), *map(str, argv)])
        monkeypatch.syspath_prepend(str(script.parent))  # as `python script.py` puts its folder first
        try:
            runpy.run_path(str(script), run_name="__main__")
            status = 0
        except SystemExit as exc:
            # as the interpreter maps it: None is success, an int is the status, anything else is printed, 1
            status = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
