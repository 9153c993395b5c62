"""The hypermodel (:class:`SpectraHyperModel`: any zoo model with its toggles drawn from a search space) and
the seeded KerasTuner tuners that search it, local or distributed."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import shutil
from collections.abc import Callable, Mapping
from typing import Any

import keras
import keras_tuner
from keras_tuner.src.engine.tuner_utils import SaveBestEpoch
from keras_tuner.src.tuners.gridsearch import LinkedList

from zoo.errors import UserError
from zoo.models.compile import compile_model
from zoo.models.registry import build, get_model_info, resolve_config
from zoo.training.callbacks import resume_callbacks
from zoo.training.environment import set_seed
from zoo.training.results import epochs_backed_up, read_history, read_inexact_resumes
from zoo.training.tuning.space import Choice, Range, SearchSpace, tidy


class SpectraHyperModel(keras_tuner.HyperModel):
    """A registered zoo architecture with its toggles (and optionally widths and learning rate) searched.

    Args:
        base: registry name of the architecture (see :func:`zoo.list_models`).
        num_classes: units of the softmax output.
        input_length: data points per spectrum.
        space: the search space (default: :class:`SearchSpace` ``()``).
        seed: seed set before building and before fitting (``seed + k`` for execution ``k`` of a trial when
            run by the tuners of :func:`run_search`).

    The hyperparameter names are the :func:`zoo.build` toggles plus ``learning_rate``. A dimension that does
    not apply is left out: ``fc_activation`` for a base without hidden FC layers (unless ``fc_widths`` is
    searched).
    """

    def __init__(
        self,
        base: str = "cnn6",
        num_classes: int = 27,
        input_length: int = 5000,
        *,
        space: SearchSpace | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(name=f"spectra_{base}", tunable=True)
        self.info = get_model_info(base)
        self.num_classes = num_classes
        self.input_length = input_length
        self.space = space if space is not None else SearchSpace()
        self.seed = seed
        #: Seed of the next build and fit; the tuners of :func:`run_search` set it per execution.
        self.execution_seed = seed
        self.has_fc_layers = self.space.fc_widths is not None or bool(self.info.defaults["fc_widths"])
        # Fail now, not in the first trial, for a space the base cannot take.
        resolve_config(self.info, num_classes=num_classes, input_length=input_length, **self.toggles(None))

    @property
    def base(self) -> str:
        """Registry name of the tuned architecture."""
        return self.info.name

    def dimensions(self) -> dict[str, Choice | Range]:
        """The searched dimensions that apply to the base, by hyperparameter name."""
        space = {field.name: getattr(self.space, field.name) for field in dataclasses.fields(self.space)}
        if space["fc_widths"] is None:
            del space["fc_widths"]
        if not self.has_fc_layers:
            del space["fc_activation"]
        return space

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Declare every dimension in ``hp`` (KerasTuner calls this before the first trial)."""
        self.values(hp)

    def values(self, hp: keras_tuner.HyperParameters | None) -> dict[str, Any]:
        """The value of every dimension in ``hp`` (declared on first use); ``None``: each default."""
        return {name: _hp_value(hp, name, dimension) for name, dimension in self.dimensions().items()}

    def toggles(self, hp: keras_tuner.HyperParameters | None) -> dict[str, Any]:
        """The :func:`zoo.build` toggles for ``hp`` (JSON-ready: ``fc_widths`` is a list)."""
        values = self.values(hp)
        values.pop("learning_rate")
        if "fc_widths" in values:
            values["fc_widths"] = list(values["fc_widths"])
        return values

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Build and compile the base with the toggles and learning rate of ``hp``."""
        values = self.values(hp)
        learning_rate = values.pop("learning_rate")
        set_seed(self.execution_seed)
        model = build(self.base, self.num_classes, self.input_length, compile=False, **values)
        return compile_model(model, learning_rate=learning_rate)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """Fit with the seed of this execution set first (as the benchmark runner does)."""
        set_seed(self.execution_seed)
        return model.fit(*args, **kwargs)


def _hp_value(hp: keras_tuner.HyperParameters | None, name: str, dimension: Choice | Range) -> Any:
    """Declare ``dimension`` as hyperparameter ``name`` and return its value (``hp=None``: the default)."""
    if isinstance(dimension, Choice):
        encoded = [_encode(value) for value in dimension.values]
        if hp is None:
            value = encoded[0]
        elif dimension.fixed:
            value = hp.Fixed(name, encoded[0])
        elif all(isinstance(item, bool) for item in encoded):  # hp.Choice would turn them into 0 and 1
            value = hp.Boolean(name, default=encoded[0])
        else:
            value = hp.Choice(name, encoded)
        return _decode(name, value)
    if hp is None:
        value = dimension.low
    elif dimension.fixed:
        value = hp.Fixed(name, dimension.low)
    else:
        sampling = "log" if dimension.log else "linear"
        value = hp.Float(name, dimension.low, dimension.high, step=dimension.step, sampling=sampling)
    return tidy(float(value))


def _encode(value: Any) -> Any:
    """KerasTuner choices hold scalars: width tuples become ``"3100-1200"``."""
    return "-".join(str(width) for width in value) if isinstance(value, tuple) else value


def _decode(name: str, value: Any) -> Any:
    return tuple(int(width) for width in value.split("-")) if name == "fc_widths" else value


# ------------------------------------------------------------------------------------------ tuners
#: Per-execution record of a search (one JSON line per finished execution) in the project directory.
EXECUTIONS_FILE = "executions.jsonl"


#: Name of the file that marks a finished execution in its resume folder (its seed, values and history).
FINISHED_FILE = "finished.json"


class _SeededExecutions:
    """Tuner mixin: execution ``k`` of a trial builds and fits with seed ``hypermodel.seed + k``.

    All trials use the same seeds (common random numbers: the configurations are compared on the same
    initialisations and batch orders). It also records which trials this process ran, prints one line
    per trial and appends every finished execution (seed, epochs, best validation figures) to
    :data:`EXECUTIONS_FILE`, so an analysis can pair executions of the same seed across trials.

    With ``resume_dir``, every execution keeps a per-epoch backup there (:class:`ResumableBackup`, with the
    state of the protocol's callbacks) and a CSV log of its epochs, so a trial that was interrupted — the
    process killed, the session over — goes on after the last finished epoch of the execution it was in,
    and executions that had finished are not trained again. ``train_from_epoch(e)`` gives the training
    input from epoch ``e`` on, so a resumed execution sees the batches the uninterrupted one would have.
    The trial's folder is removed when the trial completes; a trial that failed keeps it, so that the
    next run of the search, which tries it again, resumes it.
    """

    hypermodel: SpectraHyperModel
    tuner_id: str
    project_dir: str

    def __init__(
        self,
        *args: Any,
        resume_dir: str | os.PathLike[str] | None = None,
        train_from_epoch: Callable[[int], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.trials_run: list[str] = []
        self._execution = 0
        self.resume_dir = pathlib.Path(resume_dir) if resume_dir is not None else None
        self.train_from_epoch = train_from_epoch

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        self._execution = 0

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        execution, seed = self._execution, self.hypermodel.seed + self._execution
        self.hypermodel.execution_seed = seed
        self._execution += 1
        values = {name: tidy(value) for name, value in trial.hyperparameters.values.items()}
        run_dir = self._execution_dir(trial.trial_id, execution)
        if run_dir is not None:
            finished = _finished_history(run_dir, seed, values)
            if finished is not None:
                print(f"[tuner {self.tuner_id}] trial {trial.trial_id} execution {execution} (seed {seed}) "
                      "finished before: not trained again", flush=True)  # fmt: skip
                carry_best_into_checkpoint(kwargs.get("callbacks") or [], finished.history)
                return finished
            args, kwargs = self._resumable_fit_arguments(trial.trial_id, execution, run_dir, args, kwargs)
            carry_best_into_checkpoint(kwargs["callbacks"], read_history(run_dir / "history.csv"))
        history = super()._build_and_fit_model(trial, *args, **kwargs)
        if run_dir is not None:
            history.history = read_history(run_dir / "history.csv") or history.history  # every epoch
        record = execution_record(trial.trial_id, execution, seed, values, history)
        if record is not None and run_dir is not None and (inexact := read_inexact_resumes(run_dir)):
            record["inexact_resumes"] = inexact  # early stopping and the LR schedule started over there
        if record is not None:
            with open(os.path.join(self.project_dir, EXECUTIONS_FILE), "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        if run_dir is not None:
            mark = {"seed": seed, "hyperparameters": values, "history": history.history}
            (run_dir / FINISHED_FILE).write_text(json.dumps(mark), encoding="utf-8")
        return history

    def _execution_dir(self, trial_id: str, execution: int) -> pathlib.Path | None:
        if self.resume_dir is None:
            return None
        return self.resume_dir / f"trial_{trial_id}" / f"execution_{execution}"

    def _resumable_fit_arguments(
        self, trial_id: str, execution: int, run_dir: pathlib.Path, args: tuple, kwargs: dict[str, Any]
    ) -> tuple[tuple, dict[str, Any]]:
        """``fit``'s arguments with the backup and the epoch log added, and the training input moved on to
        the epoch the execution resumes at."""
        run_dir.mkdir(parents=True, exist_ok=True)
        log = run_dir / "history.csv"
        initial_epoch = epochs_backed_up(run_dir / "backup")
        if initial_epoch == 0:
            log.unlink(missing_ok=True)  # a start afresh: no epochs of an earlier, unfinished start
        else:
            print(f"[tuner {self.tuner_id}] trial {trial_id} execution {execution}: resuming after epoch "
                  f"{initial_epoch}", flush=True)  # fmt: skip
        if self.train_from_epoch is not None and args:  # a fresh input: every execution starts at its epoch
            args = (self.train_from_epoch(initial_epoch), *args[1:])
        callbacks = list(kwargs.get("callbacks") or [])
        stateful = [
            callback
            for callback in callbacks
            if isinstance(callback, keras.callbacks.ReduceLROnPlateau | keras.callbacks.EarlyStopping)
        ]
        return args, {**kwargs, "callbacks": [*callbacks, *resume_callbacks(run_dir, stateful)]}

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        self.trials_run.append(trial.trial_id)
        if self.resume_dir is not None and trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED:
            shutil.rmtree(self.resume_dir / f"trial_{trial.trial_id}", ignore_errors=True)
        print(f"[tuner {self.tuner_id}] trial {trial.trial_id} {trial.status}", flush=True)


def carry_best_into_checkpoint(callbacks: list[Any], history: Mapping[str, list[float]]) -> None:
    """Tell KerasTuner's checkpoint callback the best objective of epochs trained in an earlier process.

    ``SaveBestEpoch`` (one per trial, shared by its executions) starts from nothing in every process, so a
    trial resumed in a new process would overwrite its checkpoint, which holds the best epoch so far, with
    the first epoch it trains, however poor. Given the earlier epochs' logs (``history``: metric -> values
    per epoch), it saves again only on a real improvement. Nothing changes without a checkpoint file."""
    for callback in callbacks:
        if not isinstance(callback, SaveBestEpoch) or not os.path.exists(callback.filepath):
            continue
        objective = callback.objective
        for index in range(min((len(values) for values in history.values()), default=0)):
            logs = {name: values[index] for name, values in history.items()}
            if objective.has_value(logs) and objective.better_than(
                objective.get_value(logs), callback.best_value
            ):
                callback.best_value = objective.get_value(logs)


def _finished_history(run_dir: pathlib.Path, seed: int, values: Mapping[str, Any]) -> Any:
    """The ``History`` of an execution that finished in an earlier, interrupted run of its trial (same seed,
    same values), or ``None``."""
    path = run_dir / FINISHED_FILE
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("seed") != seed or saved.get("hyperparameters") != dict(values):
        return None
    history = keras.callbacks.History()
    history.history = saved["history"]
    return history


def execution_record(
    trial_id: str, execution: int, seed: int, values: Mapping[str, Any], history: Any
) -> dict[str, Any] | None:
    """One execution's summary from its Keras ``History``: the epoch (counted from 1) of the lowest
    validation loss — the weights EarlyStopping restores — with its validation accuracy, and the best
    validation accuracy of any epoch (KerasTuner's objective); ``None`` without a validation history."""
    logs = getattr(history, "history", None) or {}
    losses, accuracies = logs.get("val_loss"), logs.get("val_accuracy")
    if not losses or not accuracies:
        return None
    best = min(range(len(losses)), key=losses.__getitem__)
    return {
        "trial_id": trial_id,
        "execution": execution,
        "seed": seed,
        "hyperparameters": {name: tidy(value) for name, value in values.items()},
        "epochs_run": len(losses),
        "best_epoch": best + 1,
        "val_loss": float(losses[best]),
        "val_accuracy_at_best_loss": float(accuracies[best]),
        "max_val_accuracy": float(max(accuracies)),
    }


class SpectraRandomSearch(_SeededExecutions, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` with per-execution seeds."""


class SpectraBayesianOptimization(_SeededExecutions, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with per-execution seeds."""


class SpectraHyperband(_SeededExecutions, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with per-execution seeds (epochs per trial = Hyperband's ``max_epochs``)."""


class ResumableGridSearchOracle(keras_tuner.oracles.GridSearchOracle):
    """KerasTuner's grid oracle, able to resume: it keeps the order of the combinations it has tried only in
    memory, so a reloaded project finds nothing left to try and stops. On reload this rebuilds that order
    from the trials on disk, so the search goes on with the next untried combination (an interrupted
    trial is retried with its own values, as KerasTuner does). A combination whose trial failed would
    leave a hole in the grid: on reload it is queued to be tried again first."""

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        key = functools.cmp_to_key(
            lambda a, b: self._compare(
                self.trials[a].hyperparameters.values, self.trials[b].hyperparameters.values
            )
        )
        ordered = sorted(self.trials, key=key)
        self._ordered_ids = LinkedList()
        for trial_id in ordered:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(ordered)
        for trial_id in ordered:  # failed in an earlier process (say, on a file a kill left torn): retry it
            if self.trials[trial_id].status == keras_tuner.engine.trial.TrialStatus.FAILED:
                if trial_id not in self._retry_queue:
                    print(f"[oracle] trial {trial_id} failed in an earlier run: trying it again", flush=True)
                    self._retry_queue.append(trial_id)
                if trial_id in self.end_order:
                    self.end_order.remove(trial_id)


class SpectraGridSearch(_SeededExecutions, keras_tuner.Tuner):
    """Grid search with per-execution seeds: every combination of the space's choices and stepped ranges,
    in order (a range needs a step); resumable (:class:`ResumableGridSearchOracle`)."""

    def __init__(
        self,
        hypermodel: keras_tuner.HyperModel | None = None,
        objective: Any = None,
        max_trials: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        oracle = ResumableGridSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
        super().__init__(oracle, hypermodel, **kwargs)


#: ``--tuner`` name -> tuner class.
TUNERS: Mapping[str, type[keras_tuner.Tuner]] = {
    "grid": SpectraGridSearch,
    "random": SpectraRandomSearch,
    "bayesian": SpectraBayesianOptimization,
    "hyperband": SpectraHyperband,
}


def distributed_role() -> str | None:
    """``"chief"`` or ``"worker"`` from the KerasTuner environment variables; ``None`` for a local search."""
    names = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    present = [name for name in names if os.environ.get(name)]
    if not present:
        return None
    if len(present) < len(names):
        missing = next(name for name in names if name not in present)
        raise UserError(f"distributed tuning: {', '.join(present)} set but {missing} is not")
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"KERASTUNER_ORACLE_PORT: expected a port number, got {port!r}")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"
