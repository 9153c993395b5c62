"""Bad arguments of the benchmark scripts: one stderr line, exit status 2, nothing trained or built."""

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
def test_bad_argument_is_one_line_and_exit_2(script, args, message, tmp_path):
    # prnet_design.py trains in memory and writes nothing: no --out option (the checks below still hold)
    out_option = [] if script == "experiments/prnet_design.py" else ["--out", str(tmp_path / "out")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, *out_option],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr[-2000:]
    assert result.stdout == "" and not (tmp_path / "out").exists() and not (tmp_path / "tfds").exists()
