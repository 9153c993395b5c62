"""PRNet (``zoo/models/prnet.py``), this project's architecture for the ``challenge`` failure modes.

Exact parameter counts, fewer parameters and FLOPs than CNN6, the log-compression layer, toggles, forward
passes, the ``.keras`` round trip with ``safe_mode`` and ``zoo.export`` + reload. Short inputs only, except
for the counts at the study's 5000 points (built, never run).
"""

from __future__ import annotations

import math
import pathlib

import keras
import numpy as np
import pytest

import zoo
from zoo.models.prnet import DOWNSAMPLING, STEM, LogCompression
from zoo.registry import get_model_info

SHORT = 256
PARAMS = {500: 1_520_956, 27: 1_399_395}  # at 5000 points, published defaults


def spectra(n: int, length: int = SHORT, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, length, 1), dtype=np.float32)


def layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


# ------------------------------------------------------------------------------------ registry, size
def test_registry_entry() -> None:
    info = get_model_info("prnet")
    assert (info.display_name, info.domain, info.base) == ("PRNet", "general 1-D spectra", None)
    assert info.paper.short == "this project, 2026" and info.paper.doi is None
    assert (info.params_500, info.params_27) == (PARAMS[500], PARAMS[27])
    assert "prnet" in zoo.list_models(include_variants=False)
    assert dict(info.defaults) == {
        "fc_activation": "relu", "fc_dropout": 0.5, "conv_dropout": 0.0, "batch_norm": False,
        "fc_widths": (256,), "compression_epsilon": 0.01,
    }  # fmt: skip


@pytest.mark.parametrize("num_classes", [500, 27])
def test_exact_parameter_counts(num_classes: int) -> None:
    model = zoo.build("prnet", num_classes=num_classes, compile=False)
    assert model.count_params() == PARAMS[num_classes]
    # Hand count: conv weights + biases, then flatten (79 x 64) -> 256 -> classes.
    channels = [2, STEM.filters, *(conv.filters for conv in DOWNSAMPLING)]
    kernels = [STEM.kernel_size, *(conv.kernel_size for conv in DOWNSAMPLING)]
    convs = sum(
        k * c_in * c_out + c_out for k, c_in, c_out in zip(kernels, channels[:-1], channels[1:], strict=True)
    )
    assert model.get_layer("flatten").output.shape[1] == math.ceil(5000 / 64) * 64 == 79 * 64
    assert model.count_params() == convs + (79 * 64 + 1) * 256 + (256 + 1) * num_classes


def test_fewer_parameters_and_flops_than_cnn6() -> None:
    prnet = zoo.build("prnet", num_classes=27, compile=False)
    cnn6 = zoo.build("cnn6", num_classes=27, compile=False)
    assert cnn6.count_params() == 19_644_151
    assert prnet.count_params() * 10 < cnn6.count_params()
    assert zoo.count_flops(prnet) == 75_995_136
    assert zoo.count_flops(prnet) * 10 < zoo.count_flops(cnn6)


def test_no_pooling_only_strided_convolutions() -> None:
    model = zoo.build("prnet", num_classes=27, compile=False)
    assert not any("Pool" in name for name in layer_types(model))
    strides = [model.get_layer(f"conv{i}").strides[0] for i in range(1, len(DOWNSAMPLING) + 1)]
    assert strides == [2] * 6 and model.get_layer("stem_conv").strides[0] == 1
    assert model.get_layer("linear_and_log").output.shape[1:] == (5000, 2)


# ------------------------------------------------------------------------------------ log compression
def test_log_compression_values() -> None:
    layer = LogCompression(0.01)
    x = np.array([[-1.0, -0.035, 0.0, 0.035, 0.08, 1.0, 2.0]], dtype=np.float32)
    expected = np.sign(x) * np.log1p(np.abs(x) / 0.01) / np.log1p(100.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-6)
    y = keras.ops.convert_to_numpy(layer(x))[0]
    assert y[2] == 0.0 and y[5] == pytest.approx(1.0) and y[0] == pytest.approx(-1.0)
    assert y[3] == pytest.approx(0.326, abs=1e-3)  # a 3.5 % minor peak becomes a third of the highest one
    assert np.all(np.diff(y) > 0)


@pytest.mark.parametrize("epsilon", [0, -0.1, float("nan"), True, "0.01"])
def test_log_compression_rejects_bad_epsilon(epsilon: object) -> None:
    with pytest.raises(ValueError, match=r"^epsilon must be a finite number > 0, got ") as info:
        LogCompression(epsilon)
    assert "\n" not in str(info.value)


def test_log_compression_config_round_trip() -> None:
    layer = LogCompression(0.05, name="squash")
    clone = LogCompression.from_config(layer.get_config())
    assert (clone.epsilon, clone.name) == (0.05, "squash")


# ------------------------------------------------------------------------------------------ toggles
def test_forward_pass_on_short_inputs() -> None:
    for length in (SHORT, 9):
        model = zoo.build("prnet", num_classes=3, input_length=length, compile=False)
        probabilities = model.predict(spectra(2, length), verbose=0)
        assert probabilities.shape == (2, 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_default_head_and_layer_order() -> None:
    model = zoo.build("prnet", 5, SHORT, compile=False)
    assert [layer.name for layer in model.layers[-5:]] == [
        "flatten", "dense0_dropout", "dense0", "output_dropout", "output",
    ]  # fmt: skip
    assert model.get_layer("dense0").units == 256
    assert model.get_layer("dense0").get_config()["activation"] == "relu"
    assert model.get_layer("dense0_dropout").rate == model.get_layer("output_dropout").rate == 0.5
    assert "BatchNormalization" not in layer_types(model)
    assert not any(layer.name.startswith("conv") and "dropout" in layer.name for layer in model.layers)


def test_batch_norm_and_conv_dropout_toggles() -> None:
    model = zoo.build("prnet", 5, SHORT, batch_norm=True, conv_dropout=0.1, compile=False)
    for name in ["stem_conv", *(f"conv{i}" for i in range(1, 7))]:
        conv, bn, act = (model.get_layer(f"{name}{suffix}") for suffix in ("", "_bn", "_act"))
        assert conv.get_config()["activation"] == "linear"
        assert bn.input is conv.output and act.input is bn.output
    for index in range(1, 7):
        layer = model.get_layer(f"conv{index}_dropout")
        assert layer.rate == 0.1 and layer.input is model.get_layer(f"conv{index}_act").output


def test_fc_toggles() -> None:
    model = zoo.build(
        "prnet", 5, SHORT, fc_widths=(32, 16), fc_activation="linear", fc_dropout=0.0, compile=False
    )
    assert [model.get_layer(f"dense{i}").units for i in (0, 1)] == [32, 16]
    assert model.get_layer("dense1").get_config()["activation"] == "linear"
    assert "Dropout" not in layer_types(model)
    bare = zoo.build("prnet", 5, SHORT, fc_widths=(), compile=False)
    assert layer_types(bare).count("Dense") == 1


def test_compression_epsilon_option() -> None:
    plain = zoo.build("prnet", 5, SHORT, compression_epsilon=0, compile=False)
    default = zoo.build("prnet", 5, SHORT, compile=False)
    assert "LogCompression" not in layer_types(plain) and "LogCompression" in layer_types(default)
    assert default.count_params() - plain.count_params() == STEM.kernel_size * STEM.filters
    wide = zoo.build("prnet", 5, SHORT, compression_epsilon=0.1, compile=False)
    assert wide.get_layer("log_compression").epsilon == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"compression_epsilon": -1},
            r"compression_epsilon must be a finite number >= 0 \(0 = no log channel\)",
        ),
        ({"compression_epsilon": "small"}, "compression_epsilon must be a finite number"),
        ({"pooling": "native"}, "prnet: unknown argument 'pooling'"),
        ({"fc_dropout": 1.0}, "fc_dropout must be in"),
    ],
)
def test_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        zoo.build("prnet", 5, SHORT, compile=False, **kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ serialisation
@pytest.fixture(scope="module")
def trained() -> keras.Model:
    """A short-input PRNet after one training step (weights away from their initial values)."""
    keras.utils.set_random_seed(0)
    model = zoo.compile_model(zoo.build("prnet", 4, SHORT, fc_widths=(16,), compile=False), jit_compile=False)
    model.fit(spectra(8), np.eye(4)[np.arange(8) % 4], epochs=1, batch_size=4, verbose=0)
    return model


def test_keras_file_round_trip_safe_mode(trained: keras.Model, tmp_path: pathlib.Path) -> None:
    trained.save(tmp_path / "prnet.keras")
    restored = keras.saving.load_model(tmp_path / "prnet.keras", safe_mode=True)
    assert isinstance(restored.get_layer("log_compression"), LogCompression)
    x = spectra(3, seed=1)
    np.testing.assert_allclose(restored.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-6)


def test_export_and_reload_give_the_same_probabilities(trained: keras.Model, tmp_path: pathlib.Path) -> None:
    path = zoo.export(trained, tmp_path / "prnet", dataset_config="challenge")
    raw = spectra(5, seed=2)[..., 0] * np.float32(123.0)  # raw scale: the export max-normalises itself
    expected = trained.predict((raw / raw.max(axis=1, keepdims=True))[..., None], verbose=0)
    for source in (path, path / "model.keras"):
        np.testing.assert_allclose(zoo.load(source).predict(raw), expected, rtol=1e-5, atol=1e-7)
