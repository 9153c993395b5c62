"""What a grid search says about each toggle: paired differences with every other toggle held equal.

A grid search (``spectrazoo tune --tuner grid``) trains every combination of the toggles with the same seeds
(execution ``k`` of every trial uses seed ``seed + k``). For one toggle, a *pair* is two executions that
differ in that toggle only — same other toggles, same seed — and its difference is the validation accuracy
of one side minus the other's. The effect of the toggle is the median of those differences, with their range
and how many point the paper's way (:data:`zoo.study.paper.TOGGLE_DIRECTIONS`).

Inputs are the search's own records: ``executions.jsonl`` (one line per finished execution, written by the
tuner) and the trials table. Only the validation split enters: a search never sees the test split.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from zoo.study import paper
from zoo.study.tables import table

#: Per-execution metrics an effect can be measured on, with their table headings.
METRICS: Mapping[str, str] = {
    "max_val_accuracy": "best validation accuracy of any epoch (the search's objective)",
    "val_accuracy_at_best_loss": "validation accuracy at the lowest validation loss (the weights kept)",
}


@dataclasses.dataclass(frozen=True)
class Effect:
    """One comparison of a toggle: ``treatment`` against ``reference``, over ``pairs`` paired executions."""

    toggle: str
    treatment: Any
    reference: Any
    differences: tuple[float, ...]
    expected_sign: int

    @property
    def pairs(self) -> int:
        """Number of paired executions."""
        return len(self.differences)

    @property
    def median(self) -> float:
        """Median difference (accuracy, fraction)."""
        return statistics.median(self.differences)

    @property
    def agreeing(self) -> int:
        """Pairs whose difference has the paper's sign."""
        return sum(1 for d in self.differences if d * self.expected_sign > 0)

    @property
    def opposing(self) -> int:
        """Pairs whose difference has the opposite sign."""
        return sum(1 for d in self.differences if d * self.expected_sign < 0)

    @property
    def verdict(self) -> str:
        """``agrees`` when the median and more than half the pairs point the paper's way, ``disagrees``
        when the median and more than half point the other way, else ``mixed``."""
        if self.median * self.expected_sign > 0 and 2 * self.agreeing > self.pairs:
            return "agrees"
        if self.median * self.expected_sign < 0 and 2 * self.opposing > self.pairs:
            return "disagrees"
        return "mixed"


def read_executions(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """The finished executions of a search, one per ``(trial_id, execution)`` (a rerun trial's last)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    text = pathlib.Path(path).read_text(encoding="utf-8") if pathlib.Path(path).exists() else ""
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            latest[(record["trial_id"], record["execution"])] = record
    return list(latest.values())


def _key(values: Mapping[str, Any], without: str) -> str:
    return json.dumps({k: v for k, v in values.items() if k != without}, sort_keys=True)


def paired_differences(
    executions: Sequence[Mapping[str, Any]],
    toggle: str,
    treatment: Any,
    reference: Any,
    metric: str = "max_val_accuracy",
) -> list[float]:
    """``metric`` of the ``treatment`` side minus the ``reference`` side, for every pair of executions
    with the same seed and the same other hyperparameters (in a stable order)."""
    reference_side: dict[tuple[str, int], float] = {}
    for record in executions:
        values = record["hyperparameters"]
        if values.get(toggle) == reference:
            reference_side[(_key(values, toggle), record["seed"])] = record[metric]
    differences = []
    for record in sorted(executions, key=lambda r: (_key(r["hyperparameters"], toggle), r["seed"])):
        values = record["hyperparameters"]
        partner = reference_side.get((_key(values, toggle), record["seed"]))
        if values.get(toggle) == treatment and partner is not None:
            differences.append(record[metric] - partner)
    return differences


def toggle_effects(executions: Sequence[Mapping[str, Any]], metric: str = "max_val_accuracy") -> list[Effect]:
    """Every comparison of :data:`zoo.study.paper.TOGGLE_DIRECTIONS` whose values occur in the search:
    each searched value against the toggle's reference value."""
    effects = []
    for toggle, (reference, sign) in paper.TOGGLE_DIRECTIONS.items():
        present = {record["hyperparameters"].get(toggle) for record in executions} - {None}
        if reference not in present:
            continue
        for treatment in sorted(present - {reference}, key=str):
            differences = paired_differences(executions, toggle, treatment, reference, metric)
            if differences:
                effects.append(Effect(toggle, treatment, reference, tuple(differences), sign))
    return effects


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def effects_table(effects: Sequence[Effect]) -> str:
    """Markdown table: the comparison, pairs, median and range (points), the paper's direction, verdict."""
    rows = [
        [
            f"`{e.toggle}` {e.treatment} vs {e.reference}",
            str(e.pairs),
            _points(e.median),
            f"{_points(min(e.differences))} … {_points(max(e.differences))}",
            f"{e.agreeing} / {e.opposing}",
            paper.TOGGLE_CLAIMS[e.toggle],
            e.verdict,
        ]
        for e in effects
    ]
    header = ["comparison", "pairs", "median (points)", "range", "paper's way / against", "paper", "search"]
    return "\n".join(table(header, rows)).rstrip()


def _by_config(executions: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The executions grouped by configuration (hyperparameters as canonical JSON), first seen first."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in executions:
        grouped.setdefault(json.dumps(record["hyperparameters"], sort_keys=True), []).append(record)
    return grouped


def ranked_trials(executions: Sequence[Mapping[str, Any]], dimensions: Sequence[str]) -> str:
    """Markdown table of the configurations, best mean objective first, with every seed's figures."""
    by_config = _by_config(executions)
    ranked = sorted(
        by_config.values(),
        key=lambda runs: (-statistics.mean(r["max_val_accuracy"] for r in runs), runs[0]["trial_id"]),
    )
    rows = []
    for rank, runs in enumerate(ranked, start=1):
        runs = sorted(runs, key=lambda r: r["seed"])
        values = runs[0]["hyperparameters"]
        rows.append(
            [
                str(rank),
                runs[0]["trial_id"],
                *(str(values.get(name)) for name in dimensions),
                f"{100 * statistics.mean(r['max_val_accuracy'] for r in runs):.2f}",
                " / ".join(f"{100 * r['max_val_accuracy']:.2f}" for r in runs),
                " / ".join(f"{100 * r['val_accuracy_at_best_loss']:.2f}" for r in runs),
                " / ".join(str(r["epochs_run"]) for r in runs),
                " / ".join(str(r["seed"]) for r in runs),
            ]
        )
    header = [
        "rank", "trial", *dimensions, "mean best val acc (%)", "best val acc per seed (%)",
        "val acc at lowest val loss per seed (%)", "epochs per seed", "seeds",
    ]  # fmt: skip
    return "\n".join(table(header, rows)).rstrip()


def coverage(executions: Sequence[Mapping[str, Any]], executions_per_trial: int) -> tuple[int, int]:
    """(configurations with an execution, configurations with all ``executions_per_trial`` of them)."""
    runs = _by_config(executions).values()
    return len(runs), sum(len(found) >= executions_per_trial for found in runs)


def summary_markdown(
    executions: Sequence[Mapping[str, Any]],
    *,
    grid_size: int,
    executions_per_trial: int,
    analysis_link: str,
) -> str:
    """A short summary for the front page: coverage, the best configuration so far, each toggle's effect
    on the search's objective beside the paper's direction, and where the full analysis is."""
    started, complete = coverage(executions, executions_per_trial)
    lines = [
        f"{started} of {grid_size} configurations trained so far ({complete} with all {executions_per_trial} "
        f"seeds, {len(executions)} trainings); the [full analysis]({analysis_link}) ranks them all."
    ]
    if not executions:
        return lines[0]
    dimensions = list(paper.TOGGLE_DIRECTIONS)
    by_config = _by_config(executions)
    best = max(
        (runs for runs in by_config.values() if len(runs) >= executions_per_trial),
        key=lambda runs: statistics.mean(r["max_val_accuracy"] for r in runs),
        default=None,
    )
    if best is not None:
        values = best[0]["hyperparameters"]
        shown = ", ".join(f"{name} {values.get(name)}" for name in dimensions)
        per_seed = " / ".join(
            f"{100 * r['max_val_accuracy']:.2f}" for r in sorted(best, key=lambda r: r["seed"])
        )
        lines.append(
            f"Best so far: {shown} — best validation accuracy {per_seed} % (seeds "
            f"{', '.join(str(r['seed']) for r in sorted(best, key=lambda r: r['seed']))})."
        )
    effects = toggle_effects(executions, "max_val_accuracy")
    lines += ["", effects_table(effects) if effects else "No two configurations differ in one toggle yet."]
    return "\n".join(lines)


def analysis_markdown(
    executions: Sequence[Mapping[str, Any]],
    *,
    title: str,
    grid_size: int,
    executions_per_trial: int,
    context: str,
) -> str:
    """The whole analysis page: coverage, the effects on both metrics, disagreements, ranked trials."""
    dimensions = list(paper.TOGGLE_DIRECTIONS)
    started, complete = coverage(executions, executions_per_trial)
    lines = [
        f"# {title}",
        "",
        context,
        "",
        f"Coverage: {started} of {grid_size} configurations trained, {complete} with all "
        f"{executions_per_trial} executions; {len(executions)} executions in all.",
        "",
    ]
    if not executions:
        lines.append("No execution has finished yet.")
        return "\n".join(lines) + "\n"
    first = toggle_effects(executions, "max_val_accuracy")
    for metric, heading in METRICS.items():
        effects = first if metric == "max_val_accuracy" else toggle_effects(executions, metric)
        lines += [f"## Toggle effects on the {heading}", "", effects_table(effects), ""]
    disagreements = [e for e in first if e.verdict != "agrees"]
    lines += ["## Where the search and the paper differ", ""]
    if not first:
        lines.append("No comparison yet: no two finished configurations differ in one toggle only.")
    elif disagreements:
        lines += [
            f"- `{e.toggle}` {e.treatment} vs {e.reference}: median {_points(e.median)} points over "
            f"{e.pairs} pairs ({e.agreeing} the paper's way, {e.opposing} against) — {e.verdict}; the paper: "
            f"{paper.TOGGLE_CLAIMS[e.toggle]}."
            for e in disagreements
        ]
    else:
        lines.append("Nowhere: every comparison points the paper's way.")
    lines += ["", "## Configurations ranked by the objective", "", ranked_trials(executions, dimensions)]
    return "\n".join(lines) + "\n"
