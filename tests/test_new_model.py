"""PRNet (``zoo/models/prnet.py``), this project's architecture for the ``challenge`` failure modes.

Exact parameter counts, fewer parameters and FLOPs than CNN6, the peak code (apexes, height levels, presence,
log height), the position cells, options and one-line errors, forward passes, the ``.keras`` round trip with
``safe_mode`` and ``zoo.export`` + reload. Short inputs only, except for the counts at the study's 5000
points (built, never run).
"""

from __future__ import annotations

import math
import pathlib

import keras
import numpy as np
import pytest

import zoo
from synthetic_spectra.generator import render
from zoo.models.prnet import (
    ROBUST_OPTION,
    V4_OPTION,
    AppendConstant,
    LogCompression,
    PeakCoding,
    RelativeToStrongest,
)
from zoo.models.registry import get_model_info

SHORT = 256
PARAMS = {500: 2_800_500, 27: 151_227}  # at 5000 points, registry defaults (positions relative)
ABSOLUTE_PARAMS = {500: 1_400_500, 27: 75_627}  # positions="absolute" (PRNet v2)
CHANNELS = 11 + 2 + 1  # height levels, presence, log height, then the bias channel


def spectra(n: int, length: int = SHORT, seed: int = 0) -> np.ndarray:
    """Random peak spectra (3 Gaussian peaks each), max-normalised, ``[n, length, 1]``."""
    rng = np.random.default_rng(seed)
    positions = rng.integers(length // 8, length - length // 8, (n, 3))
    heights = rng.uniform(0.05, 1.0, (n, 3))
    x = render(positions, heights, rng.uniform(2, 5, n), length)
    return (x / x.max(axis=1, keepdims=True)).astype(np.float32)[..., None]


def layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def code_of(x: np.ndarray, **kwargs: object) -> np.ndarray:
    return keras.ops.convert_to_numpy(PeakCoding(**kwargs)(x.astype(np.float32)))


# ------------------------------------------------------------------------------------ registry, size
def test_registry_entry() -> None:
    info = get_model_info("prnet")
    assert (info.display_name, info.domain, info.base) == ("PRNet", "general 1-D spectra", None)
    assert info.paper.short == "this project, 2026" and info.paper.doi is None
    assert (info.params_500, info.params_27) == (PARAMS[500], PARAMS[27])
    assert "prnet" in zoo.list_models(include_variants=False)
    assert dict(info.defaults) == {
        "fc_activation": None, "fc_dropout": 0.0, "conv_dropout": 0.0, "batch_norm": False,
        "fc_widths": (), "levels": 11, "spacing": 25, "gain": 30.0, "compression_epsilon": 0.01,
        "smooth": 0, "background": 0, "noise": 0.0, "noise_statistic": "rms", "positions": "relative",
    }  # fmt: skip


@pytest.mark.parametrize("num_classes", [500, 27])
@pytest.mark.parametrize(("positions", "offsets"), [("relative", 10_000), ("absolute", 5000)])
def test_exact_parameter_counts(num_classes: int, positions: str, offsets: int) -> None:
    model = zoo.build("prnet", num_classes=num_classes, compile=False, positions=positions)
    expected = PARAMS if positions == "relative" else ABSOLUTE_PARAMS
    assert model.count_params() == expected[num_classes]
    # Hand count: no weights in the peak encoder; cells of 25 offsets (or positions) x 14 channels -> classes.
    cells = math.ceil(offsets / 25)
    assert model.get_layer("flatten").output.shape[1] == cells * CHANNELS
    assert model.count_params() == (cells * CHANNELS + 1) * num_classes
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == model.count_params()


def test_fewer_parameters_and_flops_than_cnn6() -> None:
    prnet = zoo.build("prnet", num_classes=27, compile=False)
    cnn6 = zoo.build("cnn6", num_classes=27, compile=False)
    assert cnn6.count_params() == 19_644_151
    assert prnet.count_params() * 100 < cnn6.count_params()
    assert zoo.count_flops(prnet) == 2 * 5600 * 27 == 302_400
    assert zoo.count_flops(prnet) * 1000 < zoo.count_flops(cnn6)


def test_layer_order() -> None:
    model = zoo.build("prnet", 5, SHORT, compile=False)
    assert [layer.name for layer in model.layers] == [
        "spectrum", "peak_coding", "relative_to_strongest", "position_box1", "position_cells", "gain",
        "bias_channel", "flatten", "output",
    ]  # fmt: skip
    assert model.get_layer("position_cells").output.shape[1:] == (math.ceil(2 * SHORT / 25), CHANNELS - 1)
    assert model.get_layer("gain").scale == 30.0 * 50
    assert model.get_layer("bias_channel").value == pytest.approx(30.0 / math.ceil(2 * SHORT / 25))
    absolute = zoo.build("prnet", 5, SHORT, compile=False, positions="absolute")
    assert "relative_to_strongest" not in [layer.name for layer in absolute.layers]
    assert absolute.get_layer("position_cells").output.shape[1:] == (math.ceil(SHORT / 25), CHANNELS - 1)
    assert "Dropout" not in layer_types(model) and "Conv1D" not in layer_types(model)


# ------------------------------------------------------------------------------------- the peak code
def test_peak_coding_marks_apexes_with_height_levels() -> None:
    x = np.zeros((1, 64, 1))
    x[0, 10, 0], x[0, 40, 0], x[0, 41, 0], x[0, 55, 0] = 1.0, 0.2, 0.1, 0.001  # 0.001: below the threshold
    code = code_of(x * 7.0)  # renormalised to its maximum inside the layer
    assert code.shape == (1, 64, 13)
    assert sorted(np.flatnonzero(code[0].any(axis=1))) == [10, 40]
    u = np.log1p(np.array([1.0, 0.2]) / 0.01) / np.log1p(100.0)
    np.testing.assert_allclose(code[0, [10, 40], 11], 1.0)  # presence
    np.testing.assert_allclose(code[0, [10, 40], 12], u, rtol=1e-6)  # log height
    levels = code[0, [10, 40], :11]
    np.testing.assert_allclose(levels.sum(axis=1), 1.0, rtol=1e-6)  # a partition of unity
    np.testing.assert_allclose(levels @ np.linspace(0, 1, 11), u, rtol=1e-5)  # linear interpolation
    assert levels[0, 10] == pytest.approx(1.0)


def test_peak_coding_is_independent_of_peak_width() -> None:
    positions, heights = np.array([[60, 150]] * 2), np.array([[1.0, 0.155]] * 2)
    x = render(positions, heights, np.array([2.0, 5.0]), SHORT)[..., None]
    narrow, wide = code_of(x)
    np.testing.assert_allclose(narrow, wide, atol=1e-6)
    assert sorted(np.flatnonzero(narrow.any(axis=1))) == [60, 150]


def test_minor_peaks_count_as_present() -> None:
    x = render(np.array([[60, 150]]), np.array([[1.0, 0.005]]), np.array([2.0]), SHORT)[..., None]
    code = code_of(x)
    assert code[0, 150, 11] == 1.0 and code[0, 150, 12] == pytest.approx(np.log1p(0.5) / np.log1p(100), 1e-4)


def test_log_compression_values() -> None:
    layer = LogCompression(0.01)
    x = np.array([[-1.0, -0.035, 0.0, 0.035, 0.08, 1.0, 2.0]], dtype=np.float32)
    expected = np.sign(x) * np.log1p(np.abs(x) / 0.01) / np.log1p(100.0)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert y[0, 2] == 0.0 and y[0, 5] == pytest.approx(1.0) and y[0, 3] == pytest.approx(0.326, abs=1e-3)


def test_append_constant() -> None:
    out = keras.ops.convert_to_numpy(AppendConstant(0.25)(np.ones((2, 3, 4), dtype=np.float32)))
    assert out.shape == (2, 3, 5) and np.all(out[..., 4] == 0.25) and np.all(out[..., :4] == 1.0)


def test_position_cells_vary_linearly_with_position() -> None:
    model = zoo.build("prnet", 3, SHORT, compile=False, positions="absolute")
    cells = keras.Model(model.input, model.get_layer("position_cells").output)
    positions = np.array([[105], [110], [115], [125]])  # cell centres near 101, 126: one linear piece
    x = render(positions, np.ones((4, 1)), np.full(4, 2.0), SHORT)[..., None]
    presence = keras.ops.convert_to_numpy(cells(x.astype(np.float32)))[..., 11] * 50
    np.testing.assert_allclose(presence.sum(axis=1), 2.0, rtol=1e-5)  # two cells overlap at every point
    np.testing.assert_allclose(presence[1], (presence[0] + presence[2]) / 2, atol=1e-6)  # linear in between
    assert presence[3].max() == pytest.approx(presence[3, 5], rel=1e-6)  # centred on its own cell


# ------------------------------------------------------------------------------------------ options
def test_forward_pass_on_short_inputs() -> None:
    for length in (SHORT, 9):
        model = zoo.build("prnet", num_classes=3, input_length=length, compile=False)
        probabilities = model.predict(spectra(2, length), verbose=0)
        assert probabilities.shape == (2, 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_architecture_options() -> None:
    options = {"levels": 5, "spacing": 10, "gain": 2.0, "compression_epsilon": 0.1}
    model = zoo.build("prnet", 5, SHORT, compile=False, **options)
    assert model.get_layer("peak_coding").levels == 5 and model.get_layer("peak_coding").epsilon == 0.1
    assert model.get_layer("position_cells").output.shape[1:] == (math.ceil(2 * SHORT / 10), 7)
    assert model.get_layer("gain").scale == 2.0 * 20


def test_fc_toggles() -> None:
    head = {"fc_widths": (32, 16), "fc_activation": "relu", "fc_dropout": 0.2}
    model = zoo.build("prnet", 5, SHORT, compile=False, **head)
    assert [model.get_layer(f"dense{i}").units for i in (0, 1)] == [32, 16]
    assert model.get_layer("dense1").get_config()["activation"] == "relu"
    assert layer_types(model).count("Dropout") == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression_epsilon": 0}, r"compression_epsilon must be a finite number > 0, got 0"),
        ({"compression_epsilon": "small"}, "compression_epsilon must be a finite number"),
        ({"levels": 1}, r"levels: must be an integer >= 2, got 1"),
        ({"spacing": 2.5}, r"spacing: must be an integer >= 1, got 2.5"),
        ({"gain": float("inf")}, r"gain must be a finite number > 0, got inf"),
        ({"batch_norm": True}, "prnet has no convolutions"),
        ({"conv_dropout": 0.1}, "prnet has no convolutions"),
        ({"pooling": "native"}, "prnet: unknown argument 'pooling'"),
        ({"fc_dropout": 1.0}, "fc_dropout must be in"),
    ],
)
def test_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        zoo.build("prnet", 5, SHORT, compile=False, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("epsilon", [0, -0.1, float("nan"), True, "0.01"])
def test_log_compression_rejects_bad_epsilon(epsilon: object) -> None:
    with pytest.raises(ValueError, match=r"^epsilon must be a finite number > 0, got ") as info:
        LogCompression(epsilon)
    assert "\n" not in str(info.value)


def test_layer_configs_round_trip() -> None:
    coding = PeakCoding.from_config(PeakCoding(5, 0.05, window=7, threshold=0.01, name="code").get_config())
    assert (coding.levels, coding.epsilon, coding.window, coding.name) == (5, 0.05, 7, "code")
    assert coding.threshold == 0.01 and not coding.linear_levels
    assert PeakCoding.from_config(PeakCoding(linear_levels=True).get_config()).linear_levels
    assert AppendConstant.from_config(AppendConstant(0.5).get_config()).value == 0.5
    assert LogCompression.from_config(LogCompression(0.05).get_config()).epsilon == 0.05


# ------------------------------------------------------------------------------------ serialisation
@pytest.fixture(scope="module")
def trained() -> keras.Model:
    """A short-input PRNet after one training step (weights away from their initial values)."""
    keras.utils.set_random_seed(0)
    model = zoo.compile_model(zoo.build("prnet", 4, SHORT, compile=False), jit_compile=False)
    model.fit(spectra(8), np.eye(4)[np.arange(8) % 4], epochs=1, batch_size=4, verbose=0)
    return model


def test_keras_file_round_trip_safe_mode(trained: keras.Model, tmp_path: pathlib.Path) -> None:
    trained.save(tmp_path / "prnet.keras")
    restored = keras.saving.load_model(tmp_path / "prnet.keras", safe_mode=True)
    assert isinstance(restored.get_layer("peak_coding"), PeakCoding)
    assert isinstance(restored.get_layer("bias_channel"), AppendConstant)
    x = spectra(3, seed=1)
    np.testing.assert_allclose(restored.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-6)


def test_export_and_reload_give_the_same_probabilities(trained: keras.Model, tmp_path: pathlib.Path) -> None:
    path = zoo.export(trained, tmp_path / "prnet", dataset_config="challenge")
    raw = spectra(5, seed=2)[..., 0] * np.float32(123.0)  # raw scale: the export max-normalises itself
    normalised = (raw / raw.max(axis=1, keepdims=True))[..., None]
    expected = trained.predict(normalised, verbose=0)
    np.testing.assert_allclose(zoo.load(path).predict(raw), expected, rtol=1e-5, atol=1e-7)
    assert not (path / "model.keras").exists()  # PRNet's own layers rebuild from the registry
    np.testing.assert_array_equal(zoo.load_keras_model(path).predict(normalised, verbose=0), expected)


# ------------------------------------------------------------------------- robust option (noisy spectra)
ROBUST = {"smooth": 7, "background": 51, "noise": 1.5}


def test_the_robust_option_constant_is_the_chosen_candidate() -> None:
    assert ROBUST_OPTION == ROBUST


def noisy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-peak spectra on a slope and a broad hump with Gaussian noise, max-normalised; true positions."""
    rng = np.random.default_rng(seed)
    positions = np.stack([rng.integers(40, 100, n), rng.integers(150, 220, n)], axis=1)
    x = render(positions, np.stack([np.ones(n), rng.uniform(0.3, 0.8, n)], axis=1), np.full(n, 3.0), SHORT)
    t = np.linspace(0.0, 1.0, SHORT)
    x = x + 0.2 * t + 0.15 * np.exp(-(((t - 0.5) / 0.35) ** 2)) + rng.normal(0.0, 0.01, x.shape)
    return (x / x.max(axis=1, keepdims=True)).astype(np.float32)[..., None], positions


def test_robust_option_keeps_the_parameter_count_and_layers() -> None:
    default = zoo.build("prnet", num_classes=27, compile=False)
    robust = zoo.build("prnet", num_classes=27, compile=False, **ROBUST)
    assert robust.count_params() == default.count_params() == PARAMS[27]
    assert layer_types(robust) == layer_types(default)
    assert {k: robust.get_layer("peak_coding").get_config()[k] for k in ROBUST} == ROBUST


def test_default_build_is_unchanged() -> None:
    layer = zoo.build("prnet", 5, SHORT, compile=False).get_layer("peak_coding")
    config = layer.get_config()
    assert (config["smooth"], config["background"], config["noise"]) == (0, 0, 0.0)
    x = spectra(4, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), code_of(x))


def test_robust_peak_coding_finds_the_peaks_of_noisy_spectra() -> None:
    x, positions = noisy(6)
    inner = slice(25, SHORT - 25)  # within half a baseline window of the ends a slope can leave an apex
    plain, robust = code_of(x)[:, inner, 11], code_of(x, **ROBUST)[:, inner, 11]
    assert (plain.sum(axis=1) > 10).all()  # noise maxima count as peaks without the option
    assert (robust.sum(axis=1) == 2).all()
    for row, true in zip(robust, positions, strict=True):
        assert np.abs(np.flatnonzero(row) + inner.start - true).max() <= 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"smooth": -1}, "smooth"), ({"background": 1.5}, "background"), ({"noise": -1.0}, "noise")],
)
def test_robust_option_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        zoo.build("prnet", 5, SHORT, compile=False, **kwargs)


def test_robust_build_round_trips_with_safe_mode(tmp_path: pathlib.Path) -> None:
    model = zoo.build("prnet", 4, SHORT, compile=False, **ROBUST)
    model.save(tmp_path / "robust.keras")
    restored = keras.saving.load_model(tmp_path / "robust.keras", safe_mode=True)
    assert {k: restored.get_layer("peak_coding").get_config()[k] for k in ROBUST} == ROBUST
    x, _ = noisy(3, seed=1)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# ------------------------------------------- PRNet v4: a median-based noise level (issue #15, part 3)
MAD = {"smooth": 7, "background": 51, "noise": 2.0, "noise_statistic": "mad"}


def test_v4_option_is_absolute_positions_with_the_median_noise_level() -> None:
    assert V4_OPTION == {"positions": "absolute", **MAD}
    model = zoo.build("prnet", 27, compile=False, **V4_OPTION)
    assert model.count_params() == ABSOLUTE_PARAMS[27]
    assert model.get_layer("peak_coding").get_config()["noise_statistic"] == "mad"


def test_median_noise_level_keeps_every_apex_of_clean_spectra() -> None:
    """On clean spectra the smoothing residual is zero off the peaks: the median threshold stays at the
    plain one, so minor peaks count, where the RMS threshold (PRNet's robust option) drops some."""
    rng = np.random.default_rng(5)
    n = 8
    positions = np.stack([rng.integers(30, 90, n), rng.integers(120, 160, n), rng.integers(190, 230, n)], 1)
    heights = np.stack([np.ones(n), np.full(n, 0.3), np.full(n, 0.01)], axis=1)  # a 1 % minor peak
    x = render(positions, heights, np.full(n, 2.0), SHORT)
    x = (x / x.max(axis=1, keepdims=True)).astype(np.float32)[..., None]
    plain, mad, rms = (code_of(x, **options)[..., 11] for options in ({}, MAD, ROBUST))
    np.testing.assert_array_equal(mad, plain)
    assert (mad.sum(axis=1) == 3).all() and (rms.sum(axis=1) < 3).any()


def test_median_noise_level_finds_the_peaks_of_noisy_spectra() -> None:
    x, positions = noisy(6)
    inner = slice(25, SHORT - 25)
    found = code_of(x, **MAD)[:, inner, 11]
    assert (found.sum(axis=1) == 2).all()
    for row, true in zip(found, positions, strict=True):
        assert np.abs(np.flatnonzero(row) + inner.start - true).max() <= 3


def test_noise_statistic_is_checked_and_round_trips(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="noise_statistic must be one of rms, mad"):
        zoo.build("prnet", 5, SHORT, compile=False, noise_statistic="max")
    model = zoo.build("prnet", 4, SHORT, compile=False, **MAD)
    model.save(tmp_path / "v4.keras")
    restored = keras.saving.load_model(tmp_path / "v4.keras", safe_mode=True)
    assert restored.get_layer("peak_coding").get_config()["noise_statistic"] == "mad"
    x, _ = noisy(3, seed=2)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# ------------------------------------------------------------- positions relative to the strongest apex
@pytest.mark.parametrize("num_classes", [500, 27])
def test_relative_positions_cost_against_cnn6(num_classes: int) -> None:
    model = zoo.build("prnet", num_classes=num_classes, compile=False)  # 400 cells: offsets -5000..4999
    assert zoo.count_flops(model) == 2 * 400 * CHANNELS * num_classes
    cnn6 = zoo.build("cnn6", num_classes=num_classes, compile=False)
    assert model.count_params() * 5 < cnn6.count_params()
    assert zoo.count_flops(model) * 100 < zoo.count_flops(cnn6)


def test_relative_to_strongest_reindexes_by_the_offset_from_the_strongest_apex() -> None:
    code = np.zeros((2, 10, 2), dtype=np.float32)
    code[0, [2, 5, 9], 1] = [0.5, 1.0, 0.3]  # strongest apex at 5
    code[0, [2, 5, 9], 0] = [7.0, 8.0, 9.0]
    out = keras.ops.convert_to_numpy(RelativeToStrongest()(code))
    assert out.shape == (2, 20, 2)
    assert np.flatnonzero(out[0, :, 1]).tolist() == [10 - 3, 10, 10 + 4]
    assert out[0, [7, 10, 14], 0].tolist() == [7.0, 8.0, 9.0]
    assert not out[1].any()  # no apex: an all-zero code stays zero


def test_relative_positions_ignore_a_shift_of_the_whole_pattern() -> None:
    positions = np.array([[60, 100, 170], [60 + 23, 100 + 23, 170 + 23], [60, 100 + 23, 170]])
    x = render(positions, np.tile([0.4, 1.0, 0.2], (3, 1)), np.full(3, 3.0), SHORT)
    x = (x / x.max(axis=1, keepdims=True)).astype(np.float32)[..., None]
    keras.utils.set_random_seed(0)
    relative = zoo.build("prnet", 5, SHORT, compile=False, positions="relative").predict(x, verbose=0)
    np.testing.assert_allclose(relative[0], relative[1], rtol=1e-6)  # the whole pattern shifted
    assert np.abs(relative[0] - relative[2]).max() > 1e-4  # one peak moved: the code changes
    absolute = zoo.build("prnet", 5, SHORT, compile=False, positions="absolute").predict(x, verbose=0)
    assert np.abs(absolute[0] - absolute[1]).max() > 1e-4


def test_relative_build_round_trips_with_safe_mode(tmp_path: pathlib.Path) -> None:
    model = zoo.build("prnet", 4, SHORT, compile=False, positions="relative")
    model.save(tmp_path / "relative.keras")
    restored = keras.saving.load_model(tmp_path / "relative.keras", safe_mode=True)
    assert isinstance(restored.get_layer("relative_to_strongest"), RelativeToStrongest)
    x = spectra(3, seed=4)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_bad_positions_value_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^positions must be one of absolute, relative, got 'center'$"):
        zoo.build("prnet", 5, SHORT, compile=False, positions="center")
