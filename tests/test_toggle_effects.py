"""The toggle-effects analysis of a grid search: pairing, medians, verdicts, and the committed page."""

from __future__ import annotations

import importlib.util
import itertools
import json
import pathlib

import pytest

from zoo.study import paper
from zoo.study.toggle_effects import (
    analysis_markdown,
    paired_differences,
    read_executions,
    summary_markdown,
    toggle_effects,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _executions(effect: dict[str, float], noise: float = 0.0) -> list[dict]:
    """A full grid whose accuracy is 0.6 plus one additive effect per toggle value (and a seed offset)."""
    grid = itertools.product(("linear", "relu"), (0.0, 0.5), (0.0, 0.2), (False, True))
    records = []
    for trial, (activation, fc_dropout, conv_dropout, batch_norm) in enumerate(grid):
        values = {"fc_activation": activation, "fc_dropout": fc_dropout, "conv_dropout": conv_dropout,
                  "batch_norm": batch_norm}  # fmt: skip
        for execution, seed in enumerate((0, 1)):
            accuracy = 0.6 + noise * seed + sum(effect.get(f"{k}={v}", 0.0) for k, v in values.items())
            records.append({
                "trial_id": f"{trial:02d}", "execution": execution, "seed": seed, "hyperparameters": values,
                "epochs_run": 50, "best_epoch": 25, "val_loss": 0.5, "max_val_accuracy": accuracy,
                "val_accuracy_at_best_loss": accuracy - 0.01,
            })  # fmt: skip
    return records


def test_pairs_differ_in_one_toggle_and_share_the_seed():
    records = _executions({"fc_activation=relu": 0.05}, noise=0.1)
    differences = paired_differences(records, "fc_activation", "relu", "linear")
    assert len(differences) == 8 * 2  # 8 settings of the other toggles x 2 seeds
    assert differences == pytest.approx([0.05] * 16)  # the seed offset cancels within a pair


def test_effects_follow_the_data_and_verdicts_compare_with_the_paper():
    records = _executions({"fc_activation=relu": 0.04, "batch_norm=True": 0.02, "conv_dropout=0.2": -0.03})
    effects = {(e.toggle, e.treatment): e for e in toggle_effects(records)}
    assert set(effects) == {("fc_activation", "relu"), ("fc_dropout", 0.5), ("conv_dropout", 0.2),
                            ("batch_norm", True)}  # fmt: skip
    assert effects[("fc_activation", "relu")].median == pytest.approx(0.04)
    assert effects[("fc_activation", "relu")].verdict == "agrees"
    assert effects[("batch_norm", True)].verdict == "disagrees"  # the paper: batch norm hurts
    assert effects[("conv_dropout", 0.2)].verdict == "agrees"
    assert effects[("fc_dropout", 0.5)].verdict == "mixed"  # no effect at all
    page = analysis_markdown(records, title="t", grid_size=16, executions_per_trial=2, context="c")
    assert "16 of 16 configurations trained, 16 with all 2 executions" in page
    assert "`batch_norm` True vs False: median +2.00 points over 16 pairs" in page
    assert page.count("| agrees |") == 2 * 2  # both metrics


def test_the_summary_names_coverage_the_best_complete_configuration_and_the_effects():
    records = _executions({"fc_activation=relu": 0.04, "batch_norm=True": -0.3})
    summary = summary_markdown(records, grid_size=32, executions_per_trial=2, analysis_link="a.md")
    assert summary.startswith("16 of 32 configurations trained so far (16 with all 2 seeds, 32 trainings)")
    assert "Best so far: fc_activation relu, fc_dropout 0.0, conv_dropout 0.0, batch_norm False" in summary
    assert "| `batch_norm` True vs False | 16 | -30.00 |" in summary
    lone = [r for r in records if r["execution"] == 0][:1]  # one seed of one configuration: no best yet
    text = summary_markdown(lone, grid_size=32, executions_per_trial=2, analysis_link="a.md")
    assert "Best so far" not in text and "No two configurations differ in one toggle yet." in text
    assert summary_markdown([], grid_size=32, executions_per_trial=2, analysis_link="a.md").startswith(
        "0 of 32"
    )


def test_a_rerun_execution_replaces_the_earlier_record(tmp_path):
    path = tmp_path / "executions.jsonl"
    first, again = _executions({})[0], {**_executions({})[0], "max_val_accuracy": 0.9}
    path.write_text("\n".join(__import__("json").dumps(r) for r in (first, again)) + "\n")
    assert [r["max_val_accuracy"] for r in read_executions(path)] == [0.9]
    assert read_executions(tmp_path / "missing.jsonl") == []


def test_every_toggle_of_the_paper_has_a_direction_and_a_claim():
    assert set(paper.TOGGLE_DIRECTIONS) == set(paper.TOGGLE_CLAIMS)
    assert all(sign in (-1, 1) for _, sign in paper.TOGGLE_DIRECTIONS.values())


def _search_script():
    """``benchmarks/experiments/tuning_converged.py`` as a module."""
    path = ROOT / "benchmarks" / "experiments" / "tuning_converged.py"
    spec = importlib.util.spec_from_file_location("tuning_converged", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_committed_analysis_is_current():
    script = _search_script()
    root = ROOT / script.RESULTS
    committed = (root / script.ANALYSIS).read_text()
    stale = "stale: run benchmarks/experiments/tuning_converged.py --analyse"
    assert script.analysis_text(root) == committed, stale
    assert script.stale_summaries(root) == [], stale  # the README's and the tuning page's summaries


def test_the_search_script_counts_trials_by_status(tmp_path):
    script = _search_script()
    for trial_id, status in (("0", "COMPLETED"), ("1", "FAILED"), ("2", "COMPLETED"), ("3", "RUNNING")):
        (tmp_path / f"trial_{trial_id}").mkdir()
        (tmp_path / f"trial_{trial_id}" / "trial.json").write_text(
            json.dumps({"trial_id": trial_id, "status": status})
        )
    assert script.trials_with_status(tmp_path, "FAILED") == ["1"]
    assert script.completed_trials(tmp_path) == 2
