"""The report's failure-mode section: every misclassified test spectrum classified by
:mod:`zoo.study.failure_modes`, tabulated per mode and per confused pair, with a figure per pair."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.study.failure_modes import MODES, ConfusionSummary, Tolerances, summarize
from zoo.study.plots import FIGURES_DIR, ClassReferences, plot_pair
from zoo.study.runs import Group, Run
from zoo.study.tables import plural, table

if TYPE_CHECKING:
    pass


def _load_dataset(name: str) -> ClassReferences | None:
    """The config and test set of a dataset ``synthetic_spectra`` knows, else None."""
    import synthetic_spectra

    try:
        config = synthetic_spectra.get_config(name)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    spectra, labels = synthetic_spectra.generate(config, "test")
    return ClassReferences(config, np.asarray(spectra), np.asarray(labels), synthetic_spectra.render)


def _check_samples(runs: Iterable[Run], data: ClassReferences) -> None:
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
    return table(["Model", "Variant", "Seeds", *MODES, "total"], rows)


def _pair_table(
    dataset: str,
    groups: Sequence[Group],
    summary: ConfusionSummary,
    data: ClassReferences,
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
            *table(
                ["#", "True", "Predicted", "Mode", "Count", "Evidence", "Misclassified by", "Figure"], rows
            ),
        ]
    hidden = summary.pairs[len(shown) :]
    if hidden:
        count = sum(p.count for p in hidden)
        lines += [
            f"Not listed: {plural(len(hidden), 'pair')} with {plural(count, 'misclassification')}.",
            "",
        ]
    return lines


def analysis_section(dataset: str, groups: Sequence[Group], figures: Path, max_pairs: int) -> list[str]:
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
        f"`zoo/study/failure_modes.py`; here: {Tolerances.from_config(data.config).describe()}). Counts are "
        "summed over seeds.",
        "",
        *_mode_table(groups, summary),
        *_pair_table(dataset, groups, summary, data, figures, max_pairs),
    ]
    return lines
