"""The study report: a markdown summary (with PNG figures) of a benchmark results file.

``write_report("benchmarks/results/results.jsonl", "report/")`` reads the runner's rows (one JSON object
per finished run; of rows sharing a ``run_id`` the last one counts) and writes ``report.md`` with, per
dataset: the setup of the runs (seeds, epochs, hardware, software); the study's table layout (mean,
median, min and max test accuracy and misclassifications over seeds, per model and FC variant); the
paper's published figures beside ours; ReLU against linear FC; the ablation pairs; the
misclassification analysis (failure modes, :mod:`zoo.study.failure_modes`); and PNG figures under
``figures/``. The pieces: :mod:`~zoo.study.runs` (reading and grouping rows), :mod:`~zoo.study.tables`,
:mod:`~zoo.study.failure_section` and :mod:`~zoo.study.plots`; this module puts them in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.study.failure_section import analysis_section
from zoo.study.plots import FIGURES_DIR, own_figures, plot_accuracy, plot_losses
from zoo.study.runs import Group, group_runs, read_results, regime, regime_slug, split_regimes
from zoo.study.tables import (
    ablation_section,
    fc_section,
    paper_section,
    results_section,
    robustness_section,
    setup_section,
)

if TYPE_CHECKING:
    pass

#: Confused class pairs listed and drawn per dataset, most frequent first.
DEFAULT_MAX_PAIRS = 20
REPORT_NAME = "report.md"


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
    # a capped and an uncapped row of one run_id are two experiments: keep both, never merge them
    merged = {(run.run_id, regime(run)): run for path in paths for run in read_results(path)}
    by_regime = {name: group_runs(runs) for name, runs in split_regimes(merged.values()).items()}
    out_dir = Path(out_dir)
    figures = out_dir / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    for stale in own_figures(figures):  # a pair no longer confused must not keep its old figure
        stale.unlink()
    n_runs = len(merged)
    datasets = dict.fromkeys(d for grouped in by_regime.values() for d in grouped)
    lines = [
        "# Study report",
        "",
        f"Results: {', '.join(f'`{path}`' for path in paths)}, {n_runs} runs on "
        f"{', '.join(f'`{d}`' for d in datasets)}. Accuracies are "
        "percentages of the test set; statistics are over seeds. Paper: Schuetzke, Szymanski & Reischl, "
        "npj Comput. Mater. (2023). Runs at the protocol's end (up to 500 epochs) and runs with an epoch cap "
        "are reported apart, never in one table or comparison.",
        "",
    ]
    for name, grouped in by_regime.items():
        lines += _regime_sections(name, grouped, figures, max_pairs, single=len(by_regime) == 1)
    report = out_dir / REPORT_NAME
    report.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return report


def _regime_sections(
    name: str, grouped: dict[str, list[Group]], figures: Path, max_pairs: int, *, single: bool
) -> list[str]:
    """The sections of every dataset of one regime (figure names carry the regime unless it is alone)."""
    lines: list[str] = []
    for dataset, groups in grouped.items():
        stem = dataset if single else f"{dataset}_{regime_slug(name)}"
        plot_accuracy(groups, figures / f"{stem}_accuracy.png")
        plot_losses(groups, figures / f"{stem}_loss.png")
        lines += [
            f"## Dataset `{dataset}` — {name}",
            "",
            *setup_section(groups),
            *results_section(groups),
            f"![test accuracy]({FIGURES_DIR}/{stem}_accuracy.png)",
            "",
            f"![loss curves]({FIGURES_DIR}/{stem}_loss.png)",
            "",
            *paper_section(dataset, groups),
            *fc_section(dataset, groups),
            *ablation_section(dataset, groups),
            *robustness_section(dataset, groups),
            *analysis_section(dataset, groups, figures, max_pairs),
        ]
    return lines
