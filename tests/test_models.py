"""The model zoo's builders: exact parameter counts, toggles, forward passes, errors, ``.keras`` round trip.

Parameter counts (and, where the spec gives them, forward FLOPs) are checked against
``tests/fixtures/zoo_param_counts.json`` (copied from the specs) with ``compile=False`` and the session
cleared between builds; forward passes use short inputs only. ``fan`` (290 M parameters at 5000 points) is
built once.
"""

from __future__ import annotations

import ast
import json
import pathlib
from collections.abc import Iterator

import keras
import numpy as np
import pytest

import zoo
from zoo.models.flops import count_flops, flops_by_layer

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "zoo_param_counts.json").read_text())
SPEC, FLOPS = FIXTURE["params"], FIXTURE["forward_flops"]
SHORT = 256  # input length of the forward-pass tests
#: Models whose trunk needs more than SHORT points (park's strided convs and average pools need >= 311).
SHORT_FOR = {"park": 500, "vecsei": 500}
#: Built once at 5000 points (1.2 GB of weights): its 500-class count follows from the same build.
HEAVY = {"fan"}


@pytest.fixture
def fresh_session() -> Iterator[None]:
    """Free the (large) models of a test; only where they are large, as ``clear_session`` costs ~1 s."""
    yield
    keras.backend.clear_session()


def trainable(name: str, num_classes: int, **kwargs: object) -> keras.Model:
    """A short-input model compiled without XLA (tests should not spend their time in the XLA compiler)."""
    model = zoo.build(name, num_classes=num_classes, input_length=SHORT, compile=False, **kwargs)
    return zoo.compile_model(model, jit_compile=False)


def layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def spectra(n: int, length: int = SHORT, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, length, 1), dtype=np.float32)


# ------------------------------------------------------------------------------ parameter counts
def test_the_study_models_are_registered_first() -> None:
    assert zoo.list_models()[: len(SPEC)] == list(SPEC)


@pytest.mark.usefixtures("fresh_session")
@pytest.mark.parametrize("num_classes", [500, 27])
@pytest.mark.parametrize("name", [name for name in SPEC if name not in HEAVY])
def test_parameter_count_matches_spec(name: str, num_classes: int) -> None:
    model = zoo.build(name, num_classes=num_classes, compile=False)
    assert model.count_params() == SPEC[name][str(num_classes)]
    if name in FLOPS:
        assert count_flops(model) == FLOPS[name][str(num_classes)]


@pytest.mark.usefixtures("fresh_session")
@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_model_counts_from_one_build(name: str) -> None:
    """One build at 27 classes; the 500-class figures differ only in the output layer (F + 1 inputs)."""
    model = zoo.build(name, num_classes=27, compile=False)
    width = model.get_layer("output").input.shape[-1]
    assert (model.count_params(), count_flops(model)) == (SPEC[name]["27"], FLOPS[name]["27"])
    assert model.count_params() + (width + 1) * (500 - 27) == SPEC[name]["500"]
    assert count_flops(model) + 2 * width * (500 - 27) == FLOPS[name]["500"]


# -------------------------------------------------------------------------------------- toggles
@pytest.mark.parametrize(
    ("base", "kwargs", "variant"),
    [
        ("cnn6", {"batch_norm": True}, "cnn6_bn"),
        ("cnn_bn", {"batch_norm": False, "fc_activation": "relu"}, "cnn_bn_mod"),
        (
            "vgg",
            {"kernel_size": 20, "conv_dropout": 0, "fc_widths": (2000, 500), "fc_dropout": 0.3},
            "vgg_mod",
        ),
        (
            "resnet",
            {"batch_norm": False, "stem_activation": "relu", "fc_widths": [3100, 1200], "fc_dropout": 0.5},
            "resnet_mod",
        ),
    ],
)
@pytest.mark.usefixtures("fresh_session")
def test_toggles_on_base_reproduce_variant_counts(base: str, kwargs: dict, variant: str) -> None:
    model = zoo.build(base, num_classes=27, compile=False, **kwargs)
    assert model.count_params() == SPEC[variant]["27"]


def test_variant_is_base_with_other_arguments() -> None:
    convdo = zoo.build("cnn6_convdo", 5, SHORT, compile=False)
    explicit = zoo.build("cnn6", 5, SHORT, conv_dropout=0.2, fc_dropout=0, compile=False)
    assert [layer.get_config() | {"name": ""} for layer in convdo.layers] == [
        layer.get_config() | {"name": ""} for layer in explicit.layers
    ]


def test_fc_activation_linear_vs_relu() -> None:
    linear = zoo.build("cnn2", 5, SHORT, fc_activation="linear", compile=False)
    relu = zoo.build("cnn2", 5, SHORT, fc_activation="relu", compile=False)
    gelu = zoo.build("cnn2", 5, SHORT, fc_activation="gelu", compile=False)
    for index in (0, 1):
        assert linear.get_layer(f"dense{index}").get_config()["activation"] == "linear"
        assert relu.get_layer(f"dense{index}").get_config()["activation"] == "relu"
        assert gelu.get_layer(f"dense{index}").get_config()["activation"] == "gelu"
    assert linear.get_layer("output").get_config()["activation"] == "softmax"
    assert linear.count_params() == relu.count_params()


@pytest.mark.parametrize(("name", "activation"), [("cnn6", "relu"), ("cnn3", "linear"), ("vgg_mod", "relu")])
def test_published_fc_activation_defaults(name: str, activation: str) -> None:
    dense0 = zoo.build(name, 5, SHORT, compile=False).get_layer("dense0")
    assert dense0.get_config()["activation"] == activation


def test_conv_dropout_adds_dropout_after_every_pool() -> None:
    plain = zoo.build("cnn6", 5, SHORT, compile=False)
    dropped = zoo.build("cnn6", 5, SHORT, conv_dropout=0.25, compile=False)
    assert not any(layer.name.startswith("maxpool") and "dropout" in layer.name for layer in plain.layers)
    for stage in range(1, 7):
        layer = dropped.get_layer(f"maxpool{stage}_dropout")
        assert isinstance(layer, keras.layers.Dropout) and layer.rate == 0.25
        assert layer.input is dropped.get_layer(f"maxpool{stage}").output
    assert plain.count_params() == dropped.count_params()


def test_conv_dropout_on_resnet_follows_every_stage() -> None:
    model = zoo.build("resnet", 5, SHORT, conv_dropout=0.1, compile=False)
    dropouts = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [f"stage{s}_dropout" for s in range(1, 7)] + ["output_dropout"]


def test_fc_dropout_placement_and_zero() -> None:
    model = zoo.build("cnn6", 5, SHORT, compile=False)
    assert [layer.name for layer in model.layers[-6:]] == [
        "dense0_dropout", "dense0", "dense1_dropout", "dense1", "output_dropout", "output",
    ]  # fmt: skip
    assert model.get_layer("dense0_dropout").rate == 0.7
    no_dropout = zoo.build("cnn6", 5, SHORT, fc_dropout=0.0, compile=False)
    assert "Dropout" not in layer_types(no_dropout)


def test_batch_norm_sits_between_conv_and_activation() -> None:
    model = zoo.build("cnn6", 5, SHORT, batch_norm=True, compile=False)
    for index in range(1, 7):
        conv, bn, act = (model.get_layer(f"conv{index}{suffix}") for suffix in ("", "_bn", "_act"))
        assert conv.get_config()["activation"] == "linear"
        assert bn.input is conv.output and act.input is bn.output
        assert act.get_config()["activation"] == "relu"
    plain = zoo.build("cnn6", 5, SHORT, compile=False)
    assert "BatchNormalization" not in layer_types(plain)
    assert plain.get_layer("conv1").get_config()["activation"] == "relu"


def test_cnn_bn_uses_leaky_relu_with_or_without_bn() -> None:
    for batch_norm in (True, False):
        model = zoo.build("cnn_bn", 5, SHORT, batch_norm=batch_norm, compile=False)
        act = model.get_layer("conv1_act")
        assert isinstance(act, keras.layers.LeakyReLU) and act.negative_slope == pytest.approx(0.1)
        assert ("BatchNormalization" in layer_types(model)) is batch_norm


def test_batch_norm_toggle_removes_every_resnet_bn() -> None:
    with_bn = zoo.build("resnet", 5, SHORT, compile=False)
    without = zoo.build("resnet", 5, SHORT, batch_norm=False, compile=False)
    assert layer_types(with_bn).count("BatchNormalization") == 1 + 6 * (3 + 2)
    assert "BatchNormalization" not in layer_types(without)


def test_fc_widths_add_and_remove_hidden_layers() -> None:
    resnet = zoo.build("resnet", 5, SHORT, fc_widths=(64, 32), fc_activation="relu", compile=False)
    assert [resnet.get_layer(f"dense{i}").units for i in (0, 1)] == [64, 32]
    cnn2 = zoo.build("cnn2", 5, SHORT, fc_widths=(), compile=False)
    assert "Dense" in layer_types(cnn2) and layer_types(cnn2).count("Dense") == 1
    assert cnn2.get_layer("output").input is cnn2.get_layer("output_dropout").output


def test_inception_blocks_option() -> None:
    inc = zoo.build("inc3", 5, SHORT, blocks=1, compile=False)
    assert inc.get_layer("inception1_concat").output.shape[-1] == 22 + 42 + 12 + 10
    assert not any(layer.name.startswith("inception2") for layer in inc.layers)


def test_readable_layer_names() -> None:
    names = {layer.name for layer in zoo.build("cnn6", 5, SHORT, compile=False).layers}
    expected = {f"conv{i}" for i in range(1, 7)} | {f"maxpool{i}" for i in range(1, 7)}
    assert expected | {"spectrum", "flatten", "dense0", "dense1", "output"} <= names


# ---------------------------------------------------------------------------------- forward pass
@pytest.mark.parametrize("name", list(SPEC))
def test_forward_pass_on_short_input(name: str) -> None:
    length = SHORT_FOR.get(name, SHORT)
    model = zoo.build(name, num_classes=3, input_length=length, compile=False)
    probabilities = model.predict(spectra(2, length), verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_build_compiles_with_the_study_settings() -> None:
    model = zoo.build("vgg", num_classes=3, input_length=SHORT)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(3e-4)
    history = model.fit(spectra(4), np.eye(3)[[0, 1, 2, 0]], epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history


def test_training_step_reduces_loss() -> None:
    keras.utils.set_random_seed(0)
    model = trainable("cnn6_bn", 3, fc_widths=(16,), fc_dropout=0.0)
    x, y = spectra(6), np.eye(3)[np.arange(6) % 3]
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    model.fit(x, y, epochs=3, batch_size=6, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] < before


def test_compile_model_learning_rate_and_loss() -> None:
    model = zoo.compile_model(zoo.build("vgg", 3, SHORT, compile=False), learning_rate=1e-3)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert (model.optimizer.beta_1, model.optimizer.beta_2) == (0.9, 0.999)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    with pytest.raises(ValueError, match="learning_rate"):
        zoo.compile_model(model, learning_rate=-1)


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("nope",), {}, "unknown name 'nope'"),
        (("resnet",), {"fc_activation": "relu"}, "no hidden FC layers"),
        (("cnn6",), {"fc_dropout": -0.1}, "fc_dropout"),
        (("cnn6",), {"fc_dropout": 1.0}, "fc_dropout"),
        (("vgg",), {"conv_dropout": 1.5}, "conv_dropout"),
        (("cnn6",), {"conv_dropout": float("nan")}, "conv_dropout"),
        (("cnn6",), {"fc_activation": "sigmoidal"}, "fc_activation: unknown Keras activation 'sigmoidal'"),
        (("resnet",), {"stem_activation": "nope"}, "stem_activation"),
        (("cnn6", 3, 8), {}, "input_length=8 is too short for cnn6"),
        (("cnn2", 3, 2), {}, "input_length=2 is too short for cnn2"),
        (("cnn6", 1), {}, "num_classes"),
        (("cnn6", 3, 0), {}, "input_length"),
        (("cnn6",), {"fc_widths": (100, 0)}, r"fc_widths\[1\]"),
        (("cnn6",), {"fc_widths": "100"}, "fc_widths"),
        (("cnn6",), {"batch_norm": "yes"}, "batch_norm"),
        (("cnn6",), {"kernel_size": 20}, "cnn6: unknown argument 'kernel_size'"),
        (("vgg",), {"kernel_size": 0}, "kernel_size"),
        (("inc3",), {"blocks": 7}, "blocks"),
    ],
)
def test_clear_one_line_errors(args: tuple, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        zoo.build(*args, compile=False, **kwargs)
    assert "\n" not in str(info.value)


def test_shortest_valid_input_builds() -> None:
    # cnn6: mp(3,2) mp(3,2) need >= 3 points, mp(2,2) >= 2: 11 → 5 → 2 → 1 → 1 → 1 → 1; 10 → 4 → 1 fails.
    model = zoo.build("cnn6", 3, 11, compile=False)
    assert [model.get_layer(f"maxpool{i}").output.shape[1] for i in range(1, 7)] == [5, 2, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="input_length=10 is too short for cnn6: layer 'maxpool3'"):
        zoo.build("cnn6", 3, 10, compile=False)


# ------------------------------------------------------------------------------------------ FLOPs
def test_flops_from_layer_shapes() -> None:
    model = zoo.build("cnn2", 3, 5000, compile=False)
    per_layer = flops_by_layer(model)
    assert per_layer["conv1"] == 2 * 2500 * 64 * 50 * 1
    assert per_layer["conv2"] == 2 * 417 * 64 * 25 * 64
    assert per_layer["dense0"] == 2 * (139 * 64) * 2000
    assert per_layer["output"] == 2 * 500 * 3
    assert set(per_layer) == {"conv1", "conv2", "dense0", "dense1", "output"}
    assert count_flops(model) == sum(per_layer.values())
    assert count_flops(model, training=True) == 3 * count_flops(model)
    assert zoo.count_flops(model) == count_flops(model)


def test_flops_count_nested_models() -> None:
    inner = zoo.build("vgg", 3, SHORT, compile=False)
    outer = keras.Sequential([keras.Input((SHORT, 1)), inner])
    assert count_flops(outer) == count_flops(inner) > 0


# ------------------------------------------------------------------------------------ serialisation
@pytest.mark.parametrize(("name", "train"), [("cnn_bn", True), ("resnet", False), ("inc3", False)])
def test_keras_file_round_trip(name: str, train: bool, tmp_path: pathlib.Path) -> None:
    if not train:
        model = zoo.build(name, num_classes=4, input_length=SHORT, fc_widths=(16,), compile=False)
    else:  # moves the BN statistics and the optimizer state away from their initial values
        model = trainable(name, 4, fc_widths=(16,))
        model.fit(spectra(8), np.eye(4)[np.arange(8) % 4], epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = spectra(3, seed=1)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]


# ------------------------------------------------------------------------------------ backend purity
MODEL_SOURCES = [*sorted((ROOT / "zoo" / "models").glob("*.py")), ROOT / "zoo" / "__init__.py"]


@pytest.mark.parametrize("path", MODEL_SOURCES, ids=lambda p: p.name)
def test_models_use_no_tensorflow(path: pathlib.Path) -> None:
    """Models, blocks, registry, compile and FLOPs code never import TensorFlow (backend-agnostic Keras 3)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            assert not any(alias.name.split(".")[0] == "tensorflow" for alias in node.names), path
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "tensorflow", path
        elif isinstance(node, ast.Name):
            assert node.id != "tf", path
