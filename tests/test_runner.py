"""The benchmark runner on `mini`: determinism, skip of finished runs, resume after a kill, errors."""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

import zoo
from zoo.training.protocol import Protocol, parse_seeds, plan_runs
from zoo.training.results import read_history, read_results
from zoo.training.runner import run_benchmark

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

EPOCHS = 5
COMMAND = [sys.executable, "-m", "zoo", "benchmark", "--dataset", "mini", "--models", "vgg"]


def _run_cli(args: list[str], tfds_dir: pathlib.Path, *, background: bool = False) -> Any:
    env = {**os.environ, "TFDS_DATA_DIR": str(tfds_dir), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if background:
        return subprocess.Popen(COMMAND + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(COMMAND + args, env=env, capture_output=True, text=True, timeout=300, check=False)


def _comparable(row: dict) -> dict:
    """The fields a rerun must reproduce exactly (not timings, paths or dates)."""
    keys = ("run_id", "epochs_run", "stop_reason", "best_epoch", "best_val_loss", "val_accuracy",
            "test_accuracy", "misclassified_samples", "history", "params")  # fmt: skip
    comparable = {key: row[key] for key in keys}
    # every logged metric, but not the epochs' times (EpochTimer's `epoch_seconds`, `epoch_cpu_seconds`)
    timings = ("epoch_seconds", "epoch_cpu_seconds")
    comparable["history"] = {k: v for k, v in row["history"].items() if k not in timings}
    return comparable


@pytest.fixture(scope="module")
def reference_row(tfds_data_dir, tmp_path_factory) -> dict:
    """One uninterrupted run (VGG with ReLU FC on mini, seed 0), trained in-process."""
    out = tmp_path_factory.mktemp("reference")
    specs = plan_runs("mini", ["vgg"], ["relu"], [0])
    rows = run_benchmark(
        specs,
        Protocol(max_epochs=EPOCHS),
        out,
        saved_models_dir=out / "saved",
        cross_tests=["mini"],
        verbose=0,
    )
    assert len(rows) == 1
    return {"row": rows[0], "out": out}


def test_row_has_the_contract_fields_and_an_export(reference_row):
    row = reference_row["row"]
    assert row["run_id"] == "mini/vgg-relu-seed0"
    assert row["epochs_run"] == EPOCHS and row["stop_reason"] == "max_epochs"
    assert len(row["history"]["val_loss"]) == EPOCHS
    assert row["history"]["learning_rate"][0] == pytest.approx(3e-4)
    assert row["misclassified"] == len(row["misclassified_samples"])
    assert row["test_accuracy"] == pytest.approx(1 - row["misclassified"] / row["test_size"])
    assert row["best_val_loss"] == min(row["history"]["val_loss"])
    export = pathlib.Path(row["export_dir"])
    metadata = json.loads((export / "metadata.json").read_text())
    assert metadata["model"] == "vgg" and metadata["dataset"] == "mini"
    assert (export / "saved_model.pb").exists() and not (export / "model.keras").exists()
    assert zoo.load_keras_model(export).count_params() == row["params"]  # rebuilt, weights from variables/
    assert (reference_row["out"] / "runs" / "vgg-relu-seed0" / "tb").is_dir()


def test_cross_test_on_the_own_test_split_repeats_the_own_result(reference_row):
    row = reference_row["row"]
    cross = row["cross_tests"]["mini"]
    own = {key: row[key] for key in ("test_accuracy", "test_size", "misclassified", "misclassified_samples")}
    assert cross == own


def test_rerun_of_a_finished_run_is_skipped(reference_row):
    out = reference_row["out"]
    specs = plan_runs("mini", ["vgg"], ["relu"], [0])
    rows = run_benchmark(specs, Protocol(max_epochs=EPOCHS), out, verbose=0)
    assert rows == []
    assert len(read_results(out / "results.jsonl")) == 1


def test_same_seed_gives_identical_metrics_in_a_new_process(reference_row, tfds_data_dir, tmp_path):
    result = _run_cli(
        ["--fc-activation", "relu", "--max-epochs", str(EPOCHS), "--out", str(tmp_path), "--no-export"],
        tfds_data_dir,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = read_results(tmp_path / "results.jsonl")
    assert _comparable(row) == _comparable(reference_row["row"])


def test_killed_run_resumes_to_the_same_result_without_duplicates(reference_row, tfds_data_dir, tmp_path):
    args = ["--fc-activation", "relu", "--max-epochs", str(EPOCHS), "--out", str(tmp_path), "--no-export"]
    metadata = tmp_path / "runs" / "vgg-relu-seed0" / "backup" / "training_metadata.json"
    process = _run_cli(args, tfds_data_dir, background=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "results.jsonl").exists()
    killed_at = json.loads(metadata.read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS

    result = _run_cli(args, tfds_data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming at epoch {killed_at + 1}" in result.stdout
    (row,) = read_results(tmp_path / "results.jsonl")
    assert _comparable(row) == _comparable(reference_row["row"])


def test_history_keeps_the_last_line_of_an_epoch_logged_twice(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,2.0,1.9\n1,1.5,1.4\n1,1.4,1.3\n2,1.0,0.9\n")
    assert read_history(path) == {"loss": [2.0, 1.4, 1.0], "val_loss": [1.9, 1.3, 0.9]}


def test_plan_runs_varies_activation_and_refuses_it_without_fc_layers():
    specs = plan_runs("challenge", ["cnn6"], ["linear", "relu"], [0, 1])
    specs += plan_runs("challenge", ["resnet"], ["default"], [0])
    assert [s.run_id for s in specs] == [
        "challenge/cnn6-linear-seed0", "challenge/cnn6-linear-seed1",
        "challenge/cnn6-relu-seed0", "challenge/cnn6-relu-seed1",
        "challenge/resnet-default-seed0",
    ]  # fmt: skip
    assert specs[0].build_kwargs == {"fc_activation": "linear"}
    assert specs[-1].build_kwargs == {}
    with pytest.raises(ValueError, match="no hidden FC layers"):
        plan_runs("challenge", ["resnet"], ["relu"], [0])


def test_hparams_take_toggles_and_the_models_own_options():
    (spec,) = plan_runs("mini", ["prnet"], hparams={"smooth": 7, "noise": 1.5}, variant_suffix="-robust")
    assert spec.build_kwargs == {"smooth": 7, "noise": 1.5} and spec.variant == "default-robust"
    with pytest.raises(ValueError, match="hparams: vgg has no option 'smooth'"):
        plan_runs("mini", ["prnet", "vgg"], hparams={"smooth": 7})


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("1-2,2,5") == [1, 2, 5]
    for bad in ("4-1", "a", "", "-1"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "nope"], "unknown name 'nope'"),
        (["--models", "vgg", "--seeds", "3-1"], "seeds"),
        (["--models", "vgg", "--max-epochs", "0"], "max_epochs"),
        (["--models", "vgg", "--lr-factor", "1.5"], "lr_factor"),
        (["--models", "resnet", "--fc-activation", "relu"], "no hidden FC layers"),
        (["--models", "vgg", "--hparams", "/nonexistent.json"], "--hparams"),
        (["--models", "vgg", "--strategy", "multiworker"], "TF_CONFIG"),
        (["--models", "vgg", "--cross-test", "challenge"], "does not match mini"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    from zoo.commands.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(["benchmark", "--dataset", "mini", *args, "--out", str(out)]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (out / "results.jsonl").exists()


def test_multiworker_with_malformed_tf_config_is_one_line(monkeypatch, tmp_path, capsys):
    from zoo.commands.cli import main

    monkeypatch.setenv("TF_CONFIG", "{not json")
    args = ["benchmark", "--dataset", "mini", "--models", "vgg", "--strategy", "multiworker"]
    args += ["--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TF_CONFIG is not JSON with a 'cluster' entry" in err
    assert not (tmp_path / "results.jsonl").exists()


def test_bad_argument_message_is_one_line(capsys, tmp_path):
    from zoo.commands.cli import main

    assert main(["benchmark", "--dataset", "mini", "--models", "nope", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "unknown name 'nope'" in captured.err


def test_mirrored_strategy_trains_and_records_once(tfds_data_dir, tmp_path):
    specs = plan_runs("mini", ["cnn2"], ["relu"], [0])
    rows = run_benchmark(
        specs, Protocol(max_epochs=1), tmp_path, saved_models_dir=None, strategy="mirrored", verbose=0
    )
    assert rows[0]["strategy"] == "MirroredStrategy"
    assert len(read_results(tmp_path / "results.jsonl")) == 1


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_local_workers_train_together_and_record_once(tfds_data_dir, tmp_path):
    """A 2-worker MultiWorkerMirroredStrategy job on 127.0.0.1: both finish, one row, one export."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out, saved = tmp_path / "out", tmp_path / "saved"
    args = ["--models", "cnn2", "--fc-activation", "relu", "--max-epochs", "2", "--strategy", "multiworker",
            "--out", str(out), "--saved-models", str(saved)]  # fmt: skip
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TFDS_DATA_DIR": str(tfds_data_dir), "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps(tf_config)}  # fmt: skip
        processes.append(
            subprocess.Popen(
                COMMAND[:6] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    try:
        outputs = [process.communicate(timeout=600)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
        assert "mini/cnn2-relu-seed0] test accuracy" in output
    rows = read_results(out / "results.jsonl")
    assert len(rows) == 1
    row = rows[0]
    assert row["strategy"] == "MultiWorkerMirroredStrategy" and row["epochs_run"] == 2
    assert len(row["history"]["val_loss"]) == 2 and all(math.isfinite(v) for v in row["history"]["loss"])
    assert (saved / "mini" / "cnn2-relu-seed0" / "saved_model.pb").exists()
    assert (out / "runs" / "cnn2-relu-seed0" / "worker-1" / "history.csv").exists()


def test_a_run_finished_in_its_folder_with_other_toggles_is_not_recorded_as_the_planned_one(tmp_path):
    # killed after training, before its row reached results.jsonl: rerunning the same id with other
    # toggles must not record (and export) that run as if it had trained with the new ones
    from zoo.errors import UserError
    from zoo.training.runner import FINISHED_ROW, check_finished_runs, run_dir_of

    (spec,) = plan_runs("mini", ["cnn2"], hparams={"fc_dropout": 0.5}, variant_suffix="-tuned")
    finished = run_dir_of(tmp_path, spec) / FINISHED_ROW
    finished.parent.mkdir(parents=True)
    toggles = {"fc_activation": None, "fc_dropout": 0.2}  # as a row records them
    finished.write_text(json.dumps({"run_id": spec.run_id, "toggles": toggles, "augment": None}))
    before = finished.read_bytes()
    with pytest.raises(UserError, match="finished there with toggles=") as info:
        run_benchmark([spec], Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0)
    message = str(info.value)
    assert message.startswith(f"{finished}: {spec.run_id}") and "\n" not in message
    assert f"delete {finished.parent} to train it anew" in message
    assert finished.read_bytes() == before and not (tmp_path / "results.jsonl").exists()

    (same,) = plan_runs("mini", ["cnn2"], hparams={"fc_dropout": 0.2}, variant_suffix="-tuned")
    check_finished_runs([same], tmp_path)  # the same toggles: it is this run, recorded as it is


def test_skip_busy_is_refused_with_a_multi_worker_strategy(tmp_path, monkeypatch):
    # only the chief holds run folders: a worker cannot know which run the chief left to another process
    from zoo.errors import UserError
    from zoo.training import runner

    monkeypatch.setattr(runner, "is_multiworker", lambda strategy: True)
    with pytest.raises(UserError, match="--skip-busy: not with a multi-worker strategy"):
        run_benchmark(plan_runs("mini", ["cnn2"]), Protocol(max_epochs=1), tmp_path / "out", skip_busy=True)
    assert not (tmp_path / "out").exists()


def test_an_export_recorded_meanwhile_by_another_process_is_not_taken(tmp_path, monkeypatch):
    # processes sharing a plan: between this process's read of results.jsonl and its look at the run
    # folder, another one records the run (its row in, its finished state gone): not an export in the way
    from zoo.training import runner
    from zoo.training.runner import ExportTaken, check_free_exports, export_target

    (spec,) = plan_runs("mini", ["cnn2"])
    export_target(tmp_path / "saved", spec).mkdir(parents=True)

    def recorded_meanwhile(spec_, runs_root):
        (tmp_path / "results.jsonl").write_text(json.dumps({"run_id": spec_.run_id}) + "\n")
        return False  # its finished state is gone by now

    monkeypatch.setattr(runner, "recoverable", recorded_meanwhile)
    check_free_exports([spec], tmp_path, tmp_path / "saved")
    (tmp_path / "results.jsonl").unlink()
    monkeypatch.setattr(runner, "recoverable", lambda spec_, runs_root: False)
    with pytest.raises(ExportTaken):  # nobody recorded it: the export is in the way
        check_free_exports([spec], tmp_path, tmp_path / "saved")
