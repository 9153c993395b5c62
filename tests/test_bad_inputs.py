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
from no_tensorflow import BREAK_TENSORFLOW, HIDE_TENSORFLOW

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


def _mini_with(**changes: object) -> dict:
    from synthetic_spectra.config import get_config

    data = get_config("mini").to_dict()
    data.pop("classes", None)
    return {**data, "name": "mymini", "draw_classes": {"n_classes": 10, "seed": 2022}, **changes}


def _benchmark(folder: Path, *options: object) -> tuple:
    """``benchmark`` on `mini` with CNN2 and ``options``, writing into ``folder/out``."""
    return ("benchmark", "--dataset", "mini", "--models", "cnn2", *options, "--out", folder / "out")


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
        lambda d: _benchmark(d, "--seeds", "0-99999999999"),
        "seeds: at most 2147483647",
    ),
    "--seeds 0-20000": (
        lambda d: _benchmark(d, "--seeds", "0-20000"),
        "seeds: at most 10,000 seeds",
    ),
    "--seeds of a thousand digits": (
        lambda d: _benchmark(d, "--seeds", "9" * 1000),
        "seeds: expected e.g.",
    ),
    "--hparams nested 100,000 deep": (
        lambda d: _benchmark(d, "--hparams", _write(d, "deep.json", '{"a":' * 100_000 + "1" + "}" * 100_000)),
        "nested too deeply to read",
    ),
    "--hparams of a million values": (
        lambda d: _benchmark(d, "--hparams", _write(d, "big.json", json.dumps({"fc_widths": [1] * 100_000}))),
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


def test_predict_reports_a_bad_file_before_it_needs_tensorflow(tmp_path: Path) -> None:
    # the files are read before TensorFlow is imported: a missing one is named at once, TensorFlow or not
    script = HIDE_TENSORFLOW + (
        "from zoo.commands.cli import main\n"
        "sys.exit(main(['predict', '--model', 'preset:prnet_v4_challenge', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "missing.csv")],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "missing.csv: no such file" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["benchmark", "--dataset", "nope", "--models", "cnn2", "--out", "OUT"],
            "benchmark: error: config: must be one of",
        ),
        (
            ["benchmark", "--dataset", "mini", "--models", "cnn2,nope", "--out", "OUT"],
            "model: unknown name 'nope'",
        ),
        (
            ["tune", "--dataset", "mini", "--base", "nope", "--out", "OUT"],
            "tune: error: --base: unknown model",
        ),
        (["demo", "--model", "nope", "--out", "OUT"], "demo: error: model: unknown name 'nope'"),
        (["preset", "build", "nope"], "preset: error: unknown preset 'nope'"),
    ],
)
@pytest.mark.parametrize(
    "prelude", [HIDE_TENSORFLOW, BREAK_TENSORFLOW], ids=["not installed", "import fails"]
)
def test_training_commands_check_names_before_they_need_tensorflow(
    argv, expected, prelude: str, tmp_path: Path
) -> None:
    # names are checked before TensorFlow or Keras is imported (seconds saved, and the name is what is
    # wrong): with TensorFlow absent, and with every import of TensorFlow, TFDS or Keras failing
    script = prelude + "from zoo.commands.cli import main\nsys.exit(main(json.loads(sys.argv[1])))\n"
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps([str(tmp_path / "o") if a == "OUT" else a for a in argv])],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
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


# --- every command's arguments, each with a bad value, and every file a command reads ---------------------

#: ``spectrazoo ARGS`` (``{d}``: the test's folder, which holds the files of :func:`_corpus_files`) -> the
#: part of the one-line error that names what is wrong.
ARGUMENT_CASES: list[tuple[str, str]] = [
    ("generate --config nope --out {d}/out", "config: must be one of"),
    ("generate --config {d}/missing.json --out {d}/out", "missing.json: config file not found"),
    ("generate --config {d}/bad.json --out {d}/out", "bad.json: not valid JSON"),
    ("generate --config mini --out {d}/file.txt", "--out {d}/file.txt: is a file, not a folder"),
    ("generate --config mini --out {d}/out --splits nope", "argument --splits: invalid choice: 'nope'"),
    ("generate --config mini --out {d}/out --dtype int8", "argument --dtype: invalid choice: 'int8'"),
    ("models --format yaml", "argument --format: invalid choice: 'yaml'"),
    ("models --nope", "unrecognized arguments: --nope"),
    ("benchmark --dataset nope --models cnn2 --out {d}/out", "config: must be one of"),
    ("benchmark --dataset mini --models nope --out {d}/out", "model: unknown name 'nope'"),
    ("benchmark --dataset mini --models cnn2 --fc-activation nope --out {d}/out", "unknown Keras activation"),
    ("benchmark --dataset mini --models cnn2 --seeds x --out {d}/out", "seeds: expected e.g."),
    ("benchmark --dataset mini --models cnn2 --max-epochs 0 --out {d}/out", "max_epochs: must be a positive"),
    ("benchmark --dataset mini --models cnn2 --batch-size 0 --out {d}/out", "batch_size: must be a positive"),
    ("benchmark --dataset mini --models cnn2 --lr-factor 1.5 --out {d}/out", "lr_factor: must be in (0, 1)"),
    ("benchmark --dataset mini --models cnn2 --lr-patience -1 --out {d}/out", "lr_patience: must be a"),
    ("benchmark --dataset mini --models cnn2 --es-patience -1 --out {d}/out", "es_patience: must be a"),
    ("benchmark --dataset mini --models cnn2 --hparams {d}/missing.json --out {d}/out", "--hparams: no such"),
    ("benchmark --dataset mini --models cnn2 --hparams {d}/bad.json --out {d}/out", "is not valid JSON"),
    ("benchmark --dataset mini --models cnn2 --out {d}/file.txt", "--out {d}/file.txt: is a file"),
    ("benchmark --dataset mini --models cnn2 --out {d}/o --saved-models {d}/file.txt", "--saved-models"),
    ("benchmark --dataset mini --models cnn2 --out {d}/o --data-dir {d}/file.txt", "--data-dir"),
    ("benchmark --dataset mini --models cnn2 --out {d}/o --strategy nope", "argument --strategy: invalid"),
    ("benchmark --dataset mini --models cnn2 --out {d}/o --cross-test nope", "config: must be one of"),
    ("benchmark --dataset mini --models cnn2 --out {d}/o --augment nope", "--augment: must be one of"),
    ("report {d}/missing.jsonl", "missing.jsonl: results file not found"),
    ("report {d}/bad.jsonl --out {d}/out", "bad.jsonl:1: not valid JSON"),
    ("report {d}/row.jsonl --out {d}/file.txt", "--out {d}/file.txt: is a file"),
    ("report {d}/row.jsonl --out {d}/out --max-pairs -1", "argument --max-pairs: expected an integer >= 0"),
    ("predict --model {d}/missing {d}/spectra.csv", "model path '{d}/missing' does not exist"),
    ("predict --model preset:nope {d}/spectra.csv", "unknown preset 'nope'"),
    ("predict --model preset:vgg_relu_challenge {d}/missing.csv", "missing.csv: no such file"),
    ("predict --model preset:vgg_relu_challenge {d}/file.txt", "file.txt: empty file (no numeric data)"),
    ("predict --model preset:vgg_relu_challenge {d}/spectra.csv --top-k 0", "argument --top-k: expected"),
    ("predict --model preset:vgg_relu_challenge {d}/spectra.csv --format xml", "argument --format: invalid"),
    ("predict --model preset:vgg_relu_challenge {d}/spectra.csv --batch-size 0", "argument --batch-size"),
    ("preset nope", "argument ACTION: invalid choice: 'nope'"),
    ("preset build nope", "unknown preset 'nope'"),
    (
        "preset build vgg_relu_challenge --max-epochs 0 --work {d}/w --weights-dir {d}/p",
        "--max-epochs must be",
    ),
    ("preset build vgg_relu_challenge --work {d}/file.txt --weights-dir {d}/p", "--work {d}/file.txt: is a"),
    ("preset build vgg_relu_challenge --work {d}/w --weights-dir {d}/file.txt", "--weights-dir {d}/file.txt"),
    ("preset make --name Bad --results {d}/row.jsonl --run-id x --export {d}", "--name: lower-case letters"),
    ("preset make --name ok --results {d}/bad.jsonl --run-id x --export {d}", "bad.jsonl:1: not a JSON line"),
    ("demo --dataset nope --out {d}/out", "config: must be one of"),
    ("demo --model nope --out {d}/out", "model: unknown name 'nope'"),
    ("demo --fc-activation nope --out {d}/out", "unknown Keras activation 'nope'"),
    ("demo --epochs 0 --out {d}/out", "--epochs: must be >= 1"),
    ("demo --out {d}/file.txt", "--out {d}/file.txt: is a file"),
    ("demo --out {d}/out --data-dir {d}/file.txt", "--data-dir"),
    ("tune --dataset nope --out {d}/o --project-dir {d}/p", "config: must be one of"),
    ("tune --dataset mini --base nope --out {d}/o --project-dir {d}/p", "--base: unknown model 'nope'"),
    ("tune --dataset mini --tuner nope --out {d}/o --project-dir {d}/p", "argument --tuner: invalid choice"),
    ("tune --dataset mini --max-trials 0 --out {d}/o --project-dir {d}/p", "max_trials"),
    ("tune --dataset mini --epochs 0 --out {d}/o --project-dir {d}/p", "max_epochs: must be a positive"),
    ("tune --dataset mini --executions-per-trial 0 --out {d}/o --project-dir {d}/p", "executions_per_trial"),
    ("tune --dataset mini --objective nope --out {d}/o --project-dir {d}/p", "argument --objective"),
    ("tune --dataset mini --project-dir {d}/file.txt --out {d}/o", "--project-dir {d}/file.txt: is a file"),
    ("tune --dataset mini --seed -1 --out {d}/o --project-dir {d}/p", "seed"),
    ("tune --dataset mini --fc-activation nope --out {d}/o --project-dir {d}/p", "nope"),
    ("tune --dataset mini --fc-dropout 2 --out {d}/o --project-dir {d}/p", "dropout"),
    (
        "tune --dataset mini --conv-dropout x --out {d}/o --project-dir {d}/p",
        "--conv-dropout: expected a number",
    ),
    (
        "tune --dataset mini --batch-norm maybe --out {d}/o --project-dir {d}/p",
        "--batch-norm: expected on/off",
    ),
    ("tune --dataset mini --fc-widths x --out {d}/o --project-dir {d}/p", "--fc-widths: expected widths"),
    ("tune --dataset mini --learning-rate -1 --out {d}/o --project-dir {d}/p", "learning_rate"),
    ("tune --dataset mini --batch-size 0 --out {d}/o --project-dir {d}/p", "batch_size: must be a positive"),
    ("tune --dataset mini --es-patience -1 --out {d}/o --project-dir {d}/p", "es_patience: must be a"),
    ("tune --dataset mini --lr-patience -1 --out {d}/o --project-dir {d}/p", "lr_patience: must be a"),
    ("tune --dataset mini --final-epochs -1 --out {d}/o --project-dir {d}/p", "final_epochs"),
    ("tune --dataset mini --out {d}/file.txt --project-dir {d}/p", "--out {d}/file.txt: is a file"),
    ("tune --dataset mini --out {d}/o --project-dir {d}/p --saved-models {d}/file.txt", "--saved-models"),
    ("tune --dataset mini --out {d}/o --project-dir {d}/p --data-dir {d}/file.txt", "--data-dir"),
]


def _corpus_files(folder: Path) -> None:
    """The files the cases read: a text file, broken JSON and JSON lines, one row, one spectrum."""
    _write(folder, "file.txt", "x\n")
    _write(folder, "bad.json", "{nope")
    _write(folder, "bad.jsonl", "{nope\n")
    _write(folder, "row.jsonl", json.dumps({"run_id": "mini/cnn2-relu-seed0"}) + "\n")
    _write(folder, "spectra.csv", "1,2,3\n")


def test_the_corpus_covers_every_command() -> None:
    from zoo.commands.cli import COMMAND_MODULES

    commands = {module.rsplit(".", 1)[1] for module in COMMAND_MODULES}
    assert commands == {args.split()[0] for args, _ in ARGUMENT_CASES}


@pytest.mark.parametrize(("args", "expected"), ARGUMENT_CASES, ids=[args for args, _ in ARGUMENT_CASES])
def test_every_argument_with_a_bad_value_is_one_line_exit_2(
    tmp_path: Path,
    args: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))  # nothing prepared: the folder stays absent
    _corpus_files(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    try:
        status = main(args.format(d=tmp_path).split())
    except SystemExit as exit_info:  # a usage error found by argparse itself
        status = exit_info.code
    stdout, err = capsys.readouterr()
    assert (status, stdout) == (2, ""), err
    assert err.count("\n") == 1 and expected.format(d=tmp_path) in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_a_closed_pipe_ends_models_quietly() -> None:
    """``spectrazoo models`` writing into a pipe nobody reads: no traceback, exit 141 (as after SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before the first line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "zoo", "models"], stdout=write_end, stderr=subprocess.PIPE, text=True,
            timeout=300, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_models_into_head_prints_five_lines_and_nothing_else() -> None:
    command = f"{sys.executable} -m zoo models --format markdown | head -5"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) == 5 and result.stdout.startswith("|")


def test_building_a_model_without_tensorflow_names_what_to_install() -> None:
    script = HIDE_TENSORFLOW + (
        "import zoo\n"
        "from zoo.errors import MissingBackendError\n"
        "for call in (lambda: zoo.build('cnn2', 3, 64), lambda: zoo.count_flops):\n"
        "    try:\n"
        "        call()\n"
        "    except MissingBackendError as exc:\n"
        "        assert isinstance(exc, ModuleNotFoundError) and isinstance(exc, zoo.UserError)\n"
        "        print(exc)\n"
        "zoo.build('cnn2', 3, 64)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    message = (
        'Keras needs TensorFlow (its default backend), which is not installed: pip install "spectrazoo[tf]"'
    )
    assert result.stdout == f"{message}\n{message}\n", result.stderr[-2000:]
    assert result.returncode == 1 and result.stderr.rstrip().endswith(f"MissingBackendError: {message}")
    assert "site-packages/keras" not in result.stderr  # raised from zoo, not from deep inside Keras


def test_hparams_of_other_toggles_than_a_finished_run_is_refused(tmp_path: Path, cli: Cli) -> None:
    # an --hparams run's id ends in "-tuned" whatever the file holds: a run finished with other toggles
    # must not be skipped as if it were this one
    from zoo.training.protocol import plan_runs
    from zoo.training.runner import check_finished_runs

    out = tmp_path / "out"
    out.mkdir()
    toggles = {"fc_activation": None, "fc_dropout": 0.2}
    row = {"schema": 1, "run_id": "mini/cnn2-default-tuned-seed0", "toggles": toggles}
    (out / "results.jsonl").write_text(json.dumps(row) + "\n")
    hparams = _write(tmp_path, "h.json", '{"toggles": {"fc_dropout": 0.5}}')
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    status, stdout, stderr = cli(*_benchmark(tmp_path, "--hparams", hparams, "--max-epochs", "1"))
    assert status == 2 and stdout == "" and stderr.count("\n") == 1, stderr
    assert "mini/cnn2-default-tuned-seed0 finished there with toggles={" in stderr
    assert "'fc_dropout': 0.2}, not the planned {" in stderr and "use another output folder" in stderr
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before

    same = plan_runs("mini", ["cnn2"], hparams={"fc_dropout": 0.2}, variant_suffix="-tuned")
    check_finished_runs(same, out)  # the same toggles: the finished run is this one (skipped, not refused)
