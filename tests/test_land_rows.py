"""benchmarks/experiments/land_rows.py: rows and search state from a background checkout, nothing lost."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "land_rows.py"
spec = importlib.util.spec_from_file_location("land_rows", SCRIPT)
land_rows = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = land_rows  # its dataclass looks its module up
spec.loader.exec_module(land_rows)

STUDY = pathlib.Path("benchmarks/results/study/challenge")
ROW = {"run_id": "challenge/cnn3-relu-seed0", "test_accuracy": 0.8148, "misclassified": 30, "test_size": 162,
       "val_accuracy": 0.8, "epochs_run": 51, "stop_reason": "early_stopping", "precision": "float32",
       "wall_time_s": 1234.4, "hardware": "2-core CPU (AMD EPYC [25/1/1; AVX2])"}  # fmt: skip


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _row(run_id: str, **extra: object) -> str:
    return json.dumps({"run_id": run_id, **extra})


def _land(sources: list[pathlib.Path], target: pathlib.Path) -> land_rows.Landing:
    landing = land_rows.plan_landing(sources, target)
    land_rows.apply_landing(landing, target)
    return landing


def test_rows_are_appended_once_in_the_sources_order_and_nothing_is_removed(tmp_path):
    source, other, target = tmp_path / "campaign", tmp_path / "campaign2", tmp_path / "main"
    _write(target / STUDY / "results.jsonl", _row("a") + "\n" + _row("ours only") + "\n")
    _write(source / STUDY / "results.jsonl", "\n".join([_row("a"), _row("b"), _row("c"), '{"unfinished']))
    _write(other / STUDY / "results.jsonl", _row("c") + "\n" + _row("d") + "\n")  # c in both sources
    _write(source / STUDY / "fresh.jsonl", _row("b", fresh=0.8) + "\n")  # a file only the source has
    _write(source / STUDY / "runs" / "x" / "log.jsonl", '{"tensorboard": 1}\n')
    landing = _land([source, other], target)
    assert [row["run_id"] for row in landing.rows()] == ["b", "c", "d"]
    assert landing.rows_landed and not landing.search_landed
    assert (target / STUDY / "results.jsonl").read_text().splitlines() == [
        _row("a"), _row("ours only"), _row("b"), _row("c"), _row("d")
    ]  # fmt: skip
    assert (target / STUDY / "fresh.jsonl").read_text() == _row("b", fresh=0.8) + "\n"
    assert not (target / STUDY / "runs").exists()
    assert not land_rows.plan_landing([source, other], target).appends  # a second landing: nothing new


def test_a_row_for_a_run_this_checkout_has_is_kept_out_and_scores_alone_are_news(tmp_path):
    source, target = tmp_path / "campaign", tmp_path / "main"
    _write(target / STUDY / "results.jsonl", _row("a", test_accuracy=0.5))  # no final newline
    _write(source / STUDY / "results.jsonl", _row("a", test_accuracy=0.6) + "\n")
    _write(source / STUDY / "perturbed.jsonl", _row("a", perturbed=0.4) + "\n")
    landing = _land([source], target)
    assert landing.kept == ["a"] and landing.rows() == [] and landing.rows_landed
    assert (target / STUDY / "results.jsonl").read_text() == _row("a", test_accuracy=0.5)
    assert land_rows.commit_message(landing, 3) == "Scores of finished runs (perturbed.jsonl): a"
    _write(source / STUDY / "results.jsonl", _row("b") + "\n")
    _land([source], target)
    assert (target / STUDY / "results.jsonl").read_text().splitlines() == [
        _row("a", test_accuracy=0.5), _row("b")
    ]  # fmt: skip
    _write(source / STUDY / "results.jsonl", _row("b") + "\n{not json\n")
    with pytest.raises(ValueError, match="a line is not JSON"):
        land_rows.plan_landing([source], target)


def test_search_state_lands_without_checkpoints_and_not_for_the_oracles_bookkeeping_alone(tmp_path):
    source, target = tmp_path / "tuning", tmp_path / "main"
    theirs, ours = source / land_rows.TUNING, target / land_rows.TUNING
    for folder in (theirs, ours):
        _write(folder / "project/trial_0/trial.json", '{"status": "COMPLETED"}')
        _write(folder / "project/oracle.json", '{"ongoing": []}')
        _write(folder / "project/executions.jsonl", _row("0-0") + "\n")
    _write(ours / "project/trial_9/trial.json", "kept")  # never deleted
    _write(ours / "project/executions.jsonl", _row("0-0") + "\n" + _row("9-0") + "\n")  # ahead of the source
    _write(theirs / "project/oracle.json", '{"ongoing": ["1"]}')
    assert not _land([source], target).copies
    assert (ours / "project/oracle.json").read_text() == '{"ongoing": []}'
    _write(theirs / "project/trial_1/trial.json", '{"status": "RUNNING"}')
    _write(theirs / "project/trial_1/checkpoint.weights.h5", "weights")
    _write(theirs / "project/resume/backup", "backup")
    _write(theirs / "project/tensorboard/events", "events")
    _write(theirs / "project/executions.jsonl", _row("0-0") + "\n" + _row("1-0") + "\n")
    _write(theirs / "analysis.md", "stale")  # made here from the records
    landing = _land([source], target)
    assert landing.search_landed and not landing.rows_landed
    assert (ours / "project/trial_1/trial.json").read_text() == '{"status": "RUNNING"}'
    assert (ours / "project/oracle.json").read_text() == '{"ongoing": ["1"]}'
    assert (ours / "project/trial_9/trial.json").read_text() == "kept"
    executions = (ours / "project/executions.jsonl").read_text().splitlines()
    assert executions == [_row(i) for i in ("0-0", "9-0", "1-0")]  # merged line by line, nothing lost
    assert not any((ours / "project" / part).exists() for part in ("resume", "tensorboard"))
    assert not (ours / "project/trial_1/checkpoint.weights.h5").exists()
    assert not (ours / "analysis.md").exists()
    assert not land_rows.plan_landing([source], target).copies
    message = land_rows.commit_message(landing, 17)
    assert message.endswith("KerasTuner state and analysis (17 trial(s) started)")


def test_a_checkouts_files_count_only_where_it_wrote_them(tmp_path):
    source, target = tmp_path / "campaign", tmp_path / "main"
    state = land_rows.TUNING / "project/trial_1/trial.json"
    _write(source / state, "as at the worktree's commit")
    _write(source / STUDY / "results.jsonl", _row("a") + "\n")
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fixed commit"], check=True)
    _write(target / state, "newer, landed from the search's own checkout")
    _write(target / STUDY / "results.jsonl", _row("a") + "\n")
    assert land_rows.plan_landing([source], target).copies == {}  # its old copy of the state is no news
    _write(source / STUDY / "results.jsonl", _row("a") + "\n" + _row("b") + "\n")  # a run it finished
    assert land_rows.plan_landing([source], target).appends == {STUDY / "results.jsonl": [_row("b")]}


def test_commit_message_names_each_row():
    landing = land_rows.Landing(appends={STUDY / "results.jsonl": [json.dumps(ROW)]})
    assert land_rows.commit_message(landing, 17) == (
        "Rows at the protocol's end: challenge/cnn3-relu-seed0 81.48% (30/162 wrong, val 80.00%, 51 epochs, "
        "early_stopping, float32, 1234 s, 2-core CPU (AMD EPYC [25/1/1; AVX2]))"
    )


def test_bad_sources_are_one_line_and_exit_2_before_anything_is_written(tmp_path):
    good = tmp_path / "good"
    _write(good / STUDY / "results.jsonl", _row("zz-not-a-real-run") + "\n")
    for args, message in (
        (["--from", str(tmp_path)], f"--from: {tmp_path} has no benchmarks/results folder"),
        (["--from", str(good), "--from", str(tmp_path / "missing")], "has no benchmarks/results folder"),
        (["--from", str(SCRIPT.parents[2])], "is this checkout"),
    ):
        result = subprocess.run([sys.executable, str(SCRIPT), *args],
                                capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
    assert "zz-not-a-real-run" not in (SCRIPT.parents[2] / STUDY / "results.jsonl").read_text()


def test_changed_files_of_a_checkout_name_new_paths_of_renames_and_untracked_files(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    _write(tmp_path / "results/a.jsonl", "a\n")
    _write(tmp_path / "results/b.jsonl", "b\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fixed commit"], check=True)
    assert land_rows._changed(tmp_path, ["results"]) == []
    subprocess.run([*git, "mv", "results/a.jsonl", "results/moved.jsonl"], check=True)
    _write(tmp_path / "results/b.jsonl", "b\nb2\n")
    _write(tmp_path / "results/new/c.jsonl", "c\n")
    _write(tmp_path / "elsewhere.txt", "x\n")
    assert sorted(land_rows._changed(tmp_path, ["results"])) == [
        "results/b.jsonl", "results/moved.jsonl", "results/new/c.jsonl",
    ]  # fmt: skip
