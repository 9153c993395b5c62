"""The trials table of a search: every trial's hyperparameters, score, best epoch and metrics, ranked (CSV and
markdown)."""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from zoo.training.tuning.space import tidy

#: Metrics of a trial reported in the trials table (values at the trial's best epoch).
TABLE_METRICS: tuple[str, ...] = ("val_accuracy", "val_loss", "accuracy", "loss")
TRIALS_CSV = "trials.csv"
TRIALS_MARKDOWN = "trials.md"


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
                **{name: tidy(values.get(name)) for name in names},
                "score": float(trial.score) if trial.score is not None else None,
                "best_epoch": trial.best_step + 1
                if trial in ranked and trial.best_step is not None
                else None,
                **metrics,
            }
        )
    return rows


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
