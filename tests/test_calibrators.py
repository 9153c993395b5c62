"""The calibrators measured beyond one temperature (benchmarks/experiments/calibrators.py), on logits whose
calibration is known."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

from zoo.inference import calibration as cal

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibrators.py"


@pytest.fixture(scope="module")
def calibrators():
    spec = importlib.util.spec_from_file_location("calibrators_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _draw(n: int, seed: int, scale: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``z`` whose labels are drawn from ``softmax(scale * z + bias)``: miscalibrated per class."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, len(scale)))
    probabilities = cal.softmax(logits * scale + bias)
    labels = (rng.uniform(size=(n, 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    return logits, np.minimum(labels, len(scale) - 1)


SCALE, BIAS = np.array([2.0, 0.5, 1.0, 1.5]), np.array([0.5, -0.5, 0.0, 0.3])


def test_vector_scaling_recovers_a_scale_and_bias_per_class(calibrators) -> None:
    logits, labels = _draw(20_000, 0, SCALE, BIAS)
    scale, bias = calibrators.fit_vector_scaling(logits, labels)
    np.testing.assert_allclose(scale, SCALE, atol=0.15)
    np.testing.assert_allclose(bias - bias.mean(), BIAS - BIAS.mean(), atol=0.15)  # up to a constant


def test_the_top_label_floor_is_what_a_calibrated_confidence_shows(calibrators) -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.3, 1.0, size=5_000)
    correct = rng.uniform(size=5_000) < confidence  # calibrated by construction
    measured = cal.confidence_reliability(confidence, correct).ece
    floor = calibrators.top_label_floor(confidence)
    assert 0.0 < floor < 0.03 and abs(measured - floor) < 0.01
    assert cal.confidence_reliability(np.minimum(confidence + 0.2, 1.0), correct).ece > floor + 0.05


def test_every_calibrator_is_judged_on_the_other_draw(calibrators) -> None:
    fit, judged, validation = (_draw(n, seed, SCALE, BIAS) for n, seed in ((8_000, 2), (8_000, 3), (300, 4)))
    rows = calibrators.measure(fit, judged, validation, ("fit draw", "judge draw", "validation"))
    by_name = {(row["calibrator"], row["fitted_on"]): row for row in rows}
    assert list(by_name) == [
        ("none (raw softmax)", "–"),
        ("temperature", "validation"),
        ("temperature", "fit draw"),
        ("vector scaling", "fit draw"),
        ("top-label isotonic (after temperature)", "fit draw"),
    ]
    raw, vector = by_name[("none (raw softmax)", "–")], by_name[("vector scaling", "fit draw")]
    isotonic = by_name[("top-label isotonic (after temperature)", "fit draw")]
    assert vector["nll"] < raw["nll"] and vector["ece"] < raw["ece"]  # the true map is a vector scaling
    assert isotonic["ece"] < raw["ece"] and isotonic["nll"] is None
    assert isotonic["accuracy"] == by_name[("temperature", "fit draw")]["accuracy"]  # predictions unchanged
    page = calibrators.table([{**row, "preset": "p", "judged_on": "j", "judged_size": 8000,
                               "hardware": "h", "seconds": 1.0} for row in rows])  # fmt: skip
    assert "| vector scaling | fit draw |" in page and "Judged on j; h, 1 s." in page


def test_an_unknown_preset_is_one_line(calibrators, capsys, tmp_path) -> None:
    assert calibrators.main(["--presets", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset 'nope'" in err and not (tmp_path / "o").exists()


def test_the_committed_table_is_generated_from_the_committed_rows(calibrators, tmp_path) -> None:
    rows = calibrators._read_rows(calibrators.OUT / calibrators.ROWS_FILE)
    assert rows and {row["preset"] for row in rows} <= {
        "vgg_relu_challenge",
        "prnet_challenge",
        "prnet_v4_challenge",
    }
    committed = (calibrators.OUT / calibrators.TABLE_FILE).read_text(encoding="utf-8")
    assert committed == calibrators.table(rows), (
        "stale: run python benchmarks/experiments/calibrators.py --table"
    )
    (tmp_path / calibrators.ROWS_FILE).write_text((calibrators.OUT / calibrators.ROWS_FILE).read_text())
    assert calibrators.main(["--table", "--out", str(tmp_path)]) == 0
    assert (tmp_path / calibrators.TABLE_FILE).read_text(encoding="utf-8") == committed
