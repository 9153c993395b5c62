"""Output folders checked before the work; two processes sharing a folder; runs killed and restarted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zoo.errors import UserError

Cli = Callable[..., tuple[int, str, str]]
UNWRITABLE = "/proc/spectrazoo-out"  # a folder nobody may create, root included


BENCHMARK = ("benchmark", "--dataset", "mini", "--models", "oviedo", "--max-epochs", "1", "--quiet")


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        ((*BENCHMARK, "--out", "FILE"), "--out"),
        ((*BENCHMARK, "--out", "NEW", "--saved-models", "FILE/sub"), "--saved-models"),
        ((*BENCHMARK, "--out", "NEW", "--saved-models", UNWRITABLE), "--saved-models"),
        ((*BENCHMARK, "--out", "NEW", "--data-dir", "FILE"), "--data-dir"),
        (("report", "RESULTS", "--out", "FILE"), "--out"),
        (("report", "RESULTS", "--out", UNWRITABLE), "--out"),
        (("tune", "--dataset", "mini", "--max-trials", "1", "--epochs", "1", "--out", "FILE"), "--out"),
        (("tune", "--dataset", "mini", "--project-dir", "FILE"), "--project-dir"),
        (
            ("tune", "--dataset", "mini", "--project-dir", "NEW", "--saved-models", UNWRITABLE),
            "--saved-models",
        ),
        (("tune", "--dataset", "mini", "--project-dir", "NEW", "--data-dir", "FILE"), "--data-dir"),
        (("demo", "--dataset", "mini", "--out", "FILE"), "--out"),
        (("demo", "--dataset", "mini", "--out", "NEW", "--data-dir", "FILE"), "--data-dir"),
        (("preset", "build", "vgg_relu_challenge", "--weights-dir", "FILE"), "--weights-dir"),
        (("preset", "build", "vgg_relu_challenge", "--weights-dir", "NEW", "--work", "FILE"), "--work"),
    ],
)
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], option: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a file, not a folder")
    (tmp_path / "RESULTS").write_text("")
    status, stdout, err = cli(*argv)
    assert (status, stdout) == (2, ""), err
    assert err.count("\n") == 1 and f"error: {option} " in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["FILE", "RESULTS"]  # nothing created


def test_history_damaged_by_two_writers_still_resumes(tmp_path: Path) -> None:
    from zoo.training.results import read_history

    history = tmp_path / "history.csv"
    history.write_text(
        "epoch,loss,val_loss\n0,1.5,1.4\nepoch,loss,val_loss\n0,1.5,1.4\n1,1.2,1.1\n1,1.2\n2,0.9,0.8\n2,0.9,0.\n"
    )
    assert read_history(history) == {"loss": [1.5, 1.2, 0.9], "val_loss": [1.4, 1.1, 0.0]}


HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.write("pid held-by-test\\n"); handle.flush()
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def held_by_another_process(run_dir: Path) -> Iterator[None]:
    """``run_dir``'s lock held by a child process for the block, which is then killed with SIGKILL."""
    from zoo.training.runner import LOCK_FILE

    run_dir.mkdir(parents=True)
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir / LOCK_FILE)], stdout=subprocess.PIPE
    )
    try:
        assert owner.stdout.readline().strip() == b"locked"
        yield
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()


def test_a_run_folder_has_one_owner_and_a_killed_owner_frees_it(tmp_path: Path, tfds_data_dir: Path) -> None:
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.results import read_results
    from zoo.training.runner import run_benchmark, run_dir_of

    (spec,) = plan_runs("mini", ["oviedo"], seeds=[0])
    with held_by_another_process(run_dir_of(tmp_path, spec)):
        with pytest.raises(
            UserError, match=r"run folder .* is in use by another process \(pid held-by-test\)"
        ):
            run_benchmark([spec], Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0)
        assert not (tmp_path / "results.jsonl").exists()
    # kill -9 left the lock file behind: the next start takes it over
    (row,) = run_benchmark([spec], Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0)
    assert [r["run_id"] for r in read_results(tmp_path / "results.jsonl")] == [spec.run_id] == [row["run_id"]]


def test_skip_busy_leaves_a_held_run_to_its_owner_and_trains_the_next(
    tmp_path: Path, tfds_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.results import read_results
    from zoo.training.runner import run_benchmark, run_dir_of

    held, free = plan_runs("mini", ["oviedo"], seeds=[0, 1])
    run_dir = run_dir_of(tmp_path, held)
    with held_by_another_process(run_dir):
        rows = run_benchmark(
            [held, free], Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0, skip_busy=True
        )
    assert [row["run_id"] for row in rows] == [free.run_id]
    assert [row["run_id"] for row in read_results(tmp_path / "results.jsonl")] == [free.run_id]
    assert f"[{held.run_id}] being trained by another process, left to it" in capsys.readouterr().out
    assert not (run_dir / "backup").exists()  # nothing of the held run was touched


def test_a_kill_between_export_and_row_is_recorded_not_retrained(
    tmp_path: Path, cli: Cli, tfds_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoo.training.runner as runner

    out = tmp_path / "results"
    args = (*BENCHMARK, "--out", out)

    def killed(path: object, row: object) -> None:
        raise KeyboardInterrupt  # the process dies after the export, before its row is written

    monkeypatch.setattr(runner, "append_result", killed)
    status, _, _ = cli(*args)
    assert status == 130 and not (out / "results.jsonl").exists()
    export = out / "saved_models" / "mini" / "oviedo-default-seed0"
    assert (export / "metadata.json").is_file()
    monkeypatch.undo()

    calls = []
    monkeypatch.setattr(runner, "train_run", lambda *a, **k: calls.append(a) or pytest.fail("retrained"))
    status, stdout, err = cli(*args)  # no --overwrite needed, nothing trained again
    assert status == 0, err
    assert "its row was not recorded: recording it" in stdout and not calls
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["export_dir"] == str(export) and row["epochs_run"] == 1
    assert not (out / "runs" / "oviedo-default-seed0" / runner.FINISHED_ROW).exists()


PREPARE = """
import sys
from zoo.training.data import prepare_dataset
builder = prepare_dataset("mini", sys.argv[1])
print(builder.info.splits["test"].num_examples)
"""


def test_two_processes_prepare_one_data_folder_in_turn(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", textwrap.dedent(PREPARE), str(tmp_path / "tfds")]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    results = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert stdout.split()[-1] == "90"  # both see the whole test split
