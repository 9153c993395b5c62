"""The generated tables of runs at the protocol's end (docs and README) are what the committed rows give."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    path = ROOT / "benchmarks" / "experiments" / "converged_table.py"
    spec = importlib.util.spec_from_file_location("converged_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_match_the_committed_rows(table):
    assert table.main(["--check"]) == 0, "run: python benchmarks/experiments/converged_table.py --write"


def test_render_shows_the_paper_figure_and_the_stop_reason(table):
    row = {"dataset": "challenge", "model": "cnn6", "variant": "relu", "seed": 0, "test_accuracy": 0.8519,
           "misclassified": 24, "test_size": 162, "val_accuracy": 0.8, "epochs_run": 134, "best_epoch": 108,
           "stop_reason": "early_stopping", "wall_time_s": 2220.0, "precision": "float32",
           "hardware": "2-core CPU (AMD EPYC)", "run_id": "challenge/cnn6-relu-seed0"}  # fmt: skip
    check = {**row, "precision": "mixed_bfloat16", "test_accuracy": 0.85, "wall_time_s": 1300.0}
    text = table.render([row], [check])
    line = "| challenge | cnn6 | relu | 0 | 85.19 % | 24/162 | 85.19 % (median) | 80.00 % | 134 (109) | early"
    assert line in text
    assert "Precision check, `challenge/cnn6-relu-seed0`: mixed_bfloat16 85.00 %" in text


def test_replace_block_needs_both_markers_once(table):
    from zoo.study.blocks import markers, replace_block

    with pytest.raises(ValueError, match="once each"):
        replace_block("no markers here", "t", "x")
    begin, end = markers("t")
    assert replace_block(f"a\n{begin}\nold\n{end}\nb", "t", "new") == f"a\n{begin}\nnew\n{end}\nb"


def test_render_v4_lists_cross_tests_and_medians_per_training_set(table):
    base = {"dataset": "challenge", "model": "prnet", "variant": "v4", "misclassified": 13, "test_size": 162,
            "epochs_run": 80, "best_epoch": 54, "stop_reason": "early_stopping", "wall_time_s": 151.0,
            "precision": "mixed_bfloat16", "hardware": "2-core CPU (AMD EPYC)"}  # fmt: skip
    rows = [
        {**base, "seed": 0, "test_accuracy": 0.9198, "val_accuracy": 0.8444,
         "cross_tests": {"challenge_realistic": {"test_accuracy": 0.7593}}},
        {**base, "seed": 1, "test_accuracy": 0.90, "val_accuracy": 0.84},
        {**base, "seed": 2, "test_accuracy": 0.80, "val_accuracy": 0.86},
    ]  # fmt: skip
    text = table.render_v4(rows)
    assert "| challenge | 0 | 91.98 % | 13/162 | 84.44 % | challenge_realistic 75.93 % | 80 (55) |" in text
    assert "| challenge | 1 | 90.00 % | 13/162 | 84.00 % | – |" in text
    assert "- `challenge` (seeds 0, 1, 2): test 90.00 %, validation 84.44 %." in text
