"""The batch-normalisation diagnosis: population statistics, the model left as it was, the script."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from synthetic_spectra.generator import generate
from synthetic_spectra.normalize import normalize_max
from zoo.study.batch_norm import (
    accuracy,
    assign_population_statistics,
    batch_norm_layers,
    diagnose,
    population_statistics,
)


@pytest.fixture(scope="module")
def spectra() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found = {}
    for split in ("train", "validation"):
        x, y = generate("mini", split)
        found[split] = (normalize_max(x)[..., None], y)
    return found


def small_model(length: int) -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((length, 1))
    x = keras.layers.Conv1D(4, 9, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling1D(4)(x)
    x = keras.layers.Dropout(0.5)(x)  # off in inference: the statistics must not see it
    x = keras.layers.Conv1D(6, 5, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def stored(model: keras.Model) -> list[np.ndarray]:
    return [
        keras.ops.convert_to_numpy(v)
        for layer in batch_norm_layers(model)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def test_population_statistics_are_each_layers_input_moments_after_its_predecessors_are_corrected(
    spectra,
) -> None:
    x = spectra["train"][0]
    model = small_model(x.shape[1])
    before = stored(model)
    found = population_statistics(model, x, batch_size=50)  # batches that do not divide the spectra
    assert [s.name for s in found] == ["bn1", "bn2"]
    for got, want in zip(stored(model), before, strict=True):
        np.testing.assert_array_equal(got, want)  # the model is left as it was
    conv1 = np.asarray(keras.Model(model.input, model.get_layer("conv1").output)(x), dtype=np.float64)
    np.testing.assert_allclose(found[0].population_mean, conv1.mean(axis=(0, 1)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(found[0].population_variance, conv1.var(axis=(0, 1)), rtol=1e-4, atol=1e-9)
    # bn2's input, computed with bn1 already holding its population statistics and dropout off
    bn1 = model.get_layer("bn1")
    bn1.moving_mean.assign(found[0].population_mean.astype(np.float32))
    bn1.moving_variance.assign(found[0].population_variance.astype(np.float32))
    conv2 = keras.Model(model.input, model.get_layer("conv2").output)(x, training=False)
    conv2 = np.asarray(conv2, dtype=np.float64)
    np.testing.assert_allclose(found[1].population_variance, conv2.var(axis=(0, 1)), rtol=1e-4, atol=1e-9)
    # a fresh model's stored variance is Keras's starting value, 1: far above these inputs' variance
    assert found[0].variance_ratio > 10


def test_diagnose_finds_the_accuracy_a_stale_variance_hides(spectra) -> None:
    x, y = spectra["train"]
    model = small_model(x.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    assign_population_statistics(model, population_statistics(model, x))
    sets = {"train": spectra["train"], "validation": spectra["validation"]}
    agreeing = diagnose(model, x, sets)
    assert agreeing["accuracy_stored"] == agreeing["accuracy_population"]
    assert agreeing["accuracy_population"]["validation"] > 0.3  # well above chance (0.1): it learned
    assert agreeing["variance_ratio"] == pytest.approx({"bn1": 1.0, "bn2": 1.0}, rel=1e-3)

    bn1 = model.get_layer("bn1")
    # what too few updates leave
    bn1.moving_variance.assign(keras.ops.convert_to_numpy(bn1.moving_variance) * 400.0)
    spoiled = stored(model)
    found = diagnose(model, x, sets)
    assert found["variance_ratio"]["bn1"] == pytest.approx(400.0, rel=1e-3)
    assert found["accuracy_population"] == pytest.approx(agreeing["accuracy_population"])
    assert found["accuracy_stored"]["train"] == accuracy(model, x, y)  # measured with what is stored
    assert found["accuracy_stored"] != found["accuracy_population"]
    for got, want in zip(stored(model), spoiled, strict=True):
        np.testing.assert_array_equal(got, want)  # the diagnosis corrects nothing in the model

    plain = keras.Sequential([keras.Input((x.shape[1], 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        diagnose(plain, x, sets)


def _script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "batch_norm_statistics.py"
    spec = importlib.util.spec_from_file_location("batch_norm_statistics_script", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_the_script_measures_a_study_runs_backup_and_a_search_trials_checkpoint(
    tmp_path: Path, capsys
) -> None:
    import zoo

    run = tmp_path / "runs" / "cnn_bn-relu-seed0"
    (run / "backup").mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps({"toggles": {"fc_activation": "relu"}}))
    (run / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 6, "batch": 0}))
    keras.utils.set_random_seed(0)
    zoo.build("cnn_bn", 10, 1000, fc_activation="relu").save_weights(run / "backup" / "latest.weights.h5")
    trial = tmp_path / "tuning" / "project" / "trial_03"
    trial.mkdir(parents=True)
    (trial.parent / "search.json").write_text(json.dumps({"base": "vgg"}))
    values = {"fc_activation": "linear", "fc_dropout": 0.5, "conv_dropout": 0.0, "batch_norm": True,
              "learning_rate": 3e-4}  # fmt: skip
    (trial / "trial.json").write_text(json.dumps({"hyperparameters": {"values": values}}))
    vgg = zoo.build("vgg", 10, 1000, **{k: v for k, v in values.items() if k != "learning_rate"})
    vgg.save_weights(trial / "checkpoint.weights.h5")
    export = tmp_path / "saved_models" / "cnn_bn-relu-seed0"
    zoo.export(zoo.build("cnn_bn", 10, 1000, fc_activation="relu"), export, dataset_config="mini")
    out = tmp_path / "out"
    argv = [str(run), str(trial), str(export), "--dataset", "mini", "--out", str(out)]
    assert _script().main(argv) == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [(r["label"], r["kind"], r["model"]) for r in rows] == [
        ("cnn_bn-relu-seed0", "study run", "cnn_bn"), ("tuning trial 03", "search trial", "vgg"),
        ("cnn_bn-relu-seed0", "export", "cnn_bn"),
    ]  # fmt: skip
    assert rows[2]["options"]["fc_activation"] == "relu" and rows[2]["options"]["batch_norm"] is True
    assert (
        rows[0]["options"] == {"fc_activation": "relu"} and rows[0]["at"] == "latest weights, after epoch 7"
    )
    assert rows[1]["options"] == {k: v for k, v in values.items() if k != "learning_rate"}
    assert (
        rows[0]["spectra"]["train"] == len(generate("mini", "train")[1]) and rows[0]["spectra"]["fresh"] > 0
    )
    assert set(rows[1]["variance_ratio"]) == {layer.name for layer in batch_norm_layers(vgg)}
    assert "cnn_bn-relu-seed0: validation " in capsys.readouterr().out
    report = (out / "batch_norm.md").read_text()
    assert (
        "| cnn_bn-relu-seed0 (study run) | cnn_bn | fc_activation=relu | latest weights, after epoch 7 |"
        in report
    )
    # measured again: its row is replaced, not added
    assert _script().main([str(trial), "--dataset", "mini", "--out", str(out)]) == 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == 3
    # weights of another model: one line, and the rows stay as they were
    before = (out / "rows.jsonl").read_text()
    (trial.parent / "search.json").write_text(json.dumps({"base": "cnn6"}))
    with pytest.raises(SystemExit) as stop:
        _script().main([str(trial), "--dataset", "mini", "--out", str(out)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "checkpoint.weights.h5: not weights of cnn6" in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "rows.jsonl").read_text() == before


def _files(contents: dict[str, str]):
    """Make the files of ``contents`` (paths relative to a source folder) in that folder."""

    def make(folder: Path) -> None:
        for name, text in contents.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)

    return make


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_files({}), "neither a study run folder"),
        (_files({"settings.json": "{}"}), "a study run without backup weights"),
        (_files({"trial.json": "{}"}), "a search trial without its checkpoint"),
        (_files({"trial.json": "{}", "checkpoint.weights.h5": "", "../search.json": "{}"}),
         "trial.json without hyperparameter values"),
        (_files({"settings.json": "{not json", "backup/latest.weights.h5": ""}),
         "settings.json: not readable as JSON"),
    ],
)  # fmt: skip
def test_a_bad_source_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    make(source)
    with pytest.raises(SystemExit) as stop:
        _script().main([str(source), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
