"""The search run (:func:`run_search`): resume checks, the search itself, the best hyperparameters and the
retraining of the best configuration with the benchmark runner."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import keras
import keras_tuner

from synthetic_spectra.config import DatasetConfig, get_config
from zoo.checks import check_int
from zoo.errors import UserError
from zoo.training.data import load_data, load_train_spectra, train_input
from zoo.training.environment import backend
from zoo.training.protocol import Protocol, check_batch_norm_statistics, has_batch_norm, plan_runs
from zoo.training.results import read_results
from zoo.training.runner import RESULTS_FILE, ExportTaken, run_benchmark
from zoo.training.tuning.hypermodel import TUNERS, SpectraHyperModel, distributed_role
from zoo.training.tuning.space import SearchSpace
from zoo.training.tuning.tables import trial_rows, write_trials_table

#: Objective name -> direction.
OBJECTIVES: Mapping[str, str] = {"val_accuracy": "max", "val_loss": "min"}
#: Fields of the retrained model's results row kept under ``final`` in ``best_hparams.json``.
FINAL_FIELDS: tuple[str, ...] = (
    "run_id",
    "test_accuracy",
    "misclassified",
    "test_size",
    "val_accuracy",
    "epochs_run",
    "export_dir",
)
BEST_HPARAMS = "best_hparams.json"
SEARCH_FILE = "search.json"
#: Folder of the project holding each running trial's per-epoch backups (removed when the trial ends).
RESUME_DIR = "resume"


@dataclasses.dataclass
class SearchResult:
    """What :func:`run_search` did. On a worker only ``role`` and ``trials_run`` are filled in."""

    role: str
    trials_run: list[str]
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    paths: dict[str, pathlib.Path] = dataclasses.field(default_factory=dict)


#: Settings a project's ``search.json`` may predate: what such a project was searched with.
IDENTITY_DEFAULTS = {"batch_norm_statistics": "moving"}


def _check_resumable(project_dir: pathlib.Path, identity: Mapping[str, Any]) -> None:
    """Refuse to resume a project that was started with other settings (KerasTuner would mix them)."""
    path = project_dir / SEARCH_FILE
    if not path.exists():
        return
    recorded = {**IDENTITY_DEFAULTS, **json.loads(path.read_text(encoding="utf-8"))}
    changed = next((key for key in identity if recorded.get(key) != identity[key]), None)
    if changed is None:
        return
    was, now, name = recorded.get(changed), identity[changed], changed
    if isinstance(was, dict) and isinstance(now, dict):  # name the one dimension that differs
        inner = next(key for key in sorted({*was, *now}) if was.get(key) != now.get(key))
        was, now, name = was.get(inner), now.get(inner), f"{changed}.{inner}"
    raise UserError(
        f"project {project_dir} was started with {name}={_short(was)}, not {_short(now)}; "
        "pass overwrite (--overwrite) or another project dir"
    )


def _short(value: Any, limit: int = 80) -> str:
    """``value`` as JSON, cut to ``limit`` characters (a message names a value, it does not dump it)."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def own_exports(run_dir: pathlib.Path) -> set[pathlib.Path]:
    """The exports this search's retrainings made: those a row in a folder beside ``run_dir`` names.

    ``run_dir`` is a retraining's folder (``<project>/final/<trial>``); a later best of the same search
    may replace what an earlier one exported.
    """
    return {
        pathlib.Path(row["export_dir"]).resolve()
        for results in run_dir.parent.glob(f"*/{RESULTS_FILE}")
        for row in read_results(results)
        if row.get("export_dir")
    }


def _retrain_best(
    dataset: DatasetConfig,
    best: Mapping[str, Any],
    protocol: Protocol,
    epochs: int,
    run_dir: pathlib.Path,
    saved_models_dir: str | os.PathLike | None,
    data_dir: str | None,
    verbose: int,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the best configuration with the benchmark runner (test accuracy, export); its results row.

    The run lives in ``run_dir``: rerunning the search finds it finished (or resumes it if it was killed).
    An export that another search or run made is not replaced unless ``overwrite``.
    """
    toggles, seeds = best["toggles"], [best["seed"]]
    precise = best.get("batch_norm_statistics") == "precise"
    precise = precise and has_batch_norm(dataset, best["base"], toggles)  # else nothing to re-estimate
    specs = plan_runs(
        dataset, [best["base"]], seeds=seeds, hparams=toggles, variant_suffix="-tuned",
        batch_norm_statistics="precise" if precise else "moving",
    )  # fmt: skip
    print(f"retraining the best configuration for up to {epochs} epochs", flush=True)
    try:
        run_benchmark(
            specs,
            dataclasses.replace(protocol, max_epochs=epochs, learning_rate=best["learning_rate"]),
            run_dir,
            saved_models_dir=saved_models_dir,
            data_dir=data_dir,
            verbose=verbose,
            overwrite_exports=overwrite,
            replaceable_exports=own_exports(run_dir),
        )
    except ExportTaken as taken:  # --overwrite would start the whole search over: name the other way out
        raise UserError(
            f"{taken.target}: an export of another search or run is there; pass another saved_models_dir "
            "(--saved-models), or remove it"
        ) from None
    row = read_results(run_dir / "results.jsonl")[-1]
    final = {key: row.get(key) for key in FINAL_FIELDS}
    exported = f"exported to {final['export_dir']}" if final["export_dir"] else "not exported"
    print(
        f"final model (best configuration retrained, seed {best['seed']}): test accuracy "
        f"{final['test_accuracy']:.4f} ({final['misclassified']}/{final['test_size']} wrong), {exported}",
        flush=True,
    )
    return final


def check_grid(space: SearchSpace) -> int:
    """The number of configurations of a grid search over ``space``; a searched range without a step (or
    a log-sampled one) is an error, since a grid needs a finite set of values."""
    from zoo.training.tuning.space import Choice

    size = 1
    for field in dataclasses.fields(space):
        dimension = getattr(space, field.name)
        if dimension is None or dimension.fixed:
            continue
        if isinstance(dimension, Choice):
            size *= len(dimension.values)
        elif dimension.step is None or dimension.log:
            raise ValueError(
                f"{field.name}: a grid search needs a stepped linear range (low:high:step) or one value"
            )
        else:
            size *= round((dimension.high - dimension.low) / dimension.step) + 1
    return size


def oracle_seed(seed: int) -> int:
    """The seed given to KerasTuner's oracle for ``seed``: ``seed + 1``.

    KerasTuner treats a seed of 0 as "no seed" and draws a random one, so ``--seed 0`` would not be
    reproducible; shifting by one keeps every seed distinct and never 0.
    """
    return seed + 1


def build_tuner(
    tuner: str,
    hypermodel: SpectraHyperModel,
    *,
    objective: str,
    max_trials: int,
    epochs: int,
    executions_per_trial: int,
    project_dir: pathlib.Path,
    overwrite: bool,
    train_from_epoch: Any = None,
) -> keras_tuner.Tuner:
    """The KerasTuner tuner of :func:`run_search`, its oracle seeded with :func:`oracle_seed` of the
    hypermodel's seed (a resumed project keeps the seed its oracle saved). With ``train_from_epoch`` (the
    training input from a given epoch on) each execution keeps per-epoch backups under the project's
    :data:`RESUME_DIR`, so an interrupted trial resumes after its last finished epoch."""
    schedule = {"max_epochs": epochs} if tuner == "hyperband" else {"max_trials": max_trials}
    resume = {} if train_from_epoch is None else {"resume_dir": project_dir / RESUME_DIR}
    return TUNERS[tuner](
        hypermodel,
        objective=keras_tuner.Objective(objective, OBJECTIVES[objective]),
        executions_per_trial=executions_per_trial,
        seed=oracle_seed(hypermodel.seed),
        directory=str(project_dir.parent),
        project_name=project_dir.name,
        overwrite=overwrite,
        train_from_epoch=train_from_epoch,
        **resume,
        **schedule,
    )


def run_search(
    dataset: str | os.PathLike[str] | DatasetConfig,
    base: str = "cnn6",
    *,
    tuner: str = "random",
    max_trials: int = 10,
    executions_per_trial: int = 1,
    space: SearchSpace | None = None,
    objective: str = "val_accuracy",
    protocol: Protocol | None = None,
    project_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    seed: int = 0,
    final_epochs: int | None = None,
    out_dir: str | os.PathLike | None = None,
    saved_models_dir: str | os.PathLike | None = "saved_models",
    data_dir: str | None = None,
    verbose: int = 2,
    batch_norm_statistics: str = "moving",
) -> SearchResult:
    """Search ``base``'s toggles on ``dataset``; write the trials table and best hyperparameters; retrain.

    Args:
        dataset: dataset config (``challenge``, ``mini``, a config file or a config), resolved here once.
        base: registry name of the architecture to tune.
        tuner: ``grid`` (every combination; each searched range needs a step), ``random``, ``bayesian`` or
            ``hyperband``.
        max_trials: trials in the search, counting those of earlier runs of the same project (resume: call
            again with a larger number). For Hyperband, a cap on its own schedule.
        executions_per_trial: trainings per trial (seeds ``seed … seed+K-1``), their metrics averaged.
        space: the search space (default :class:`SearchSpace` ``()``).
        objective: ``val_accuracy`` (maximised) or ``val_loss`` (minimised), at the trial's best epoch.
        protocol: batch size, patiences and ``max_epochs`` = epochs per trial (default ``Protocol()`` with
            10 epochs).
        project_dir: KerasTuner's state, checkpoints and TensorBoard logs (default
            ``runs/tuning/<dataset>-<base>-<tuner>``); an existing project is resumed.
        overwrite: delete an existing project and start over (and replace an existing export of the
            retrained model that another search or run made; without it that is an error).
        seed: seed of the tuner, of the training shuffles and of every model (see :class:`SpectraHyperModel`).
        final_epochs: epochs of the retraining of the best configuration with the full protocol (test
            accuracy, export); default ``protocol.max_epochs``; 0 skips it.
        out_dir: where ``trials.csv``, ``trials.md`` and ``best_hparams.json`` go (default ``project_dir``).
        saved_models_dir: export root of the retrained model (``None``: no export).
        data_dir: TFDS data directory.
        verbose: Keras ``fit`` verbosity (KerasTuner prints a summary per trial).
        batch_norm_statistics: ``moving`` (Keras's moving averages, the study's protocol) or ``precise``:
            every trial with batch norm has its statistics re-estimated from the training split before
            each validation (:class:`~zoo.training.callbacks.PreciseBatchNorm`), and so has the retrained
            best configuration if it has batch norm.

    Returns:
        A :class:`SearchResult`. A distributed worker only runs trials and returns the ids it ran.

    Raises:
        ValueError, UserError: one line naming the bad argument, before anything is trained.
    """
    from zoo.training.callbacks import PreciseBatchNorm, protocol_callbacks

    dataset_config = get_config(dataset)
    if tuner not in TUNERS:
        raise ValueError(f"tuner: expected one of {', '.join(TUNERS)}, got {tuner!r}")
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError("tuner 'bayesian': KerasTuner needs scikit-learn for it (pip install scikit-learn)")
    if tuner == "grid":
        check_grid(space if space is not None else SearchSpace())
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
    check_batch_norm_statistics(batch_norm_statistics)
    max_trials = check_int("max_trials", max_trials)
    executions_per_trial = check_int("executions_per_trial", executions_per_trial)
    seed = check_int("seed", seed, minimum=0)
    protocol = protocol if protocol is not None else Protocol(max_epochs=10)
    final_epochs = check_int(
        "final_epochs", protocol.max_epochs if final_epochs is None else final_epochs, minimum=0
    )
    role = distributed_role()
    if overwrite and role == "worker":
        raise UserError("overwrite: only the chief (or a local search) may start a project over")
    hypermodel = SpectraHyperModel(
        base, dataset_config.num_classes, dataset_config.datapoints, space=space, seed=seed
    )
    project_dir = pathlib.Path(project_dir or f"runs/tuning/{dataset_config.name}-{base}-{tuner}")
    identity = {
        "dataset": dataset_config.name,
        "base": base,
        "tuner": tuner,
        "objective": objective,
        "space": hypermodel.space.to_json(),
        "epochs": protocol.max_epochs,
        "batch_size": protocol.batch_size,
        "executions_per_trial": executions_per_trial,
        "seed": seed,
        "batch_norm_statistics": batch_norm_statistics,
    }
    if role != "worker" and not overwrite:
        _check_resumable(project_dir, identity)

    train_from_epoch = None
    if role != "chief" and tuner != "hyperband":  # Hyperband's trials resume from each other's weights
        train_from_epoch = functools.partial(train_input, dataset_config, protocol, seed, data_dir=data_dir)
    search = build_tuner(
        tuner,
        hypermodel,
        objective=objective,
        max_trials=max_trials,
        epochs=protocol.max_epochs,
        executions_per_trial=executions_per_trial,
        project_dir=project_dir,
        overwrite=overwrite,
        train_from_epoch=train_from_epoch,
    )
    if role != "worker":  # a worker's oracle is a client of the chief's
        if tuner == "hyperband":
            search.oracle.max_trials = max_trials  # Hyperband has no max_trials of its own; Oracle honours it
        project_dir.mkdir(parents=True, exist_ok=True)  # KerasTuner's overwrite removed it
        (project_dir / SEARCH_FILE).write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")

    if role == "chief":
        if search.remaining_trials:  # the chief serves until its workers have asked for every trial
            print(f"[tuner chief] serving the oracle on {os.environ['KERASTUNER_ORACLE_IP']}:"
                  f"{os.environ['KERASTUNER_ORACLE_PORT']}", flush=True)  # fmt: skip
            search.search()
            search.save()  # the oracle last saved itself before it let go of the final trials
    else:
        data = load_data(dataset_config, protocol, seed, 0, data_dir=data_dir)
        callbacks = list(protocol_callbacks(protocol, verbose=verbose))
        if batch_norm_statistics == "precise":  # a trial without batch norm is left as it is
            train_spectra = load_train_spectra(dataset_config, protocol, data_dir=data_dir)
            callbacks.insert(0, PreciseBatchNorm(train_spectra, batch_size=protocol.batch_size))
        if backend() == "tensorflow":  # KerasTuner gives each trial its own log dir plus the HParams data
            callbacks.append(
                keras.callbacks.TensorBoard(log_dir=str(project_dir / "tensorboard"), write_graph=False)
            )
        search.search(
            data.train,  # the test split is never part of the search
            validation_data=data.validation,
            epochs=protocol.max_epochs,
            steps_per_epoch=data.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,
            verbose=verbose,
        )
    if role == "worker":
        return SearchResult(role="worker", trials_run=list(search.trials_run))

    oracle = search.oracle
    rows = trial_rows(oracle, list(hypermodel.dimensions()))
    out_dir = pathlib.Path(out_dir) if out_dir is not None else project_dir
    epochs = f"up to {protocol.max_epochs}" if tuner == "hyperband" else str(protocol.max_epochs)
    title = (
        f"{tuner} search over {base} on {dataset_config.name}: {len(rows)} trials, {epochs} epochs each, "
        f"objective {objective} ({OBJECTIVES[objective]})"
    )
    csv_path, md_path = write_trials_table(rows, out_dir, title=title)
    paths = {"trials_csv": csv_path, "trials_markdown": md_path, "project_dir": project_dir}
    best_trials = [trial for trial in oracle.get_best_trials(1) if trial.status == "COMPLETED"]
    if not best_trials:
        raise UserError(
            f"no trial of {project_dir} completed; see the trial messages in its trial_*/trial.json"
        )
    best_trial = best_trials[0]
    best = {
        "toggles": hypermodel.toggles(best_trial.hyperparameters),
        "learning_rate": hypermodel.values(best_trial.hyperparameters)["learning_rate"],
        "base": base,
        "dataset": dataset_config.name,
        "tuner": tuner,
        "objective": {"name": objective, "direction": OBJECTIVES[objective]},
        "score": float(best_trial.score),
        "trial_id": best_trial.trial_id,
        "trials": len(rows),
        "epochs_per_trial": protocol.max_epochs,
        "seed": seed,
        "batch_norm_statistics": batch_norm_statistics,
        "final": None,
    }
    print(
        f"best of {len(rows)} trials: trial {best['trial_id']}, {objective} {best['score']:.4f}", flush=True
    )
    print("best hyperparameters: " + json.dumps({**best["toggles"], "learning_rate": best["learning_rate"]}))

    final = None
    if final_epochs:
        final_dir = project_dir / "final" / f"trial_{best_trial.trial_id}-epochs{final_epochs}"
        final = _retrain_best(
            dataset_config, best, protocol, final_epochs, final_dir, saved_models_dir, data_dir, verbose,
            overwrite=overwrite,
        )  # fmt: skip
        best["final"] = final
    best_path = out_dir / BEST_HPARAMS
    best_path.write_text(json.dumps(best, indent=2) + "\n", encoding="utf-8")
    paths["best_hparams"] = best_path
    return SearchResult(
        role=role or "local",
        trials_run=list(search.trials_run),
        rows=rows,
        best=best,
        final=final,
        paths=paths,
    )
