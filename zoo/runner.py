"""The study's training protocol, end to end: train, evaluate, export, record.

One *run* is a (dataset, model, variant, seed) tuple. :func:`run_benchmark` trains every planned
run with the protocol of Schuetzke et al. (2023) — per-spectrum max normalisation, Adam 3e-4, batch 128,
ReduceLROnPlateau and EarlyStopping on ``val_loss``, at most 500 epochs, the seed set before building
and before fitting with op determinism — then evaluates the best weights on the test split, exports
them with :func:`zoo.export` and appends one row to ``results.jsonl``. Finished runs are skipped when
the same command is repeated; a killed run resumes from its last finished epoch (Keras
``BackupAndRestore`` plus the state of the early-stopping and learning-rate callbacks) and ends with the
same result as an uninterrupted one.

With the TensorFlow backend the data come from TFDS through :func:`synthetic_spectra.input_pipeline`
and ``tf.distribute`` strategies are available. With ``KERAS_BACKEND=jax`` (or ``torch``) the runner
works from the NumPy generator's arrays and never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import fcntl
import json
import math
import os
import pathlib
import platform
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.precision import dtype_policy, resolve_precision

RESULTS_FILE = "results.jsonl"
SETTINGS_FILE = "settings.json"
SCHEMA_VERSION = 1
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Hyper-parameters of the study's training protocol (the paper's values by default)."""

    max_epochs: int = 500
    batch_size: int = 128
    learning_rate: float = 3e-4
    lr_factor: float = 0.5  # the paper; the authors' script used the Keras default 0.1
    lr_patience: int = 10
    es_patience: int = 25
    es_min_delta: float = 1e-4

    def __post_init__(self) -> None:
        for field in ("max_epochs", "batch_size", "lr_patience", "es_patience"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ValueError(f"lr_factor: must be in (0, 1), got {self.lr_factor!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: must be positive, got {self.learning_rate!r}")
        if self.es_min_delta < 0:
            raise ValueError(f"es_min_delta: must be >= 0, got {self.es_min_delta!r}")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: which data, which model with which toggles, which seed."""

    dataset: str
    model: str
    seed: int
    variant: str
    toggles: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """Folder-safe name, e.g. ``cnn6-relu-seed0``."""
        return f"{self.model}-{self.variant}-seed{self.seed}"

    @property
    def run_id(self) -> str:
        """Unique key of the run in ``results.jsonl``."""
        return f"{self.dataset}/{self.name}"

    @property
    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`zoo.build` (toggles left at ``None`` are omitted)."""
        return {key: value for key, value in self.toggles if value is not None}


# ---------------------------------------------------------------------------------------- planning
def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` → ``[0, 3, 7]``; ranges and lists combine."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"seeds: expected e.g. '0-4' or '0,2,5', got {text!r}")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise ValueError(f"seeds: range {part!r} is empty")
        seeds.extend(range(low, high + 1))
    return list(dict.fromkeys(seeds))


def plan_runs(
    dataset: str,
    models: Sequence[str],
    fc_activations: Sequence[str | None] = (None,),
    seeds: Sequence[int] = (0,),
    *,
    hparams: Mapping[str, Any] | None = None,
    variant_suffix: str = "",
) -> list[RunSpec]:
    """Every (model, FC activation, seed) combination as a :class:`RunSpec`.

    ``None`` or ``"default"`` as activation means the model's published default. An explicit FC
    activation for a model without hidden FC layers (ResNet) is an error, as in :func:`zoo.build`.
    ``hparams`` (e.g. a tuner's best toggles, or a model's own options such as PRNet's ``smooth``) are
    applied to every run; each must be a toggle or an option of every planned model.
    """
    from zoo.registry import TOGGLES, get_model_info

    extra = dict(hparams or {})
    activations = list(dict.fromkeys(None if a in (None, "default") else a for a in fc_activations))
    specs: list[RunSpec] = []
    for model in models:
        info = get_model_info(model)
        known = {*TOGGLES, *info.defaults}
        unknown = sorted(set(extra) - known)
        if unknown:
            raise ValueError(
                f"hparams: {model} has no option {unknown[0]!r}; expected some of {', '.join(sorted(known))}"
            )
        if not extra.get("fc_widths", info.defaults["fc_widths"]) and any(activations):
            raise ValueError(
                f"fc_activation cannot apply to {model}: it has no hidden FC layers "
                "(use 'default', or add FC layers with fc_widths)"
            )
        for activation in activations:
            toggles = {**extra, "fc_activation": activation or extra.get("fc_activation")}
            variant = (toggles["fc_activation"] or "default") + variant_suffix
            items = tuple(sorted((k, _jsonable(v)) for k, v in toggles.items()))
            specs.extend(RunSpec(dataset, model, int(seed), variant, items) for seed in seeds)
    return specs


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# ----------------------------------------------------------------------------------- results file
def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl`` (an absent file has none)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
    return rows


def append_result(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Append one JSON line atomically (one ``write`` under an exclusive lock)."""
    data = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------- backend
def backend() -> str:
    """The Keras backend in use (without importing Keras twice)."""
    import keras

    return keras.backend.backend()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_strategy(name: str) -> Any:
    """A ``tf.distribute`` strategy by name (TensorFlow backend only); ``None`` for ``default``."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "default":
        return None
    if backend() != "tensorflow":
        raise UserError(f"strategy {name!r} needs the TensorFlow backend (KERAS_BACKEND={backend()})")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise UserError("strategy 'multiworker' reads the cluster from TF_CONFIG, which is not set")
    try:
        json.loads(os.environ["TF_CONFIG"])["cluster"]
    except (ValueError, KeyError, TypeError):
        raise UserError("strategy 'multiworker': TF_CONFIG is not JSON with a 'cluster' entry") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multiworker(strategy: Any) -> bool:
    """True for a ``MultiWorkerMirroredStrategy`` (trained by :class:`zoo.distributed.DistributedFit`)."""
    if strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def strategy_name(strategy: Any) -> str:
    """The public name of a strategy (``default`` for none), for the results row."""
    if strategy is None:
        return "default"
    return "MultiWorkerMirroredStrategy" if is_multiworker(strategy) else type(strategy).__name__


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (only the chief records results)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    cluster = config.get("cluster") or {}
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster


def accelerators() -> list[str]:
    """Names of the accelerators the Keras backend trains on (empty on a CPU-only machine)."""
    if backend() == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    if backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend() == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def hardware() -> str:
    """A one-line description of the machine: CPU model and cores, plus accelerators if any."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    description = f"{os.cpu_count()}-core CPU ({cpu})"
    found = accelerators()
    if found:
        description += f" + {len(found)}x {found[0]}"
    return description


def versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    import keras

    found = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch"):
        if module == backend() or (module == "tensorflow" and backend() == "tensorflow"):
            found[module] = __import__(module).__version__
    return found


# ------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class RunData:
    """Model-ready training/validation/test inputs for one run."""

    train: Any
    validation: Any
    test: Any
    test_labels: np.ndarray
    steps_per_epoch: int
    num_classes: int
    datapoints: int
    n_train: int


def _numpy_batches(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, **kwargs: Any) -> Any:
    import keras

    from zoo.array_data import ShuffledArrayBatches

    return ShuffledArrayBatches(x, keras.utils.to_categorical(y, num_classes), batch_size, **kwargs)


def load_data(
    config: Any, protocol: Protocol, seed: int, initial_epoch: int, *, data_dir: str | None = None
) -> RunData:
    """Train (seeded, per-epoch shuffles from ``initial_epoch`` on), validation and test inputs."""
    from synthetic_spectra.config import get_config

    dataset_config = get_config(config)
    n_train = dataset_config.split_size("train")
    steps = math.ceil(n_train / protocol.batch_size)
    num_classes = dataset_config.num_classes
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        def split(name: str, **kwargs: Any) -> Any:
            return input_pipeline(config, name, protocol.batch_size, data_dir=data_dir, **kwargs)

        train = split("train", shuffle_seed=seed, epochs=protocol.max_epochs, initial_epoch=initial_epoch)
        validation = split("validation")
    else:
        train = _numpy_batches(
            *_normalized_arrays(dataset_config, "train"), num_classes, protocol.batch_size,
            seed=seed, initial_epoch=initial_epoch,
        )  # fmt: skip
        validation = _numpy_batches(
            *_normalized_arrays(dataset_config, "validation"), num_classes, protocol.batch_size
        )
    test, test_labels = load_test(config, protocol.batch_size, data_dir=data_dir)
    return RunData(
        train=train,
        validation=validation,
        test=test,
        test_labels=np.asarray(test_labels),
        steps_per_epoch=steps,
        num_classes=num_classes,
        datapoints=dataset_config.datapoints,
        n_train=n_train,
    )


def _normalized_arrays(dataset_config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split from the NumPy generator, max-normalised, shaped ``(n, datapoints, 1)``."""
    from synthetic_spectra.generator import generate
    from synthetic_spectra.normalize import normalize_max

    x, y = generate(dataset_config, split)
    return normalize_max(x)[..., np.newaxis], y


def load_test(config: Any, batch_size: int, *, data_dir: str | None = None) -> tuple[Any, np.ndarray]:
    """The test split of a dataset config as model inputs (canonical order) and its integer labels."""
    from synthetic_spectra.config import get_config

    dataset_config = get_config(config)
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        test = input_pipeline(config, "test", batch_size, data_dir=data_dir)
        labels = np.concatenate([np.argmax(y, axis=-1) for _, y in test.as_numpy_iterator()])
        return test, labels
    x_test, labels = _normalized_arrays(dataset_config, "test")
    return _numpy_batches(x_test, labels, dataset_config.num_classes, batch_size), np.asarray(labels)


def check_cross_tests(dataset: str, cross_tests: Sequence[str]) -> None:
    """Validate the extra test sets of a run: same classes and input length as the training dataset."""
    from synthetic_spectra.config import get_config

    trained_on = get_config(dataset)
    for name in cross_tests:
        other = get_config(name)
        if (other.num_classes, other.datapoints) != (trained_on.num_classes, trained_on.datapoints):
            raise UserError(
                f"--cross-test {name}: {other.num_classes} classes x {other.datapoints} points does not "
                f"match {dataset} ({trained_on.num_classes} x {trained_on.datapoints})"
            )


def evaluate_test(model: Any, test: Any, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy and misclassified samples of a model on one test set."""
    predictions = np.argmax(model.predict(test, verbose=0), axis=-1)
    wrong = np.flatnonzero(predictions != labels)
    return {
        "test_accuracy": float(1.0 - wrong.size / len(labels)),
        "test_size": len(labels),
        "misclassified": int(wrong.size),
        "misclassified_samples": [
            {"index": int(i), "true": int(labels[i]), "pred": int(predictions[i])} for i in wrong
        ],
    }


# -------------------------------------------------------------------------------------- callbacks
def _initial_epoch(backup_dir: pathlib.Path) -> int:
    """The epoch a resumed run starts at (0 for a fresh one), from Keras' BackupAndRestore metadata."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


def _check_settings(run_dir: pathlib.Path, settings: Mapping[str, Any], spec: RunSpec) -> None:
    """Refuse to resume a run with other execution settings than it started with (one clear error)."""
    path = run_dir / SETTINGS_FILE
    if not path.exists() or not _initial_epoch(run_dir / "backup"):
        return
    started = json.loads(path.read_text())
    changed = sorted(key for key in settings if key in started and started[key] != settings[key])
    if changed:
        key = changed[0]
        raise UserError(
            f"{spec.run_id} was started with {key}={started[key]!r}, not {settings[key]!r}: resume it with "
            f"the same setting, or delete {run_dir} to start it over"
        )


def protocol_callbacks(protocol: Protocol, *, verbose: int) -> tuple[Any, Any]:
    """The protocol's ``(ReduceLROnPlateau, EarlyStopping)`` on ``val_loss``, in the order they must run."""
    import keras

    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=protocol.lr_factor, patience=protocol.lr_patience, verbose=min(verbose, 1)
    )
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=protocol.es_patience,
        min_delta=protocol.es_min_delta,
        restore_best_weights=True,
        verbose=min(verbose, 1),
    )
    return reduce_lr, early_stopping


def make_callbacks(protocol: Protocol, run_dir: pathlib.Path, *, verbose: int) -> tuple[list[Any], Any]:
    """The protocol's callbacks in the order they must run; returns ``(callbacks, early_stopping)``."""
    import keras

    from zoo.callbacks import EpochTimer, ResumableBackup

    reduce_lr, early_stopping = protocol_callbacks(protocol, verbose=verbose)
    callbacks = [
        reduce_lr,  # first: it adds `learning_rate` to the epoch logs the others record
        EpochTimer(),  # adds `epoch_seconds` to the logs, before the CSVLogger writes them
        early_stopping,
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False))
    # Last: it saves the state the callbacks above reached at the end of each epoch.
    callbacks.append(ResumableBackup(str(run_dir / "backup"), stateful=[reduce_lr, early_stopping]))
    return callbacks, early_stopping


def read_history(path: pathlib.Path) -> dict[str, list[float]]:
    """Per-epoch logs from a CSVLogger file; an epoch logged twice (killed, resumed) keeps its last line."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        by_epoch = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    epochs = sorted(by_epoch)
    keys = [key for key in (by_epoch[epochs[0]] if epochs else {}) if key != "epoch"]
    return {key: [float(by_epoch[e][key]) for e in epochs] for key in keys}


# --------------------------------------------------------------------------------------- one run
def train_run(
    spec: RunSpec,
    protocol: Protocol,
    out_dir: str | os.PathLike,
    *,
    saved_models_dir: str | os.PathLike | None = "saved_models",
    data_dir: str | None = None,
    strategy: Any = None,
    cross_tests: Sequence[str] = (),
    precision: str = "float32",
    jit_compile: bool | str = "auto",
    verbose: int = 2,
) -> dict[str, Any]:
    """Train one run with the protocol (resuming if a backup exists); return its results row.

    ``cross_tests`` names other dataset configs (same classes and length) whose test splits the best
    weights are also evaluated on, e.g. ``challenge_realistic`` for a model trained on ``challenge``.
    ``precision`` (see :mod:`zoo.precision`) and ``jit_compile`` (XLA: ``"auto"``, ``True``, ``False``)
    change how fast the run trains, not the model or the protocol; the best weights are evaluated and
    exported in float32 whatever the training precision. A resumed run must use the settings it started
    with.
    """
    import keras

    import zoo
    from synthetic_spectra.config import get_config

    dataset_config = get_config(spec.dataset)
    chief = is_chief()
    run_dir = pathlib.Path(out_dir) / "runs" / spec.name
    if not chief:  # workers write their own logs and backups, apart from the chief's
        run_dir = run_dir / f"worker-{json.loads(os.environ['TF_CONFIG'])['task']['index']}"
    precision = resolve_precision(precision, accelerator=bool(accelerators()))
    settings = {"precision": precision, "jit_compile": jit_compile}
    _check_settings(run_dir, settings, spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SETTINGS_FILE).write_text(json.dumps(settings))
    initial_epoch = _initial_epoch(run_dir / "backup")
    if initial_epoch:
        print(f"[{spec.run_id}] resuming at epoch {initial_epoch + 1}", flush=True)

    data = load_data(spec.dataset, protocol, spec.seed, initial_epoch, data_dir=data_dir)
    set_seed(spec.seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext(), dtype_policy(precision):
        model = zoo.build(spec.model, data.num_classes, data.datapoints, compile=False, **spec.build_kwargs)
        zoo.compile_model(model, learning_rate=protocol.learning_rate, jit_compile=jit_compile)
    callbacks, early_stopping = make_callbacks(protocol, run_dir, verbose=verbose)

    set_seed(spec.seed)
    started = time.perf_counter()
    multiworker = is_multiworker(strategy)
    if multiworker:  # Keras' fit fails there (keras-team/keras#20585): our own loop
        from zoo.distributed import DistributedFit

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
        trained, model = model, zoo.build(spec.model, data.num_classes, data.datapoints, **spec.build_kwargs)
        model.set_weights(trained.get_weights())
    fit_seconds = time.perf_counter() - started
    epochs_this_process = len(fit_history.epoch)

    history = read_history(run_dir / "history.csv")
    epochs_run = len(history.get("loss", []))
    own_test = evaluate_test(model, data.test, data.test_labels)
    cross = {
        name: evaluate_test(model, *load_test(name, protocol.batch_size, data_dir=data_dir))
        for name in cross_tests
    }
    best_epoch = int(np.argmin(history["val_loss"])) if history.get("val_loss") else None
    row = {
        "schema": SCHEMA_VERSION,
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "model": spec.model,
        "variant": spec.variant,
        "toggles": dict(spec.toggles),
        "seed": spec.seed,
        "max_epochs": protocol.max_epochs,
        "epochs_run": epochs_run,
        "stop_reason": "early_stopping" if early_stopping.stopped_epoch > 0 else "max_epochs",
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
        "train_spectra_per_s": round(epochs_this_process * data.n_train / fit_seconds, 2)
        if fit_seconds > 0 and epochs_this_process
        else None,
        "hardware": hardware(),
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
    if saved_models_dir is not None and chief:
        row["export_dir"] = str(export_run(model, spec, row, dataset_config, saved_models_dir))
    keras.backend.clear_session()
    return row


def export_run(
    model: Any,
    spec: RunSpec,
    row: Mapping[str, Any],
    dataset_config: Any,
    saved_models_dir: str | os.PathLike,
) -> pathlib.Path:
    """Export the run's best weights to ``saved_models/<dataset>/<model>-<variant>-seed<k>/``."""
    import zoo

    target = pathlib.Path(saved_models_dir) / spec.dataset / spec.name
    metrics = {key: row[key] for key in ("test_accuracy", "val_accuracy", "best_val_loss", "misclassified")}
    if backend() != "tensorflow":  # a SavedModel needs TensorFlow: keep the .keras file and metadata
        target.mkdir(parents=True, exist_ok=True)
        model.save(target / "model.keras")
        (target / "metadata.json").write_text(json.dumps({"model": spec.model, "metrics": metrics}, indent=2))
        return target
    return zoo.export(
        model,
        target,
        dataset_config=dataset_config,
        class_names=dataset_config.class_names(),
        metrics={**metrics, "seed": spec.seed, "epochs_run": row["epochs_run"]},
        model_name=spec.model,
        overwrite=True,
    )


# ------------------------------------------------------------------------------------------ study
def run_benchmark(
    specs: Iterable[RunSpec],
    protocol: Protocol = Protocol(),
    out_dir: str | os.PathLike = "benchmarks/results",
    *,
    saved_models_dir: str | os.PathLike | None = "saved_models",
    data_dir: str | None = None,
    strategy: str = "default",
    cross_tests: Sequence[str] = (),
    precision: str = "float32",
    jit_compile: bool | str = "auto",
    work_dir: str | os.PathLike | None = None,
    verbose: int = 2,
) -> list[dict[str, Any]]:
    """Train every planned run not yet in ``out_dir/results.jsonl``; return the rows of this call.

    Each run's logs and per-epoch backups go to ``work_dir/runs/<run>/`` (default: ``out_dir``), so the
    results folder can be kept small where only the rows must travel (``benchmarks/gpu_study.py``).

    ``verbose`` is Keras' ``fit`` verbosity (2: one line per epoch; 0: silent); a line per run is
    always printed.
    """
    specs = list(specs)
    cross_tests = tuple(dict.fromkeys(cross_tests))
    for dataset in dict.fromkeys(spec.dataset for spec in specs):
        check_cross_tests(dataset, cross_tests)
    distribution = make_strategy(strategy)
    out_dir = pathlib.Path(out_dir)  # created only once the arguments are valid
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    done = {row.get("run_id") for row in read_results(results_path)}
    rows = []
    for spec in specs:
        if spec.run_id in done:
            print(f"[{spec.run_id}] already finished, skipped", flush=True)
            continue
        print(f"[{spec.run_id}] training (max {protocol.max_epochs} epochs)", flush=True)
        row = train_run(
            spec,
            protocol,
            out_dir if work_dir is None else work_dir,
            saved_models_dir=saved_models_dir,
            data_dir=data_dir,
            strategy=distribution,
            cross_tests=cross_tests,
            precision=precision,
            jit_compile=jit_compile,
            verbose=verbose,
        )
        if is_chief():
            append_result(results_path, row)
        print(
            f"[{spec.run_id}] test accuracy {row['test_accuracy']:.4f} "
            f"({row['misclassified']}/{row['test_size']} wrong), {row['epochs_run']} epochs, "
            f"{row['stop_reason']}",
            flush=True,
        )
        rows.append(row)
    return rows
