"""Calibrated confidence and unknown detection: the measures, the temperature fit, the export round trip, the
``predict`` command's ``unknown``, and exports written before calibration existed."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import UserError
from zoo.inference import calibration as cal

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

# --------------------------------------------------------------------------------- the measures (NumPy)


def test_ece_of_known_gaps() -> None:
    # 100 spectra at confidence 0.8 of which 60 are right: one bin, gap 0.2
    probabilities = np.tile([0.8, 0.2], (100, 1))
    labels = np.r_[np.zeros(60, int), np.ones(40, int)]
    assert cal.expected_calibration_error(probabilities, labels) == pytest.approx(0.2)
    # two bins: 50 at 0.95 all right (gap 0.05), 50 at 0.55 with 30 right (gap 0.05) -> 0.05
    probabilities = np.r_[np.tile([0.95, 0.05], (50, 1)), np.tile([0.55, 0.45], (50, 1))]
    labels = np.r_[np.zeros(50, int), np.zeros(30, int), np.ones(20, int)]
    diagram = cal.reliability(probabilities, labels, bins=10)
    assert diagram.ece == pytest.approx(0.05) and diagram.max_gap == pytest.approx(0.05)
    assert diagram.counts.sum() == 100 and np.isnan(diagram.accuracy[0])
    # a perfectly calibrated population (labels drawn from the probabilities) has a small ECE
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 200_000)
    labels = (rng.uniform(size=confidence.size) > confidence).astype(int)
    assert cal.expected_calibration_error(np.c_[confidence, 1 - confidence], labels) < 0.005


def test_confidence_of_exactly_one_lands_in_the_last_bin() -> None:
    diagram = cal.reliability(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]), bins=4)
    assert diagram.counts.tolist() == [0, 0, 0, 2] and diagram.ece == pytest.approx(0.5)


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 4.0, (30_000, 8))
    probabilities = cal.softmax(logits, true_temperature)
    labels = (rng.uniform(size=(len(logits), 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
    fitted = cal.fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    before = cal.expected_calibration_error(cal.softmax(logits), labels)
    after = cal.expected_calibration_error(cal.softmax(logits, fitted), labels)
    assert after < 0.01 < before


def test_auroc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(2)
    known, unknown = rng.integers(0, 10, 60).astype(float), rng.integers(0, 8, 40).astype(float)
    pairs = (known[:, None] > unknown[None, :]) + 0.5 * (known[:, None] == unknown[None, :])
    assert cal.auroc(known, unknown) == pytest.approx(pairs.mean())
    assert cal.auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and cal.auroc([0.0], [1.0]) == 0.0


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2])
def test_threshold_rejects_at_most_the_stated_share_of_known_spectra(rate: float) -> None:
    scores = np.random.default_rng(3).uniform(size=1000)
    threshold = cal.threshold_for_false_alarms(scores, rate)
    rejected = cal.rejected(scores, threshold).mean()
    assert rejected <= rate and rejected >= rate - 0.002
    assert not cal.rejected(scores, None).any()


def test_selective_curve_accepts_the_most_confident_first() -> None:
    scores = np.array([0.9, 0.2, 0.8, 0.4])
    correct = np.array([True, False, True, False])
    curve = cal.selective_curve(scores, correct)
    assert curve.coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve.accuracy.tolist() == [1.0, 1.0, pytest.approx(2 / 3), 0.5]
    assert curve.accuracy_at(0.5) == 1.0
    assert cal.selective_accuracy(scores, correct, 0.5) == (0.5, 1.0)


def test_energy_depends_on_the_logits_level_and_max_probability_does_not() -> None:
    logits = np.array([[3.0, 1.0, 0.0]])
    assert cal.max_probability(logits + 5.0) == pytest.approx(cal.max_probability(logits))
    assert cal.energy_score(logits + 5.0) == pytest.approx(cal.energy_score(logits) + 5.0)
    assert cal.energy_score(logits)[0] == pytest.approx(np.log(np.exp(logits).sum()))


def test_calibration_record_round_trip_and_errors() -> None:
    record = cal.Calibration(1.7, 0.42, 0.05, notes={"fitted_on": "x"})
    assert cal.Calibration.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert cal.Calibration.from_dict(None).is_identity
    for bad, message in [
        ({"temperature": 0}, "positive"),
        ({"temperature": "hot"}, "number"),
        ({"threshold": 1.5}, r"\[0, 1\]"),
        ({"colour": 1}, "unknown field 'colour'"),
    ]:
        with pytest.raises(ValueError, match=message):
            cal.Calibration.from_dict(bad)


def test_the_confidence_map_is_the_isotonic_fit_of_being_right() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(7)
    top = rng.uniform(0.3, 1.0, size=20_000)
    right = rng.uniform(size=top.size) < top**2  # overconfident: right with probability top²
    confidence_map = cal.fit_confidence_map(top, right, notes={"fitted_on": "a toy draw"})
    assert confidence_map.notes == {"fitted_on": "a toy draw", "spectra": 20_000}
    assert np.all(np.diff(confidence_map.x) > 0) and np.all(np.diff(confidence_map.y) >= 0)
    probe = np.linspace(0.0, 1.0, 501)
    reference = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top, right)
    np.testing.assert_allclose(confidence_map(probe), reference.predict(probe), atol=1e-12)
    fresh_top = rng.uniform(0.3, 1.0, size=20_000)
    fresh_right = rng.uniform(size=fresh_top.size) < fresh_top**2
    before = cal.confidence_reliability(fresh_top, fresh_right).ece
    after = cal.confidence_reliability(confidence_map(fresh_top), fresh_right).ece
    assert before > 0.1 and after < 0.02  # judged on another draw
    assert np.isnan(confidence_map(np.array([np.nan])))[0]
    with pytest.raises(ValueError, match="at least 2000 labelled spectra, got 500"):
        cal.fit_confidence_map(top[:500], right[:500])
    with pytest.raises(ValueError, match="whether its prediction is right"):
        cal.fit_confidence_map(top, np.where(right, 2.0, 0.0))


def test_confidence_map_record_round_trip_and_errors() -> None:
    confidence_map = cal.ConfidenceMap([0.1, 0.5, 0.9], [0.05, 0.3, 0.95], {"fitted_on": "x"})
    record = cal.Calibration(1.7, 0.42, 0.05, confidence_map=confidence_map)
    again = cal.Calibration.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.confidence_map == confidence_map
    assert record != cal.Calibration(1.7, 0.42, 0.05)  # the map counts
    for bad_notes in (5, "ab"):
        bad_map = {"x": [0.1], "y": [0.1], "notes": bad_notes}
        with pytest.raises(ValueError, match="notes must be an object"):
            cal.Calibration.from_dict({"temperature": 1.0, "confidence_map": bad_map})
        with pytest.raises(ValueError, match=r"^calibration\.notes must be an object"):
            cal.Calibration.from_dict({"temperature": 1.0, "notes": bad_notes})
    assert not cal.Calibration(confidence_map=confidence_map).is_identity
    # fitted on top of the calibration's own temperature, keeping the rest of it
    rng = np.random.default_rng(8)
    held_out_logits, held_out_labels = rng.normal(0.0, 2.0, size=(3000, 4)), rng.integers(0, 4, size=3000)
    mapped = record.with_confidence_map(held_out_logits, held_out_labels, notes={"fitted_on": "toy"})
    expected = cal.fit_confidence_map(cal.max_probability(held_out_logits, 1.7),
                                      held_out_logits.argmax(axis=1) == held_out_labels,
                                      notes={"fitted_on": "toy"})  # fmt: skip
    assert mapped.confidence_map == expected and (mapped.temperature, mapped.threshold) == (1.7, 0.42)
    logits = np.array([[2.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    top = cal.max_probability(logits, 1.7)
    np.testing.assert_allclose(record.confidence(logits), np.interp(top, confidence_map.x, confidence_map.y),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(cal.Calibration(1.7).confidence(logits), top, rtol=1e-6)
    for bad, message in [
        ({"x": [0.2, 0.1], "y": [0.1, 0.2]}, "strictly increasing"),
        ({"x": [0.1, 0.2], "y": [0.3, 0.2]}, "non-decreasing"),
        ({"x": [0.1, 1.2], "y": [0.1, 0.2]}, r"\[0, 1\]"),
        ({"x": [0.1], "y": [0.1, 0.2]}, "equal-length"),
        ({"x": ["a"], "y": [0.1]}, "numbers"),
        ({"x": [0.1]}, "needs x and y"),
        ({"x": [0.1], "y": [0.1], "z": 1}, "unknown field 'z'"),
    ]:
        with pytest.raises(ValueError, match=message):
            cal.Calibration.from_dict({"temperature": 1.0, "confidence_map": bad})


def test_assess_gives_what_probabilities_confidence_and_unknown_give() -> None:
    rng = np.random.default_rng(9)
    logits, scores = rng.normal(0.0, 3.0, size=(200, 5)), rng.uniform(-1.0, 0.0, size=200)
    confidence_map = cal.ConfidenceMap([0.2, 0.6, 1.0], [0.1, 0.5, 0.97])
    bank = cal.feature_bank(rng.normal(size=(10, 4)))
    for record in (
        cal.Calibration(1.3, 0.55, 0.05, confidence_map=confidence_map,
                        feature_distance=cal.FeatureDistance(-0.5, 3, bank)),
        cal.Calibration(0.8, 0.4, 0.05),
        cal.Calibration(),
    ):  # fmt: skip
        for feature_scores in (scores, None):
            probabilities, confidence, unknown = record.assess(logits, feature_scores)
            np.testing.assert_array_equal(probabilities, record.probabilities(logits))
            np.testing.assert_array_equal(confidence, record.confidence(logits))
            np.testing.assert_array_equal(unknown, record.unknown(logits, feature_scores))
            assert probabilities.dtype == confidence.dtype == np.float32 and unknown.dtype == bool
    flagged = cal.Calibration(1.3, 0.55, 0.05, feature_distance=cal.FeatureDistance(-0.5, 3, bank))
    by_probability = flagged.assess(logits)[2]
    assert 0 < by_probability.sum() < flagged.assess(logits, scores)[2].sum()  # the feature rule adds flags


def test_joint_threshold_keeps_both_rules_within_the_budget() -> None:
    rng = np.random.default_rng(7)
    softmax_like, distance_like = rng.normal(size=400), rng.normal(size=400)
    by_softmax = cal.rejected(softmax_like, cal.threshold_for_false_alarms(softmax_like, 0.025))
    threshold = cal.joint_threshold(distance_like, by_softmax, 0.05)
    together = by_softmax | cal.rejected(distance_like, threshold)
    assert by_softmax.sum() == 10 and together.sum() == 20  # 5 % of 400, the second rule fills the rest
    assert cal.joint_threshold(distance_like, np.ones(400, bool), 0.05) == -np.inf  # budget used up


def test_feature_rule_record_round_trip_and_errors() -> None:
    rng = np.random.default_rng(8)
    bank = cal.feature_bank(rng.normal(size=(30, 4)))
    assert bank.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(bank.astype(float), axis=1), 1.0, atol=1e-3)
    record = cal.Calibration(1.5, 0.4, 0.05, feature_distance=cal.FeatureDistance(-0.5, 3, bank))
    read = cal.Calibration.from_dict(json.loads(json.dumps(record.to_dict())))
    rule = read.feature_distance
    assert (rule.threshold, rule.k, rule.bank_size, rule.features, rule.bank) == (-0.5, 3, 30, 4, None)
    with pytest.raises(ValueError, match="read without its bank"):
        rule.scores(bank)
    np.testing.assert_array_equal(read.with_bank(bank).feature_distance.bank, bank)
    with pytest.raises(ValueError, match="feature bank: 20 rows, but the record says bank_size 30"):
        read.with_bank(bank[:20])
    with pytest.raises(ValueError, match="feature rule's bank is missing"):
        read.with_bank(None)
    for change, message in (({"k": 0}, "k must be"), ({"threshold": 0.5}, r"threshold must lie in \[-2, 0\]"),
                            ({"extra": 1}, "unknown field 'extra'")):  # fmt: skip
        data = record.to_dict()
        data["feature_distance"].update(change)
        with pytest.raises(ValueError, match=message):
            cal.Calibration.from_dict(data)
    subset = cal.per_class_subset(np.repeat(np.arange(3), 5), 2)
    np.testing.assert_array_equal(subset, [0, 1, 5, 6, 10, 11])
    assert (cal.scaled_k(50, 50), cal.scaled_k(25, 50), cal.scaled_k(2, 50)) == (10, 5, 1)
    assert cal.bank_per_class(500, 186, 50) == 21 and cal.bank_per_class(27, 186, 50) == 50


def test_split_classes_keeps_the_peaks_and_renumbers() -> None:
    from synthetic_spectra.config import get_config
    from synthetic_spectra.generator import generate

    config = get_config("challenge")
    known, unknown = cal.split_classes(config, [6, 7, 8])
    assert (known.num_classes, unknown.num_classes) == (24, 3)
    assert unknown.positions == config.positions[6:9] and known.positions[6] == config.positions[9]
    assert known.name == "challenge_known24"
    _, labels = generate(unknown, "validation")
    assert sorted(set(labels.tolist())) == [0, 1, 2]
    with pytest.raises(ValueError, match="held_out"):
        cal.split_classes(config, range(27))


# ----------------------------------------------------------------------- exports, predictor and command

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def mini_model():
    import zoo

    keras.utils.set_random_seed(0)
    return zoo.build("prnet", num_classes=10, input_length=1000)


@pytest.fixture(scope="module")
def spectra() -> np.ndarray:
    from synthetic_spectra.generator import generate

    return generate("mini", "validation")[0][:12]


@pytest.fixture(scope="module")
def calibrated_export(mini_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import zoo

    record = cal.Calibration(2.5, 0.99, 0.05, notes={"fitted_on": "test"})
    return zoo.export(mini_model, tmp_path_factory.mktemp("cal") / "export", dataset_config="mini",
                      calibration=record)  # fmt: skip


def test_a_temperature_the_spectra_cannot_pin_down_is_flagged() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, size=200)
    separated = np.eye(4)[labels] * 5.0 + rng.normal(0, 0.1, size=(200, 4))  # every spectrum right
    with pytest.warns(UserWarning, match="sits at its bound 0.01"):
        record = cal.fit_calibration(separated, labels, data="a toy validation split")
    assert record.notes["temperature_at_bound"] == 0.01
    noisy = rng.normal(0, 1.0, size=(200, 4)) + np.eye(4)[labels]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "temperature_at_bound" not in cal.fit_calibration(noisy, labels).notes


def test_export_round_trip_with_temperature_and_threshold(
    calibrated_export: Path, spectra, mini_model
) -> None:
    import zoo

    metadata = json.loads((calibrated_export / "metadata.json").read_text())
    assert metadata["calibration"]["temperature"] == 2.5 and metadata["calibration"]["threshold"] == 0.99
    predictor = zoo.load(calibrated_export)
    assert predictor.calibration.temperature == 2.5
    logits = predictor.predict_logits(spectra)
    raw = mini_model.predict((spectra / spectra.max(axis=1, keepdims=True))[..., None], verbose=0)
    np.testing.assert_allclose(cal.softmax(logits), raw, atol=1e-5)  # the raw logits stay available
    probabilities = predictor.predict(spectra)
    np.testing.assert_allclose(probabilities, cal.softmax(logits, 2.5), atol=1e-6)
    identified = predictor.identify(spectra)
    np.testing.assert_array_equal(identified.unknown, probabilities.max(axis=1) < 0.99)
    assert identified.unknown.any() and identified.names[0] == predictor.class_names[identified.best[0]]
    # the SavedModel's signatures give the same calibrated probabilities, the logits and the flag
    loaded = tf.saved_model.load(str(calibrated_export))
    for name, dtype in (("serving_default", tf.float32), ("serve_float64", tf.float64)):
        out = loaded.signatures[name](spectra=tf.constant(spectra, dtype))
        np.testing.assert_allclose(out["probabilities"].numpy(), probabilities, atol=1e-6)
        np.testing.assert_allclose(out["logits"].numpy(), logits, atol=1e-4)
        np.testing.assert_array_equal(out["unknown"].numpy(), identified.unknown)
        assert "feature_score" not in out  # no feature rule: the softmax threshold alone
    top = loaded.signatures["top_k"](spectra=tf.constant(spectra, tf.float32), k=tf.constant(2))
    np.testing.assert_array_equal(top["unknown"].numpy(), identified.unknown)
    assert identified.feature_score is None and not hasattr(loaded, "scores")


def test_an_exports_confidence_map_reaches_predict_the_signatures_and_the_command(
    mini_model, spectra, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo

    confidence_map = cal.ConfidenceMap([0.1, 0.35, 0.5, 0.75], [0.05, 0.1, 0.3, 0.95], {"fitted_on": "test"})
    record = cal.Calibration(3.0, 0.6, 0.05, confidence_map=confidence_map)
    path = zoo.export(mini_model, tmp_path / "mapped", dataset_config="mini", calibration=record)
    predictor = zoo.load(path)
    identified = predictor.identify(spectra)
    top = identified.probabilities.max(axis=1)
    assert top.min() < 0.35 and top.max() > 0.75 and (top < 0.6).any()  # spans the knots and the threshold
    np.testing.assert_allclose(identified.confidence, confidence_map(top), atol=1e-6)
    np.testing.assert_array_equal(identified.unknown, top < 0.6)  # the threshold stays on the probability
    loaded = tf.saved_model.load(str(path))
    for name, dtype in (("serving_default", tf.float32), ("serve_float64", tf.float64)):
        out = loaded.signatures[name](spectra=tf.constant(spectra, dtype))
        np.testing.assert_allclose(out["confidence"].numpy(), identified.confidence, atol=1e-5)
    top_k = loaded.signatures["top_k"](spectra=tf.constant(spectra, tf.float32), k=tf.constant(2))
    np.testing.assert_allclose(top_k["confidence"].numpy(), identified.confidence, atol=1e-5)
    np.save(tmp_path / "s.npy", spectra)
    status, out, err = run_cli(capsys, "predict", "--model", path, tmp_path / "s.npy", "--top-k", "1")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["input", "call", "confidence", "class1", "p1"], err
    for line, confidence, p in zip(lines[1:], identified.confidence, top, strict=True):
        assert line.split()[4::2] == [f"{confidence:.4f}", f"{p:.4f}"]
    status, out, _ = run_cli(capsys, "predict", "--model", path, tmp_path / "s.npy", "--format", "json")
    predictions = json.loads(out)["predictions"]
    np.testing.assert_allclose([p["confidence"] for p in predictions], identified.confidence, atol=1e-6)
    status, out, _ = run_cli(capsys, "predict", "--model", path, tmp_path / "s.npy", "--format", "csv")
    assert out.splitlines()[0].endswith(",unknown,confidence")
    # without a map there is no confidence column, and JSON's confidence is the best class's probability
    plain = zoo.export(
        mini_model, tmp_path / "plain", dataset_config="mini", calibration=cal.Calibration(3.0)
    )
    status, out, _ = run_cli(capsys, "predict", "--model", plain, tmp_path / "s.npy", "--top-k", "1")
    assert out.splitlines()[0].split() == ["input", "class1", "p1"]
    status, out, _ = run_cli(capsys, "predict", "--model", plain, tmp_path / "s.npy", "--format", "json")
    np.testing.assert_allclose([p["confidence"] for p in json.loads(out)["predictions"]], top, atol=1e-6)


def test_export_without_calibration_and_old_exports_still_load(mini_model, spectra, tmp_path: Path) -> None:
    import zoo
    from zoo.inference.export import serving_module

    plain = zoo.export(mini_model, tmp_path / "plain", dataset_config="mini")
    predictor = zoo.load(plain)
    assert predictor.calibration.is_identity and not predictor.identify(spectra).unknown.any()
    # an export written before calibration: no metadata field, and a SavedModel without `logits`
    old = tmp_path / "old"
    shutil.copytree(plain, old)
    metadata = json.loads((old / "metadata.json").read_text())
    del metadata["calibration"]
    module, signatures = serving_module(mini_model, metadata["class_names"])
    del module.logits
    shutil.rmtree(old / "variables")
    (old / "saved_model.pb").unlink()
    tf.saved_model.save(module, str(old), signatures=signatures)
    (old / "metadata.json").write_text(json.dumps(metadata))
    assert not hasattr(tf.saved_model.load(str(old)), "logits")
    loaded = zoo.load(old)
    assert loaded.calibration == cal.Calibration()
    np.testing.assert_allclose(loaded.predict(spectra), predictor.predict(spectra), atol=1e-6)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | os.PathLike[str]) -> tuple[int, str, str]:
    from zoo.commands.cli import main

    status = main([os.fspath(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_predict_prints_unknown_with_the_best_guess(
    calibrated_export: Path, spectra, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo

    np.save(tmp_path / "s.npy", spectra)
    identified = zoo.load(calibrated_export).identify(spectra)
    status, out, err = run_cli(
        capsys, "predict", "--model", calibrated_export, tmp_path / "s.npy", "--top-k", "1"
    )
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["input", "call", "class1", "p1"], err
    for line, unknown, name, p in zip(lines[1:], identified.unknown, identified.names, identified.confidence,
                                      strict=True):  # fmt: skip
        cells = line.split()
        assert cells[3:] == ["unknown" if unknown else name, name, f"{p:.4f}"]
    status, out, _ = run_cli(
        capsys, "predict", "--model", calibrated_export, tmp_path / "s.npy", "--format", "json"
    )
    document = json.loads(out)
    assert document["unknown_threshold"] == 0.99
    assert [p["unknown"] for p in document["predictions"]] == identified.unknown.tolist()
    assert [p["call"] for p in document["predictions"]] == [
        "unknown" if u else n for u, n in zip(identified.unknown, identified.names, strict=True)
    ]


def test_metadata_and_graph_disagreeing_on_length_is_one_line(
    calibrated_export: Path, spectra, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo

    broken = tmp_path / "broken"
    shutil.copytree(calibrated_export, broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["datapoints"] = 900
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match="says 900 points per spectrum but its SavedModel expects 1000"):
        zoo.load(broken)
    np.save(tmp_path / "s.npy", spectra[:, :900])
    status, out, err = run_cli(capsys, "predict", "--model", broken, tmp_path / "s.npy")
    assert status == 2 and out == "" and len(err.splitlines()) == 1 and "expects 1000" in err


def test_wrong_length_error_names_the_length_first(calibrated_export: Path) -> None:
    loaded = tf.saved_model.load(str(calibrated_export))
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        loaded.signatures["serving_default"](spectra=tf.zeros([2, 900], tf.float32))
    assertion = [line for line in str(caught.value).splitlines() if line.startswith("assertion failed")]
    assert assertion[0].startswith(
        "assertion failed: [spectra: expected 1000 points per spectrum (shape [batch, 1000]), got] [900]"
    )


def test_bad_calibration_in_metadata_is_one_line(calibrated_export: Path, tmp_path: Path) -> None:
    import zoo

    broken = tmp_path / "bad"
    shutil.copytree(calibrated_export, broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["calibration"]["temperature"] = -1
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match=r"calibration\.temperature must be a positive"):
        zoo.load(broken)


def _normalised(spectra: np.ndarray) -> np.ndarray:
    return (spectra / spectra.max(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def feature_export(mini_model, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, cal.Calibration]:
    """An export whose calibration has a feature rule: bank of the `mini` training split, both thresholds
    fitted on its validation split (5 % together)."""
    import zoo
    from synthetic_spectra.generator import generate
    from zoo.inference.logits import predict_features, predict_logits

    x_train = _normalised(generate("mini", "train")[0])
    x_val, y_val = generate("mini", "validation")
    x_val = _normalised(x_val)
    record = cal.fit_calibration(
        predict_logits(mini_model, x_val), y_val, data="mini validation", k=5,
        features=predict_features(mini_model, x_val), reference=predict_features(mini_model, x_train),
    )  # fmt: skip
    path = zoo.export(mini_model, tmp_path_factory.mktemp("knn") / "export", dataset_config="mini",
                      calibration=record)  # fmt: skip
    return path, record


def test_feature_rule_survives_export_load_and_savedmodel(feature_export, mini_model) -> None:
    import zoo
    from synthetic_spectra.generator import generate
    from zoo.inference.logits import predict_features
    from zoo.inference.predict import read_feature_bank

    path, record = feature_export
    rule = json.loads((path / "metadata.json").read_text())["calibration"]["feature_distance"]
    assert (rule["k"], rule["bank_size"], rule["threshold"]) == (5, 200, record.feature_distance.threshold)
    assert (
        record.notes["total_false_alarm_rate"] <= 0.05 and record.notes["softmax_false_alarm_rate"] <= 0.025
    )
    np.testing.assert_array_equal(read_feature_bank(path), record.feature_distance.bank)
    spectra = generate("mini", "validation")[0]
    identified = zoo.load(path).identify(spectra)
    expected = record.feature_distance.scores(predict_features(mini_model, _normalised(spectra)))
    np.testing.assert_allclose(identified.feature_score, expected, atol=1e-4)
    np.testing.assert_array_equal(
        identified.unknown, record.unknown(identified.logits, identified.feature_score)
    )
    assert abs(identified.unknown.mean() - record.notes["total_false_alarm_rate"]) <= 1 / len(spectra)
    loaded = tf.saved_model.load(str(path))
    for name, dtype in (("serving_default", tf.float32), ("serve_float64", tf.float64)):
        out = loaded.signatures[name](spectra=tf.constant(spectra, dtype))
        np.testing.assert_allclose(out["feature_score"].numpy(), identified.feature_score, atol=1e-5)
        np.testing.assert_array_equal(out["unknown"].numpy(), identified.unknown)
    top = loaded.signatures["top_k"](spectra=tf.constant(spectra, tf.float32), k=tf.constant(1))
    np.testing.assert_array_equal(top["unknown"].numpy(), identified.unknown)
    invalid = loaded.signatures["serving_default"](spectra=tf.zeros([1, 1000], tf.float32))
    assert np.isnan(invalid["feature_score"].numpy()).all() and not invalid["unknown"].numpy().any()


def test_the_feature_rule_calls_spectra_unlike_the_training_ones_unknown(
    feature_export, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo
    from synthetic_spectra.config import fresh_draw, get_config
    from synthetic_spectra.generator import generate

    path, record = feature_export
    predictor = zoo.load(path)
    like = generate(fresh_draw(get_config("mini"), 3), "validation")[0]  # known classes, new draws
    unlike = np.random.default_rng(0).uniform(0.2, 1.0, size=(4, 1000))  # noise without peaks
    known, strange = predictor.identify(like), predictor.identify(unlike)
    assert (strange.feature_score < record.feature_distance.threshold).all() and strange.unknown.all()
    assert known.unknown.mean() <= 0.1, known.feature_score
    np.save(tmp_path / "like.npy", like[:3])
    np.save(tmp_path / "unlike.npy", unlike)
    files = [tmp_path / "like.npy", tmp_path / "unlike.npy"]
    status, out, err = run_cli(capsys, "predict", "--model", path, *files, "--top-k", "1")
    calls = [line.split()[3] for line in out.splitlines()[1:]]
    assert status == 0 and calls[3:] == ["unknown"] * 4, err
    assert calls[:3] == [
        "unknown" if u else n for u, n in zip(known.unknown[:3], known.names[:3], strict=True)
    ]
    status, out, _ = run_cli(capsys, "predict", "--model", path, *files, "--format", "json")
    document = json.loads(out)
    assert status == 0 and document["feature_threshold"] == record.feature_distance.threshold
    scores = [p["feature_score"] for p in document["predictions"]]
    np.testing.assert_allclose(
        scores, np.concatenate([known.feature_score[:3], strange.feature_score]), atol=1e-6
    )


def test_a_feature_rule_without_its_savedmodel_endpoint_is_one_line(
    calibrated_export: Path, feature_export, tmp_path: Path
) -> None:
    import zoo

    broken = tmp_path / "broken"
    shutil.copytree(calibrated_export, broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["calibration"]["feature_distance"] = feature_export[1].feature_distance.to_dict()
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match="has a feature rule but the SavedModel no 'scores' endpoint"):
        zoo.load(broken)


def test_preset_make_carries_the_exports_calibration_and_bank(
    feature_export, mini_model, tmp_path: Path
) -> None:
    from zoo.models.presets import evaluate_on_test_split, verified_bank
    from zoo.training.presets import make_preset

    path, record = feature_export
    accuracy, wrong, size = evaluate_on_test_split(mini_model, "mini")
    row = {
        "run_id": "mini/prnet-seed0",
        "dataset": "mini",
        "model": "prnet",
        "toggles": {},
        "seed": 0,
        "test_accuracy": accuracy,
        "misclassified": wrong,
        "test_size": size,
        "params": 0,
        "hardware": "-",
    }
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")  # fmt: skip
    preset = make_preset(
        "prnet_mini", tmp_path / "results.jsonl", row["run_id"], path, weights_dir=tmp_path / "w"
    )
    assert preset.calibration == record.to_dict() and preset.feature_bank == "prnet_mini.features.npy"
    np.testing.assert_array_equal(
        np.load(verified_bank(preset, tmp_path / "w")), record.feature_distance.bank
    )


def test_presets_carry_their_calibration() -> None:
    from zoo.models.presets import MAX_PRESET_BYTES, get_preset, list_presets, verified_bank

    calibrated = [name for name in list_presets() if get_preset(name).calibration]
    assert "prnet_challenge" in calibrated and "vgg_relu_challenge" in calibrated
    for name in calibrated:
        preset = get_preset(name)
        record = cal.Calibration.from_dict(preset.calibration)
        assert record.temperature > 0 and record.threshold is not None and record.false_alarm_rate == 0.05
        if record.feature_distance is not None:  # its bank ships beside the weights, checksummed
            record.with_bank(np.load(verified_bank(preset)))
            assert preset.size_bytes + preset.feature_bank_bytes < MAX_PRESET_BYTES
            assert record.notes["total_false_alarm_rate"] <= 0.05
        if preset.dataset == "challenge":  # a confidence map from the committed calibrators rows
            rows_file = Path(__file__).resolve().parents[1] / record.confidence_map.notes["rows"]
            rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
            shipped = max((r for r in rows if r["preset"] == name and "confidence_map" in r),
                          key=lambda r: r["judged_size"])  # fmt: skip
            assert cal.ConfidenceMap.from_dict(shipped["confidence_map"]).x.tolist() == (
                record.confidence_map.x.tolist()
            )
            assert shipped["temperature"] == record.temperature and shipped["judged_size"] >= 27_000
            assert record.confidence_map.notes["judged"][0]["ece"] == shipped["ece"] <= 0.01


def test_a_preset_with_a_feature_rule_scores_its_spectra() -> None:
    import zoo
    from synthetic_spectra.generator import generate
    from zoo.models.presets import get_preset, list_presets

    with_rule = [name for name in list_presets() if get_preset(name).feature_bank]
    assert "vgg_relu_challenge" in with_rule
    name = min(with_rule, key=lambda n: get_preset(n).size_bytes + get_preset(n).feature_bank_bytes)
    predictor = zoo.load(f"preset:{name}")
    spectra = generate(get_preset(name).dataset, "test")[0][:4]
    unlike = np.random.default_rng(0).uniform(0.2, 1.0, size=(2, spectra.shape[1]))
    identified = predictor.identify(np.concatenate([spectra, unlike]))
    assert identified.feature_score is not None and identified.unknown[4:].all()


def test_knn_score_is_higher_near_the_reference() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(200, 5)) + np.array([5.0, 0, 0, 0, 0])
    near = rng.normal(size=(20, 5)) + np.array([5.0, 0, 0, 0, 0])
    far = rng.normal(size=(20, 5)) + np.array([-5.0, 0, 0, 0, 0])
    assert cal.knn_score(reference, near, k=5).min() > cal.knn_score(reference, far, k=5).max()
    exact = cal.knn_score(reference, reference[:3], k=1)  # each point's own nearest neighbour is itself
    np.testing.assert_allclose(exact, 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="k must be between 1 and the 200"):
        cal.knn_score(reference, near, k=201)


def test_ece_noise_floor_shrinks_with_more_spectra() -> None:
    rng = np.random.default_rng(5)
    small, large = rng.dirichlet(np.ones(5) * 0.3, 200), rng.dirichlet(np.ones(5) * 0.3, 20_000)
    assert cal.ece_noise_floor(large, draws=10) < cal.ece_noise_floor(small, draws=10) / 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--hold-out", "abc"], "--hold-out: expected e.g."),
        (
            ["train", "--models", "nope", "--dataset", "mini", "--hold-out", "1"],
            "--models: unknown model 'nope'",
        ),
        (["train", "--dataset", "mini", "--hold-out", "0-9"], "held_out: expected some (not all)"),
        (["evaluate", "--false-alarm-rate", "1.5"], "--false-alarm-rate: must be in [0, 1)"),
        (["evaluate", "--scores", "msp,nope"], "--scores: unknown score 'nope'"),
        (["report", "--out", "EMPTY"], "no rows"),
        (["temperature-fit", "--per-class", "0"], "--per-class: must be a positive integer"),
        (["temperature-fit", "--presets", "nope"], "unknown preset 'nope'"),
        (["evaluate", "--part", "study", "--study-dir", "EMPTY"], "no exports (<setup>-seed<N>"),
        (["evaluate", "--part", "study", "--study-dir", "nope"], "--study-dir nope: not a directory"),
    ],
)
def test_calibration_script_bad_arguments_are_one_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script_in_process
) -> None:
    root = Path(__file__).resolve().parents[1]
    args = [str(tmp_path) if a == "EMPTY" else a for a in args]
    monkeypatch.chdir(tmp_path)
    status, out, err = script_in_process(root / "benchmarks" / "experiments" / "calibration.py", *args)
    lines = err.splitlines()
    assert status == 2 and out == "" and len(lines) == 1 and message in lines[0], err


def test_a_killed_held_out_training_resumes_after_its_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    import keras

    from zoo.training import callbacks as training_callbacks

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    class Killed(Exception):
        pass

    class KillAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 1:
                raise Killed

    make_callbacks = training_callbacks.make_callbacks

    def killing_callbacks(*args, **kwargs):
        callbacks, early_stopping = make_callbacks(*args, **kwargs)
        return [*callbacks, KillAfterSecondEpoch()], early_stopping  # after the backup of the epoch

    argv = ["train", "--dataset", "mini", "--hold-out", "8-9", "--models", "vgg", "--seeds", "0",
            "--max-epochs", "3", "--patience", "5", "--models-dir", str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(training_callbacks, "make_callbacks", killing_callbacks)
    with pytest.raises(Killed):
        script.main(argv)
    export = tmp_path / "mini_known8-vgg-seed0"
    assert not export.exists()
    monkeypatch.setattr(training_callbacks, "make_callbacks", make_callbacks)
    assert script.main(argv) == 0
    assert "mini_known8-vgg-seed0: resuming after epoch 2" in capsys.readouterr().out
    record = json.loads((export / "training.json").read_text())
    assert (record["epochs_run"], record["resumed_after_epoch"], record["stop_reason"]) == (
        3,
        2,
        "max_epochs",
    )
    assert (export / "metadata.json").is_file()
    from zoo.training.results import read_history

    logged = read_history(tmp_path / "runs" / "mini_known8-vgg-seed0" / "history.csv")["epoch_cpu_seconds"]
    assert len(logged) == 3 and record["train_cpu_seconds_cover"] == "every epoch"
    assert record["train_cpu_seconds"] == pytest.approx(sum(logged))  # both processes' epochs


def _calibration_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_study_part_measures_each_seed_and_their_ensemble(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo
    from synthetic_spectra.generator import generate
    from zoo.inference.logits import predict_logits
    from zoo.study.confidence_report import read_rows, write_rows

    study, models = tmp_path / "study", []
    lines = []
    for seed in (0, 1):  # untrained mini models: the part measures whatever it is given
        keras.utils.set_random_seed(seed)
        models.append(zoo.build("cnn2", num_classes=10, input_length=1000))
        zoo.export(models[-1], study / f"cnn2-linear-seed{seed}", dataset_config="mini")
        row = {"run_id": f"mini/cnn2-linear-seed{seed}", "seed": seed, "epochs_run": 0, "max_epochs": 500,
               "stop_reason": "early_stopping", "precision": "float32", "val_accuracy": 0.1}  # fmt: skip
        lines.append(json.dumps(row) + "\n")
    (study / "other-seed0").mkdir()  # no metadata.json: not an export
    (tmp_path / "results.jsonl").write_text("".join(lines))
    out = tmp_path / "out"
    out.mkdir()
    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "calibration"
    kept = [r for r in read_rows(committed) if r["model"] == "prnet_challenge"
            and r["kind"] == "calibration"][:2]  # fmt: skip
    # and a study seed's rows, which carry its training record
    kept += [r for r in read_rows(committed) if r["model"] == "challenge/vgg-linear-seed0"
             and r["kind"] == "calibration"]  # fmt: skip
    write_rows(out, kept)
    argv = ["evaluate", "--part", "study", "--study-dir", study, "--study-rows", tmp_path / "results.jsonl",
            "--out", out, "--fresh-per-class", "3", "--sets", "snr 1000,shift +-20",
            "--keep-other-rows"]  # fmt: skip
    assert _calibration_script().main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert "mini/cnn2-linear-ensemble: T " in printed
    rows = read_rows(out)
    assert rows[: len(kept)] == kept  # --keep-other-rows: the rows of models not measured now stay
    assert "training" in kept[-1]
    by_model = {}
    for row in rows[len(kept) :]:
        by_model.setdefault(row["model"], []).append(row)
    names = ["mini/cnn2-linear-seed0", "mini/cnn2-linear-seed1", "mini/cnn2-linear-ensemble"]
    assert list(by_model) == names
    for name, seeds in zip(names, ([0], [1], [0, 1]), strict=True):
        assert {r["model_seeds"] == seeds and r["study"] == "cnn2-linear" for r in by_model[name]} == {True}
        assert len([r for r in by_model[name] if r["kind"] == "calibration"]) == 8  # 4 sets, raw/calibrated
        perturbed = [r for r in by_model[name] if r["kind"] == "perturbed"]
        assert {r["set"] for r in perturbed} == {"gaussian snr 1000", "shift +-20"}
        expected = (
            {"ensemble", "temperature", "energy"} if len(seeds) > 1 else {"msp", "temperature", "energy"}
        )
        assert {r["score"] for r in perturbed} == expected
    ensemble = by_model[names[2]]
    assert ensemble[0]["exports"] == [str(study / "cnn2-linear-seed0"), str(study / "cnn2-linear-seed1")]
    assert [t["run_id"] for t in ensemble[0]["training"]] == [
        "mini/cnn2-linear-seed0",
        "mini/cnn2-linear-seed1",
    ]
    # the ensemble's probabilities: the mean of its members'; its temperature: fitted on their log
    x, y = generate("mini", "validation")
    mean = np.mean([cal.softmax(predict_logits(m, _normalised(x))) for m in models], axis=0)
    raw, calibrated = (next(r for r in ensemble if r["set"] == "mini validation" and r["stage"] == stage)
                       for stage in ("raw", "calibrated"))  # fmt: skip
    assert raw["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y))
    assert raw["nll"] == pytest.approx(-np.mean(np.log(mean[np.arange(y.size), y])), rel=1e-4)
    assert raw["ece"] == pytest.approx(cal.reliability(mean, y).ece, abs=1e-6)
    assert calibrated["temperature"] == pytest.approx(cal.fit_temperature(np.log(mean), y), rel=1e-3)
    assert {r["clean_accuracy"] for r in ensemble if r["kind"] == "perturbed"} == {raw["accuracy"]}
    report = (out / "calibration.md").read_text()
    assert "## The study's seeds and their deep ensemble" in report and "cnn2-linear" in report


def test_temperature_fit_compares_the_validation_split_with_a_larger_draw(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_script_fit", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["temperature-fit", "--presets", "vgg_relu_challenge", "--per-class", "3", "--out", str(tmp_path)]
    assert script.main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["fit_size"], r["size"]) for r in rows] == [
        ("temperature_fit", 270, 81), ("temperature_fit", 81, 81)
    ]  # fmt: skip
    fitted_on_validation = cal.fit_temperature(
        *_preset_logits_and_labels("vgg_relu_challenge", script, "validation")
    )
    assert rows[0]["temperature"] == pytest.approx(fitted_on_validation)
    assert all(0 <= r["ece"] <= 1 and r["noise_floor"] > 0 for r in rows)
    assert script.main(argv) == 0  # measured again: the rows are replaced, not added
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 2
    assert (
        "## Does a temperature fitted on more spectra calibrate better?"
        in (tmp_path / "calibration.md").read_text()
    )


def _preset_logits_and_labels(name: str, script, split: str) -> tuple[np.ndarray, np.ndarray]:
    import zoo
    from synthetic_spectra.config import get_config
    from synthetic_spectra.generator import generate
    from zoo.inference.logits import predict_logits

    spectra, labels = generate(get_config("challenge"), split)
    from zoo.study.confidence import normalised

    return predict_logits(zoo.from_preset(name), normalised(spectra)), labels


# ------------------------------------------------ the measurement (zoo.study.confidence) and its report


def test_the_committed_calibration_report_is_what_its_rows_give(tmp_path: Path) -> None:
    from zoo.study.confidence_report import REPORT_FILE, ROWS_FILE, TRAININGS_FILE, write_report

    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "calibration"
    for name in (ROWS_FILE, TRAININGS_FILE):
        shutil.copyfile(committed / name, tmp_path / name)
    assert write_report(tmp_path) == tmp_path / REPORT_FILE
    assert (tmp_path / REPORT_FILE).read_text() == (committed / REPORT_FILE).read_text(), (
        "benchmarks/results/calibration/calibration.md is stale: "
        "python benchmarks/experiments/calibration.py report"
    )
    assert {p.name for p in tmp_path.glob("*.png")} == {"reliability.png", "coverage.png", "unseen.png"}


def test_the_report_names_every_cpu_its_rows_came_from() -> None:
    from zoo.study.confidence_report import measured_on

    def row(unit: str, cpu: str, load: float) -> dict:
        return {"study": unit, "hardware": cpu, "load": f"load average {load}/1.0/1.0 on 2 cores"}

    one_cpu = [row("vgg", "CPU A", 10.2), row("vgg", "CPU A", 3.5), row("cnn2", "CPU A", 7.0)]
    assert measured_on(one_cpu, lambda r: r["study"]) == (
        "CPU A, load average 3.5/1.0/1.0 on 2 cores to load average 10.2/1.0/1.0 on 2 cores"
        " (a shared machine)"
    )  # the loads lowest to highest by their figure, not as text ("10.2" < "3.5")
    two_cpus = [*one_cpu, row("cnn3", "CPU B", 9.0), {"study": "cnn3", "hardware": "CPU C"}]
    assert measured_on(two_cpus, lambda r: r["study"]) == (
        "CPU A for vgg, cnn2, load average 3.5/1.0/1.0 on 2 cores to load average 10.2/1.0/1.0 on 2 cores; "
        "CPU B for cnn3, load average 9.0/1.0/1.0 on 2 cores; CPU C for cnn3, load not recorded"
        " (shared machines)"
    )


def test_rows_measured_again_replace_the_rows_of_the_same_identity(tmp_path: Path) -> None:
    from zoo.study.confidence_report import read_rows, replace_rows, write_report

    def row(model: str, score: str, auroc: float) -> dict:
        return {"model": model, "kind": "unseen", "set": None, "score": score, "auroc": auroc}

    assert read_rows(tmp_path / "none") == []
    with pytest.raises(UserError, match=r"rows\.jsonl: no rows"):
        write_report(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    replace_rows(tmp_path, [row("a", "msp", 0.5), row("a", "knn", 0.6), row("b", "msp", 0.7)])
    merged = replace_rows(tmp_path, [row("a", "knn", 0.9)])
    assert [(r["model"], r["score"], r["auroc"]) for r in merged] == [
        ("a", "msp", 0.5), ("b", "msp", 0.7), ("a", "knn", 0.9)
    ]  # fmt: skip
    assert read_rows(tmp_path) == merged


def test_each_training_record_is_stored_once_and_read_back_into_its_rows(tmp_path: Path) -> None:
    from zoo.study.confidence_report import TRAININGS_FILE, read_rows, training_key, write_rows

    seed0, seed1 = ({"run_id": f"mini/cnn2-linear-seed{s}", "seed": s, "epochs_run": 40 + s} for s in (0, 1))
    rows = [
        {"model": "seed0", "kind": "calibration", "set": name, "training": seed0} for name in ("a", "b", "c")
    ] + [
        {"model": "ensemble", "kind": "calibration", "set": "a", "training": [seed0, seed1]},
        {"model": "preset", "kind": "temperature_fit", "set": "a"},  # no training record
    ]
    write_rows(tmp_path, rows)
    assert "training" in rows[0]  # the caller's rows are left as they were
    stored = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert "training" not in json.dumps(stored).replace("training_key", "")
    assert [r.get("training_key") for r in stored] == [training_key(seed0)] * 3 + [
        training_key([seed0, seed1]), None
    ]  # fmt: skip
    assert len((tmp_path / TRAININGS_FILE).read_text().splitlines()) == 2  # each record once
    read = read_rows(tmp_path)
    assert read == rows
    read[0]["training"]["seed"] = 9  # rows read back do not share their record
    assert read[1]["training"]["seed"] == 0
    # rows that carry their record inline (written before the trainings file) read as they are
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_rows(tmp_path) == rows
    # a rows file that names a record its folder lacks says so, naming the model
    write_rows(tmp_path, rows)
    (tmp_path / TRAININGS_FILE).write_text("")
    with pytest.raises(
        UserError, match=rf"trainings\.jsonl: no training record {training_key(seed0)},.*seed0"
    ):
        read_rows(tmp_path)
    (tmp_path / TRAININGS_FILE).write_text("[1, 2]\n")
    with pytest.raises(UserError, match=r"trainings\.jsonl:1: not a training record"):
        read_rows(tmp_path)
    write_rows(tmp_path, rows[-1:])  # no row names a record: no trainings file is left behind
    assert not (tmp_path / TRAININGS_FILE).exists()


def test_units_share_their_models_outputs_and_keep_only_the_wanted_scores(
    mini_model, spectra, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoo
    from zoo.inference import logits as logits_module
    from zoo.study.confidence import Outputs, Unit, normalised

    keras.utils.set_random_seed(1)
    other = zoo.build("prnet", num_classes=10, input_length=1000)
    calls = []
    predict_logits = logits_module.predict_logits

    def counting(model, x, *args, **kwargs):
        calls.append(id(model))
        return predict_logits(model, x, *args, **kwargs)

    monkeypatch.setattr(logits_module, "predict_logits", counting)
    outputs, x = Outputs(), normalised(spectra)
    seeds = [Unit(f"seed{i}", [m], 1.0, 0, outputs=outputs) for i, m in enumerate((mini_model, other))]
    ensemble = Unit("ensemble", [mini_model, other], None, 0, scores=("ensemble", "energy"), outputs=outputs)
    for unit in seeds:
        assert set(unit.scores("set", x)) == {"msp", "temperature", "energy"}  # no bank, no dropout passes
    assert set(ensemble.scores("set", x)) == {"ensemble", "energy"}  # no temperature fitted yet
    assert sorted(calls) == sorted([id(mini_model), id(other)])  # each model once, whoever asks
    z = ensemble.combined_logits("set", x)
    mean = np.mean([cal.softmax(outputs.logits(m, "set", x)) for m in (mini_model, other)], axis=0)
    np.testing.assert_allclose(cal.softmax(z), mean, rtol=1e-6)
    assert set(Unit("msp only", [other], 1.0, 0, scores=("msp",)).scores("set", x)) == {"msp"}


def test_capped_means_stopped_at_an_epoch_cap_below_the_protocols() -> None:
    from zoo.study.confidence import is_capped

    assert is_capped({"stop_reason": "max_epochs", "max_epochs": 60})
    assert not is_capped({"stop_reason": "early_stopping", "max_epochs": 60})
    assert not is_capped({"stop_reason": "max_epochs", "max_epochs": 500})


def test_ship_takes_each_presets_map_on_its_own_temperature(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_script_ship", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    confidence_map = cal.ConfidenceMap([0.2, 0.9], [0.1, 0.8], {"fitted_on": "fit draw", "spectra": 27000})

    def row(preset: str, judged_on: str, temperature: float, **extra: object) -> dict:
        size = 270 if judged_on == "validation" else 27000
        return {"preset": preset, "calibrator": "map", "judged_on": judged_on, "judged_size": size,
                "temperature": temperature, "ece": 0.003, "noise_floor": 0.005, **extra}  # fmt: skip

    rows_file = tmp_path / script.CALIBRATORS_FILE
    rows = [
        row("a", "fresh draw", 1.5),  # a temperature row: no map
        row("a", "validation", 1.5, confidence_map={**confidence_map.to_dict(), "y": [0.0, 0.1]}),
        row("a", "fresh draw", 1.5, confidence_map=confidence_map.to_dict()),
        row("b", "fresh draw", 2.0, confidence_map=confidence_map.to_dict()),  # not shipped here
    ]
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    maps = script.confidence_maps(rows_file, {"a": 1.5})
    assert list(maps) == ["a"] and maps["a"]["y"] == [0.1, 0.8]  # the one judged on the fresh draw
    shipped = cal.ConfidenceMap.from_dict(maps["a"])
    assert [judged["on"] for judged in shipped.notes["judged"]] == ["fresh draw", "validation"]
    assert script.confidence_maps(tmp_path / "none.jsonl", {"a": 1.5}) == {}
    broken = [row("a", "fresh draw", 1.5, confidence_map={**confidence_map.to_dict(), "y": [0.9, 0.1]})]
    (tmp_path / "broken.jsonl").write_text(json.dumps(broken[0]) + "\n")
    with pytest.raises(UserError, match="y must be non-decreasing"):
        script.confidence_maps(tmp_path / "broken.jsonl", {"a": 1.5})
    with pytest.raises(
        UserError, match=r"a's confidence map sits on temperature 1\.5, its calibration has 1\.4"
    ):
        script.confidence_maps(rows_file, {"a": 1.4})
