"""Precise batch norm: statistics re-estimated from the training spectra, in the library, the protocol's
callback, the run plan and the ``benchmark`` command."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import zoo
from zoo.models.batch_norm import batch_norm_layers, kept_moving_statistics, reestimate_batch_norm
from zoo.training.callbacks import PreciseBatchNorm
from zoo.training.protocol import PRECISE_BATCH_NORM_TAG, RunSpec, plan_runs

EPSILON = 1e-3  # Keras's BatchNormalization default


def _small_model(seed: int = 3) -> keras.Model:
    """conv -> BN -> ReLU -> dropout -> BN -> pooling -> softmax: a dropout between two BN layers."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 2), name="spectrum")
    x = keras.layers.Conv1D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    bn1 = model.get_layer("bn1")  # non-trivial scale and offset, so bn2's input depends on them
    bn1.gamma.assign(np.array([0.5, 2.0, 1.5], dtype="float32"))
    bn1.beta.assign(np.array([0.1, -0.3, 0.2], dtype="float32"))
    return model


def _spectra(n: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.3, 2.0, size=(n, 16, 2)).astype("float32")


def _expected(model: keras.Model, spectra: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both layers' input statistics over ``spectra`` as one batch, by hand in NumPy: bn1 normalises with
    the batch's own statistics, dropout is off."""
    conv = keras.Model(model.input, model.get_layer("conv").output)
    h = np.asarray(conv(spectra), dtype=np.float64)
    mean1, var1 = h.mean(axis=(0, 1)), h.var(axis=(0, 1))
    bn1 = model.get_layer("bn1")
    gamma, beta = (np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in (bn1.gamma, bn1.beta))
    relu = np.maximum((h - mean1) / np.sqrt(var1 + EPSILON) * gamma + beta, 0.0)
    return {"bn1": (mean1, var1), "bn2": (relu.mean(axis=(0, 1)), relu.var(axis=(0, 1)))}


def _statistics(model: keras.Model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        layer.name: tuple(keras.ops.convert_to_numpy(v) for v in (layer.moving_mean, layer.moving_variance))
        for layer in batch_norm_layers(model)
    }


def test_the_statistics_are_the_training_mode_inputs_with_dropout_off():
    model, spectra = _small_model(), _spectra()
    trainable = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert reestimate_batch_norm(model, spectra, batch_size=len(spectra)) == 2  # one batch: exact by hand
    found, expected = _statistics(model), _expected(model, spectra)
    for name in ("bn1", "bn2"):
        np.testing.assert_allclose(found[name][0], expected[name][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(found[name][1], expected[name][1], rtol=1e-4, atol=1e-5)
    for before, after in zip(trainable, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(after))  # only the statistics move
    assert model.get_layer("drop").rate == 0.5  # dropout is back on


def test_an_array_and_a_dataset_of_the_same_batches_give_the_same_statistics():
    import tensorflow as tf

    spectra = _spectra(50)
    labels = np.zeros(len(spectra), dtype="int64")
    from_array, from_dataset = _small_model(), _small_model()
    reestimate_batch_norm(from_array, spectra, batch_size=16)
    reestimate_batch_norm(from_dataset, tf.data.Dataset.from_tensor_slices((spectra, labels)).batch(16))
    for name, (mean, variance) in _statistics(from_array).items():
        np.testing.assert_allclose(mean, _statistics(from_dataset)[name][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variance, _statistics(from_dataset)[name][1], rtol=1e-5, atol=1e-6)


def test_a_model_without_batch_norm_is_left_alone_and_bad_inputs_are_refused():
    plain = keras.Sequential([keras.Input((16, 2)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert reestimate_batch_norm(plain, _spectra()) == 0

    model = _small_model()
    before = _statistics(model)
    with pytest.raises(ValueError, match="no spectra"):
        reestimate_batch_norm(model, _spectra()[:0])
    for name, (mean, variance) in _statistics(model).items():  # a failed call changes nothing
        np.testing.assert_array_equal(mean, before[name][0])
        np.testing.assert_array_equal(variance, before[name][1])

    inputs = keras.Input((16, 2))
    nested = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(_small_model()(inputs))))
    with pytest.raises(ValueError, match="nested model"):
        reestimate_batch_norm(nested, _spectra())


def _assert_statistics_equal(found: dict, expected: dict) -> None:
    for name, (mean, variance) in found.items():
        np.testing.assert_array_equal(mean, expected[name][0])
        np.testing.assert_array_equal(variance, expected[name][1])


def test_kept_moving_statistics_restores_after_the_block_or_only_after_a_failure():
    model, spectra = _small_model(), _spectra()
    before = _statistics(model)
    with kept_moving_statistics(model):
        reestimate_batch_norm(model, spectra)
        assert not np.array_equal(_statistics(model)["bn1"][1], before["bn1"][1])
    _assert_statistics_equal(_statistics(model), before)  # always put back

    with pytest.raises(RuntimeError, match="half-way"), kept_moving_statistics(model, only_on_error=True):
        reestimate_batch_norm(model, spectra)
        raise RuntimeError("failed half-way")
    _assert_statistics_equal(_statistics(model), before)  # put back after a failure

    with kept_moving_statistics(model, only_on_error=True):
        reestimate_batch_norm(model, spectra)
    assert not np.array_equal(_statistics(model)["bn1"][1], before["bn1"][1])  # kept after a success


def test_the_public_api_offers_it():
    assert zoo.reestimate_batch_norm is reestimate_batch_norm


def _fit(precise: bool) -> keras.Model:
    model = _small_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    spectra = _spectra(64)
    labels = (spectra[:, :, 0].mean(axis=1) > 0.3).astype("int64")
    callbacks = [PreciseBatchNorm(spectra, batch_size=16)] if precise else []
    keras.utils.set_random_seed(7)
    model.fit(spectra, labels, batch_size=16, epochs=3, shuffle=False, verbose=0,
              validation_data=(_spectra(16, seed=1), labels[:16]), callbacks=callbacks)  # fmt: skip
    return model


def test_the_callback_leaves_training_unchanged_and_validation_sees_precise_statistics():
    moving, precise = _fit(False), _fit(True)
    for a, b in zip(moving.trainable_weights, precise.trainable_weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    kept = _statistics(precise)  # re-estimated before the last validation, from the final weights
    reestimate_batch_norm(precise, _spectra(64), batch_size=16)
    for name, (mean, variance) in _statistics(precise).items():
        np.testing.assert_allclose(kept[name][0], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(kept[name][1], variance, rtol=1e-5, atol=1e-6)
    assert not np.allclose(_statistics(moving)["bn1"][1], kept["bn1"][1])  # Keras's averages differ


def test_the_plan_names_precise_runs_and_refuses_what_it_cannot_train():
    specs = plan_runs("mini", ["resnet", "cnn6_bn"], seeds=[0, 1], batch_norm_statistics="precise")
    assert [s.run_id for s in specs][:2] == [
        "mini/resnet-default-precisebn-seed0",
        "mini/resnet-default-precisebn-seed1",
    ]
    assert {s.batch_norm_statistics for s in specs} == {"precise"}
    with pytest.raises(ValueError, match="cnn6 has no batch norm"):
        plan_runs("mini", ["cnn6"], batch_norm_statistics="precise")
    assert plan_runs("mini", ["cnn6"], hparams={"batch_norm": True}, batch_norm_statistics="precise")
    with pytest.raises(ValueError, match="expected one of moving, precise"):
        plan_runs("mini", ["resnet"], batch_norm_statistics="exact")
    from synthetic_spectra.augment import parse_augmentation

    with pytest.raises(ValueError, match="augmentation"):
        plan_runs("mini", ["resnet"], augment=parse_augmentation("noise"), batch_norm_statistics="precise")
    config = specs[0].config
    with pytest.raises(ValueError, match=PRECISE_BATCH_NORM_TAG):
        RunSpec(config, "resnet", 0, "default", batch_norm_statistics="precise")
    with pytest.raises(ValueError, match=PRECISE_BATCH_NORM_TAG):
        RunSpec(config, "resnet", 0, "default" + PRECISE_BATCH_NORM_TAG)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "cnn6"], "cnn6 has no batch norm"),
        (["--models", "resnet", "--strategy", "multiworker"], "not supported with --strategy multiworker"),
        (["--models", "resnet", "--augment", "noise"], "augmentation"),
    ],
)
def test_the_command_refuses_bad_combinations_in_one_line(cli, tmp_path, args, message):
    status, out, err = cli("benchmark", "--dataset", "mini", "--batch-norm-statistics", "precise",
                           "--out", tmp_path / "out", *args)  # fmt: skip
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_precise_run_records_it_and_exports_the_training_spectras_statistics(cli, tfds_data_dir, tmp_path):
    from synthetic_spectra.config import get_config
    from zoo.inference.predict import load_keras_model
    from zoo.training.data import load_train_spectra
    from zoo.training.protocol import Protocol

    status, _, err = cli("benchmark", "--dataset", "mini", "--models", "cnn6_bn", "--max-epochs", "1",
                         "--batch-norm-statistics", "precise", "--out", tmp_path, "--quiet")  # fmt: skip
    assert status == 0, err
    (row,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert row["run_id"] == "mini/cnn6_bn-default-precisebn-seed0"
    assert row["batch_norm_statistics"] == "precise"
    exported = load_keras_model(row["export_dir"])
    kept = _statistics(exported)
    train = load_train_spectra(get_config("mini"), Protocol(), data_dir=str(tfds_data_dir))
    reestimate_batch_norm(exported, train)
    for name, (mean, variance) in _statistics(exported).items():
        np.testing.assert_allclose(kept[name][0], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(kept[name][1], variance, rtol=1e-4, atol=1e-5)
