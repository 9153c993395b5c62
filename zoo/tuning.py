"""Hyper-parameter search over the zoo's toggles with KerasTuner, local or distributed.

:class:`SpectraHyperModel` turns any registered architecture into a ``keras_tuner.HyperModel`` whose search
space (:class:`SearchSpace`) covers the toggles of the study — FC activation, FC dropout, conv dropout,
batch norm — and optionally the FC widths and the learning rate; every dimension can be fixed or narrowed.
Models are built with :func:`zoo.build`, so every architecture of the zoo is tunable.

:func:`run_search` runs a search with the benchmark runner's pieces: the same tf.data pipeline
(:func:`zoo.runner.load_data`, train and validation splits only), the protocol's ReduceLROnPlateau and
EarlyStopping (:func:`zoo.runner.protocol_callbacks`), its seeding (:func:`zoo.runner.set_seed`), plus
TensorBoard logs with the HParams dashboard. It writes a trials table (CSV and markdown) and the best
hyperparameters as JSON (``spectrazoo benchmark --hparams`` reads it back), then retrains the best
configuration with the full protocol through :func:`zoo.runner.run_benchmark`, which evaluates it on the test
split — the only place the test split is used — and exports it with :func:`zoo.export`.

A search is resumable: KerasTuner keeps its state in the project directory, so the same call continues
where it stopped (``overwrite=True`` starts over). Distributed tuning uses KerasTuner's chief/worker mode,
configured by ``KERASTUNER_TUNER_ID`` (``chief`` for the oracle, any other id for a worker),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import numbers
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras
import keras_tuner

from zoo.checks import check_int
from zoo.compile import LEARNING_RATE
from zoo.errors import UserError
from zoo.registry import get_model_info, resolve_config
from zoo.runner import Protocol, set_seed

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "OBJECTIVES",
    "TUNERS",
    "Choice",
    "Range",
    "SearchResult",
    "SearchSpace",
    "SpectraHyperModel",
    "distributed_role",
    "run_search",
    "trial_rows",
    "write_trials_table",
]

#: FC activations searched by default: the study's two plus a few common Keras ones.
DEFAULT_ACTIVATIONS: tuple[str, ...] = ("linear", "relu", "elu", "gelu", "swish", "tanh")
#: Objective name -> direction.
OBJECTIVES: Mapping[str, str] = {"val_accuracy": "max", "val_loss": "min"}
#: Metrics of a trial reported in the trials table (values at the trial's best epoch).
TABLE_METRICS: tuple[str, ...] = ("val_accuracy", "val_loss", "accuracy", "loss")
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
TRIALS_CSV = "trials.csv"
TRIALS_MARKDOWN = "trials.md"
BEST_HPARAMS = "best_hparams.json"
SEARCH_FILE = "search.json"


# ------------------------------------------------------------------------------------------ space
@dataclasses.dataclass(frozen=True)
class Choice:
    """A categorical dimension: one of ``values`` (a single value fixes the dimension)."""

    values: tuple[Any, ...]

    @property
    def fixed(self) -> bool:
        """True when the dimension has a single value."""
        return len(self.values) == 1

    def to_json(self) -> list[Any]:
        """JSON form: the list of values (tuples become lists)."""
        return [list(value) if isinstance(value, tuple) else value for value in self.values]


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric dimension ``[low, high]``, optionally stepped or log-sampled (``low == high`` fixes it)."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    @property
    def fixed(self) -> bool:
        """True when the range holds a single value."""
        return self.low == self.high

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"low", "high", "step", "log"}``."""
        return dataclasses.asdict(self)


#: Range dimensions -> (smallest allowed low, bound high must stay below; None: no upper bound).
_RANGE_BOUNDS: Mapping[str, tuple[float, float | None]] = {
    "fc_dropout": (0.0, 1.0),
    "conv_dropout": (0.0, 1.0),
    "learning_rate": (math.ulp(0.0), None),
}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The dimensions searched by :class:`SpectraHyperModel`; each can be narrowed or fixed.

    Each field accepts its canonical type or a shorthand, normalised on construction:

    * ``fc_activation``, ``batch_norm``: a :class:`Choice`, a sequence of values, or one value (fixed).
    * ``fc_dropout``, ``conv_dropout``, ``learning_rate``: a :class:`Range`, ``(low, high)`` or
      ``(low, high, step)``, or one number (fixed). The learning rate is sampled on a log scale.
    * ``fc_widths``: ``None`` (the base model's published widths), a :class:`Choice` of width tuples or a
      sequence of width tuples, e.g. ``[(3100, 1200), (2000, 500)]`` (one tuple fixes it).

    Raises:
        ValueError: one line naming the dimension, for an empty choice or range, a value out of bounds or
            of the wrong type.
    """

    fc_activation: Choice | Sequence[str] | str = DEFAULT_ACTIVATIONS
    fc_dropout: Range | Sequence[float] | float = (0.0, 0.8, 0.1)
    conv_dropout: Range | Sequence[float] | float = (0.0, 0.5, 0.1)
    batch_norm: Choice | Sequence[bool] | bool = (False, True)
    fc_widths: Choice | Sequence[Sequence[int]] | None = None
    learning_rate: Range | Sequence[float] | float = LEARNING_RATE

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "fc_activation", _choice("fc_activation", self.fc_activation, _activation))
        set_field(self, "batch_norm", _choice("batch_norm", self.batch_norm, _boolean))
        if self.fc_widths is not None:
            set_field(self, "fc_widths", _choice("fc_widths", self.fc_widths, _width_tuple, scalar=False))
        for name in _RANGE_BOUNDS:
            set_field(self, name, _range(name, getattr(self, name), log=name == "learning_rate"))

    def narrowed(self, **changes: Any) -> SearchSpace:
        """A copy with some dimensions replaced (same shorthands as the constructor)."""
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"search space: unknown dimension {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """JSON form of every dimension (``fc_widths`` is ``null`` for the base model's widths)."""
        return {
            field.name: None if getattr(self, field.name) is None else getattr(self, field.name).to_json()
            for field in dataclasses.fields(self)
        }


def _choice(name: str, value: Any, check: Any, *, scalar: bool = True) -> Choice:
    if isinstance(value, Choice):
        values = value.values
    elif scalar and (isinstance(value, str | bool | numbers.Number) or value is None):
        values = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        values = tuple(value)
    else:
        raise ValueError(f"{name}: expected a value or a list of values, got {value!r}")
    if not values:
        raise ValueError(f"{name}: empty choice (give at least one value)")
    values = tuple(check(name, item) for item in values)
    duplicates = sorted({repr(item) for item in values if values.count(item) > 1})
    if duplicates:
        raise ValueError(f"{name}: value {duplicates[0]} given twice")
    return Choice(values)


def _activation(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a Keras activation name, got {value!r}")
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(f"{name}: unknown Keras activation {value!r}") from None
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


def _width_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name}: expected a non-empty list of layer widths, got {value!r}")
    if not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in value):
        raise ValueError(f"{name}: layer widths must be positive integers, got {value!r}")
    return tuple(int(w) for w in value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _range(name: str, value: Any, *, log: bool) -> Range:
    if isinstance(value, Range):
        low, high, step, log = value.low, value.high, value.step, value.log
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        low = high = value
        step = None
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (2, 3):
        low, high, step = (*value, None) if len(value) == 2 else value
    else:
        raise ValueError(f"{name}: expected a number, (low, high) or (low, high, step), got {value!r}")
    low, high = _number(name, low), _number(name, high)
    if high < low:
        raise ValueError(f"{name}: empty range {low:g}..{high:g} (low > high)")
    minimum, bound = _RANGE_BOUNDS[name]
    if low < minimum or (bound is not None and high >= bound):
        allowed = f"[{minimum:g}, {bound:g})" if bound is not None else "> 0"
        raise ValueError(f"{name}: range {low:g}..{high:g} is outside {allowed}")
    if step is not None:
        step = _number(name, step)
        if step <= 0 or (log and step <= 1):
            raise ValueError(f"{name}: step must be {'> 1 (a factor)' if log else 'positive'}, got {step:g}")
    return Range(low, high, step, log)


# ------------------------------------------------------------------------------------- hypermodel
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
        import zoo

        values = self.values(hp)
        learning_rate = values.pop("learning_rate")
        set_seed(self.execution_seed)
        model = zoo.build(self.base, self.num_classes, self.input_length, compile=False, **values)
        return zoo.compile_model(model, learning_rate=learning_rate)

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
    return _tidy(float(value))


def _encode(value: Any) -> Any:
    """KerasTuner choices hold scalars: width tuples become ``"3100-1200"``."""
    return "-".join(str(width) for width in value) if isinstance(value, tuple) else value


def _decode(name: str, value: Any) -> Any:
    return tuple(int(width) for width in value.split("-")) if name == "fc_widths" else value


# ------------------------------------------------------------------------------------------ tuners
class _SeededExecutions:
    """Tuner mixin: execution ``k`` of a trial builds and fits with seed ``hypermodel.seed + k``.

    All trials use the same seeds (common random numbers: the configurations are compared on the same
    initialisations and batch orders). It also records which trials this process ran and prints one line
    per trial.
    """

    hypermodel: SpectraHyperModel
    tuner_id: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trials_run: list[str] = []
        self._execution = 0

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        self._execution = 0

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        self.hypermodel.execution_seed = self.hypermodel.seed + self._execution
        self._execution += 1
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        self.trials_run.append(trial.trial_id)
        print(f"[tuner {self.tuner_id}] trial {trial.trial_id} {trial.status}", flush=True)


class SpectraRandomSearch(_SeededExecutions, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` with per-execution seeds."""


class SpectraBayesianOptimization(_SeededExecutions, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with per-execution seeds."""


class SpectraHyperband(_SeededExecutions, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with per-execution seeds (epochs per trial = Hyperband's ``max_epochs``)."""


#: ``--tuner`` name -> tuner class.
TUNERS: Mapping[str, type[keras_tuner.Tuner]] = {
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


# ------------------------------------------------------------------------------------------ table
def _trial_order(trial_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order (``"9"`` before ``"10"``), then any others."""
    return (0, int(trial_id), "") if trial_id.isdigit() else (1, 0, trial_id)


def trial_rows(oracle: Any, dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """One row per trial of ``oracle``: rank, id, status, hyperparameters, score, metrics at the best epoch.

    Completed trials are ranked by the objective (best first) and come first; the others follow in trial
    order without a rank. ``dimensions`` orders the hyperparameter columns (any others, such as Hyperband's
    ``tuner/*``, follow).
    """
    trials = sorted(oracle.trials.values(), key=lambda trial: _trial_order(trial.trial_id))
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    reverse = oracle.objective.direction == "max"
    ranked = sorted(completed, key=lambda trial: trial.score, reverse=reverse)
    rest = [t for t in trials if t not in ranked]
    names = list(dimensions) + sorted({n for t in trials for n in t.hyperparameters.values} - set(dimensions))
    rows = []
    for rank, trial in enumerate(ranked + rest, start=1):
        values = trial.hyperparameters.values
        metrics = {
            name: float(trial.metrics.get_last_value(name)) if trial.metrics.exists(name) else None
            for name in TABLE_METRICS
        }
        rows.append(
            {
                "rank": rank if trial in ranked else None,
                "trial_id": trial.trial_id,
                "status": trial.status,
                **{name: _tidy(values.get(name)) for name in names},
                "score": float(trial.score) if trial.score is not None else None,
                "best_epoch": trial.best_step + 1
                if trial in ranked and trial.best_step is not None
                else None,
                **metrics,
            }
        )
    return rows


def _tidy(value: Any) -> Any:
    """Hyperparameter values without the binary noise of stepped floats (``0.30000000000000004``)."""
    return round(value, 12) if isinstance(value, float) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_trials_table(
    rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, *, title: str
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``trials.csv`` (full precision) and ``trials.md`` (rounded, headed ``title``); return both."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else ["rank", "trial_id", "status", "score"]
    csv_path, md_path = out_dir / TRIALS_CSV, out_dir / TRIALS_MARKDOWN
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: "" if row.get(key) is None else row[key] for key in columns} for row in rows)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(key)) for key in columns) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


# ------------------------------------------------------------------------------------------ search
@dataclasses.dataclass
class SearchResult:
    """What :func:`run_search` did. On a worker only ``role`` and ``trials_run`` are filled in."""

    role: str
    trials_run: list[str]
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    paths: dict[str, pathlib.Path] = dataclasses.field(default_factory=dict)


def _check_resumable(project_dir: pathlib.Path, identity: Mapping[str, Any]) -> None:
    """Refuse to resume a project that was started with other settings (KerasTuner would mix them)."""
    path = project_dir / SEARCH_FILE
    if not path.exists():
        return
    recorded = json.loads(path.read_text(encoding="utf-8"))
    changed = next((key for key in identity if recorded.get(key) != identity[key]), None)
    if changed is not None:
        raise UserError(
            f"project {project_dir} was started with {changed}={json.dumps(recorded.get(changed))}, "
            f"not {json.dumps(identity[changed])}; pass overwrite (--overwrite) or another project dir"
        )


def _retrain_best(
    dataset: str,
    best: Mapping[str, Any],
    protocol: Protocol,
    epochs: int,
    run_dir: pathlib.Path,
    saved_models_dir: str | os.PathLike | None,
    data_dir: str | None,
    verbose: int,
) -> dict[str, Any]:
    """Train the best configuration with the benchmark runner (test accuracy, export); its results row.

    The run lives in ``run_dir``: rerunning the search finds it finished (or resumes it if it was killed).
    """
    from zoo.runner import plan_runs, read_results, run_benchmark

    toggles, seeds = best["toggles"], [best["seed"]]
    specs = plan_runs(dataset, [best["base"]], seeds=seeds, hparams=toggles, variant_suffix="-tuned")
    print(f"retraining the best configuration for up to {epochs} epochs", flush=True)
    run_benchmark(
        specs,
        dataclasses.replace(protocol, max_epochs=epochs, learning_rate=best["learning_rate"]),
        run_dir,
        saved_models_dir=saved_models_dir,
        data_dir=data_dir,
        verbose=verbose,
    )
    row = read_results(run_dir / "results.jsonl")[-1]
    final = {key: row.get(key) for key in FINAL_FIELDS}
    print(
        f"final model (best configuration retrained, seed {best['seed']}): test accuracy "
        f"{final['test_accuracy']:.4f} ({final['misclassified']}/{final['test_size']} wrong), "
        f"exported to {final['export_dir']}",
        flush=True,
    )
    return final


def run_search(
    dataset: str,
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
) -> SearchResult:
    """Search ``base``'s toggles on ``dataset``; write the trials table and best hyperparameters; retrain.

    Args:
        dataset: dataset config (``challenge``, ``mini``, a config file).
        base: registry name of the architecture to tune.
        tuner: ``random``, ``bayesian`` or ``hyperband``.
        max_trials: trials in the search, counting those of earlier runs of the same project (resume: call
            again with a larger number). For Hyperband, a cap on its own schedule.
        executions_per_trial: trainings per trial (seeds ``seed … seed+K-1``), their metrics averaged.
        space: the search space (default :class:`SearchSpace` ``()``).
        objective: ``val_accuracy`` (maximised) or ``val_loss`` (minimised), at the trial's best epoch.
        protocol: batch size, patiences and ``max_epochs`` = epochs per trial (default ``Protocol()`` with
            10 epochs).
        project_dir: KerasTuner's state, checkpoints and TensorBoard logs (default
            ``runs/tuning/<dataset>-<base>-<tuner>``); an existing project is resumed.
        overwrite: delete an existing project and start over.
        seed: seed of the tuner, of the training shuffles and of every model (see :class:`SpectraHyperModel`).
        final_epochs: epochs of the retraining of the best configuration with the full protocol (test
            accuracy, export); default ``protocol.max_epochs``; 0 skips it.
        out_dir: where ``trials.csv``, ``trials.md`` and ``best_hparams.json`` go (default ``project_dir``).
        saved_models_dir: export root of the retrained model (``None``: no export).
        data_dir: TFDS data directory.
        verbose: Keras ``fit`` verbosity (KerasTuner prints a summary per trial).

    Returns:
        A :class:`SearchResult`. A distributed worker only runs trials and returns the ids it ran.

    Raises:
        ValueError, UserError: one line naming the bad argument, before anything is trained.
    """
    from synthetic_spectra.config import get_config
    from zoo.runner import backend, load_data, protocol_callbacks

    dataset_config = get_config(dataset)
    if tuner not in TUNERS:
        raise ValueError(f"tuner: expected one of {', '.join(TUNERS)}, got {tuner!r}")
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError("tuner 'bayesian': KerasTuner needs scikit-learn for it (pip install scikit-learn)")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
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
    }
    if role != "worker" and not overwrite:
        _check_resumable(project_dir, identity)

    schedule = {"max_epochs": protocol.max_epochs} if tuner == "hyperband" else {"max_trials": max_trials}
    search = TUNERS[tuner](
        hypermodel,
        objective=keras_tuner.Objective(objective, OBJECTIVES[objective]),
        executions_per_trial=executions_per_trial,
        seed=seed,
        directory=str(project_dir.parent),
        project_name=project_dir.name,
        overwrite=overwrite,
        **schedule,
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
        data = load_data(dataset, protocol, seed, 0, data_dir=data_dir)
        callbacks = list(protocol_callbacks(protocol, verbose=verbose))
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
            dataset, best, protocol, final_epochs, final_dir, saved_models_dir, data_dir, verbose
        )
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
