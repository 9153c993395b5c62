"""The study report: a markdown summary (with PNG figures) of a benchmark results file.

``write_report("benchmarks/results/results.jsonl", "report/")`` reads the runner's rows (one JSON object
per finished run; of rows sharing a ``run_id`` the last one counts) and writes ``report.md`` with, per
dataset: the setup of the runs (seeds, epochs, hardware, software); the study's table layout (mean,
median, min and max test accuracy and misclassifications over seeds, per model and FC variant); the
paper's published figures beside ours; ReLU against linear FC; the ablation pairs; the
misclassification analysis (failure modes, :mod:`zoo.analysis`); and PNG figures under ``figures/``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo import paper
from zoo.analysis import MODES, ConfusedPair, ConfusionSummary, Tolerances, summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Confused class pairs listed and drawn per dataset, most frequent first.
DEFAULT_MAX_PAIRS = 20
SCHEMA_VERSION = 1
REPORT_NAME = "report.md"
FIGURES_DIR = "figures"

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
    "train_spectra_per_s": (_NUMBER, False),
    "cross_tests": ((dict,), False),
}
_SAMPLE_KEYS = ("index", "true", "pred")
_STATISTICS = ("mean", "median", "min", "max")


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


# --- grouping and formatting --------------------------------------------------------------------------


def _ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """The distinct names: those in ``preferred`` first, in its order, then the rest alphabetically."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def group_runs(runs: Iterable[Run]) -> dict[str, list[Group]]:
    """Runs grouped per dataset, then per model and variant, in the study's order."""
    buckets: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        buckets[(run.dataset, run.model, run.variant)].append(run)
    grouped: dict[str, list[Group]] = {}
    for dataset in _ordered((d for d, _, _ in buckets), paper.DATASET_ORDER):
        keys = [key for key in buckets if key[0] == dataset]
        grouped[dataset] = [
            Group(
                dataset,
                model,
                variant,
                tuple(sorted(buckets[(dataset, model, variant)], key=lambda r: r.seed)),
            )
            for model in _ordered((m for _, m, _ in keys), paper.MODEL_ORDER)
            for variant in _ordered((v for _, m, v in keys if m == model), paper.VARIANT_ORDER)
        ]
    return grouped


def _pct(value: float) -> str:
    return f"{value:.2f} %"


def _num(value: float) -> str:
    return f"{value:.1f}"


def _yes_no(condition: bool) -> str:
    return "yes" if condition else "no"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _counted(values: Iterable[object]) -> str:
    """``a (3 runs), b (1 run)``: the distinct values with their counts, most common first."""
    return ", ".join(f"{value} ({_plural(n, 'run')})" for value, n in Counter(values).most_common())


def _find(groups: Sequence[Group], model: str, variant: str | None = None) -> Group | None:
    """The group of ``model`` with ``variant``; without one, its ReLU group, else its first group."""
    candidates = [g for g in groups if g.model == model]
    if variant is not None:
        return next((g for g in candidates if g.variant == variant), None)
    relu = [g for g in candidates if g.variant == paper.ABLATION_VARIANT]
    return next(iter(relu or candidates), None)


# --- sections -----------------------------------------------------------------------------------------


def _setup_section(groups: Sequence[Group]) -> list[str]:
    runs = [r for g in groups for r in g.runs]
    epochs = [r.epochs_run for r in runs]
    seeds = ", ".join(str(s) for s in sorted({r.seed for r in runs}))
    software = [
        ", ".join([f"backend {r.backend or '?'}", *(f"{k} {v}" for k, v in sorted(r.versions.items()))])
        for r in runs
    ]
    lines = [
        f"- Runs: {len(runs)} in {len(groups)} model/variant groups; seeds: {seeds}.",
        f"- Test set size: {_counted(r.test_size for r in runs)}.",
        f"- Epochs: max_epochs {_counted(r.max_epochs for r in runs)}; epochs run {min(epochs)}–"
        f"{max(epochs)} (mean {statistics.fmean(epochs):.0f}).",
        f"- Stop reason: {_counted(r.stop_reason or 'not stated' for r in runs)}.",
        f"- Hardware: {_counted(r.hardware for r in runs)}.",
        f"- Software: {_counted(software)}.",
    ]
    walls = [r.wall_time_s for r in runs if r.wall_time_s is not None]
    if walls:
        lines.append(
            f"- Wall time per run: mean {statistics.fmean(walls):.0f} s (min {min(walls):.0f} s, max "
            f"{max(walls):.0f} s); all runs {sum(walls) / 3600:.2f} h."
        )
    speeds = [r.train_spectra_per_s for r in runs if r.train_spectra_per_s is not None]
    if speeds:
        lines.append(f"- Training throughput: mean {statistics.fmean(speeds):.1f} spectra/s.")
    return [*lines, ""]


def _results_section(groups: Sequence[Group]) -> list[str]:
    columns = (("Acc.", lambda g: g.accuracy, _pct), ("Miscl.", lambda g: g.misclassified, _num))
    header = ["Model", "Variant", "Seeds"]
    header += [f"{name} {statistic}" for name, _, _ in columns for statistic in _STATISTICS]
    header += ["Epochs run: mean (min–max)", "Max epochs"]
    rows = []
    for g in groups:
        epochs = [r.epochs_run for r in g.runs]
        rows.append(
            [
                g.model,
                g.variant,
                g.seeds,
                *(fmt(getattr(stats(g), s)) for _, stats, fmt in columns for s in _STATISTICS),
                f"{statistics.fmean(epochs):.0f} ({min(epochs)}–{max(epochs)})",
                ", ".join(str(e) for e in sorted({r.max_epochs for r in g.runs})),
            ]
        )
    return ["### Test accuracy and misclassifications over seeds", "", *_table(header, rows)]


def _robustness_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    """Test accuracy of the models trained on ``dataset`` on the other test sets they were evaluated on."""
    others = _ordered({name for g in groups for r in g.runs for name in r.cross_tests}, ())
    if not others:
        return []
    header = ["Model", "Variant", f"`{dataset}` test: median (seeds)"]
    header += [f"`{name}` test: median (seeds)" for name in others]
    rows = []
    for g in groups:
        cells = [f"{_pct(g.accuracy.median)} ({len(g.runs)})"]
        for name in others:
            values = [100.0 * r.cross_tests[name] for r in g.runs if name in r.cross_tests]
            cells.append(f"{_pct(statistics.median(values))} ({len(values)})" if values else "–")
        rows.append([g.model, g.variant, *cells])
    return [
        f"### Robustness: models trained on `{dataset}`, tested on other test sets",
        "",
        "The best weights of each run, evaluated on the test split of each other dataset config with the "
        "same classes (`--cross-test`); medians over the seeds that have that evaluation.",
        "",
        *_table(header, rows),
    ]


def _relu_vs_linear(groups: Sequence[Group]) -> list[tuple[str, Group, Group]]:
    """(model, linear group, ReLU group) for every model that has both."""
    linear, relu = paper.FC_ACTIVATION_VARIANTS
    found = [
        (m, _find(groups, m, linear), _find(groups, m, relu))
        for m in _ordered((g.model for g in groups), paper.MODEL_ORDER)
    ]
    return [(m, lin, rel) for m, lin, rel in found if lin is not None and rel is not None]


def _relu_wins(compared: Sequence[tuple[str, Group, Group]]) -> int:
    return sum(rel.accuracy.median > lin.accuracy.median for _, lin, rel in compared)


def _benchmark_findings(groups: Sequence[Group]) -> list[tuple[str, str, str, str]]:
    runs = [r for g in _study_models(groups) for r in g.runs]
    lowest = min(runs, key=lambda r: r.test_accuracy)
    findings = [
        (
            "every model reaches this test accuracy",
            f"≥ {paper.BENCHMARK_MIN_ACCURACY} %",
            f"lowest run {_pct(100 * lowest.test_accuracy)}: {lowest.model} ({lowest.variant}), "
            f"seed {lowest.seed}",
            _yes_no(100 * lowest.test_accuracy >= paper.BENCHMARK_MIN_ACCURACY),
        )
    ]
    best = min(_study_models(groups), key=lambda g: g.misclassified.mean)
    reference = _find(groups, paper.BENCHMARK_BEST_MODEL)
    if reference is not None:
        findings.append(
            (
                f"{paper.BENCHMARK_BEST_MODEL} is best: mean misclassifications",
                f"≈ {paper.BENCHMARK_BEST_MEAN_MISCLASSIFIED:g}",
                f"{reference.label} {_num(reference.misclassified.mean)}; best {best.label} "
                f"{_num(best.misclassified.mean)}",
                _yes_no(best.model == paper.BENCHMARK_BEST_MODEL),
            )
        )
    low, high = paper.BENCHMARK_TYPICAL_MISCLASSIFIED
    inside = sum(low <= r.misclassified <= high for r in runs)
    findings.append(
        (
            "most models: misclassifications per run, depending on the seed",
            f"{low}–{high}",
            f"{inside} of {len(runs)} runs in {low}–{high}; all runs "
            f"{min(r.misclassified for r in runs)}–{max(r.misclassified for r in runs)}",
            "—",
        )
    )
    worst = max(groups, key=lambda g: g.misclassified.mean)
    findings.append(
        (
            "worst model, with a high variance over seeds",
            paper.BENCHMARK_WORST_MODEL,
            f"{worst.label}: mean {_num(worst.misclassified.mean)}, "
            f"SD {_num(statistics.pstdev(r.misclassified for r in worst.runs))}",
            _yes_no(worst.model == paper.BENCHMARK_WORST_MODEL),
        )
    )
    return findings


def _study_models(groups: Sequence[Group]) -> list[Group]:
    """The groups of the study's own models (the paper's claims are about those, not about new models)."""
    return [g for g in groups if g.model in paper.MODEL_ORDER] or list(groups)


def _challenge_findings(groups: Sequence[Group]) -> list[tuple[str, str, str, str]]:
    findings = []
    best = max(_study_models(groups), key=lambda g: g.accuracy.median)
    reference = _find(groups, paper.CHALLENGE_BEST_MODEL)
    if reference is not None:
        findings.append(
            (
                f"{paper.CHALLENGE_BEST_MODEL} is best: median test accuracy",
                f"≈ {paper.CHALLENGE_BEST_ACCURACY:g} %",
                f"{reference.label} {_pct(reference.accuracy.median)}; best {best.label} "
                f"{_pct(best.accuracy.median)}",
                _yes_no(best.model == paper.CHALLENGE_BEST_MODEL),
            )
        )
    stuck = _find(groups, paper.CHALLENGE_NONCONVERGING_MODEL)
    if stuck is not None:
        findings.append(
            (
                f"{paper.CHALLENGE_NONCONVERGING_MODEL} (no FC layers) does not converge: near chance",
                f"≈ {_pct(paper.CHALLENGE_CHANCE_ACCURACY)}",
                f"{stuck.label} median {_pct(stuck.accuracy.median)}",
                "—",
            )
        )
    compared = _relu_vs_linear(groups)
    if compared:
        wins = _relu_wins(compared)
        findings.append(
            (
                "ReLU FC beats linear FC (median test accuracy)",
                "every model",
                f"{wins} of {len(compared)} models",
                _yes_no(wins == len(compared)),
            )
        )
    return findings


#: The paper's findings per dataset, each as (finding, paper, ours, holds) rows.
_FINDINGS: dict[str, Callable[[Sequence[Group]], list[tuple[str, str, str, str]]]] = {
    paper.BENCHMARK_DATASET: _benchmark_findings,
    paper.CHALLENGE_DATASET: _challenge_findings,
}


def _paper_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    if dataset not in _FINDINGS:
        return []
    rows = _FINDINGS[dataset](groups)
    return ["### The paper's findings beside ours", "", *_table(["Finding", "Paper", "Ours", "Holds"], rows)]


def _fc_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    compared = _relu_vs_linear(groups)
    if not compared:
        return []
    rows = [
        [
            model,
            *(f"{_pct(g.accuracy.median)} ({_pct(g.accuracy.mean)})" for g in (lin, rel)),
            f"{rel.accuracy.median - lin.accuracy.median:+.2f}",
            _yes_no(rel.accuracy.median > lin.accuracy.median),
        ]
        for model, lin, rel in compared
    ]
    lines = [
        "### ReLU against linear FC activation",
        "",
        f"Median (mean) test accuracy over seeds: ReLU is better for {_relu_wins(compared)} of "
        f"{len(compared)} models.",
    ]
    if dataset == paper.CHALLENGE_DATASET:
        lines.append("The paper: ReLU FC beats linear FC for every model.")
    return [*lines, "", *_table(["Model", "linear", "relu", "Δ median (points)", "ReLU better"], rows)]


def _ablation_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    if dataset != paper.ABLATION_DATASET:
        return []
    rows, agree, compared = [], 0, 0
    for pair in paper.ABLATION_PAIRS:
        ours = [_find(groups, pair.original), _find(groups, pair.modified)]
        if not any(ours):
            continue
        cells = [
            f"{_pct(g.accuracy.median)} ({g.variant}, {_plural(len(g.runs), 'seed')})" if g else "—"
            for g in ours
        ]
        paper_delta = pair.median_modified - pair.median_original
        change, same = "—", "—"
        original, modified = ours
        if original and modified:
            delta = modified.accuracy.median - original.accuracy.median
            agrees = delta * paper_delta > 0
            change, same = f"{delta:+.2f}", _yes_no(agrees)
            compared, agree = compared + 1, agree + agrees
        rows.append(
            (
                f"{pair.original} → {pair.modified}",
                pair.change,
                f"{_pct(pair.median_original)} → {_pct(pair.median_modified)}",
                " → ".join(cells),
                f"{paper_delta:+.2f}",
                change,
                same,
            )
        )
    if not rows:
        return []
    total = len(paper.ABLATION_PAIRS)
    scope = "(all the paper's pairs)" if compared == total else f"run so far (the paper has {total})"
    return [
        "### Ablation pairs (original → modified)",
        "",
        f"Median test accuracy over seeds; ours: the {paper.ABLATION_VARIANT} variant where a model has one. "
        f"The change moves our accuracy in the paper's direction for {agree} of {compared} pairs {scope}.",
        "",
        *_table(
            ["Pair", "Change", "Paper", "Ours", "Δ paper (points)", "Δ ours (points)", "Paper's direction"],
            rows,
        ),
    ]


# --- figures ------------------------------------------------------------------------------------------
#: File names of the figures the report writes (other files in the figures folder are left alone).
OWN_FIGURE_PATTERNS = ("*_accuracy.png", "*_loss.png", "*_confusion_*_as_*.png")


def _own_figures(figures: Path) -> list[Path]:
    """The report's own figures already in ``figures`` (from an earlier report)."""
    return sorted({path for pattern in OWN_FIGURE_PATTERNS for path in figures.glob(pattern)})


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas, independent of pyplot and its backend (imported on first use)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_accuracy(groups: Sequence[Group], path: Path) -> None:
    """Box plot of the test accuracy per model/variant, each seed drawn as a point beside it."""
    figure = _figure(max(6.0, 0.55 * len(groups) + 2), 4.5)
    axes = figure.add_subplot()
    values = [[100 * r.test_accuracy for r in g.runs] for g in groups]
    axes.boxplot(values, showfliers=False)
    for position, accuracies in enumerate(values, start=1):
        spread = np.linspace(-0.15, 0.15, len(accuracies)) if len(accuracies) > 1 else np.zeros(1)
        axes.plot(position + spread, accuracies, "o", color="tab:blue", alpha=0.6, markersize=4)
    labels = [f"{g.model}\n{g.variant}" for g in groups]
    axes.set_xticks(range(1, len(groups) + 1), labels, rotation=60, fontsize=8)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(
        f"{groups[0].dataset}: test accuracy per model and FC variant (points: seeds)", fontsize=10
    )
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=90)


def plot_losses(groups: Sequence[Group], path: Path) -> None:
    """Training (solid) and validation (dashed) loss per epoch: one panel per model/variant, colour = seed."""
    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)
    figure = _figure(3.6 * columns, 2.6 * rows)
    for panel, group in enumerate(groups, start=1):
        axes = figure.add_subplot(rows, columns, panel)
        for i, run in enumerate(group.runs):
            for key, style in (("loss", "-"), ("val_loss", "--")):
                curve = run.history.get(key, [])
                label = f"seed {run.seed}" if key == "loss" else None
                axes.plot(
                    range(1, len(curve) + 1), curve, style, color=f"C{i % 10}", linewidth=1, label=label
                )
        values = [v for r in group.runs for key in ("loss", "val_loss") for v in r.history.get(key, [])]
        if values and min(values) > 0:
            axes.set_yscale("log")
            axes.yaxis.set_minor_formatter("")  # keep the decade labels only
        axes.set_title(group.label, fontsize=9)
        axes.tick_params(labelsize=7)
        if panel == 1:
            axes.legend(fontsize=6, title="solid: train, dashed: val", title_fontsize=6)
    figure.supxlabel("epoch")
    figure.supylabel("loss")
    figure.savefig(path, dpi=90)


@dataclass(frozen=True)
class _Dataset:
    """What the misclassification analysis takes from ``synthetic_spectra`` for one dataset."""

    config: Any
    test_spectra: np.ndarray
    test_labels: np.ndarray
    render: Callable[..., np.ndarray]

    def reference(self, class_index: int) -> np.ndarray:
        """A class's fingerprint rendered as a test spectrum without variation, divided by its maximum."""
        config = self.config
        spectrum = np.asarray(
            self.render(
                np.asarray([config.positions[class_index]]),
                np.asarray([config.heights[class_index]], dtype=np.float64),
                np.asarray([float(config.test.sigma)]),
                config.datapoints,
            )
        )[0]
        return spectrum / spectrum.max()


def plot_pair(data: _Dataset, pair: ConfusedPair, sample_index: int, path: Path) -> None:
    """Both classes' reference spectra and one misclassified test sample: the full range and a zoom
    around the largest difference of the references."""
    true_ref, pred_ref = data.reference(pair.true), data.reference(pair.pred)
    sample = np.asarray(data.test_spectra[sample_index], dtype=np.float64)
    sample = sample / sample.max()
    curves = (
        (true_ref, f"true class {pair.true} (reference)", {"color": "tab:green", "linewidth": 1.2}),
        (pred_ref, f"predicted class {pair.pred} (reference)", {"color": "tab:red", "linewidth": 1.2}),
        (sample, f"test sample {sample_index}", {"color": "black", "linewidth": 0.8, "linestyle": ":"}),
    )
    half = max(int(Tolerances.from_config(data.config).position_window), 50)
    centre = int(np.argmax(np.abs(true_ref - pred_ref)))
    x = np.arange(len(sample))
    figure = _figure(9, 5.5)
    for panel, window in enumerate((slice(None), slice(max(0, centre - half), centre + half + 1)), start=1):
        axes = figure.add_subplot(2, 1, panel)
        for values, label, style in curves:
            axes.plot(x[window], values[window], label=label, **style)
        axes.set_ylabel("intensity / max")
        axes.tick_params(labelsize=8)
        if panel == 1:
            axes.legend(fontsize=7)
    evidence = pair.comparison.evidence
    figure.suptitle(
        f"class {pair.true} predicted as {pair.pred} ({pair.count}×): {pair.mode} — {evidence}", fontsize=9
    )
    figure.supxlabel("datapoint")
    figure.savefig(path, dpi=90)


# --- misclassification analysis -------------------------------------------------------------------------


def _load_dataset(name: str) -> _Dataset | None:
    """The config and test set of a dataset ``synthetic_spectra`` knows, else None."""
    import synthetic_spectra

    try:
        config = synthetic_spectra.get_config(name)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    spectra, labels = synthetic_spectra.generate(config, "test")
    return _Dataset(config, np.asarray(spectra), np.asarray(labels), synthetic_spectra.render)


def _check_samples(runs: Iterable[Run], data: _Dataset) -> None:
    """Every misclassified sample must name a canonical test row of its true class."""
    for run in runs:
        for index, true, _ in run.samples:
            if index >= len(data.test_labels) or int(data.test_labels[index]) != true:
                raise ValueError(
                    f"{run.source}:{run.line}: misclassified sample index {index} is not a test row of class "
                    f"{true} in dataset {run.dataset!r}"
                )


def _mode_table(groups: Sequence[Group], summary: ConfusionSummary) -> list[str]:
    mode = {(p.true, p.pred): p.mode for p in summary.pairs}
    rows = []
    for g in groups:
        counts = Counter(mode[(t, p)] for r in g.runs for _, t, p in r.samples)
        rows.append([g.model, g.variant, g.seeds, *(counts[m] for m in MODES), sum(counts.values())])
    rows.append(["all", "", "", *(summary.mode_counts[m] for m in MODES), summary.total])
    return _table(["Model", "Variant", "Seeds", *MODES, "total"], rows)


def _pair_table(
    dataset: str,
    groups: Sequence[Group],
    summary: ConfusionSummary,
    data: _Dataset,
    figures: Path,
    max_pairs: int,
) -> list[str]:
    """The most frequent confused pairs, with a figure each."""
    by_group: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)  # pair -> model/variant -> count
    by_row: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)  # pair -> test row -> count
    for g in groups:
        for r in g.runs:
            for index, true, pred in r.samples:
                by_group[(true, pred)][g.label] += 1
                by_row[(true, pred)][index] += 1
    shown = summary.pairs[:max_pairs]
    rows = []
    for rank, pair in enumerate(shown, start=1):
        key = (pair.true, pair.pred)
        sample_index = min(by_row[key], key=lambda index: (-by_row[key][index], index))
        name = f"{dataset}_confusion_{pair.true}_as_{pair.pred}.png"
        plot_pair(data, pair, sample_index, figures / name)
        models = ", ".join(f"{label} {n}" for label, n in by_group[key].most_common())
        rows.append(
            [
                rank,
                pair.true,
                pair.pred,
                pair.mode,
                pair.count,
                pair.comparison.evidence,
                models,
                f"[png]({FIGURES_DIR}/{name})",
            ]
        )
    lines = []
    if shown:
        lines += [
            f"The {len(shown)} most frequent of {len(summary.pairs)} confused pairs (figures: both classes' "
            "reference spectra and the pair's most often misclassified test sample):",
            "",
            *_table(
                ["#", "True", "Predicted", "Mode", "Count", "Evidence", "Misclassified by", "Figure"], rows
            ),
        ]
    hidden = summary.pairs[len(shown) :]
    if hidden:
        count = sum(p.count for p in hidden)
        lines += [
            f"Not listed: {_plural(len(hidden), 'pair')} with {_plural(count, 'misclassification')}.",
            "",
        ]
    return lines


def _analysis_section(dataset: str, groups: Sequence[Group], figures: Path, max_pairs: int) -> list[str]:
    lines = ["### Misclassification analysis", ""]
    runs = [r for g in groups for r in g.runs]
    if not any(r.samples for r in runs):
        return [*lines, "No misclassified test spectra are listed in the results.", ""]
    data = _load_dataset(dataset)
    if data is None:
        return [
            *lines,
            f"No class table is known for dataset {dataset!r}: failure modes are not derived.",
            "",
        ]
    _check_samples(runs, data)
    summary = summarize(data.config, ((t, p) for r in runs for _, t, p in r.samples))
    lines += [
        "Failure mode of every misclassified test spectrum, derived from the two class fingerprints (rule: "
        f"`zoo/analysis.py`; here: {Tolerances.from_config(data.config).describe()}). Counts are summed "
        "over seeds.",
        "",
        *_mode_table(groups, summary),
        *_pair_table(dataset, groups, summary, data, figures, max_pairs),
    ]
    return lines


# --- the report ---------------------------------------------------------------------------------------


def write_report(
    results_path: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> Path:
    """Write ``report.md`` and its figures into ``out_dir``; return the report's path.

    ``results_path`` is one results file or several (e.g. the study's and a new model's runs, or runs from
    several machines); they are read in order and, of rows sharing a ``run_id``, the last one counts.
    """
    if max_pairs < 0:
        raise ValueError(f"max_pairs: must be >= 0, got {max_pairs}")
    paths = [Path(results_path)] if isinstance(results_path, str | Path) else [Path(p) for p in results_path]
    if not paths:
        raise ValueError("no results file given")
    merged = {run.run_id: run for path in paths for run in read_results(path)}
    grouped = group_runs(merged.values())
    out_dir = Path(out_dir)
    figures = out_dir / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    for stale in _own_figures(figures):  # a pair no longer confused must not keep its old figure
        stale.unlink()
    n_runs = sum(len(g.runs) for groups in grouped.values() for g in groups)
    lines = [
        "# Study report",
        "",
        f"Results: {', '.join(f'`{path}`' for path in paths)}, {n_runs} runs on "
        f"{', '.join(f'`{d}`' for d in grouped)}. Accuracies are "
        "percentages of the test set; statistics are over seeds. Paper: Schuetzke, Szymanski & Reischl, "
        "npj Comput. Mater. (2023).",
        "",
    ]
    for dataset, groups in grouped.items():
        plot_accuracy(groups, figures / f"{dataset}_accuracy.png")
        plot_losses(groups, figures / f"{dataset}_loss.png")
        lines += [
            f"## Dataset `{dataset}`",
            "",
            *_setup_section(groups),
            *_results_section(groups),
            f"![test accuracy]({FIGURES_DIR}/{dataset}_accuracy.png)",
            "",
            f"![loss curves]({FIGURES_DIR}/{dataset}_loss.png)",
            "",
            *_paper_section(dataset, groups),
            *_fc_section(dataset, groups),
            *_ablation_section(dataset, groups),
            *_robustness_section(dataset, groups),
            *_analysis_section(dataset, groups, figures, max_pairs),
        ]
    report = out_dir / REPORT_NAME
    report.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return report
