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


def test_the_top_label_floor_is_what_a_calibrated_confidence_shows() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.3, 1.0, size=5_000)
    correct = rng.uniform(size=5_000) < confidence  # calibrated by construction
    measured = cal.confidence_reliability(confidence, correct).ece
    floor = cal.confidence_noise_floor(confidence)
    assert 0.0 < floor < 0.03 and abs(measured - floor) < 0.01
    assert cal.confidence_reliability(np.minimum(confidence + 0.2, 1.0), correct).ece > floor + 0.05


def test_every_calibrator_is_judged_on_the_other_draw(calibrators) -> None:
    fit, judged, validation = (_draw(n, seed, SCALE, BIAS) for n, seed in ((8_000, 2), (8_000, 3), (300, 4)))
    rows = calibrators.measure(fit, judged, validation, ("fit draw", "judge draw", "validation"))
    by_name = {(row["calibrator"], row["fitted_on"], row["judged_on"]): row for row in rows}
    shipped = calibrators.SHIPPED
    assert list(by_name) == [
        ("none (raw softmax)", "–", "judge draw"),
        ("temperature", "validation", "judge draw"),
        ("temperature", "fit draw", "judge draw"),
        ("vector scaling", "fit draw", "judge draw"),
        (shipped, "fit draw", "judge draw"),
        ("temperature", "validation", "validation"),
        (shipped, "fit draw", "validation"),
    ]
    assert {row["judged_size"] for row in rows if row["judged_on"] == "validation"} == {300}
    raw, vector = (
        by_name[("none (raw softmax)", "–", "judge draw")],
        by_name[("vector scaling", "fit draw", "judge draw")],
    )
    mapped = by_name[(shipped, "fit draw", "judge draw")]
    temperature = by_name[("temperature", "validation", "judge draw")]
    assert vector["nll"] < raw["nll"] and vector["ece"] < raw["ece"]  # the true map is a vector scaling
    assert mapped["ece"] < temperature["ece"] and mapped["nll"] is None
    assert mapped["accuracy"] == temperature["accuracy"]  # predictions unchanged
    # the row holds the map itself, after the validation temperature: what `calibration.py ship` ships
    assert mapped["temperature"] == pytest.approx(temperature["temperature"])
    confidence_map = cal.ConfidenceMap.from_dict(mapped["confidence_map"])
    calibration = cal.Calibration(mapped["temperature"], confidence_map=confidence_map)
    z, y = judged
    recomputed = cal.confidence_reliability(calibration.confidence(z), cal.softmax(z).argmax(axis=1) == y).ece
    assert recomputed == pytest.approx(mapped["ece"], abs=1e-6)
    # a preset's own temperature, where given, is the one under the map
    own = calibrators.measure(fit, judged, validation, ("f", "j", "v"), shipped_temperature=1.7)
    assert {row["temperature"] for row in own if row["calibrator"] == shipped} == {1.7}
    page = calibrators.table([{**row, "preset": "p", "hardware": "h", "seconds": 1.0} for row in rows])
    assert "| vector scaling | fit draw |" in page and "h, 1 s." in page
    assert "Judged on judge draw:" in page and "Judged on validation:" in page


def test_an_unknown_preset_is_one_line(calibrators, capsys, tmp_path) -> None:
    assert calibrators.main(["--presets", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset 'nope'" in err and not (tmp_path / "o").exists()
    argv = ["--presets", "vgg_relu_challenge", "--per-class", "10", "--out", str(tmp_path / "o")]
    assert calibrators.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "10 × 27 classes of vgg_relu_challenge is below the 2000" in err


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
