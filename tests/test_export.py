"""``zoo.export``: the serving directory contract (SavedModel on raw spectra + metadata.json, and model.keras
for a model the registry cannot rebuild); ``zoo.load_keras_model`` gives the Keras model back.

One small trained CNN6 BN is exported once per module; the other tests reuse it or export tiny models.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import re
import shutil
import sys
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from synthetic_spectra.config import get_config
from zoo.errors import UserError

LENGTH, CLASSES = 300, 4
CLASS_NAMES = ["alpha", "beta", "gamma", "delta"]
METADATA_KEYS = {
    "format", "format_version", "model", "display_name", "build_args", "num_classes", "class_names",
    "datapoints", "input_dtype", "normalization", "dataset", "metrics", "keras_version",
    "tensorflow_version", "created", "keras_file", "calibration",
}  # fmt: skip
export_module = sys.modules["zoo.inference.export"]  # the attribute zoo.export is the function


@dataclasses.dataclass
class Exported:
    path: pathlib.Path
    model: keras.Model
    raw: np.ndarray  # raw spectra [n, LENGTH] with arbitrary scales


def normalise(raw: np.ndarray) -> np.ndarray:
    return (raw / raw.max(axis=1, keepdims=True))[..., np.newaxis]


def raw_spectra(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, LENGTH)) * rng.uniform(0.5, 500.0, (n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    keras.utils.set_random_seed(0)
    model = zoo.build("cnn6_bn", num_classes=CLASSES, input_length=LENGTH, fc_widths=(32,), compile=False)
    zoo.compile_model(model, jit_compile=False)
    x = raw_spectra(8, seed=1)
    model.fit(normalise(x), np.eye(CLASSES)[np.arange(8) % CLASSES], epochs=1, batch_size=4, verbose=0)
    path = zoo.export(
        model,
        tmp_path_factory.mktemp("exports") / "cnn6_bn",
        dataset_config="challenge",
        class_names=CLASS_NAMES,
        metrics={"test_accuracy": np.float32(0.75), "misclassified": 3},
    )
    return Exported(path, model, raw_spectra(6, seed=2))


def siblings(path: pathlib.Path) -> list[str]:
    return sorted(entry.name for entry in path.parent.iterdir())


def test_layout(exported: Exported) -> None:
    names = {entry.name for entry in exported.path.iterdir()}
    assert {"saved_model.pb", "variables", "metadata.json"} <= names
    assert "model.keras" not in names  # a registry model: rebuilt from metadata.json, weights in variables/
    assert siblings(exported.path) == ["cnn6_bn"]  # the staging directory was renamed, nothing left over


def test_metadata(exported: Exported) -> None:
    metadata = json.loads((exported.path / "metadata.json").read_text())
    assert set(metadata) == METADATA_KEYS
    assert (metadata["format"], metadata["format_version"]) == ("spectrazoo-export", 1)
    assert (metadata["model"], metadata["display_name"]) == ("cnn6_bn", "CNN6 BN")
    assert (metadata["num_classes"], metadata["datapoints"]) == (CLASSES, LENGTH)
    assert metadata["class_names"] == CLASS_NAMES and metadata["dataset"] == "challenge"
    assert (metadata["input_dtype"], metadata["normalization"]) == ("float32", "per_spectrum_max")
    assert metadata["metrics"] == {"test_accuracy": 0.75, "misclassified": 3.0}
    assert metadata["keras_version"] == keras.__version__
    assert metadata["tensorflow_version"] == tf.__version__
    assert datetime.datetime.fromisoformat(metadata["created"]).tzinfo is not None
    assert metadata["keras_file"] is None
    assert (metadata["calibration"]["temperature"], metadata["calibration"]["threshold"]) == (1.0, None)
    assert metadata["build_args"] == {
        "num_classes": CLASSES, "input_length": LENGTH, "fc_activation": "relu", "fc_dropout": 0.7,
        "conv_dropout": 0.0, "batch_norm": True, "fc_widths": [32],
    }  # fmt: skip


def test_build_args_rebuild_the_model(exported: Exported) -> None:
    metadata = json.loads((exported.path / "metadata.json").read_text())
    rebuilt = zoo.build(metadata["model"], compile=False, **metadata["build_args"])
    assert rebuilt.count_params() == exported.model.count_params()
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in exported.model.layers]


def test_saved_model_serves_raw_spectra(exported: Exported) -> None:
    expected = exported.model.predict(normalise(exported.raw), verbose=0)
    loaded = tf.saved_model.load(str(exported.path))
    probabilities = loaded.serve(tf.constant(exported.raw)).numpy()
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(exported.raw), CLASSES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert not np.allclose(expected, expected[0])  # distinct spectra, distinct answers


def test_tfsm_layer(exported: Exported) -> None:
    layer = keras.layers.TFSMLayer(str(exported.path), call_endpoint="serve")
    expected = exported.model.predict(normalise(exported.raw), verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(exported.raw)), expected, atol=1e-5)


def test_load_keras_model_gives_the_same_model(exported: Exported) -> None:
    restored = zoo.load_keras_model(exported.path)
    assert restored.input_shape == (None, LENGTH, 1) and not restored.compiled
    assert [w.path for w in restored.weights] == [w.path for w in exported.model.weights]
    for got, expected in zip(restored.get_weights(), exported.model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    x = normalise(exported.raw)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), exported.model.predict(x, verbose=0))


def test_rebuilt_in_float32_under_another_global_policy(exported: Exported) -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        restored = zoo.load_keras_model(exported.path)
    finally:
        keras.config.set_dtype_policy(previous)
    assert {layer.dtype_policy.name for layer in restored.layers} == {"float32"}
    x = normalise(exported.raw)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), exported.model.predict(x, verbose=0))


def test_spectrum_without_positive_maximum_is_flagged_invalid(exported: Exported) -> None:
    raw = exported.raw.copy()
    raw[1], raw[3] = 0.0, -raw[3]
    loaded = tf.saved_model.load(str(exported.path))  # keep a reference: its variables die with it
    probabilities = loaded.serve(tf.constant(raw)).numpy()
    assert (
        np.isnan(probabilities[[1, 3]]).all() and np.isfinite(np.delete(probabilities, [1, 3], axis=0)).all()
    )
    for name in ("serving_default", "top_k"):
        inputs = {"spectra": tf.constant(raw)} | ({"k": tf.constant(2)} if name == "top_k" else {})
        result = loaded.signatures[name](**inputs)
        assert result["valid"].numpy().tolist() == [True, False, True, False, True, True]
    assert result["classes"].numpy()[1].tolist() == [b"", b""]


def test_float32_and_float64_any_batch_size(exported: Exported) -> None:
    loaded = tf.saved_model.load(str(exported.path))
    expected = exported.model.predict(normalise(exported.raw), verbose=0)
    for dtype in (np.float32, np.float64):
        for rows in (slice(0, 1), slice(0, 6)):
            got = loaded.serve(tf.constant(exported.raw[rows].astype(dtype))).numpy()
            np.testing.assert_allclose(got, expected[rows], atol=1e-5)
    result = loaded.signatures["serve_float64"](spectra=tf.constant(exported.raw.astype(np.float64)))
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, atol=1e-5)
    assert result["valid"].numpy().all()


def test_wrong_length_names_the_expected_length(exported: Exported) -> None:
    loaded = tf.saved_model.load(str(exported.path))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"expected {LENGTH} points per spectrum"):
        loaded.serve(tf.constant(exported.raw[:, :-1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"expected {LENGTH} points per spectrum"):
        loaded.signatures["serve_float64"](spectra=tf.zeros((2, LENGTH + 5), tf.float64))


def test_class_names_and_top_k_travel_inside_the_saved_model(exported: Exported) -> None:
    loaded = tf.saved_model.load(str(exported.path))
    assert [name.decode() for name in loaded.class_names().numpy()] == CLASS_NAMES
    assert set(loaded.signatures) == {
        "serving_default",
        "serve_float64",
        "top_k",
        "top_k_float64",
        "class_names",
    }
    expected = exported.model.predict(normalise(exported.raw), verbose=0)
    order = np.argsort(-expected, axis=1)[:, :3]
    for name, dtype in (("top_k", tf.float32), ("top_k_float64", tf.float64)):
        result = loaded.signatures[name](spectra=tf.constant(exported.raw, dtype), k=tf.constant(3))
        names = np.array(CLASS_NAMES)[order]
        assert result["classes"].numpy().astype(str).tolist() == names.tolist()
        np.testing.assert_allclose(
            result["probabilities"].numpy(), np.take_along_axis(expected, order, 1), atol=1e-5
        )
    assert loaded.top_k(tf.constant(exported.raw), tf.constant(99))["classes"].shape == (6, CLASSES)


def float32_bytes(model: keras.Model) -> int:
    return sum(int(np.prod(v.shape)) * 4 for v in model.weights)


def test_weights_are_stored_once_without_optimizer_state(exported: Exported) -> None:
    """The fixture's model was trained (Adam holds two more copies): the export holds the weights alone."""
    weights = float32_bytes(exported.model)
    assert exported.model.optimizer.variables and len(exported.model.optimizer.variables) > 2
    checkpoint = str(exported.path / "variables" / "variables")
    keys = {key for key, _ in tf.train.list_variables(checkpoint)} - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert keys == {export_module.checkpoint_key(i) for i in range(len(exported.model.weights))}
    saved = sum(p.stat().st_size for p in (exported.path / "variables").iterdir())
    assert weights <= saved < weights + 20_000, (saved, weights)  # before issue #16: twice the weights
    files = [p for p in exported.path.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < weights + 1_000_000  # + saved_model.pb: the graph


def test_saved_graph_holds_the_model_once(exported: Exported) -> None:
    """Every endpoint and dtype calls one trace of the model (it was traced once per endpoint and dtype)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((exported.path / "saved_model.pb").read_bytes())
    functions = saved.meta_graphs[0].graph_def.library.function
    with_model = [f.signature.name for f in functions if any(node.op == "MatMul" for node in f.node_def)]
    assert len(with_model) == 1, with_model  # the dense layers' MatMul: in the model's trace alone


def test_model_the_registry_does_not_rebuild_keeps_its_keras_file(
    exported: Exported, tmp_path: pathlib.Path
) -> None:
    """Build arguments that give another architecture: the weights could not be read back, so model.keras."""
    metadata = json.loads((exported.path / "metadata.json").read_text())
    wrong = {**metadata["build_args"], "fc_widths": [64]}
    path = zoo.export(exported.model, tmp_path / "kept", model_name="cnn6_bn", build_args=wrong)
    assert json.loads((path / "metadata.json").read_text())["keras_file"] == "model.keras"
    weights = float32_bytes(exported.model)
    assert (path / "model.keras").stat().st_size < 1.2 * weights + 40_000  # no Adam m, v (3x before)
    restored = zoo.load_keras_model(path)
    assert not restored.compiled
    x = normalise(exported.raw)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), exported.model.predict(x, verbose=0))
    compiled = keras.saving.load_model(path / "model.keras")  # its compile settings, a fresh optimizer
    assert not compiled.optimizer.variables or all(
        not np.any(keras.ops.convert_to_numpy(v)) for v in compiled.optimizer.variables[2:]
    )


def test_export_written_before_the_rebuild_layout_still_loads(
    exported: Exported, tmp_path: pathlib.Path
) -> None:
    """Older exports: model.keras beside the SavedModel and no ``keras_file`` field; model.keras is read."""
    old = pathlib.Path(shutil.copytree(exported.path, tmp_path / "old"))
    metadata = json.loads((old / "metadata.json").read_text())
    del metadata["keras_file"]
    (old / "metadata.json").write_text(json.dumps(metadata))
    other = zoo.build("cnn6_bn", compile=False, **metadata["build_args"])  # other weights: proves the source
    export_module.save_without_optimizer(other, old / "model.keras")
    x = normalise(exported.raw)
    np.testing.assert_array_equal(
        zoo.load_keras_model(old).predict(x, verbose=0), other.predict(x, verbose=0)
    )
    np.testing.assert_allclose(
        zoo.load(old).predict(exported.raw), exported.model.predict(x, verbose=0), atol=1e-5
    )


def spoil_variables(path: pathlib.Path) -> None:
    shutil.rmtree(path / "variables")


def spoil_keras_file(path: pathlib.Path) -> None:
    metadata = json.loads((path / "metadata.json").read_text())
    (path / "metadata.json").write_text(json.dumps({**metadata, "keras_file": "model.keras"}))


def spoil_build_args(path: pathlib.Path) -> None:
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["build_args"]["fc_widths"] = [64]
    (path / "metadata.json").write_text(json.dumps(metadata))


def spoil_model_name(path: pathlib.Path) -> None:
    metadata = json.loads((path / "metadata.json").read_text())
    (path / "metadata.json").write_text(json.dumps({**metadata, "model": "custom"}))


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (spoil_variables, ": incomplete export: no variables/variables.index"),
        (spoil_keras_file, ": incomplete export: no model.keras"),
        (spoil_build_args, ": weight 'dense0/kernel' has shape .* in the SavedModel but .* rebuilt from"),
        (
            spoil_model_name,
            ": model 'custom' is not in this zoo's registry and the export has no model.keras",
        ),
    ],
)
def test_load_keras_model_errors_are_one_line(
    exported: Exported, tmp_path: pathlib.Path, spoil: Callable[[pathlib.Path], None], message: str
) -> None:
    broken = pathlib.Path(shutil.copytree(exported.path, tmp_path / "broken"))
    spoil(broken)
    with pytest.raises(UserError, match=f"^{re.escape(str(broken))}{message}") as info:
        zoo.load_keras_model(broken)
    assert "\n" not in str(info.value)


def test_export_directory_has_normal_permissions(exported: Exported) -> None:
    umask = os.umask(0)
    os.umask(umask)
    assert exported.path.stat().st_mode & 0o777 == 0o777 & ~umask  # tempfile.mkdtemp made it 0700


def test_default_class_names_are_the_datasets(tmp_path: pathlib.Path) -> None:
    tiny = keras.Sequential([keras.Input((LENGTH, 1)), keras.layers.Flatten(), keras.layers.Dense(27)])
    path = zoo.export(tiny, tmp_path / "tiny", dataset_config="challenge")
    assert (
        json.loads((path / "metadata.json").read_text())["class_names"]
        == get_config("challenge").class_names()
    )
    loaded = tf.saved_model.load(str(path))
    assert loaded.class_names().numpy()[26] == b"class_026"


def test_existing_export_is_not_overwritten(exported: Exported) -> None:
    before = (exported.path / "metadata.json").read_bytes()
    with pytest.raises(UserError, match="is not empty; pass overwrite=True") as info:
        zoo.export(exported.model, exported.path)
    assert "\n" not in str(info.value)
    assert (exported.path / "metadata.json").read_bytes() == before
    assert siblings(exported.path) == ["cnn6_bn"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_names": ["a", "b"]}, "class_names has 2 entries but the model has 4 classes"),
        ({"class_names": "abcd"}, "class_names must be a list of strings"),
        ({"metrics": {"accuracy": "high"}}, r"metrics\['accuracy'\] must be a number"),
        ({"build_args": {"callback": object()}}, "build_args must be JSON-serialisable"),
        ({"dataset_config": 3}, "dataset_config must be a config name"),
    ],
)
def test_invalid_metadata_writes_nothing(
    exported: Exported, tmp_path: pathlib.Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        zoo.export(exported.model, tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing(
    exported: Exported, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module, "serving_module", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        zoo.export(exported.model, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_file(exported: Exported, tmp_path: pathlib.Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        zoo.export(exported.model, tmp_path / "out")


def test_model_with_wrong_input_shape(tmp_path: pathlib.Path) -> None:
    flat = keras.Sequential([keras.Input((LENGTH,)), keras.layers.Dense(CLASSES, activation="softmax")])
    with pytest.raises(UserError, match=r"expected one input of shape \(batch, datapoints, 1\)"):
        zoo.export(flat, tmp_path / "out")


def test_custom_model_and_overwrite(tmp_path: pathlib.Path) -> None:
    custom = keras.Sequential(
        [
            keras.Input((LENGTH, 1)),
            keras.layers.Conv1D(4, 9, activation="relu"),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="tiny",
    )
    target = tmp_path / "nested" / "tiny"
    zoo.export(custom, target, metrics={"seed": 0})
    metadata = json.loads((target / "metadata.json").read_text())
    assert (metadata["model"], metadata["display_name"], metadata["build_args"]) == ("custom", "tiny", {})
    assert metadata["class_names"] == ["class_000", "class_001", "class_002"] and metadata["dataset"] is None
    assert metadata["keras_file"] == "model.keras"  # not in the registry: the Keras model is kept

    zoo.export(custom, target, metrics={"seed": 1}, overwrite=True)
    assert json.loads((target / "metadata.json").read_text())["metrics"] == {"seed": 1.0}
    assert siblings(target) == ["tiny"]
    raw = raw_spectra(3)
    loaded = tf.saved_model.load(str(target))
    expected = custom.predict(normalise(raw), verbose=0)
    np.testing.assert_allclose(loaded.serve(tf.constant(raw)).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(zoo.load_keras_model(target).predict(normalise(raw), verbose=0), expected)
