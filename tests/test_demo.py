"""`spectrazoo demo` end to end on `mini`, then `spectrazoo predict` on the files it wrote."""

from __future__ import annotations

import json

from zoo.commands.cli import main


def test_demo_trains_exports_analyses_and_its_examples_can_be_predicted(tfds_data_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--dataset", "mini", "--epochs", "2", "--out", str(out), "--data-dir", str(tfds_data_dir)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "== Result: test accuracy" in printed and "== Misclassifications by failure mode" in printed
    row = json.loads((out / "results" / "results.jsonl").read_text().splitlines()[0])
    assert row["run_id"] == "mini/cnn2-relu-seed0" and row["epochs_run"] == 2
    examples = out / "spectra" / "test_examples.csv"
    assert examples.exists() and (out / "spectra" / "test_examples.npy").exists()

    assert main(["predict", "--model", row["export_dir"], str(examples), "--format", "json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert predictions and all(len(entry["top_k"]) == 3 for entry in predictions)

    assert main(args) == 0  # a rerun reuses the finished training
    assert "already finished, skipped" in capsys.readouterr().out
