"""The study's runner: train, evaluate, export, record.

One *run* is a :class:`~zoo.training.protocol.RunSpec`. :func:`run_benchmark` trains every planned run with
the protocol of Schuetzke et al. (2023) — per-spectrum max normalisation, Adam 3e-4, batch 128,
ReduceLROnPlateau and EarlyStopping on ``val_loss``, at most 500 epochs, the seed set before building and
before fitting with op determinism — then evaluates the best weights on the test split, exports them with
:func:`zoo.export` and appends one row to ``results.jsonl``. Finished runs are skipped when the same
command is repeated; a killed run resumes from its last finished epoch (Keras ``BackupAndRestore`` plus the
state of the early-stopping and learning-rate callbacks) and ends with the same result as an uninterrupted
one. The data come from :mod:`zoo.training.data`, the machine and strategies from
:mod:`zoo.training.environment`.

Every output folder is checked (it can be created and written) before anything is loaded or trained. A
run folder has one owner at a time (a lock the kernel drops when the process ends, ``kill -9`` included):
a second process starting the same run is refused with one line. A run that finished training keeps its
row and best weights in its run folder (``finished.json``, ``finished.weights.h5``) until the row is in
``results.jsonl``, so a process killed between the export and the row leaves a rerun that records the
finished run instead of retraining it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pathlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from synthetic_spectra.config import DatasetConfig, get_config
from zoo.errors import UserError
from zoo.locks import InUse, exclusive
from zoo.models.registry import build
from zoo.paths import check_output_dir
from zoo.training.data import check_cross_tests, evaluate_test, load_data, load_test, load_train_spectra
from zoo.training.environment import (
    accelerators,
    backend,
    cpu_info,
    hardware,
    is_chief,
    is_multiworker,
    make_strategy,
    set_seed,
    strategy_name,
    versions,
)
from zoo.training.precision import dtype_policy, resolve_precision
from zoo.training.protocol import Protocol, RunSpec
from zoo.training.results import (
    RESULTS_FILE,
    SCHEMA_VERSION,
    append_result,
    epochs_backed_up,
    read_history,
    read_inexact_resumes,
    read_results,
    write_whole,
)

SETTINGS_FILE = "settings.json"
#: A finished run's row and best weights, kept until the row is in results.jsonl.
FINISHED_ROW = "finished.json"
FINISHED_WEIGHTS = "finished.weights.h5"
LOCK_FILE = ".owner.lock"


def run_dir_of(out_dir: str | os.PathLike, spec: RunSpec) -> pathlib.Path:
    """The chief's folder of one run: logs, backups, its finished state."""
    return pathlib.Path(out_dir) / "runs" / spec.name


def _check_settings(run_dir: pathlib.Path, settings: Mapping[str, Any], spec: RunSpec) -> None:
    """Refuse to resume a run with other execution settings than it started with (one clear error)."""
    path = run_dir / SETTINGS_FILE
    if not path.exists() or not epochs_backed_up(run_dir / "backup"):
        return
    started = json.loads(path.read_text())
    changed = sorted(key for key in settings if key in started and started[key] != settings[key])
    if changed:
        key = changed[0]
        raise UserError(
            f"{spec.run_id} was started with {key}={started[key]!r}, not {settings[key]!r}: resume it with "
            f"the same setting, or delete {run_dir} to start it over"
        )


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from a JSON file (tuples become lists), for comparing with recorded runs."""
    return json.loads(json.dumps(value))


def _recorded_setup(spec: RunSpec) -> dict[str, Any]:
    """What a run's id does not name but its row and settings record: its toggles, augmentation and
    batch-norm statistics."""
    return _as_json(
        {
            "toggles": dict(spec.toggles),
            "augment": spec.augment.to_dict() if spec.augment else None,
            "batch_norm_statistics": spec.batch_norm_statistics,
        }
    )


def check_finished_runs(
    specs: Iterable[RunSpec], out_dir: str | os.PathLike, runs_root: str | os.PathLike | None = None
) -> None:
    """UserError if a planned run finished with other toggles or augmentation than planned.

    A run id names the model, the variant and the seed, not every toggle (a tuned run's id ends in
    ``-tuned`` whatever its toggles are), so without this check a finished run of other toggles would be
    skipped as if it were the planned one, or, finished in its run folder under ``runs_root`` (default
    ``out_dir``) without its row yet, recorded as the planned one. Rows that predate a recorded key are not
    compared on it.
    """
    results_path = pathlib.Path(out_dir) / RESULTS_FILE
    runs_root = out_dir if runs_root is None else runs_root
    finished = {row.get("run_id"): row for row in read_results(results_path)}
    for spec in specs:
        if spec.run_id in finished:
            where, row, advice = results_path, finished[spec.run_id], "use another output folder"
        else:
            run_dir = run_dir_of(runs_root, spec)
            where, row = run_dir / FINISHED_ROW, _finished_row(run_dir, spec)
            advice = f"rerun with its settings to record it, or delete {run_dir} to train it anew"
        if row is None:
            continue
        for key, planned in _recorded_setup(spec).items():
            if key in row and row[key] != planned:
                raise UserError(
                    f"{where}: {spec.run_id} finished there with {key}={row[key]!r}, not the planned "
                    f"{planned!r}: {advice}"
                )


def _finished_row(run_dir: pathlib.Path, spec: RunSpec) -> dict[str, Any] | None:
    """The row ``run_dir`` keeps of ``spec``'s finished training (see :func:`recover_finished`), if any."""
    try:
        row = json.loads((run_dir / FINISHED_ROW).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # none, or a damaged record: the run is trained again
    return row if isinstance(row, dict) and row.get("run_id") == spec.run_id else None


def train_run(
    spec: RunSpec,
    protocol: Protocol,
    out_dir: str | os.PathLike,
    *,
    saved_models_dir: str | os.PathLike | None = "saved_models",
    data_dir: str | None = None,
    strategy: Any = None,
    cross_tests: Sequence[DatasetConfig] = (),
    precision: str = "float32",
    jit_compile: bool | str = "auto",
    verbose: int = 2,
    overwrite_export: bool = True,
) -> dict[str, Any]:
    """Train one run with the protocol (resuming if a backup exists); return its results row.

    An export that fails (e.g. an existing one with ``overwrite_export=False``) does not lose the trained
    run: the row keeps ``export_dir`` None and says why in ``export_error``.

    ``cross_tests`` are other dataset configs (same classes and length) whose test splits the best
    weights are also evaluated on, e.g. ``challenge_realistic`` for a model trained on ``challenge``.
    ``precision`` (see :mod:`~zoo.training.precision`) and ``jit_compile`` (XLA: ``"auto"``, ``True``,
    ``False``)
    change how fast the run trains, not the model or the protocol; the best weights are evaluated and
    exported in float32 whatever the training precision. A resumed run must use the settings it started
    with, its toggles and training-time augmentation (``spec.augment``, recorded in the row) included.
    """
    import keras

    from zoo.models.compile import compile_model
    from zoo.training.callbacks import make_callbacks

    dataset_config = spec.config
    if spec.batch_norm_statistics == "precise" and is_multiworker(strategy):
        raise UserError(f"{spec.run_id}: precise batch-norm statistics need a single worker")
    chief = is_chief()
    run_dir = run_dir_of(out_dir, spec)
    if not chief:  # workers write their own logs and backups, apart from the chief's
        run_dir = run_dir / f"worker-{json.loads(os.environ['TF_CONFIG'])['task']['index']}"
    precision = resolve_precision(precision, accelerator=bool(accelerators()))
    recorded = _recorded_setup(spec)  # its toggles and augmentation, as settings.json and the row keep them
    settings = {"precision": precision, "jit_compile": jit_compile, **recorded}
    _check_settings(run_dir, settings, spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SETTINGS_FILE).write_text(json.dumps(settings))
    initial_epoch = epochs_backed_up(run_dir / "backup")
    if initial_epoch:
        print(f"[{spec.run_id}] resuming at epoch {initial_epoch + 1}", flush=True)

    data = load_data(
        dataset_config, protocol, spec.seed, initial_epoch, data_dir=data_dir, augment=spec.augment
    )
    set_seed(spec.seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext(), dtype_policy(precision):
        model = build(spec.model, data.num_classes, data.datapoints, compile=False, **spec.build_kwargs)
        compile_model(model, learning_rate=protocol.learning_rate, jit_compile=jit_compile)
    callbacks, early_stopping = make_callbacks(protocol, run_dir, verbose=verbose)
    if spec.batch_norm_statistics == "precise":  # before every validation: the training spectra's own
        from zoo.training.callbacks import PreciseBatchNorm

        train_spectra = load_train_spectra(dataset_config, protocol, data_dir=data_dir)
        callbacks.insert(0, PreciseBatchNorm(train_spectra, batch_size=protocol.batch_size))

    set_seed(spec.seed)
    started = time.perf_counter()
    multiworker = is_multiworker(strategy)
    if multiworker:  # Keras' fit fails there (keras-team/keras#20585): our own loop
        from zoo.training.distributed import DistributedFit

        fit, options = DistributedFit(model, strategy).fit, {}
    else:
        fit, options = model.fit, {"shuffle": False}  # the input pipeline shuffles, seeded and resumable
    fit_history = fit(
        data.train,
        validation_data=data.validation,
        epochs=protocol.max_epochs,
        steps_per_epoch=data.steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        **options,
    )
    if multiworker or precision != "float32":  # test and export a plain float32 copy of the weights
        trained, model = model, build(spec.model, data.num_classes, data.datapoints, **spec.build_kwargs)
        model.set_weights(trained.get_weights())
    fit_seconds = time.perf_counter() - started
    epochs_this_process = len(fit_history.epoch)

    history = read_history(run_dir / "history.csv")
    epochs_run = len(history.get("loss", []))
    own_test = evaluate_test(model, data.test, data.test_labels)
    cross = {
        other.name: evaluate_test(model, *load_test(other, protocol.batch_size, data_dir=data_dir))
        for other in cross_tests
    }
    best_epoch = int(np.argmin(history["val_loss"])) if history.get("val_loss") else None
    row = {
        "schema": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "model": spec.model,
        "variant": spec.variant,
        **recorded,
        "seed": spec.seed,
        "max_epochs": protocol.max_epochs,
        "epochs_run": epochs_run,
        "stop_reason": "early_stopping" if early_stopping.stopped_epoch > 0 else "max_epochs",
        # resumes after which early stopping and the LR schedule had to start over (a torn backup file)
        "inexact_resumes": read_inexact_resumes(run_dir),
        "best_epoch": best_epoch,
        "best_val_loss": history["val_loss"][best_epoch] if best_epoch is not None else None,
        "val_accuracy": history["val_accuracy"][best_epoch] if best_epoch is not None else None,
        **own_test,
        "cross_tests": cross,
        "history": history,
        "lr_factor": protocol.lr_factor,
        "batch_size": protocol.batch_size,
        "params": int(model.count_params()),
        # every epoch of the run, across resumes (the last process alone if it predates `epoch_seconds`)
        "wall_time_s": round(sum(history.get("epoch_seconds", [])) or fit_seconds, 2),
        # the process's CPU time over every epoch (None for a run resumed from epochs that did not log it):
        # on a shared machine the cost that wall time hides
        "cpu_time_s": round(sum(history["epoch_cpu_seconds"]), 2) if "epoch_cpu_seconds" in history else None,
        "train_spectra_per_s": round(epochs_this_process * data.n_train / fit_seconds, 2)
        if fit_seconds > 0 and epochs_this_process
        else None,
        "hardware": hardware(),
        "cpu": cpu_info(),
        "versions": versions(),
        "backend": backend(),
        "strategy": strategy_name(strategy),
        "device": (accelerators() or ["cpu"])[0],
        "precision": precision,
        "jit_compile": jit_compile,
        "tensorboard_dir": str(run_dir / "tb") if backend() == "tensorflow" else None,
        "export_dir": None,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if chief:  # from here on a kill does not lose the trained run (see recover_finished)
        model.save_weights(run_dir / FINISHED_WEIGHTS)
        _write_json_atomically(run_dir / FINISHED_ROW, row)
    if saved_models_dir is not None and chief:
        _export_into_row(model, spec, row, saved_models_dir, overwrite_export)
        _write_json_atomically(run_dir / FINISHED_ROW, row)
    keras.backend.clear_session()
    return row


def _write_json_atomically(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    write_whole(path, json.dumps(data, sort_keys=True))


def _export_into_row(
    model: Any, spec: RunSpec, row: dict[str, Any], saved_models_dir: str | os.PathLike, overwrite: bool
) -> None:
    try:
        target = export_run(model, spec, row, spec.config, saved_models_dir, overwrite=overwrite)
        row["export_dir"] = str(target)
        row.pop("export_error", None)
    except Exception as exc:  # the trained run is worth more than its export: keep the row
        row["export_error"] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def recover_finished(
    spec: RunSpec, run_dir: pathlib.Path, saved_models_dir: str | os.PathLike | None
) -> dict[str, Any] | None:
    """The row of a run that finished training but whose row never reached results.jsonl, else None.

    Its export is redone from the kept best weights (replacing a partial one) unless the row names an
    export that exists.
    """
    row, weights = _finished_row(run_dir, spec), run_dir / FINISHED_WEIGHTS
    if row is None:
        return None
    exported = row.get("export_dir") and (pathlib.Path(row["export_dir"]) / "metadata.json").is_file()
    if saved_models_dir is not None and not exported:
        if not weights.is_file():
            return None
        import keras

        model = build(spec.model, spec.config.num_classes, spec.config.datapoints, **spec.build_kwargs)
        model.load_weights(weights)
        _export_into_row(model, spec, row, saved_models_dir, overwrite=True)
        keras.backend.clear_session()
    return row


def _export_of(spec: RunSpec, saved_models_dir: str | os.PathLike | None) -> pathlib.Path | None:
    return None if saved_models_dir is None else export_target(saved_models_dir, spec).resolve()


def _forget_finished(run_dir: pathlib.Path) -> None:
    for name in (FINISHED_ROW, FINISHED_WEIGHTS):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / name).unlink()


def export_run(
    model: Any,
    spec: RunSpec,
    row: Mapping[str, Any],
    dataset_config: DatasetConfig,
    saved_models_dir: str | os.PathLike,
    *,
    overwrite: bool = True,
) -> pathlib.Path:
    """Export the run's best weights to ``saved_models/<dataset>/<model>-<variant>-seed<k>/``."""
    from zoo.inference.export import export

    target = export_target(saved_models_dir, spec)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target}: an export already exists (use --overwrite to replace it)")
    metrics = {key: row[key] for key in ("test_accuracy", "val_accuracy", "best_val_loss", "misclassified")}
    if backend() != "tensorflow":  # a SavedModel needs TensorFlow: keep the .keras file and metadata
        target.mkdir(parents=True, exist_ok=True)
        model.save(target / "model.keras")
        (target / "metadata.json").write_text(json.dumps({"model": spec.model, "metrics": metrics}, indent=2))
        return target
    return export(
        model,
        target,
        dataset_config=dataset_config,
        class_names=dataset_config.class_names(),
        metrics={**metrics, "seed": spec.seed, "epochs_run": row["epochs_run"]},
        model_name=spec.model,
        overwrite=True,
    )


def export_target(saved_models_dir: str | os.PathLike, spec: RunSpec) -> pathlib.Path:
    """Where :func:`export_run` puts ``spec``'s export: ``saved_models_dir/<dataset>/<run name>``."""
    return pathlib.Path(saved_models_dir) / spec.dataset / spec.name


def check_output_dirs(
    out_dir: str | os.PathLike,
    *,
    work_dir: str | os.PathLike | None = None,
    saved_models_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> None:
    """UserError (one line naming the option and path) unless every output folder can be written."""
    check_output_dir(out_dir, "--out")
    if work_dir is not None:
        check_output_dir(work_dir, "--work")
    if saved_models_dir is not None:
        check_output_dir(saved_models_dir, "--saved-models")
    if data_dir is not None:
        check_data_dir(data_dir)


def check_data_dir(data_dir: str | os.PathLike) -> None:
    """A TFDS data folder: a folder (a prepared one may be read-only), or one that can be created."""
    path = pathlib.Path(data_dir).expanduser()
    if path.is_dir():
        return
    check_output_dir(path, "--data-dir")


def recoverable(spec: RunSpec, out_dir: str | os.PathLike) -> bool:
    """Whether ``spec`` finished training in ``out_dir`` and only its row is missing (no retraining)."""
    return (run_dir_of(out_dir, spec) / FINISHED_ROW).is_file()


def pending_runs(specs: Iterable[RunSpec], out_dir: str | os.PathLike) -> list[RunSpec]:
    """The runs of ``specs`` with no row in ``out_dir/results.jsonl`` (those run_benchmark trains)."""
    done = {row.get("run_id") for row in read_results(pathlib.Path(out_dir) / RESULTS_FILE)}
    return [spec for spec in specs if spec.run_id not in done]


class ExportTaken(UserError):
    """A run still to train would export where an export it may not replace already is."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target
        super().__init__(f"{target}: an export already exists (use --overwrite to replace it)")


def check_free_exports(
    specs: Iterable[RunSpec],
    out_dir: str | os.PathLike,
    saved_models_dir: str | os.PathLike,
    *,
    runs_root: str | os.PathLike | None = None,
    replaceable: Iterable[str | os.PathLike] = (),
) -> None:
    """:class:`ExportTaken` if a run still to train would export onto an existing export.

    A run is still to train when it has no row in ``out_dir`` and did not finish in its run folder under
    ``runs_root`` (default ``out_dir``; a finished run's own export is redone, see :func:`recover_finished`).
    Exports in ``replaceable`` (e.g. made by earlier runs of the same search) may be replaced.
    """
    runs_root = out_dir if runs_root is None else runs_root
    allowed = {pathlib.Path(path).resolve() for path in replaceable}
    for spec in pending_runs(specs, out_dir):
        target = export_target(saved_models_dir, spec)
        if not target.exists() or target.resolve() in allowed or recoverable(spec, runs_root):
            continue
        if spec not in pending_runs([spec], out_dir):  # another process sharing the plan just recorded it
            continue
        raise ExportTaken(target)


# ------------------------------------------------------------------------------------------ study
def run_benchmark(
    specs: Iterable[RunSpec],
    protocol: Protocol = Protocol(),
    out_dir: str | os.PathLike = "benchmarks/results",
    *,
    saved_models_dir: str | os.PathLike | None = "saved_models",
    data_dir: str | None = None,
    strategy: str = "default",
    cross_tests: Sequence[str | os.PathLike[str] | DatasetConfig] = (),
    precision: str = "float32",
    jit_compile: bool | str = "auto",
    work_dir: str | os.PathLike | None = None,
    verbose: int = 2,
    overwrite_exports: bool = True,
    replaceable_exports: Iterable[str | os.PathLike] = (),
    skip_busy: bool = False,
) -> list[dict[str, Any]]:
    """Train every planned run not yet in ``out_dir/results.jsonl``; return the rows of this call.

    Each run's logs and per-epoch backups go to ``work_dir/runs/<run>/`` (default: ``out_dir``), so the
    results folder can be kept small where only the rows must travel
    (``benchmarks/experiments/gpu_study.py``).

    ``cross_tests`` (names, files or configs of test sets with the same classes and length) are resolved
    here, once, and checked against every planned dataset before anything is trained.

    ``verbose`` is Keras' ``fit`` verbosity (2: one line per epoch; 0: silent); a line per run is
    always printed. With ``overwrite_exports=False`` a run still to train whose export folder already
    exists (and is not one of ``replaceable_exports``) is refused with :class:`ExportTaken` before anything
    is trained. An export that fails all the same (one that appeared meanwhile) raises UserError only after
    the run's row, with ``export_error``, is in ``results.jsonl``; the existing export is kept.

    A run whose folder another process holds (it is training it) is refused, or with ``skip_busy=True``
    left to that process: several processes can then work through one plan together, each taking the
    next run nobody holds.
    """
    specs = list(specs)
    cross_configs = [get_config(other) for other in dict.fromkeys(cross_tests)]
    for trained_on in {spec.dataset: spec.config for spec in specs}.values():
        check_cross_tests(trained_on, cross_configs)
    check_output_dirs(out_dir, work_dir=work_dir, saved_models_dir=saved_models_dir, data_dir=data_dir)
    runs_root = pathlib.Path(out_dir if work_dir is None else work_dir)
    check_finished_runs(specs, out_dir, runs_root)
    replaceable = {pathlib.Path(path).resolve() for path in replaceable_exports}
    if saved_models_dir is not None and not overwrite_exports:
        check_free_exports(specs, out_dir, saved_models_dir, runs_root=runs_root, replaceable=replaceable)
    distribution = make_strategy(strategy)
    if skip_busy and is_multiworker(distribution):  # only the chief holds run folders: workers cannot skip
        raise UserError("--skip-busy: not with a multi-worker strategy, whose workers follow the chief")
    out_dir = pathlib.Path(out_dir)  # created only once the arguments are valid
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    rows = []
    for spec in specs:
        run_dir = run_dir_of(runs_root, spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as held:
            if is_chief():
                try:
                    held.enter_context(exclusive(run_dir / LOCK_FILE, f"run folder {run_dir}", wait=False))
                except InUse:
                    if not skip_busy:
                        raise
                    print(f"[{spec.run_id}] being trained by another process, left to it", flush=True)
                    continue
            if spec.run_id in {row.get("run_id") for row in read_results(results_path)}:
                print(f"[{spec.run_id}] already finished, skipped", flush=True)
                continue
            row = recover_finished(spec, run_dir, saved_models_dir) if is_chief() else None
            if row is not None:
                print(f"[{spec.run_id}] finished before, its row was not recorded: recording it", flush=True)
            else:
                print(f"[{spec.run_id}] training (max {protocol.max_epochs} epochs)", flush=True)
                row = train_run(
                    spec,
                    protocol,
                    runs_root,
                    saved_models_dir=saved_models_dir,
                    data_dir=data_dir,
                    strategy=distribution,
                    cross_tests=cross_configs,
                    precision=precision,
                    jit_compile=jit_compile,
                    verbose=verbose,
                    overwrite_export=overwrite_exports or _export_of(spec, saved_models_dir) in replaceable,
                )
            if is_chief():
                append_result(results_path, row)
                _forget_finished(run_dir)
        if row.get("export_error"):  # the row is safe in results.jsonl; now the failure may stop the study
            raise UserError(f"{spec.run_id}: trained and recorded, but not exported ({row['export_error']})")
        print(
            f"[{spec.run_id}] test accuracy {row['test_accuracy']:.4f} "
            f"({row['misclassified']}/{row['test_size']} wrong), {row['epochs_run']} epochs, "
            f"{row['stop_reason']}",
            flush=True,
        )
        rows.append(row)
    return rows
