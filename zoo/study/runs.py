"""The rows of a results file as the report reads them: validated :class:`Run` records, grouped per
dataset into :class:`Group` s of one model and variant with their statistics over seeds."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.study import paper

if TYPE_CHECKING:
    pass

#: Schema of the runner's rows the report reads.
SCHEMA_VERSION = 1

_NUMBER = (int, float)
#: Row fields the report reads: name -> (accepted types, required).
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "schema": ((int,), True),
    "run_id": ((str,), True),
    "dataset": ((str,), True),
    "model": ((str,), True),
    "variant": ((str,), True),
    "seed": ((int,), True),
    "max_epochs": ((int,), True),
    "epochs_run": ((int,), True),
    "test_accuracy": (_NUMBER, True),
    "test_size": ((int,), True),
    "misclassified": ((int,), True),
    "misclassified_samples": ((list,), True),
    "history": ((dict,), True),
    "hardware": ((str,), True),
    "stop_reason": ((str,), False),
    "backend": ((str,), False),
    "versions": ((dict,), False),
    "wall_time_s": (_NUMBER, False),
    "cpu_time_s": (_NUMBER, False),
    "train_spectra_per_s": (_NUMBER, False),
    "cross_tests": ((dict,), False),
}
_SAMPLE_KEYS = ("index", "true", "pred")
STATISTICS = ("mean", "median", "min", "max")


@dataclass(frozen=True)
class Run:
    """One finished training run (one validated results row); ``line`` is its line in the file."""

    line: int
    source: str  # the results file it was read from
    run_id: str
    dataset: str
    model: str
    variant: str
    seed: int
    max_epochs: int
    epochs_run: int
    test_accuracy: float
    test_size: int
    misclassified: int
    samples: tuple[tuple[int, int, int], ...]  # (canonical test row, true class, predicted class)
    history: dict[str, list[float]]
    hardware: str
    stop_reason: str | None = None
    backend: str | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float | None = None
    train_spectra_per_s: float | None = None
    cross_tests: dict[str, float] = field(default_factory=dict)  # other test set -> accuracy


@dataclass(frozen=True)
class Stats:
    """Mean, median, min and max of some values."""

    mean: float
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.fmean(values), statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Group:
    """The runs (one per seed, sorted by seed) of one model and variant on one dataset."""

    dataset: str
    model: str
    variant: str
    runs: tuple[Run, ...]

    @property
    def label(self) -> str:
        return f"{self.model} ({self.variant})"

    @property
    def accuracy(self) -> Stats:
        """Test accuracy in percent."""
        return Stats.of([100.0 * r.test_accuracy for r in self.runs])

    @property
    def misclassified(self) -> Stats:
        return Stats.of([r.misclassified for r in self.runs])

    @property
    def seeds(self) -> str:
        return ", ".join(str(r.seed) for r in self.runs)


# --- reading ------------------------------------------------------------------------------------------


def _is_type(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _parse_samples(samples: list[Any], test_size: int, where: str) -> tuple[tuple[int, int, int], ...]:
    parsed = []
    for sample in samples:
        if not isinstance(sample, dict) or not all(_is_type(sample.get(k), (int,)) for k in _SAMPLE_KEYS):
            raise ValueError(
                f"{where}: misclassified_samples needs integer index, true, pred; got {sample!r}"
            )
        if not 0 <= sample["index"] < test_size or sample["true"] == sample["pred"]:
            raise ValueError(f"{where}: misclassified_samples entry out of range or not wrong: {sample!r}")
        parsed.append((sample["index"], sample["true"], sample["pred"]))
    return tuple(parsed)


def _parse_row(row: Any, where: str, line: int, source: str) -> Run:
    """Validate one decoded row (``where`` = ``file:line``, for messages)."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for name, (types, required) in _FIELDS.items():
        if row.get(name) is None:
            if required:
                raise ValueError(f"{where}: missing field {name!r}")
        elif not _is_type(row[name], types):
            raise ValueError(f"{where}: field {name!r} has the wrong type: {row[name]!r}")
    if row["schema"] != SCHEMA_VERSION:
        raise ValueError(f"{where}: field 'schema' must be {SCHEMA_VERSION}, got {row['schema']!r}")
    if not 0.0 <= row["test_accuracy"] <= 1.0:
        raise ValueError(f"{where}: field 'test_accuracy' must be in [0, 1], got {row['test_accuracy']!r}")
    if not 0 <= row["misclassified"] <= row["test_size"] or row["test_size"] <= 0:
        raise ValueError(
            f"{where}: fields 'misclassified' ({row['misclassified']}) and 'test_size' ({row['test_size']}) "
            "need 0 <= misclassified <= test_size, test_size > 0"
        )
    history = {}
    for key, values in row["history"].items():
        if not isinstance(values, list) or not all(_is_type(v, _NUMBER) for v in values):
            raise ValueError(f"{where}: history[{key!r}] must be a list of numbers")
        history[key] = [float(v) for v in values]
    cross_tests = {}
    for name, result in (row.get("cross_tests") or {}).items():
        accuracy = result.get("test_accuracy") if isinstance(result, dict) else None
        if not _is_type(accuracy, _NUMBER) or not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"{where}: cross_tests[{name!r}] needs a test_accuracy in [0, 1]")
        cross_tests[name] = float(accuracy)
    speeds = {
        k: float(row[k]) if row.get(k) is not None else None for k in ("wall_time_s", "train_spectra_per_s")
    }
    return Run(
        line=line,
        source=source,
        run_id=row["run_id"],
        dataset=row["dataset"],
        model=row["model"],
        variant=row["variant"],
        seed=row["seed"],
        max_epochs=row["max_epochs"],
        epochs_run=row["epochs_run"],
        test_accuracy=float(row["test_accuracy"]),
        test_size=row["test_size"],
        misclassified=row["misclassified"],
        samples=_parse_samples(row["misclassified_samples"], row["test_size"], where),
        history=history,
        hardware=row["hardware"],
        stop_reason=row.get("stop_reason"),
        backend=row.get("backend"),
        versions=row.get("versions") or {},
        cross_tests=cross_tests,
        **speeds,
    )


def read_results(path: str | Path) -> list[Run]:
    """Read and validate a results file; of rows sharing a ``run_id`` the last one is kept."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: results file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a results file (a directory?)")
    runs: dict[str, Run] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 text ({exc.reason})") from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})") from None
            run = _parse_row(row, where, number, str(path))
            runs[run.run_id] = run
    if not runs:
        raise ValueError(f"{path}: no result rows (empty file)")
    return list(runs.values())


def ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """The distinct names: those in ``preferred`` first, in its order, then the rest alphabetically."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def regime(run: Run) -> str:
    """``"protocol's end"`` for a run allowed the paper's epochs, else ``"N-epoch cap"``.

    Capped runs and runs at the end of the protocol are different experiments: the report never puts them
    in one table or one comparison.
    """
    return PROTOCOL_END if run.max_epochs >= paper.MAX_EPOCHS else f"{run.max_epochs}-epoch cap"


#: The regime of runs trained with the paper's epoch limit (early stopping or 500 epochs).
PROTOCOL_END = "protocol's end"


def split_regimes(runs: Iterable[Run]) -> dict[str, list[Run]]:
    """Runs by :func:`regime`, the protocol's end first, then caps from the largest."""
    by_regime: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: -r.max_epochs):
        by_regime.setdefault(regime(run), []).append(run)
    return by_regime


def regime_slug(name: str) -> str:
    """A file-name part for a regime: ``converged`` or ``30ep``."""
    return "converged" if name == PROTOCOL_END else f"{name.split('-')[0]}ep"


def group_runs(runs: Iterable[Run]) -> dict[str, list[Group]]:
    """Runs grouped per dataset, then per model and variant, in the study's order."""
    buckets: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        buckets[(run.dataset, run.model, run.variant)].append(run)
    grouped: dict[str, list[Group]] = {}
    for dataset in ordered((d for d, _, _ in buckets), paper.DATASET_ORDER):
        keys = [key for key in buckets if key[0] == dataset]
        grouped[dataset] = [
            Group(
                dataset,
                model,
                variant,
                tuple(sorted(buckets[(dataset, model, variant)], key=lambda r: r.seed)),
            )
            for model in ordered((m for _, m, _ in keys), paper.MODEL_ORDER)
            for variant in ordered((v for _, m, v in keys if m == model), paper.VARIANT_ORDER)
        ]
    return grouped
