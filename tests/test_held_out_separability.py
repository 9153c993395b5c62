"""Which held-out classes any detector can tell from the known ones (zoo.study.ceiling.held_out_separability),
on configs where the answer is known in closed form, and the calibration script's rows and report for it and
for capped trainings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from synthetic_spectra.config import DatasetConfig, TestSpec, get_config
from synthetic_spectra.generator import sample_parameters
from zoo.inference.calibration import split_classes
from zoo.study.ceiling import bayes_detection_auroc, held_out_separability, template_match

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibration.py"


def load_script():
    spec = importlib.util.spec_from_file_location("calibration_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def three_peaks() -> DatasetConfig:
    """Three classes of one fixed peak each at 500, 530 and 800, jittered by +-50 points: 500 and 530
    share 70 of their 100 positions, 800 shares none."""
    return DatasetConfig(
        name="three", datapoints=1000, boundary=100, positions=((500,), (530,), (800,)),
        heights=((1.0,), (1.0,), (1.0,)), n_train=2000, n_val=10, position_shift=50, height_variation=0.05,
        sigma_range=(2.0, 3.0), vary_unit_height=False, seed=3, test=TestSpec(shift=30, patterns=("PH",)),
    )  # fmt: skip


def test_overlapping_held_out_class_gives_the_closed_form_shares_and_bayes_auroc() -> None:
    config = three_peaks()
    known, unknown = split_classes(config, [1, 2])
    result = held_out_separability(
        config, [1, 2], sample_parameters(known, "train"), sample_parameters(unknown, "train")
    )
    near, far = result
    assert (near.label, far.label) == (1, 2) and near.size == far.size == 2000
    # class 1's positions 480..579 against class 0's 450..549: 70 % of each is the other's too
    assert near.producible == pytest.approx(0.70, abs=0.03)
    assert near.explained == pytest.approx(near.producible)  # equal densities where both fit
    assert near.cost == pytest.approx(0.70, abs=0.03)
    assert set(near.producers) == {0}
    # known scores 1 (outside) or 2/3 (inside: p_known 1, p_held (1 + 0) / 2); unknown 2/3 or 0: ties half
    assert near.bayes_auroc == pytest.approx(1 - 0.5 * 0.7 * 0.7, abs=0.03)
    assert (far.producible, far.explained, far.cost, far.producers, far.bayes_auroc) == (
        0.0,
        0.0,
        0.0,
        {},
        1.0,
    )
    assert bayes_detection_auroc(result) == pytest.approx((near.bayes_auroc + 1.0) / 2)
    assert near.nearest == ((0, pytest.approx(0.6), "peak at 530 → 500 (-30 points)"),)


def test_template_match_hides_vanishable_peaks_and_names_the_change() -> None:
    challenge = get_config("challenge")
    assert template_match(challenge, 1, 0) == (pytest.approx(0.7), "peak at 1800 (0.035) absent")
    distance, words = template_match(challenge, 13, 12)
    assert distance == pytest.approx(70 / 50 + 2 / 50)
    assert words == "peak at 1300 → 1230 (-70 points), peak at 2101 → 2103 (+2 points)"
    assert template_match(challenge, 19, 18) == (pytest.approx(1.5), "peak at 920 height 0.155 → 0.08")
    # 2 peaks against 3 of which none can vanish (heights 0.15, 0.2, 1.0 against a 0.05 variation)
    assert template_match(challenge, 9, 15) == (math.inf, "2 peaks against 3")


def unseen_row(model: str, training: dict, score: str = "knn") -> dict:
    return {
        "kind": "unseen", "model": model, "source": "saved_models/x", "trained_on": "mini_known8",
        "model_seeds": [0], "hold_out": [0, 1], "training": training, "hardware": "test CPU",
        "load": "load 1", "known_set": "mini_known8 fresh draw 1 train", "known_size": 160,
        "unknown_set": "mini_unknown2 fresh draw 1 train", "unknown_size": 40, "score": score,
        "auroc": 0.9, "threshold": -0.5, "false_alarm_rate": 0.05, "detected": 0.5, "known_accuracy": 0.9,
        "known_coverage": 0.95, "known_accepted_accuracy": 0.92,
        "auroc_per_held_out_class": {"0": 0.8, "1": 1.0}, "detected_per_held_out_class": {"0": 0.2, "1": 0.8},
        "known_scores_hist": [1] * 20, "unknown_scores_hist": [1] * 20, "hist_range": [-1.0, 0.0],
    }  # fmt: skip


def record(epochs: int, cap: int, stop: str) -> dict:
    return {
        "seed": 0, "epochs_run": epochs, "best_epoch": epochs, "max_epochs": cap, "es_patience": 25,
        "lr_patience": 10, "val_accuracy": 0.9, "train_seconds": 10.0, "stop_reason": stop,
    }  # fmt: skip


def test_capped_trainings_get_their_own_tables_and_separability_its_section(tmp_path: Path) -> None:
    script = load_script()
    assert script.is_capped(record(30, 30, "max_epochs"))
    assert not script.is_capped(record(80, 500, "early_stopping"))
    assert not script.is_capped(record(500, 500, "max_epochs"))  # the protocol's own end
    rows = [
        unseen_row("full", record(80, 500, "early_stopping")),
        unseen_row("short", record(30, 30, "max_epochs")),
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert script.main(["separability", "--dataset", "mini", "--hold-out", "0-1", "--per-class", "5",
                        "--out", str(tmp_path)]) == 0  # fmt: skip
    written = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    separable = [r for r in written if r["kind"] == "separability"]
    assert [r["set"] for r in separable] == ["class 0", "class 1", "all held-out classes"]
    assert all(0.0 <= r["bayes_auroc"] <= 1.0 for r in separable)
    text = (tmp_path / "calibration.md").read_text()
    plain, capped = text.split("## Unseen classes: mini_known8 — capped trainings, not at the protocol's end")
    assert "| full (0) |" in plain and "short" not in plain.split("## Models")[1].split("## Unseen")[1]
    assert "| short (0) [capped: 30 of 30 epochs, max_epochs] |" in capped and "| full (0)" not in capped
    assert "**CAPPED** at 30 epochs (the protocol: 500)" in text
    assert "## Which held-out classes can be detected at all: mini_known8" in text
    assert (tmp_path / "unseen.png").is_file()


def test_separability_bad_per_class_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load_script().main(["separability", "--per-class", "0", "--out", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err == "calibration.py: error: --per-class: must be a positive integer, got 0\n"
    )
    assert not (tmp_path / "rows.jsonl").exists()
