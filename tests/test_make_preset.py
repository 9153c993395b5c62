"""``spectrazoo preset make`` refuses bad inputs with one line and exit 2, writing nothing."""

from __future__ import annotations

import json
import pathlib

import pytest

import zoo.training.presets
from zoo.commands.cli import main


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
        ({"--weights-dir": "{results}"}, "--weights-dir"),
    ],
)
def test_bad_inputs_are_one_line_and_exit_2(inputs, changes, message, capsys, monkeypatch):
    written = []
    monkeypatch.setattr(zoo.training.presets, "write_entry", lambda preset: written.append(preset))
    monkeypatch.setattr(zoo.training.presets, "load_keras_model", lambda path: pytest.fail("loaded"))
    arguments = {
        "--name": "vgg_relu_mini", "--results": str(inputs["results"]), "--run-id": "mini/vgg-relu-seed0",
        "--export": str(inputs["export"]), "--weights-dir": str(inputs["weights"]), **changes,
    }  # fmt: skip
    arguments["--weights-dir"] = arguments["--weights-dir"].format(results=inputs["results"])
    status = main(["preset", "make", *[item for pair in arguments.items() for item in pair]])
    captured = capsys.readouterr()
    assert status == 2 and message in captured.err and captured.err.count("\n") == 1, captured.err
    assert captured.out == "" and not written and not inputs["weights"].exists()


def test_missing_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["preset", "make", "--name", "vgg_relu_mini"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "required" in error and error.count("\n") == 1
