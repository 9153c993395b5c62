"""The generalisation panel (issue #15): trained models on fixed sets of spectra beyond the test split.

A model's test accuracy on ``challenge`` says how it does on one fixed design (whole-pattern shifts of
±30 points and common height changes of ±0.03, sigma 2). The panel asks more of it, each set drawn by
the generator itself (the same code path as the TFDS configs), with a seed of its own:

* ``splits``: the dataset's own test and validation splits;
* ``fresh draws``: the training and validation splits of the same classes drawn with other seeds;
* ``test-like``: spectra drawn like the test design but at random — a whole-pattern shift uniform in
  ±``test.shift`` and a common height change uniform in ±``test.height_variation`` per spectrum (the
  coupled options ``shift`` and ``height_offset``), sigma fixed at ``test.sigma`` — then with each peak
  jittered by up to ±10 and ±20 points. The test design's per-class exclusions (which keep some classes
  of a triplet apart) are not applied: some of these spectra can be ambiguous for any classifier;
* ``noise``, ``background``, ``peak shape``, ``shift``: the test split with one realistic option on;
* ``realistic``: the test split of ``<dataset>_realistic`` (all options at once).

A model is evaluated on every set whose class table (peak positions and heights) and length are those
of the dataset it was trained on (its export's ``dataset``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthetic_spectra.config import DatasetConfig, fresh_draw, get_config
from synthetic_spectra.generator import generate
from synthetic_spectra.options import (
    Background,
    Coupling,
    HumpBackground,
    Noise,
    PeakShape,
    PolynomialBackground,
)

if TYPE_CHECKING:
    from zoo.inference.predict import Predictor

#: The panel's files in its results folder.
ROWS_FILE, TABLE_FILE, FIGURE_FILE = "panel.jsonl", "panel.md", "panel.png"
#: Seeds of the two fresh draws (the published draw is seed 2022).
FRESH_SEEDS = (1, 2)
#: Per-peak jitter (points) of the test-like sets, after the whole-pattern shift.
TEST_LIKE_JITTER = (0, 10, 20)
#: Spectra per class of a test-like set.
TEST_LIKE_PER_CLASS = 20
#: Signal-to-noise ratios of the Gaussian-noise sets (std = maximum / snr).
GAUSSIAN_SNR = (1000, 300, 100, 30)
#: Counts at the spectrum's maximum of the Poisson-noise sets.
POISSON_COUNTS = (10_000, 1_000)
#: Draws of each random perturbation of the test split (seeds 1000 apart), concatenated.
PERTURBATION_DRAWS = 3
#: Whole-pattern shifts (points) of the shift sets, applied to the test split in both directions.
GLOBAL_SHIFTS = (20, 40)


@dataclass(frozen=True)
class PanelSet:
    """One set of the panel: the named splits of one or more configs, concatenated."""

    name: str
    group: str
    description: str
    seed: int | None  # seed of the set's random draws; None: no random numbers (a fixed design)
    parts: tuple[tuple[DatasetConfig, str], ...]
    training: DatasetConfig | None = None  # the training distribution of the ceiling (default: the base)

    @property
    def base(self) -> DatasetConfig:
        """The config whose classes the set uses."""
        return self.parts[0][0]

    @property
    def size(self) -> int:
        """Number of spectra."""
        return sum(config.split_size(split) for config, split in self.parts)

    def bayes_ceiling(self) -> float | None:
        """The Bayes classifier's expected accuracy on the set under ``training``'s distribution
        (:mod:`zoo.study.ceiling`); None for sets whose spectra carry noise, a background or another
        peak shape (the peak parameters alone do not bound those)."""
        from zoo.study.ceiling import split_ceiling

        return self._over_parts(
            lambda config, split, training: split_ceiling(config, split, training).ceiling
        )

    def nearest_template(self) -> float | None:
        """The nearest-template rule's accuracy on the set's visible peaks (None where the ceiling is)."""
        from zoo.study.ceiling import nearest_template_accuracy

        return self._over_parts(nearest_template_accuracy)

    def _over_parts(self, measure: Callable[[DatasetConfig, str, DatasetConfig], float]) -> float | None:
        """``measure(config, split, training)`` of each part, weighted by size; None where the peaks do
        not bound the set (see :meth:`bayes_ceiling_applies`)."""
        if not self.bayes_ceiling_applies():
            return None
        training = self.training or self.base
        sizes = [config.split_size(split) for config, split in self.parts]
        values = [measure(config, split, training) for config, split in self.parts]
        return sum(value * size for value, size in zip(values, sizes, strict=True)) / sum(sizes)

    def bayes_ceiling_applies(self) -> bool:
        """Whether the peaks bound the set (no noise, background or other peak shape on the spectra)."""
        rendered_only = ("noise", "background", "peak_shape")
        return all(getattr(config, name).is_default for config, _ in self.parts for name in rendered_only)

    def generate(self) -> tuple[np.ndarray, np.ndarray]:
        """``(spectra [n, datapoints], labels [n])`` of the whole set."""
        arrays = [generate(config, split) for config, split in self.parts]
        return np.concatenate([a for a, _ in arrays]), np.concatenate([b for _, b in arrays])


def same_classes(a: DatasetConfig, b: DatasetConfig) -> bool:
    """Whether two configs have the same class table (peak positions and heights) and length."""
    return (a.positions, a.heights, a.datapoints) == (b.positions, b.heights, b.datapoints)


def perturbed(config: DatasetConfig, seed: int, **options: Any) -> DatasetConfig:
    """``config`` with realistic options on, its realistic streams keyed by ``seed``.

    The test split draws no published random numbers, so the seed only changes the options' draws.
    """
    return dataclasses.replace(config, name=f"{config.name}_panel", seed=seed, **options)


def _test_like(config: DatasetConfig, seed: int, jitter: int) -> DatasetConfig:
    """A config whose validation split is drawn like the test design (see the module docstring)."""
    test = config.test
    return dataclasses.replace(
        config,
        name=f"{config.name}_test_like",
        seed=seed,
        n_val=TEST_LIKE_PER_CLASS,
        position_shift=jitter,
        height_variation=0.0,
        sigma_range=(test.sigma, test.sigma),
        coupling=Coupling(
            shift=(-test.shift, test.shift), height_offset=(-test.height_variation, test.height_variation)
        ),
    )


def perturbations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """The panel's random perturbation families: ``(set name, group, description, config options)``
    (noise, backgrounds, peak shapes), each applied by :func:`perturbed` with a seed of its own."""
    return [
        *(
            (f"gaussian snr {snr}", "noise", f"Gaussian noise, std = max / {snr}", {"noise": Noise(snr=snr)})
            for snr in GAUSSIAN_SNR
        ),
        *(
            (f"poisson {counts} counts", "noise", f"Poisson noise, {counts} counts at the maximum",
             {"noise": Noise(counts=counts)})
            for counts in POISSON_COUNTS
        ),
        ("linear background", "background", "a linear background, 0-5 % of the highest peak at each end",
         {"background": Background(polynomial=PolynomialBackground(degree=1, amplitude=0.05))}),
        ("polynomial background", "background", "a cubic background, 0-20 % of the highest peak",
         {"background": Background(polynomial=PolynomialBackground(degree=3, amplitude=0.2))}),
        ("amorphous hump", "background", "one broad Gaussian hump, 10-30 % of the highest peak",
         {"background": Background(humps=HumpBackground(count=1, amplitude=(0.1, 0.3), width=(0.03, 0.1)))}),
        ("lorentzian peaks", "peak shape", "Lorentzian peaks of the same FWHM",
         {"peak_shape": PeakShape(kind="lorentzian")}),
        ("pseudo-voigt peaks", "peak shape", "pseudo-Voigt peaks, eta 0.2-0.8, the same FWHM",
         {"peak_shape": PeakShape(kind="pseudo_voigt", eta=(0.2, 0.8))}),
    ]  # fmt: skip


def panel_sets(dataset: str | DatasetConfig) -> list[PanelSet]:
    """The panel's sets for the classes of ``dataset`` (``challenge`` or ``benchmark``, or a config)."""
    config = get_config(dataset)
    name = config.name
    sets = [
        PanelSet(f"{name} test", "splits", "the fixed test design", None, ((config, "test"),)),
        PanelSet(
            f"{name} validation", "splits", "the published validation split", config.seed,
            ((config, "validation"),),
        ),
    ]  # fmt: skip
    for seed in FRESH_SEEDS:
        fresh = fresh_draw(config, seed)
        for split in ("train", "validation"):
            sets.append(
                PanelSet(
                    f"fresh draw {seed} {split}", "fresh draws",
                    f"the {split} split drawn with seed {seed}", seed, ((fresh, split),),
                )
            )  # fmt: skip
    for offset, jitter in enumerate(TEST_LIKE_JITTER):
        seed = 11 + offset
        suffix = f", peaks jittered +-{jitter}" if jitter else ""
        sets.append(
            PanelSet(
                f"test-like{f' jitter {jitter}' if jitter else ''}", "test-like",
                f"random whole-pattern shift +-{config.test.shift} and height change "
                f"+-{config.test.height_variation:g}{suffix}; {TEST_LIKE_PER_CLASS} per class",
                seed, ((_test_like(config, seed, jitter), "validation"),),
            )
        )  # fmt: skip
    for offset, (set_name, group, description, options) in enumerate(perturbations()):
        seeds = [101 + offset + 1000 * draw for draw in range(PERTURBATION_DRAWS)]
        parts = tuple((perturbed(config, seed, **options), "test") for seed in seeds)
        sets.append(
            PanelSet(set_name, group, f"{description}; the test split, {PERTURBATION_DRAWS} draws (seeds "
                     f"{', '.join(map(str, seeds))})", seeds[0], parts)
        )  # fmt: skip
    for points in GLOBAL_SHIFTS:
        parts = tuple(
            (perturbed(config, 0, coupling=Coupling(shift=sign * points)), "test") for sign in (-1, 1)
        )
        sets.append(
            PanelSet(f"shift +-{points}", "shift",
                     f"the test split shifted by -{points} and +{points} points", None, parts)
        )  # fmt: skip
    sets = [dataclasses.replace(panel_set, training=config) for panel_set in sets]
    realistic = f"{name}_realistic"
    try:
        realistic_config = get_config(realistic)
    except ValueError:
        realistic_config = None
    if realistic_config is not None and same_classes(realistic_config, config):
        sets.append(
            PanelSet(f"{realistic} test", "realistic", "all realistic options at once (its test split)",
                     realistic_config.seed, ((realistic_config, "test"),))
        )  # fmt: skip
    return sets


@dataclass(frozen=True)
class PanelModel:
    """A trained model of the panel: a label, where it came from, its predictor and training config."""

    label: str
    source: str
    predictor: Predictor
    dataset: DatasetConfig

    @classmethod
    def load(cls, label: str, source: str) -> PanelModel:
        """Load an export directory or ``preset:NAME`` (:func:`zoo.load`) and resolve its dataset.

        Raises:
            UserError or ValueError: one line, for a bad path or metadata that names no known dataset.
        """
        from zoo.inference.predict import load

        predictor = load(source)
        name = predictor.metadata.get("dataset")
        if not name:
            raise ValueError(f"{source}: its metadata names no training dataset")
        record = predictor.metadata.get("dataset_config")  # a config that is not built in (fresh draws)
        config = DatasetConfig.from_dict(record) if record else get_config(name)
        return cls(label, source, predictor, config)


def evaluate(
    models: Sequence[PanelModel],
    sets: Iterable[PanelSet],
    *,
    hardware: str = "",
    progress: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """One row per (model, set) with the same classes: accuracy and misclassified count, seed and size."""
    rows = []
    for panel_set in sets:
        users = [model for model in models if same_classes(model.dataset, panel_set.base)]
        if not users:
            continue
        spectra, labels = panel_set.generate()
        ceiling = panel_set.bayes_ceiling()
        for model in users:
            predicted = np.argmax(model.predictor.predict(spectra), axis=1)
            wrong = int(np.sum(predicted != labels))
            rows.append(
                {
                    "model": model.label,
                    "source": model.source,
                    "trained_on": model.dataset.name,
                    "set": panel_set.name,
                    "group": panel_set.group,
                    "description": panel_set.description,
                    "seed": panel_set.seed,
                    "size": int(labels.size),
                    "accuracy": 1.0 - wrong / labels.size,
                    "misclassified": wrong,
                    "bayes_ceiling": ceiling,
                    "hardware": hardware,
                }
            )
            progress(
                f"{model.label:28s} {panel_set.name:28s} {rows[-1]['accuracy']:7.2%} ({wrong}/{labels.size})"
            )
    return rows


def write_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """The rows as JSON lines."""
    path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows written by :func:`write_rows`."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: A set's columns in the table: name, group, description, seed, size, Bayes ceiling.
SetKey = tuple[str, str, str, "int | None", int, "float | None"]


def _grid(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[SetKey]]:
    """Model labels in first-seen order and the sets (:data:`SetKey`) in first-seen order."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    keys = ("set", "group", "description", "seed", "size", "bayes_ceiling")
    sets = list(dict.fromkeys(tuple(row.get(key) for key in keys) for row in rows))
    return models, sets  # type: ignore[arg-type]


def markdown_table(rows: Sequence[Mapping[str, Any]], models_note: Mapping[str, str] | None = None) -> str:
    """The panel as a Markdown table: one line per set, a column per model (accuracy, wrong/size)."""
    models, sets = _grid(rows)
    cell = {(r["model"], r["set"]): r for r in rows}
    lines = [
        "| group | set | seed | spectra | Bayes ceiling | " + " | ".join(models) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(models),
    ]
    for name, group, _description, seed, size, ceiling in sets:
        values = []
        for model in models:
            row = cell.get((model, name))
            values.append("–" if row is None else f"{row['accuracy']:.2%} ({row['misclassified']})")
        seed_text = "fixed" if seed is None else str(seed)
        ceiling_text = "–" if ceiling is None else f"{ceiling:.2%}"
        lines.append(
            f"| {group} | {name} | {seed_text} | {size} | {ceiling_text} | " + " | ".join(values) + " |"
        )
    lines.append("")
    lines.append(
        "Cells: accuracy (misclassified spectra). Bayes ceiling: the expected accuracy of a classifier that "
        "knows the training distribution exactly (`zoo.study.ceiling`; not computed for sets with realistic "
        "options). Sets:"
    )
    lines.append("")
    lines.extend(f"- **{key[0]}**: {key[2]}" for key in sets)
    if models_note:
        lines.append("")
        lines.append("Models:")
        lines.append("")
        lines.extend(f"- **{label}**: {note}" for label, note in models_note.items())
    return "\n".join(lines) + "\n"


def with_current_ceilings(
    rows: Sequence[Mapping[str, Any]], sets: Sequence[PanelSet]
) -> list[dict[str, Any]]:
    """The rows with each set's Bayes ceiling computed again from ``sets`` (the models' accuracies kept);
    ValueError names a row's set that ``sets`` lacks."""
    by_name = {panel_set.name: panel_set for panel_set in sets}
    missing = [row["set"] for row in rows if row["set"] not in by_name]
    if missing:
        raise ValueError(f"set {missing[0]!r} of the rows is not a panel set of these classes")
    ceilings = {name: by_name[name].bayes_ceiling() for name in dict.fromkeys(row["set"] for row in rows)}
    return [{**row, "bayes_ceiling": ceilings[row["set"]]} for row in rows]


def table_parts(table: str) -> tuple[str, dict[str, str]]:
    """A table file written with :func:`markdown_table`: the text above the table, and the models' notes."""
    head, found, _ = table.partition("| group | set |")
    if not found:
        raise ValueError("no panel table in it")
    _, found, notes = table.partition("\nModels:\n")
    pairs = (line[len("- **") :].split("**: ", 1) for line in notes.splitlines() if line.startswith("- **"))
    return head, dict(pairs) if found else {}


#: The panel groups a robustness claim is about ("every noise/background/shape row", issue #15).
ROBUSTNESS_GROUPS = ("noise", "background", "peak shape")


@dataclass(frozen=True)
class SetComparison:
    """One panel set: the candidates' median against the best reference model."""

    set: str
    group: str
    candidate_accuracies: tuple[float, ...]
    best_reference: str
    best_reference_accuracy: float

    @property
    def candidate_median(self) -> float:
        return float(np.median(self.candidate_accuracies))

    @property
    def margin(self) -> float:
        """Candidate median minus the best reference, in accuracy (positive: the candidate is ahead)."""
        return self.candidate_median - self.best_reference_accuracy


def merge_rows(row_lists: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of several panels as one list, one row per (model, set); a model evaluated in two panels must
    have the same accuracy in both (the same export), otherwise ValueError."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for rows in row_lists:
        for row in rows:
            key = (row["model"], row["set"])
            seen = merged.setdefault(key, dict(row))
            if seen["accuracy"] != row["accuracy"]:
                raise ValueError(
                    f"model {key[0]!r} on {key[1]!r}: two panels disagree "
                    f"({seen['accuracy']:.2%} and {row['accuracy']:.2%}); label them apart"
                )
    return list(merged.values())


def compare(
    rows: Sequence[Mapping[str, Any]], candidates: Sequence[str], references: Sequence[str]
) -> list[SetComparison]:
    """Per panel set (in panel order) that every model has: the median of ``candidates`` (e.g. the seeds of
    one model) against the best of ``references``. ValueError names a label with no rows."""
    models, sets = _grid(rows)
    for label in (*candidates, *references):
        if label not in models:
            raise ValueError(f"no panel rows for model {label!r} (models: {', '.join(models)})")
    if not candidates or not references:
        raise ValueError("give at least one candidate and one reference model")
    if set(candidates) & set(references):
        raise ValueError(f"{sorted(set(candidates) & set(references))[0]!r} is both candidate and reference")
    accuracy = {(r["model"], r["set"]): float(r["accuracy"]) for r in rows}
    comparisons = []
    for name, group, *_ in sets:
        if not all((label, name) in accuracy for label in (*candidates, *references)):
            continue
        best = max(references, key=lambda label: accuracy[(label, name)])
        comparisons.append(
            SetComparison(
                name, group, tuple(accuracy[(label, name)] for label in candidates),
                best, accuracy[(best, name)],
            )
        )  # fmt: skip
    return comparisons


def comparison_markdown(
    comparisons: Sequence[SetComparison], candidate_name: str, groups: Sequence[str] = ROBUSTNESS_GROUPS
) -> str:
    """The comparison as a Markdown table, then one count per group and the count over ``groups``."""
    lines = [
        f"| group | set | {candidate_name} (median) | each | best reference | its accuracy | margin |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for c in comparisons:
        each = " / ".join(f"{a:.2%}" for a in c.candidate_accuracies)
        lines.append(
            f"| {c.group} | {c.set} | {c.candidate_median:.2%} | {each} | {c.best_reference} | "
            f"{c.best_reference_accuracy:.2%} | {100 * c.margin:+.2f} |"
        )
    lines.append("")
    for group in dict.fromkeys(c.group for c in comparisons):
        in_group = [c for c in comparisons if c.group == group]
        ahead = sum(c.margin >= 0 for c in in_group)
        lines.append(f"- {group}: at or above the best reference on {ahead} of {len(in_group)} sets")
    chosen = [c for c in comparisons if c.group in groups]
    if chosen:
        ahead = sum(c.margin >= 0 for c in chosen)
        lines.append(
            f"- **{', '.join(groups)}: at or above the best reference on {ahead} of {len(chosen)} sets**"
            + ("" if ahead == len(chosen) else " (behind on: " + ", ".join(
                c.set for c in chosen if c.margin < 0) + ")")
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_panel(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """A heat map of accuracy: sets down, models across, each cell labelled."""
    from zoo.study.plots import new_figure

    models, sets = _grid(rows)
    cell = {(r["model"], r["set"]): r["accuracy"] for r in rows}
    ceilings = [np.nan if s[5] is None else s[5] for s in sets]
    grid = np.array(
        [
            [ceiling, *(cell.get((m, s[0]), np.nan) for m in models)]
            for s, ceiling in zip(sets, ceilings, strict=True)
        ]
    )
    models = ["Bayes ceiling", *models]
    figure = new_figure(2.2 + 1.6 * len(models), 0.9 + 0.32 * len(sets))
    axes = figure.add_subplot()
    image = axes.imshow(grid * 100, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    axes.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
    axes.set_yticks(range(len(sets)), [f"{s[1]}: {s[0]}" for s in sets], fontsize=8)
    for i, j in np.ndindex(grid.shape):
        if np.isfinite(grid[i, j]):
            colour = "white" if grid[i, j] < 0.6 else "black"
            axes.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, label="accuracy (%)")
    axes.set_title("Generalisation panel: accuracy per set", fontsize=10)
    figure.savefig(path, dpi=110)


__all__ = [
    "FIGURE_FILE",
    "ROBUSTNESS_GROUPS",
    "ROWS_FILE",
    "TABLE_FILE",
    "PanelModel",
    "PanelSet",
    "SetComparison",
    "compare",
    "comparison_markdown",
    "evaluate",
    "markdown_table",
    "merge_rows",
    "panel_sets",
    "perturbations",
    "perturbed",
    "plot_panel",
    "read_rows",
    "same_classes",
    "write_rows",
]
