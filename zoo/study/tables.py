"""The report's tables and findings as markdown lines: the runs' setup, the study's table layout, the
paper's figures beside ours, ReLU against linear FC, the ablation pairs and the robustness table."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from zoo.study import paper
from zoo.study.runs import STATISTICS, Group, ordered

if TYPE_CHECKING:
    pass


def _pct(value: float) -> str:
    return f"{value:.2f} %"


def _num(value: float) -> str:
    return f"{value:.1f}"


def _yes_no(condition: bool) -> str:
    return "yes" if condition else "no"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _counted(values: Iterable[object]) -> str:
    """``a (3 runs), b (1 run)``: the distinct values with their counts, most common first."""
    return ", ".join(f"{value} ({plural(n, 'run')})" for value, n in Counter(values).most_common())


def _find(groups: Sequence[Group], model: str, variant: str | None = None) -> Group | None:
    """The group of ``model`` with ``variant``; without one, its ReLU group, else its first group."""
    candidates = [g for g in groups if g.model == model]
    if variant is not None:
        return next((g for g in candidates if g.variant == variant), None)
    relu = [g for g in candidates if g.variant == paper.ABLATION_VARIANT]
    return next(iter(relu or candidates), None)


def setup_section(groups: Sequence[Group]) -> list[str]:
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


def results_section(groups: Sequence[Group]) -> list[str]:
    columns = (("Acc.", lambda g: g.accuracy, _pct), ("Miscl.", lambda g: g.misclassified, _num))
    header = ["Model", "Variant", "Seeds"]
    header += [f"{name} {statistic}" for name, _, _ in columns for statistic in STATISTICS]
    header += ["Epochs run: mean (min–max)", "Max epochs"]
    rows = []
    for g in groups:
        epochs = [r.epochs_run for r in g.runs]
        rows.append(
            [
                g.model,
                g.variant,
                g.seeds,
                *(fmt(getattr(stats(g), s)) for _, stats, fmt in columns for s in STATISTICS),
                f"{statistics.fmean(epochs):.0f} ({min(epochs)}–{max(epochs)})",
                ", ".join(str(e) for e in sorted({r.max_epochs for r in g.runs})),
            ]
        )
    return ["### Test accuracy and misclassifications over seeds", "", *table(header, rows)]


def robustness_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    """Test accuracy of the models trained on ``dataset`` on the other test sets they were evaluated on."""
    others = ordered({name for g in groups for r in g.runs for name in r.cross_tests}, ())
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
        *table(header, rows),
    ]


def _relu_vs_linear(groups: Sequence[Group]) -> list[tuple[str, Group, Group]]:
    """(model, linear group, ReLU group) for every model that has both."""
    linear, relu = paper.FC_ACTIVATION_VARIANTS
    found = [
        (m, _find(groups, m, linear), _find(groups, m, relu))
        for m in ordered((g.model for g in groups), paper.MODEL_ORDER)
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


def paper_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    if dataset not in _FINDINGS:
        return []
    rows = _FINDINGS[dataset](groups)
    return ["### The paper's findings beside ours", "", *table(["Finding", "Paper", "Ours", "Holds"], rows)]


def fc_section(dataset: str, groups: Sequence[Group]) -> list[str]:
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
    return [*lines, "", *table(["Model", "linear", "relu", "Δ median (points)", "ReLU better"], rows)]


def ablation_section(dataset: str, groups: Sequence[Group]) -> list[str]:
    if dataset != paper.ABLATION_DATASET:
        return []
    rows, agree, compared = [], 0, 0
    for pair in paper.ABLATION_PAIRS:
        ours = [_find(groups, pair.original), _find(groups, pair.modified)]
        if not any(ours):
            continue
        cells = [
            f"{_pct(g.accuracy.median)} ({g.variant}, {plural(len(g.runs), 'seed')})" if g else "—"
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
        *table(
            ["Pair", "Change", "Paper", "Ours", "Δ paper (points)", "Δ ours (points)", "Paper's direction"],
            rows,
        ),
    ]
