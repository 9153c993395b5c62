"""Smoke runs of the benchmark scripts no other test runs: tiny arguments (or, where one run costs minutes,
``--help`` and bad arguments), each in a fresh process as a person would start it.

A bad argument is one stderr line and exit status 2, with nothing on stdout and nothing written.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _run(script: str, *args: str, cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: int = 600):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    paths = [str(ROOT), str(ROOT / "datasets"), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        env=environment, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("measure/export_size.py", ["--models", "nope"], "--models: unknown model 'nope'"),
        ("measure/export_size.py", ["--classes", "1"], "--classes: expected an integer >= 2"),
        ("measure/inference.py", ["--settings", "fast"], "--settings: unknown ['fast']"),
        ("measure/inference.py", ["--calls", "0"], "--calls: expected an integer >= 1"),
        ("measure/inference.py", ["--model", "no-such-export"], "--model: no-such-export is not an export"),
        ("measure/inference.py", ["--arch", "nope"], "--arch: unknown model 'nope'"),
        ("measure/pipeline.py", ["--dataset", "nope"], "nope"),
        ("measure/pipeline.py", ["--epochs", "0"], "--epochs: expected an integer >= 1"),
        ("measure/pipeline.py", ["--dataset", "mini", "--augment", "nope"], "nope"),
        ("measure/throughput.py", ["--models", "nope"], "unknown model or setting 'nope'"),
        ("measure/throughput.py", ["--settings", "nope"], "unknown model or setting 'nope'"),
        ("measure/throughput.py", ["--steps", "0"], "--steps: expected an integer >= 1"),
        ("measure/throughput.py", ["--batch-size", "x"], "--batch-size: expected an integer >= 1, got 'x'"),
        ("measure/throughput.py", ["--processes", "0,2"], "--processes: expected a comma list"),
        ("measure/throughput.py", ["--processes", "two"], "--processes: expected a comma list"),
        ("measure/startup.py", ["--repeat", "0"], "--repeat: expected an integer >= 1"),
        ("measure/startup.py", ["--output", "no/such/folder/t.md"], "--output: the folder no/such/folder"),
        ("experiments/study_scores.py", ["--dataset", "nope"], "no such results file"),
    ],
)
def test_bad_argument_is_one_line_and_exit_2(script, args, message, tmp_path):
    result = _run(script, *args, cwd=tmp_path, env={"TFDS_DATA_DIR": str(tmp_path / "tfds")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr[-2000:]
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["measure/throughput.py", "measure/startup.py"])
def test_help_names_the_options(script, tmp_path):
    result = _run(script, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--output" in result.stdout and result.stderr == ""


def test_export_size_of_a_tiny_model(tmp_path):
    result = _run(
        "measure/export_size.py", "--models", "cnn2", "--classes", "3", "--length", "64", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| cnn2 |"))
    assert row.endswith("× |") and "saved_model.pb" in result.stdout and list(tmp_path.iterdir()) == []


def test_inference_of_a_tiny_model_writes_its_report(tmp_path):
    out = tmp_path / "inference.md"
    tiny = ["--arch", "cnn2", "--classes", "3", "--datapoints", "64", "--calls", "2", "--warmup", "1"]
    tiny += [
        "--raw-calls",
        "1",
        "--batch-size",
        "2",
        "--batches",
        "1",
        "--repeats",
        "1",
        "--settings",
        "plain",
    ]
    result = _run("measure/inference.py", *tiny, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = out.read_text()
    assert report.startswith("# Inference speed: cnn2") and "- CPU: " in report and "Predictor" in report


def test_pipeline_on_mini(tfds_data_dir, tmp_path):
    args = [
        "--dataset",
        "mini",
        "--epochs",
        "1",
        "--train-steps",
        "1",
        "--augment",
        "all",
        "--models",
        "cnn6",
    ]
    result = _run("measure/pipeline.py", *args, cwd=tmp_path, env={"TFDS_DATA_DIR": str(tfds_data_dir)})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "dataset mini" in lines[0]
    assert any(line.startswith("augmented pipeline --augment all") for line in lines)
    assert any(line.startswith("cnn6 training step") for line in lines)
    assert any(line.startswith("TFDS read: tfds.load") for line in lines)
    assert any(line.startswith("TFDS read: read_batches(...)") for line in lines)


def test_tfds_build_table_on_mini(tmp_path):
    out = tmp_path / "tfds_build.md"
    result = _run("measure/tfds_build.py", "--configs", "mini", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    assert table in result.stdout
    build_row = next(line for line in table.splitlines() if line.startswith("| mini | 340 × 1,000 |"))
    assert len(build_row.split("|")) == 18  # every column filled
    first_epochs = [line for line in table.splitlines() if line.startswith("| mini | 200 |")]
    assert [line.split(" | ")[2] for line in first_epochs] == [
        "`tfds.load` per example → `prepare` (shuffle buffer)",
        "`input_pipeline` (`read_batches`, shuffle buffer)",
        "`input_pipeline(..., epochs=…)` (`read_batches`, epoch-keyed, as training)",
    ]


def test_startup_table_once(tmp_path):
    out = tmp_path / "startup.md"
    result = _run("measure/startup.py", "--repeat", "1", "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    assert table == result.stdout
    for case in ("`import zoo`", "`spectrazoo --help`", "`spectrazoo models`", "`spectrazoo generate"):
        assert case in table
    models_row = next(line for line in table.splitlines() if line.startswith("| `spectrazoo models`"))
    assert models_row.rstrip().endswith("| - |")  # `spectrazoo models` loads no heavy module
    bad_name = next(line for line in table.splitlines() if "`spectrazoo benchmark --models nope" in line)
    assert bad_name.rstrip().endswith("| - |")  # a bad model name is reported before TensorFlow is imported
    bad_activation = next(line for line in table.splitlines() if "--fc-activation nope" in line)
    assert "tensorflow" in bad_activation  # Keras checks activation names: the baseline with TensorFlow


def test_study_scores_skips_rows_without_an_export(tmp_path):
    rows = tmp_path / "study" / "mini"
    rows.mkdir(parents=True)
    row = {"run_id": "mini/cnn2-relu-seed0", "dataset": "mini", "export_dir": "gone/cnn2-relu-seed0"}
    (rows / "results.jsonl").write_text(json.dumps(row) + "\n")
    result = _run(
        "experiments/study_scores.py", "--dataset", "mini", "--results", str(tmp_path / "study"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "nothing to score\n"
    assert not (rows / "fresh.jsonl").exists() and not (rows / "perturbed.jsonl").exists()


def test_study_scores_scores_an_export_on_fresh_draws_and_perturbed_sets_once(tmp_path):
    import keras

    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.build("cnn2", num_classes=10, input_length=1000, compile=False)
    zoo.export(model, tmp_path / "exports" / "cnn2-relu-seed0", dataset_config="mini")
    rows = tmp_path / "study" / "mini"
    rows.mkdir(parents=True)
    row = {"run_id": "mini/cnn2-relu-seed0", "dataset": "mini", "export_dir": "exports/cnn2-relu-seed0"}
    (rows / "results.jsonl").write_text(json.dumps(row) + "\n")
    args = ("experiments/study_scores.py", "--dataset", "mini", "--results", str(tmp_path / "study"))
    result = _run(*args, "--runs-root", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    fresh = json.loads((rows / "fresh.jsonl").read_text())
    perturbed = json.loads((rows / "perturbed.jsonl").read_text())
    assert fresh["run_id"] == perturbed["run_id"] == "mini/cnn2-relu-seed0"
    assert fresh["fresh_accuracy"] == pytest.approx(1 - fresh["misclassified"] / fresh["spectra"])
    assert set(perturbed["group_accuracy"]) == {"noise", "background", "peak shape", "shift"}
    assert perturbed["perturbed_accuracy"] == pytest.approx(
        sum(perturbed["set_accuracy"].values()) / len(perturbed["set_accuracy"])
    )
    assert "gaussian snr 30" in perturbed["set_accuracy"] and "shift +-40" in perturbed["set_accuracy"]
    again = _run(*args, "--runs-root", str(tmp_path), cwd=tmp_path)  # every run scored: nothing to do
    assert (
        again.stdout == "nothing to score\n" and len((rows / "perturbed.jsonl").read_text().splitlines()) == 1
    )


def test_gpu_wheels_script_parses_and_works_in_the_checkout_root():
    """It downloads wheels (no network in tests): its syntax is checked and its own ``cd`` line is run."""
    script = BENCHMARKS / "experiments" / "gpu_wheels.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    (cd_line,) = [line for line in script.read_text().splitlines() if line.startswith("cd ")]
    target = subprocess.run(
        ["bash", "-c", f"{cd_line} && pwd", str(script)], capture_output=True, text=True, check=True
    )
    assert pathlib.Path(target.stdout.strip()) == ROOT
