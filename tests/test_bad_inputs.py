"""Inputs that are expensive before they are wrong, and messages that must say what is actually wrong.

Every case: one line on stderr, exit status 2, nothing written (the folder holds only what the test put
there), and no value of unbounded size echoed back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from no_tensorflow import HIDE_TENSORFLOW

from zoo.commands.cli import MAX_MESSAGE, main

Cli = Callable[..., tuple[int, str, str]]

#: Nine levels of nine aliases: ~387 million strings once expanded, a few hundred bytes of YAML.
ALIAS_BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
name: *h
"""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``spectrazoo ARGS`` in-process; return (exit status, stdout, stderr)."""

    def run(*argv: str | Path) -> tuple[int, str, str]:
        status = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def _mini_with(**changes: object) -> dict:
    from synthetic_spectra.config import get_config

    data = get_config("mini").to_dict()
    data.pop("classes", None)
    return {**data, "name": "mymini", "draw_classes": {"n_classes": 10, "seed": 2022}, **changes}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


CASES: dict[str, tuple[Callable[[Path], tuple[str, ...]], str]] = {
    "yaml alias bomb as a config value": (
        lambda d: ("generate", "--config", _write(d, "bomb.yaml", ALIAS_BOMB), "--out", d / "out"),
        "more than 200,000 values",
    ),
    "draw_classes.n_classes 1e9": (
        lambda d: (
            "generate",
            "--config",
            _write(d, "many.json", json.dumps(_mini_with(draw_classes={"n_classes": 1e9}))),
            "--out",
            d / "out",
        ),
        "draw_classes.n_classes: must be an integer in [1, 10,000], got 1000000000.0",
    ),
    "draw_classes.n_classes a huge integer": (
        lambda d: (
            "generate",
            "--config",
            _write(d, "many.json", json.dumps(_mini_with(draw_classes={"n_classes": 10**9}))),
            "--out",
            d / "out",
        ),
        "draw_classes.n_classes: must be an integer in [1, 10,000]",
    ),
    "a config nested 100,000 deep": (
        lambda d: (
            "generate",
            "--config",
            _write(d, "deep.json", "[" * 100_000 + "]" * 100_000),
            "--out",
            d / "out",
        ),
        "JSON nested too deeply to read",
    ),
    "a config nested 500 deep": (
        lambda d: ("generate", "--config", _write(d, "deep.json", "[" * 500 + "]" * 500), "--out", d / "out"),
        "nested more than 100 levels deep",
    ),
    "--seeds 0-99999999999": (
        lambda d: (
            "benchmark",
            "--dataset",
            "mini",
            "--models",
            "cnn2",
            "--seeds",
            "0-99999999999",
            "--out",
            d / "out",
        ),
        "seeds: at most 2147483647",
    ),
    "--seeds 0-20000": (
        lambda d: (
            "benchmark",
            "--dataset",
            "mini",
            "--models",
            "cnn2",
            "--seeds",
            "0-20000",
            "--out",
            d / "out",
        ),
        "seeds: at most 10,000 seeds",
    ),
    "--seeds of a thousand digits": (
        lambda d: (
            "benchmark",
            "--dataset",
            "mini",
            "--models",
            "cnn2",
            "--seeds",
            "9" * 1000,
            "--out",
            d / "out",
        ),
        "seeds: expected e.g.",
    ),
    "--hparams nested 100,000 deep": (
        lambda d: (
            "benchmark",
            "--dataset",
            "mini",
            "--models",
            "cnn2",
            "--hparams",
            _write(d, "deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000),
            "--out",
            d / "out",
        ),
        "nested too deeply to read",
    ),
    "--hparams of a million values": (
        lambda d: (
            "benchmark",
            "--dataset",
            "mini",
            "--models",
            "cnn2",
            "--hparams",
            _write(d, "big.json", json.dumps({"fc_widths": [1] * 100_000})),
            "--out",
            d / "out",
        ),
        "more than 10,000 values",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path: Path, cli: Cli, case: str) -> None:
    argv, expected = CASES[case]
    args = argv(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    status, stdout, err = cli(*args)
    assert (status, stdout) == (2, ""), err
    assert err.count("\n") == 1 and expected in err, err
    assert len(err) < MAX_MESSAGE + 100
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_generate_removes_the_partial_files_of_a_killed_run(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stale = out / f".x_train.npy.{dead}.partial"  # what kill -9 during `generate` leaves behind
    stale.write_bytes(b"\0" * 1024)
    status, _, err = cli("generate", "--config", "mini", "--splits", "test", "--out", out, "--no-progress")
    assert status == 0, err
    assert sorted(path.name for path in out.iterdir()) == ["config.json", "x_test.npy", "y_test.npy"]


def test_without_tensorflow_a_command_says_what_to_install(tmp_path: Path) -> None:
    script = HIDE_TENSORFLOW + (
        "from zoo.commands.cli import main\n"
        "sys.exit(main(['benchmark', '--dataset', 'mini', '--models', 'cnn2', '--out', sys.argv[1]]))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "pip install 'spectrazoo[tf]'" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: _write(d, "text.npz", "not an archive\n"), r"not a valid \.npz archive \(not a zip"),
        (lambda d: (os.mkfifo(d / "pipe.csv"), d / "pipe.csv")[1], "is a FIFO"),
        (
            lambda d: (os.symlink(d / "loop.csv", d / "loop.csv"), d / "loop.csv")[1],
            "a loop of symbolic links",
        ),
        (lambda d: (os.symlink("/dev/zero", d / "zero.npy"), d / "zero.npy")[1], "is a character device"),
        (
            lambda d: (os.symlink(d / "gone.csv", d / "link.csv"), d / "link.csv")[1],
            "symbolic link to a missing",
        ),
    ],
    ids=["text named .npz", "fifo", "symlink loop", "link to /dev/zero", "dangling link"],
)
def test_a_spectra_file_that_is_not_one_says_what_it_is(
    tmp_path: Path, make: Callable, expected: str
) -> None:
    from zoo.errors import UserError
    from zoo.inference.spectra_io import read_many

    path = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError, UserError), match=expected):
        read_many([path])
