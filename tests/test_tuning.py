"""KerasTuner search on `mini`: search space, end-to-end search, resume, bad arguments, chief + 2 workers."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pathlib
import random
import socket
import subprocess
import sys
import time

import keras
import keras_tuner
import numpy as np
import pytest

from zoo.commands.benchmark import read_hparams
from zoo.commands.cli import main
from zoo.models.registry import build_args_of
from zoo.training.protocol import plan_runs
from zoo.training.tuning import Choice, Range, SearchSpace, SpectraHyperModel
from zoo.training.tuning.search import build_tuner

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

BASE = ["--dataset", "mini", "--base", "vgg", "--quiet"]


def _declared(hypermodel: SpectraHyperModel) -> dict[str, dict]:
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return {p.name: {"type": type(p).__name__, **p.get_config()} for p in hp.space}


def _read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------ space
def test_default_space_has_every_toggle_with_its_range():
    space = _declared(SpectraHyperModel("cnn6", 27, 5000))
    assert set(space) == {"fc_activation", "fc_dropout", "conv_dropout", "batch_norm", "learning_rate"}
    activation = space["fc_activation"]
    assert activation["type"] == "Choice" and {"linear", "relu"} < set(activation["values"])
    assert len(activation["values"]) >= 4
    for name, high in (("fc_dropout", 0.8), ("conv_dropout", 0.5)):
        dimension = space[name]
        assert (dimension["type"], dimension["min_value"], dimension["max_value"]) == ("Float", 0.0, high)
    assert space["batch_norm"]["type"] == "Boolean"
    assert (space["learning_rate"]["type"], space["learning_rate"]["value"]) == ("Fixed", 3e-4)


def test_dimensions_can_be_fixed_or_narrowed():
    space = SearchSpace().narrowed(
        fc_activation="relu",
        fc_dropout=(0.5, 0.8),
        batch_norm=False,
        fc_widths=[(64, 32), (128,)],
        learning_rate=(1e-4, 1e-3),
    )
    declared = _declared(SpectraHyperModel("vgg", 10, 1000, space=space))
    assert declared["fc_activation"]["value"] == "relu" and declared["batch_norm"]["value"] is False
    assert (declared["fc_dropout"]["min_value"], declared["fc_dropout"]["max_value"]) == (0.5, 0.8)
    assert declared["fc_widths"]["values"] == ["64-32", "128"]
    assert declared["learning_rate"]["sampling"] == "log"
    assert space.fc_dropout == Range(0.5, 0.8) and space.fc_activation == Choice(("relu",))


def test_a_base_without_fc_layers_does_not_search_the_fc_activation():
    assert "fc_activation" not in _declared(SpectraHyperModel("resnet", 10, 1000))
    widened = SearchSpace(fc_widths=[(256,)])
    assert "fc_activation" in _declared(SpectraHyperModel("resnet", 10, 1000, space=widened))


def test_the_model_is_built_by_zoo_build_with_the_trial_values():
    hypermodel = SpectraHyperModel("vgg", 10, 1000, space=SearchSpace(learning_rate=(1e-4, 1e-3)))
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    trial = {"fc_activation": "relu", "fc_dropout": 0.6, "conv_dropout": 0.0, "batch_norm": True}
    hp.values.update(trial, learning_rate=5e-4)
    model = hypermodel.build(hp)
    name, args = build_args_of(model)
    assert name == "vgg"
    assert {key: args[key] for key in trial} == trial
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(5e-4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fc_activation": []}, "fc_activation: empty choice"),
        ({"fc_activation": ["relu", "nope"]}, "fc_activation: unknown Keras activation 'nope'"),
        ({"fc_dropout": (0.6, 0.2)}, "fc_dropout: empty range"),
        ({"fc_dropout": (0.0, 1.0)}, "fc_dropout: range 0..1 is outside"),
        ({"conv_dropout": (0.0, 0.5, -0.1)}, "conv_dropout: step must be positive"),
        ({"batch_norm": ["on"]}, "batch_norm: expected True or False"),
        ({"fc_widths": [(100, 0)]}, "fc_widths: layer widths must be positive"),
        ({"learning_rate": 0.0}, "learning_rate: range 0..0 is outside"),
        ({"momentum": 0.9}, "search space: unknown dimension 'momentum'"),
    ],
)
def test_bad_space_is_a_one_line_error_naming_the_dimension(changes, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")) as info:
        SearchSpace().narrowed(**changes)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------- end to end
def _first_trials(tuner: str, seed: int, project_dir: pathlib.Path) -> list[dict]:
    random.seed(str(project_dir))  # Python's global state differs per call: only the tuner's seed may decide
    hypermodel = SpectraHyperModel("vgg", 10, 1000, seed=seed)
    search = build_tuner(
        tuner, hypermodel, objective="val_accuracy", max_trials=4, epochs=4, executions_per_trial=1,
        project_dir=project_dir, overwrite=False,
    )  # fmt: skip
    return [search.oracle.create_trial(f"tuner{k}").hyperparameters.values for k in range(3)]


@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_seed_0_draws_the_same_trials_twice(tuner, tmp_path):
    """KerasTuner takes seed 0 for "no seed"; the oracle gets ``seed + 1`` so --seed 0 is reproducible too."""
    first = _first_trials(tuner, 0, tmp_path / "first")
    assert _first_trials(tuner, 0, tmp_path / "second") == first
    assert len({json.dumps(values, sort_keys=True) for values in first}) > 1
    assert _first_trials(tuner, 1, tmp_path / "other") != first


@pytest.fixture(scope="module")
def search(tfds_data_dir, tmp_path_factory):
    """A 2-trial random search of VGG on mini (2 epochs per trial, best retrained for 1 epoch)."""
    root = tmp_path_factory.mktemp("tune")
    project = root / "project"
    args = [*BASE, "--max-trials", "2", "--epochs", "2", "--final-epochs", "1", "--seed", "3"]
    args += ["--fc-activation", "linear,relu", "--project-dir", str(project), "--out", str(root / "out")]
    args += ["--saved-models", str(root / "saved"), "--data-dir", str(tfds_data_dir)]
    assert main(["tune", *args]) == 0
    return {"root": root, "project": project, "args": args}


def test_search_writes_the_table_best_hparams_and_tensorboard_hparams(search):
    out = search["root"] / "out"
    rows = _read_csv(out / "trials.csv")
    assert len(rows) == 2 and {row["trial_id"] for row in rows} == {"0", "1"}
    assert [row["rank"] for row in rows] == ["1", "2"]
    assert float(rows[0]["score"]) >= float(rows[1]["score"]) and rows[0]["score"] == rows[0]["val_accuracy"]
    assert all(row["fc_activation"] in ("linear", "relu") and row["status"] == "COMPLETED" for row in rows)
    markdown = (out / "trials.md").read_text()
    assert markdown.count("| COMPLETED |") == 2 and "objective val_accuracy (max)" in markdown

    best = json.loads((out / "best_hparams.json").read_text())
    assert best["trial_id"] == rows[0]["trial_id"] and best["score"] == pytest.approx(float(rows[0]["score"]))
    assert best["toggles"]["fc_activation"] == rows[0]["fc_activation"]
    toggles = read_hparams(str(out / "best_hparams.json"))  # what `spectrazoo benchmark --hparams` reads
    (spec,) = plan_runs("mini", ["vgg"], hparams=toggles, variant_suffix="-tuned")
    assert spec.build_kwargs == toggles

    events = list((search["project"] / "tensorboard" / rows[0]["trial_id"]).rglob("events.out.tfevents.*"))
    assert any(b"hparams" in path.read_bytes() for path in events)


def test_the_retrained_best_model_is_exported_loadable_with_its_test_accuracy(search):
    import zoo

    final = json.loads((search["root"] / "out" / "best_hparams.json").read_text())["final"]
    assert 0.0 <= final["test_accuracy"] <= 1.0 and final["test_size"] == 90
    assert final["test_accuracy"] == pytest.approx(1 - final["misclassified"] / 90)
    predictor = zoo.load(final["export_dir"])
    metadata = json.loads((pathlib.Path(final["export_dir"]) / "metadata.json").read_text())
    assert metadata["model"] == "vgg" and metadata["build_args"]["fc_activation"] in ("linear", "relu")
    spectra = np.random.default_rng(0).random((2, 1000)) + 0.1
    assert len(predictor.classify(spectra, top_k=1)) == 2


def test_rerun_resumes_the_search_without_repeating_a_trial(search, capsys):
    out = search["root"] / "out"
    before = _read_csv(out / "trials.csv")
    assert main(["tune", *search["args"], "--max-trials", "3", "--final-epochs", "0"]) == 0  # last ones win
    ran = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[tuner tuner0] trial")]
    assert ran == ["[tuner tuner0] trial 2 COMPLETED"]
    after = _read_csv(out / "trials.csv")
    assert sorted(row["trial_id"] for row in after) == ["0", "1", "2"]
    dimensions = ("fc_activation", "fc_dropout", "conv_dropout", "batch_norm")
    assert len({tuple(row[d] for d in dimensions) for row in after}) == 3
    scores = {row["trial_id"]: row["score"] for row in after}
    assert all(scores[row["trial_id"]] == row["score"] for row in before)  # not retrained


def test_resuming_with_other_settings_is_refused_and_overwrite_starts_over(search, capsys):
    assert main(["tune", *search["args"], "--fc-dropout", "0.5"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "was started with space.fc_dropout=" in error and "--overwrite" in error
    assert main(["tune", *search["args"], "--tuner", "hyperband"]) == 2
    assert 'was started with tuner="random"' in capsys.readouterr().err

    fresh = search["root"] / "fresh"  # start over, as a Hyperband search capped at one trial
    args = ["--tuner", "hyperband", "--max-trials", "1", "--final-epochs", "0", "--out", str(fresh)]
    assert main(["tune", *search["args"], *args, "--overwrite"]) == 0
    (row,) = _read_csv(fresh / "trials.csv")
    assert row["status"] == "COMPLETED" and int(row["tuner/epochs"]) <= 2
    title = (fresh / "trials.md").read_text().splitlines()[0]
    assert title.startswith("# hyperband search over vgg on mini: 1 trials, up to 2 epochs each")
    assert json.loads((search["project"] / "oracle.json").read_text())["end_order"] == ["0"]


def test_the_retrained_model_does_not_replace_an_export_of_another_search(tmp_path, monkeypatch):
    from synthetic_spectra.config import get_config
    from zoo.errors import UserError
    from zoo.training.protocol import Protocol
    from zoo.training.runner import check_free_exports
    from zoo.training.tuning import search
    from zoo.training.tuning.search import _retrain_best, own_exports

    (spec,) = plan_runs("mini", ["cnn2"], hparams={"fc_activation": "relu"}, variant_suffix="-tuned")
    saved = tmp_path / "saved_models"
    target = saved / "mini" / "cnn2-relu-tuned-seed0"
    target.mkdir(parents=True)  # exported by another search, or by `benchmark --hparams`
    run_dir = tmp_path / "project" / "final" / "trial_1-epochs1"
    best = {"base": "cnn2", "toggles": {"fc_activation": "relu"}, "seed": 0, "learning_rate": 3e-4}
    with pytest.raises(UserError, match="an export of another search or run is there") as info:
        _retrain_best(get_config("mini"), best, Protocol(max_epochs=1), 1, run_dir, saved, None, verbose=0)
    assert "\n" not in str(info.value) and "--saved-models" in str(info.value)
    assert not run_dir.exists()  # refused before anything was trained or written

    own = run_dir.parent / "trial_0-epochs1"  # an earlier best of the same search exported it: its own
    own.mkdir(parents=True)
    (own / "results.jsonl").write_text(json.dumps({"run_id": spec.run_id, "export_dir": str(target)}) + "\n")
    assert own_exports(run_dir) == {target.resolve()}
    check_free_exports([spec], run_dir, saved, replaceable=own_exports(run_dir))  # may be replaced

    class Handed(Exception):  # stops _retrain_best once it has handed the run to the runner
        pass

    handed = {}

    def runner(specs, protocol, out_dir, **options):
        handed.update(options, specs=specs, out_dir=out_dir)
        raise Handed

    monkeypatch.setattr(search, "run_benchmark", runner)
    with pytest.raises(Handed):
        _retrain_best(get_config("mini"), best, Protocol(max_epochs=1), 1, run_dir, saved, None, verbose=0)
    assert handed["specs"] == [spec] and handed["out_dir"] == run_dir
    assert handed["overwrite_exports"] is False and handed["replaceable_exports"] == {target.resolve()}


def test_bayesian_without_scikit_learn_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "sklearn" else find_spec(name, *args)
    )
    assert main(["tune", *BASE, "--tuner", "bayesian", "--project-dir", str(tmp_path / "p")]) == 2
    assert "scikit-learn" in capsys.readouterr().err and not (tmp_path / "p").exists()


def test_bayesian_search_runs_with_the_pinned_scikit_learn(tfds_data_dir, tmp_path):
    args = ["tune", *BASE, "--tuner", "bayesian", "--max-trials", "2", "--epochs", "1", "--final-epochs", "0",
            "--project-dir", str(tmp_path / "p"), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    assert len(rows) == 2 and {row["status"] for row in rows} == {"COMPLETED"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "nope"], "--base: unknown model 'nope'"),
        (["--fc-dropout", "0.6:0.2"], "fc_dropout: empty range"),
        (["--conv-dropout", "0:x"], "--conv-dropout: expected a number, got 'x'"),
        (["--fc-activation", "relu,"], "--fc-activation: empty value"),
        (["--batch-norm", "maybe"], "--batch-norm: expected on/off"),
        (["--max-trials", "-1"], "max_trials: must be an integer >= 1, got -1"),
        (["--max-trials", "0"], "max_trials: must be an integer >= 1, got 0"),
        (["--epochs", "0"], "max_epochs: must be a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_errors_with_exit_status_2(args, message, capsys, tmp_path):
    assert main(["tune", *BASE, "--project-dir", str(tmp_path / "p"), *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("spectrazoo tune: error: ") and error.count("\n") == 1
    assert message in error
    assert not (tmp_path / "p").exists()


def test_half_configured_distribution_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    assert main(["tune", *BASE, "--project-dir", str(tmp_path / "p")]) == 2
    assert "KERASTUNER_ORACLE_IP is not" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- distributed
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_chief_and_two_workers_run_every_trial_exactly_once(tfds_data_dir, tmp_path):
    trials = 3
    command = [sys.executable, "-m", "zoo", "tune", *BASE, "--max-trials", str(trials), "--epochs", "1"]
    command += ["--final-epochs", "0", "--project-dir", str(tmp_path / "project")]
    env = {**os.environ, "TFDS_DATA_DIR": str(tfds_data_dir), "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}  # fmt: skip
    processes, logs = {}, {}
    try:
        for tuner_id in ("chief", "worker0", "worker1"):
            logs[tuner_id] = (tmp_path / f"{tuner_id}.log").open("w")
            processes[tuner_id] = subprocess.Popen(
                command, env={**env, "KERASTUNER_TUNER_ID": tuner_id}, stdout=logs[tuner_id],
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 300  # generous: the CPU may be shared
        for process in processes.values():
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for log in logs.values():
            log.close()
    output = {tuner_id: (tmp_path / f"{tuner_id}.log").read_text() for tuner_id in processes}
    for tuner_id, process in processes.items():
        assert process.returncode == 0, f"{tuner_id}: {output[tuner_id][-2000:]}"

    ran = {}
    for worker in ("worker0", "worker1"):
        (line,) = [line for line in output[worker].splitlines() if line.startswith("worker finished")]
        ran[worker] = [] if line.endswith("none") else line.split("ran trials ")[1].split(", ")
    every = ran["worker0"] + ran["worker1"]
    rows = _read_csv(tmp_path / "project" / "trials.csv")  # written by the chief from its oracle
    assert sorted(every) == sorted(row["trial_id"] for row in rows) and len(rows) == trials
    assert all(row["status"] == "COMPLETED" and row["score"] for row in rows)
    oracle = json.loads((tmp_path / "project" / "oracle.json").read_text())
    assert sorted(oracle["run_times"]) == sorted(every) and set(oracle["run_times"].values()) == {1}
    assert oracle["ongoing_trials"] == {}  # a rerun of the chief would retry any trial listed here
    assert json.loads((tmp_path / "project" / "best_hparams.json").read_text())["trials"] == trials


# ------------------------------------------------------------------------------------------ grid search
def test_grid_search_trains_every_combination_once_with_the_same_seeds(tfds_data_dir, tmp_path):
    from zoo.study.toggle_effects import read_executions
    from zoo.training.protocol import Protocol
    from zoo.training.tuning import run_search

    space = SearchSpace(
        fc_activation=("linear", "relu"), fc_dropout=(0.0, 0.5, 0.5), conv_dropout=0.0, batch_norm=False
    )
    project = tmp_path / "project"
    for max_trials in (2, 10):  # the second call resumes the project and goes on with the grid
        result = run_search(
            "mini", "vgg", tuner="grid", max_trials=max_trials, executions_per_trial=2, space=space,
            protocol=Protocol(max_epochs=1), project_dir=project, final_epochs=0, saved_models_dir=None,
            data_dir=str(tfds_data_dir), seed=5, verbose=0,
        )  # fmt: skip
        assert len(result.rows) == max_trials if max_trials == 2 else 4
    combos = {(row["fc_activation"], row["fc_dropout"]) for row in result.rows}
    assert len(result.rows) == 4 and combos == {(a, d) for a in ("linear", "relu") for d in (0.0, 0.5)}
    executions = read_executions(project / "executions.jsonl")
    assert len(executions) == 8
    by_trial: dict[str, list[int]] = {}
    for record in executions:
        by_trial.setdefault(record["trial_id"], []).append(record["seed"])
        assert record["epochs_run"] == 1 and record["best_epoch"] == 1
        assert 0.0 <= record["val_accuracy_at_best_loss"] <= record["max_val_accuracy"] <= 1.0
    assert all(sorted(seeds) == [5, 6] for seeds in by_trial.values())


def test_grid_search_refuses_an_unstepped_range(capsys, tmp_path):
    args = ["tune", *BASE, "--tuner", "grid", "--fc-dropout", "0:0.5", "--project-dir", str(tmp_path / "p")]
    assert main(args) == 2
    assert "fc_dropout: a grid search needs a stepped linear range" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def _one_trial_grid(project: pathlib.Path, data_dir: pathlib.Path) -> None:
    """One configuration, two executions of three epochs each: the resume tests' search."""
    from zoo.training.protocol import Protocol
    from zoo.training.tuning import run_search

    space = SearchSpace(fc_activation="relu", fc_dropout=(0.0, 0.5, 0.5), conv_dropout=0.0, batch_norm=False)
    run_search(
        "mini", "vgg", tuner="grid", max_trials=1, executions_per_trial=2, space=space,
        protocol=Protocol(max_epochs=3), project_dir=project, final_epochs=0, saved_models_dir=None,
        data_dir=str(data_dir), seed=5, verbose=0,
    )  # fmt: skip


class _Killed(BaseException):  # like a kill: not an error KerasTuner would record as a failed trial
    pass


def _stopping_execution_1_after_epoch_2(monkeypatch, error: type[BaseException]) -> None:
    """Make execution 1 (seed 6) raise ``error`` after its second epoch's backup (which comes last)."""

    class RaiseAfterEpoch2(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise error("stopped after epoch 2")

    fit = SpectraHyperModel.fit

    def stopping_fit(self, hp, model, *args, **kwargs):
        if self.execution_seed == 6:
            kwargs["callbacks"] = [*kwargs["callbacks"], RaiseAfterEpoch2()]
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(SpectraHyperModel, "fit", stopping_fit)


@pytest.fixture(scope="module")
def reference_search(tfds_data_dir, tmp_path_factory) -> pathlib.Path:
    """The resume tests' search, run once without interruption: what every resumed search must equal."""
    project = tmp_path_factory.mktemp("reference") / "project"
    _one_trial_grid(project, tfds_data_dir)
    return project


def test_an_interrupted_trial_resumes_after_its_last_epoch_as_if_never_interrupted(
    tfds_data_dir, reference_search, tmp_path, capsys, monkeypatch
):
    from zoo.study.toggle_effects import read_executions
    from zoo.training.tuning.search import RESUME_DIR

    project = tmp_path / "project"
    with monkeypatch.context() as patch:
        _stopping_execution_1_after_epoch_2(patch, _Killed)
        with pytest.raises(_Killed):
            _one_trial_grid(project, tfds_data_dir)
    assert [record["execution"] for record in read_executions(project / "executions.jsonl")] == [0]
    capsys.readouterr()
    _one_trial_grid(project, tfds_data_dir)
    out = capsys.readouterr().out
    assert "execution 0 (seed 5) finished before: not trained again" in out
    assert "execution 1: resuming after epoch 2" in out
    resumed = read_executions(project / "executions.jsonl")
    reference = read_executions(reference_search / "executions.jsonl")
    assert [record["epochs_run"] for record in resumed] == [3, 3]
    assert resumed == reference  # same seeds, same batches, same callback states: the same trainings
    assert not any((project / RESUME_DIR).iterdir())  # the finished trial's backups are gone
    # the trial's checkpoint holds the same best epoch, not the first epoch the resumed process trained
    assert _weights(project / "trial_0" / "checkpoint.weights.h5") == _weights(
        reference_search / "trial_0" / "checkpoint.weights.h5"
    )


def test_a_failed_trial_keeps_its_backups_and_the_next_run_retries_it(
    tfds_data_dir, reference_search, tmp_path, capsys, monkeypatch
):
    from zoo.errors import UserError
    from zoo.study.toggle_effects import read_executions
    from zoo.training.tuning.search import RESUME_DIR

    project = tmp_path / "project"
    with monkeypatch.context() as patch:
        _stopping_execution_1_after_epoch_2(patch, RuntimeError)  # an error: KerasTuner fails the trial
        with pytest.raises(UserError, match=r"no trial of .* completed"):
            _one_trial_grid(project, tfds_data_dir)
    trial = json.loads((project / "trial_0" / "trial.json").read_text())
    assert trial["status"] == "FAILED" and "stopped after epoch 2" in trial["message"]
    assert (project / RESUME_DIR / "trial_0" / "execution_1" / "backup").is_dir()  # kept for the retry
    capsys.readouterr()
    _one_trial_grid(project, tfds_data_dir)
    out = capsys.readouterr().out
    assert "trial 0 failed in an earlier run: trying it again" in out
    assert "execution 1: resuming after epoch 2" in out
    assert json.loads((project / "trial_0" / "trial.json").read_text())["status"] == "COMPLETED"
    retried = read_executions(project / "executions.jsonl")
    assert [record["epochs_run"] for record in retried] == [3, 3]
    assert retried == read_executions(reference_search / "executions.jsonl")  # the retry resumed exactly
    assert not any((project / RESUME_DIR).iterdir())


def _weights(path: pathlib.Path) -> dict[str, bytes]:
    import h5py

    found: dict[str, bytes] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: found.__setitem__(name, np.asarray(item).tobytes())
            if isinstance(item, h5py.Dataset) else None
        )  # fmt: skip
    return found


def test_a_resumed_trial_saves_its_checkpoint_only_on_a_real_improvement(tmp_path):
    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

    from zoo.training.tuning.hypermodel import carry_best_into_checkpoint

    saved = []

    class Recording(SaveBestEpoch):
        def _save_model(self):
            saved.append(self.best_value)

    objective = keras_tuner.Objective("val_accuracy", "max")
    earlier = {"val_accuracy": [0.2, 0.6, 0.5], "loss": [3.0, 2.0, 1.5]}  # epochs of an earlier process
    missing = Recording(objective, str(tmp_path / "none.weights.h5"))
    carry_best_into_checkpoint([missing, keras.callbacks.History()], earlier)
    assert missing.best_value == float("-inf")  # no checkpoint file: nothing to keep

    checkpoint = tmp_path / "checkpoint.weights.h5"
    checkpoint.write_bytes(b"the best epoch's weights")
    callback = Recording(objective, str(checkpoint))
    carry_best_into_checkpoint([keras.callbacks.History(), callback], earlier)
    assert callback.best_value == 0.6
    callback.on_epoch_end(0, {"val_accuracy": 0.4})  # the resumed process's first epoch: worse
    callback.on_epoch_end(1, {"val_accuracy": 0.7})
    assert saved == [0.7]
    carry_best_into_checkpoint([callback], {"val_accuracy": [0.65]})  # never lowers what it knows
    assert callback.best_value == 0.7


def test_a_precise_search_reestimates_batch_norm_in_its_trials_and_its_retraining(tfds_data_dir, tmp_path):
    import zoo
    from synthetic_spectra.config import get_config
    from zoo.errors import UserError
    from zoo.models.batch_norm import batch_norm_layers, reestimate_batch_norm
    from zoo.training.data import load_train_spectra
    from zoo.training.protocol import Protocol
    from zoo.training.tuning import run_search
    from zoo.training.tuning.search import _check_resumable

    config = get_config("mini")
    space = SearchSpace(fc_activation="relu", fc_dropout=0.5, conv_dropout=0.0, batch_norm=(True, False))
    project = tmp_path / "project"
    settings = dict(tuner="grid", max_trials=2, space=space, protocol=Protocol(max_epochs=2),
                    project_dir=project, saved_models_dir=None, data_dir=str(tfds_data_dir),
                    verbose=0)  # fmt: skip
    result = run_search("mini", "vgg", final_epochs=1, batch_norm_statistics="precise", **settings)
    assert json.loads((project / "search.json").read_text())["batch_norm_statistics"] == "precise"
    assert result.best["batch_norm_statistics"] == "precise"
    (final_rows,) = list((project / "final").glob("*/results.jsonl"))
    final = json.loads(final_rows.read_text())
    expected = "precise" if result.best["toggles"]["batch_norm"] else "moving"  # nothing to re-estimate
    assert final["batch_norm_statistics"] == expected

    # the trial with batch norm kept weights whose statistics are the training split's own
    (trial,) = [row for row in result.rows if str(row["batch_norm"]) == "True"]
    toggles = {"fc_activation": "relu", "fc_dropout": 0.5, "conv_dropout": 0.0, "batch_norm": True}
    model = zoo.build("vgg", config.num_classes, config.datapoints, compile=False, **toggles)
    model.load_weights(project / f"trial_{trial['trial_id']}" / "checkpoint.weights.h5")
    kept = [keras.ops.convert_to_numpy(layer.moving_variance) for layer in batch_norm_layers(model)]
    reestimate_batch_norm(model, load_train_spectra(config, Protocol(), data_dir=str(tfds_data_dir)))
    for before, layer in zip(kept, batch_norm_layers(model), strict=True):
        after = keras.ops.convert_to_numpy(layer.moving_variance)
        np.testing.assert_allclose(before, after, rtol=1e-4, atol=1e-6)

    with pytest.raises(UserError, match='batch_norm_statistics="precise", not "moving"'):
        run_search("mini", "vgg", final_epochs=0, **settings)
    (project / "search.json").write_text(json.dumps({"dataset": "mini"}))  # a project from before the option
    _check_resumable(project, {"dataset": "mini", "batch_norm_statistics": "moving"})
    with pytest.raises(UserError, match="batch_norm_statistics"):
        _check_resumable(project, {"dataset": "mini", "batch_norm_statistics": "precise"})
