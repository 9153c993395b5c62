"""benchmarks/experiments/land_rows.py: rows and search state from a background checkout, nothing lost."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "land_rows.py"
spec = importlib.util.spec_from_file_location("land_rows", SCRIPT)
land_rows = importlib.util.module_from_spec(spec)
spec.loader.exec_module(land_rows)

ROW = {"run_id": "challenge/cnn3-relu-seed0", "test_accuracy": 0.8148, "misclassified": 30, "test_size": 162,
       "val_accuracy": 0.8, "epochs_run": 51, "stop_reason": "early_stopping", "precision": "float32",
       "wall_time_s": 1234.4, "hardware": "2-core CPU (AMD EPYC [25/1/1; AVX2])"}  # fmt: skip


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_rows_are_appended_once_in_the_sources_order_and_nothing_is_removed(tmp_path):
    source, target = tmp_path / "campaign", tmp_path / "main"
    study = pathlib.Path("benchmarks/results/study/challenge")
    _write(target / study / "results.jsonl", '{"old": 1}\n{"ours only": 2}\n')
    _write(source / study / "results.jsonl", '{"old": 1}\n{"new": 3}\n{"newer": 4}\n')
    _write(source / study / "fresh.jsonl", '{"score": 1}\n')  # a file only the source has
    _write(source / study / "runs" / "x" / "log.jsonl", '{"tensorboard": 1}\n')
    _write(source / "benchmarks/results/tuning_converged/executions.jsonl", '{"search": 1}\n')
    appended = land_rows.merge_rows(source, target)
    assert appended == {study / "results.jsonl": ['{"new": 3}', '{"newer": 4}'],
                        study / "fresh.jsonl": ['{"score": 1}']}  # fmt: skip
    assert (target / study / "results.jsonl").read_text().splitlines() == [
        '{"old": 1}', '{"ours only": 2}', '{"new": 3}', '{"newer": 4}'
    ]  # fmt: skip
    assert not (target / study / "runs").exists()
    assert not (target / "benchmarks/results/tuning_converged").exists()
    assert land_rows.merge_rows(source, target) == {}  # a second landing finds nothing new


def test_search_state_lands_without_checkpoints_and_not_for_the_oracles_bookkeeping_alone(tmp_path):
    source, target = tmp_path / "tuning", tmp_path / "main"
    theirs, ours = source / land_rows.TUNING, target / land_rows.TUNING
    for folder in (theirs, ours):
        _write(folder / "project/trial_0/trial.json", '{"status": "COMPLETED"}')
        _write(folder / "project/oracle.json", '{"ongoing": []}')
    _write(ours / "project/trial_9/trial.json", "kept")  # never deleted
    _write(theirs / "project/oracle.json", '{"ongoing": ["1"]}')
    assert not land_rows.copy_search_state(source, target)
    assert (ours / "project/oracle.json").read_text() == '{"ongoing": []}'
    _write(theirs / "project/trial_1/trial.json", '{"status": "RUNNING"}')
    _write(theirs / "project/trial_1/checkpoint.weights.h5", "weights")
    _write(theirs / "project/resume/backup", "backup")
    _write(theirs / "project/tensorboard/events", "events")
    _write(theirs / "analysis.md", "stale")  # made here from the records
    assert land_rows.copy_search_state(source, target)
    assert (ours / "project/trial_1/trial.json").read_text() == '{"status": "RUNNING"}'
    assert (ours / "project/oracle.json").read_text() == '{"ongoing": ["1"]}'
    assert (ours / "project/trial_9/trial.json").read_text() == "kept"
    assert not any((ours / "project" / part).exists() for part in ("resume", "tensorboard"))
    assert (
        not (ours / "project/trial_1/checkpoint.weights.h5").exists() and not (ours / "analysis.md").exists()
    )
    assert not land_rows.copy_search_state(source, target)


def test_commit_message_names_each_row_or_the_search():
    message = land_rows.commit_message([ROW], 17)
    assert message == (
        "Rows at the protocol's end: challenge/cnn3-relu-seed0 81.48% (30/162 wrong, val 80.00%, 51 epochs, "
        "early_stopping, float32, 1234 s, 2-core CPU (AMD EPYC [25/1/1; AVX2]))"
    )
    assert land_rows.commit_message([], 17).endswith("KerasTuner state and analysis (17 trial(s) started)")


def test_a_source_without_results_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--from", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"--from: {tmp_path} has no benchmarks/results folder")
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
