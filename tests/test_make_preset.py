"""benchmarks/make_preset.py refuses bad inputs with one line and exit 2, writing nothing."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import make_preset  # noqa: E402


@pytest.fixture
def inputs(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"run_id": "mini/vgg-relu-seed0", "dataset": "mini"}) + "\n")
    export = tmp_path / "export"
    export.mkdir()
    return {"results": results, "export": export, "weights": tmp_path / "presets"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--name": "../escape"}, "--name: lower-case letters"),
        ({"--results": "missing.jsonl"}, "--results: no such file"),
        ({"--export": "no-such-export"}, "--export: 'no-such-export' does not exist"),
        ({"--run-id": "mini/cnn6-relu-seed0"}, "no row with run_id 'mini/cnn6-relu-seed0'"),
    ],
)
def test_bad_inputs_are_one_line_and_exit_2(inputs, changes, message, capsys, monkeypatch):
    written = []
    monkeypatch.setattr(make_preset, "write_entry", lambda preset: written.append(preset))
    arguments = {
        "--name": "vgg_relu_mini", "--results": str(inputs["results"]), "--run-id": "mini/vgg-relu-seed0",
        "--export": str(inputs["export"]), "--weights-dir": str(inputs["weights"]), **changes,
    }  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        make_preset.main([item for pair in arguments.items() for item in pair])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.count("\n") == 1
    assert not written and not inputs["weights"].exists()
