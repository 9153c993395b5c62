"""Bad arguments of the benchmark scripts: one stderr line, exit status 2, nothing trained or built.

Each case runs the script in this interpreter (a fresh process spends seconds importing TensorFlow before it
parses its arguments); one case runs as a person starts it, in a fresh process, for what only that shows.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("experiments/study.py", ["--max-epochs", "0"], "max_epochs: must be a positive integer"),
        ("experiments/study.py", ["--dataset", "nope"], "config: must be one of"),
        ("experiments/study.py", ["--fc", "relu,tanh"], "--fc: choose from linear, relu, got tanh"),
        (
            "experiments/study.py",
            ["--cross-test", "mini"],
            "--cross-test mini: 10 classes x 1000 points does not match",
        ),
        ("measure/tfds_build.py", ["--configs", "mini,nope"], "got 'nope'"),
        ("experiments/prnet_design.py", ["relative", "--dataset", "nope"], "config: must be one of"),
        (
            "experiments/prnet_design.py",
            ["relative", "--dataset", "mini"],
            "built for 27 classes x 5000 points",
        ),
        ("experiments/prnet_design.py", ["no_such_candidate"], "candidate: must be one of"),
        ("experiments/prnet_design.py", [], "name a candidate or pass --final"),
        (
            "experiments/prnet_design.py",
            ["relative", "--epochs", "0"],
            "--epochs: must be a positive integer",
        ),
        (
            "experiments/prnet_design.py",
            ["relative", "--seed", "-1"],
            "--seed: must be a non-negative integer",
        ),
        (
            "experiments/prnet_design.py",
            ["relative", "--final"],
            "give no candidate, --dataset or --seed with it",
        ),
        (
            "experiments/prnet_design.py",
            ["--final", "--seed", "0"],
            "give no candidate, --dataset or --seed with it",
        ),
        (
            "experiments/prnet_design.py",
            ["--final", "--dataset", "challenge"],
            "give no candidate, --dataset or --seed",
        ),
        ("experiments/prnet_v4.py", ["--candidates", "median x2 smooth 7,nope"], "unknown candidate 'nope'"),
        ("experiments/prnet_v4.py", ["--candidates", ","], "unknown candidate '(none)'"),
    ],
)
def test_bad_argument_is_one_line_and_exit_2(script, args, message, tmp_path, monkeypatch, script_in_process):
    # prnet_design.py trains in memory and writes nothing: no --out option (the checks below still hold)
    out_option = [] if script == "experiments/prnet_design.py" else ["--out", tmp_path / "out"]
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.chdir(tmp_path)
    status, out, err = script_in_process(BENCHMARKS / script, *args, *out_option)
    assert status == 2, err[-2000:]
    assert err.count("\n") == 1 and message in err, err[-2000:]
    assert out == "" and not (tmp_path / "out").exists() and not (tmp_path / "tfds").exists()


def test_a_fresh_process_prints_the_one_line_and_nothing_else(tmp_path):
    # as a person starts it: no TF_CPP_MIN_LOG_LEVEL, yet none of TensorFlow's start-up lines
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")
    command = [sys.executable, str(BENCHMARKS / "experiments/study.py"), "--fc", "relu,tanh", "--out", "out"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    expected = "study.py: error: --fc: choose from linear, relu, got tanh"
    assert result.stderr.splitlines() == [expected], result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_every_script_parses_with_the_one_line_parser():
    # argparse's own errors (an unknown choice, a bad type) print the usage block first; OneLineParser won't
    plain = [
        str(path.relative_to(BENCHMARKS))
        for path in sorted(BENCHMARKS.rglob("*.py"))
        if "argparse.ArgumentParser(" in path.read_text(encoding="utf-8")
    ]
    assert plain == []


def test_an_argparse_error_is_one_line_too(tmp_path, monkeypatch, script_in_process):
    monkeypatch.chdir(tmp_path)
    status, out, err = script_in_process(BENCHMARKS / "experiments/tuning_converged.py", "--no-such-option")
    assert (status, out) == (2, "") and err.splitlines() == [
        "tuning_converged.py: error: unrecognized arguments: --no-such-option"
    ], err
