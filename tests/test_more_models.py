"""The eight architectures of the authors' later benchmark (issue #17; spec: architectures_more.md).

Registry metadata and published defaults, the layer sequence and shapes of each trunk, where every toggle
acts, the feature-length formulas, and ``zoo.export`` → ``zoo.load`` → ``predict`` per model. Exact
parameter counts and FLOPs at 5000 points are in ``test_models.py`` (fixture ``zoo_param_counts.json``).
Short inputs everywhere else; ``fan`` (290 M parameters at 5000 points) is never trained here.
"""

from __future__ import annotations

import json
import math
import pathlib

import keras
import numpy as np
import pytest

import zoo
from zoo.commands.cli import main
from zoo.models.registry import get_model_info, list_models

MORE = ["park", "vecsei", "fan", "oviedo", "sang", "mozaffari", "bhattacharya", "schuetzke"]
STUDY = ["cnn2", "cnn3", "inc3", "inc6", "cnn6", "cnn_bn", "vgg", "resnet"]
LENGTH = 500  # the short input of these tests (park's trunk needs >= 311 points)
BENCHMARK_CODE = "as implemented in the authors' benchmark code"
#: name -> (fc_widths, fc_activation, fc_dropout, conv_dropout, batch_norm), spec §1 "toggle mapping".
PUBLISHED = {
    "park": ((700, 70), "relu", 0.3, 0.0, False),
    "vecsei": ((2300, 1150), "relu", 0.5, 0.3, False),
    "fan": ((3584, 1024), "relu", 0.3, 0.3, False),
    "oviedo": ((), "relu", 0.0, 0.0, False),
    "sang": ((512,), "relu", 0.5, 0.0, False),
    "mozaffari": ((64,), "relu", 0.0, 0.0, False),
    "bhattacharya": ((500, 500), "relu", 0.2, 0.2, False),
    "schuetzke": ((100,), "relu", 0.35, 0.0, False),
}
#: Verified papers: name -> (DOI, first author's surname, year, domain).
PAPERS = {
    "park": ("10.1107/S205225251700714X", "Park", 2017, "XRD"),
    "vecsei": ("10.1103/PhysRevB.99.245120", "Vecsei", 2019, "XRD"),
    "fan": ("10.1039/C8AN02212G", "Fan", 2019, "Raman"),
    "oviedo": ("10.1038/s41524-019-0196-x", "Oviedo", 2019, "XRD"),
}
#: Convolutions per trunk.
CONVS = {"park": 3, "vecsei": 3, "fan": 2, "oviedo": 3, "sang": 16, "mozaffari": 1, "bhattacharya": 4,
         "schuetzke": 5}  # fmt: skip
#: Conv-dropout layers (name, the layer feeding it) when the toggle is on, spec §1.
CONV_DROPOUTS = {
    "park": [(f"avgpool{i}_dropout", f"avgpool{i}") for i in (1, 2, 3)],
    "vecsei": [(f"conv{i}_dropout", f"conv{i}") for i in (1, 2, 3)],  # before each pool
    "fan": [("maxpool1_dropout", "maxpool1")],  # not after the last stage
    "oviedo": [(f"conv{i}_dropout", f"conv{i}") for i in (1, 2, 3)],  # no pooling: after each conv
    "sang": [(f"maxpool{i}_dropout", f"maxpool{i}") for i in range(1, 6)],
    "mozaffari": [("conv1_dropout", "conv1")],
    "bhattacharya": [(f"maxpool{i}_dropout", f"maxpool{i}") for i in (1, 2, 3)],  # stage 4 feeds the LSTM
    "schuetzke": [(f"maxpool{i}_dropout", f"maxpool{i}") for i in range(1, 6)],
}


def build(name: str, length: int = LENGTH, **kwargs: object) -> keras.Model:
    """A 3-class model at ``length`` points; ``fan`` gets a narrow head unless ``fc_widths`` is given."""
    if name == "fan":
        kwargs.setdefault("fc_widths", (16, 8))
    return zoo.build(name, num_classes=3, input_length=length, compile=False, **kwargs)


def names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def follows(model: keras.Model, layer: str, previous: str) -> bool:
    return model.get_layer(layer).input is model.get_layer(previous).output


# ------------------------------------------------------------------------------------------ registry
def test_registered_after_the_study_and_before_our_own() -> None:
    published = list_models(include_variants=False)
    assert published[:16] == STUDY + MORE
    assert published[16:] == ["prnet"]
    assert all(get_model_info(name).base is None for name in MORE)


@pytest.mark.parametrize("name", MORE)
def test_published_defaults(name: str) -> None:
    widths, activation, fc_dropout, conv_dropout, batch_norm = PUBLISHED[name]
    defaults = get_model_info(name).defaults
    assert (defaults["fc_widths"], defaults["fc_activation"], defaults["fc_dropout"]) == (
        widths, activation, fc_dropout,
    )  # fmt: skip
    assert (defaults["conv_dropout"], defaults["batch_norm"]) == (conv_dropout, batch_norm)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_verified_papers(name: str) -> None:
    doi, surname, year, domain = PAPERS[name]
    info = get_model_info(name)
    assert (info.paper.doi, info.paper.short, info.domain) == (doi, f"{surname} et al. {year}", domain)
    assert info.paper.doi in info.paper.citation and info.paper.title in info.paper.citation


@pytest.mark.parametrize("name", sorted(set(MORE) - set(PAPERS)))
def test_unconfirmed_sources_name_the_benchmark_code(name: str) -> None:
    info = get_model_info(name)
    assert info.paper.doi is None and info.domain == "not stated"
    assert info.paper.short == BENCHMARK_CODE
    assert f"spectra-model-benchmark, commit 9511ce9, model_implementations/{name}.py" in info.paper.citation
    assert json.loads(json.dumps(info.to_dict()))["paper"]["doi"] is None


def test_cli_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--no-variants"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(MORE) <= set(rows)
    assert "10.1039/C8AN02212G" in rows["fan"] and "290,917,620" in rows["fan"] and "3584-1024" in rows["fan"]
    assert BENCHMARK_CODE in rows["sang"] and "47,588,955" in rows["sang"]


# -------------------------------------------------------------------------------------- architecture
def test_park_trunk_at_5000_points() -> None:
    model = zoo.build("park", num_classes=27, compile=False)
    shapes = {n: model.get_layer(n).output.shape[1:] for n in names(model)[1:8]}
    assert shapes == {
        "conv1": (1000, 80), "avgpool1": (499, 80), "conv2": (100, 80), "avgpool2": (98, 80),
        "conv3": (49, 80), "avgpool3": (47, 80), "flatten": (3760,),
    }  # fmt: skip
    convs = [model.get_layer(f"conv{i}").get_config() for i in (1, 2, 3)]
    assert [(c["kernel_size"][0], c["strides"][0], c["padding"]) for c in convs] == [
        (100, 5, "same"), (50, 5, "same"), (25, 2, "same"),
    ]  # fmt: skip
    pools = [model.get_layer(f"avgpool{i}") for i in (1, 2, 3)]
    assert all(isinstance(pool, keras.layers.AveragePooling1D) for pool in pools)
    assert [(p.pool_size[0], p.strides[0]) for p in pools] == [(3, 2), (3, 1), (3, 1)]
    assert names(model)[8:] == [
        "dense0_dropout", "dense0", "dense1_dropout", "dense1", "output_dropout", "output",
    ]  # fmt: skip


def test_vecsei_is_park_with_dropout_before_each_pool() -> None:
    vecsei, park = build("vecsei"), build("park", fc_widths=(2300, 1150), fc_dropout=0.5)
    assert [n for n in names(vecsei) if "dropout" not in n] == [n for n in names(park) if "dropout" not in n]
    for i in (1, 2, 3):
        assert vecsei.get_layer(f"conv{i}_dropout").rate == 0.3
        assert follows(vecsei, f"conv{i}_dropout", f"conv{i}")
        assert follows(vecsei, f"avgpool{i}", f"conv{i}_dropout")
    assert vecsei.count_params() == park.count_params()


def test_fan_layers() -> None:
    model = build("fan")
    assert names(model) == [
        "spectrum", "conv1", "maxpool1", "maxpool1_dropout", "conv2", "maxpool2", "flatten",
        "dense0_dropout", "dense0", "dense1_dropout", "dense1", "output_dropout", "output",
    ]  # fmt: skip
    assert model.get_layer("flatten").output.shape[1] == 64 * (LENGTH // 4)
    assert {model.get_layer(n).rate for n in names(model) if "dropout" in n} == {0.3}


def test_oviedo_all_convolutional() -> None:
    model = zoo.build("oviedo", num_classes=27, compile=False)
    assert names(model) == ["spectrum", "conv1", "conv2", "conv3", "global_avgpool", "flatten", "output"]
    assert [model.get_layer(f"conv{i}").output.shape[1] for i in (1, 2, 3)] == [625, 125, 42]
    convs = [model.get_layer(f"conv{i}").get_config() for i in (1, 2, 3)]
    assert [(c["kernel_size"][0], c["strides"][0]) for c in convs] == [(8, 8), (5, 5), (3, 3)]
    short = zoo.build("oviedo", num_classes=27, input_length=LENGTH, compile=False)
    assert short.count_params() == model.count_params() == 9_435  # independent of the input length


def test_sang_layers_and_bn_head() -> None:
    model = build("sang")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8
    assert all(c.kernel_size == (3,) and c.get_config()["activation"] == "relu" for c in convs)
    assert names(model).index("maxpool5") == names(model).index("conv16") + 1
    assert names(model)[-6:] == ["flatten", "dense0", "dense0_bn", "dense0_act", "dense0_dropout", "output"]
    assert model.get_layer("dense0").get_config()["activation"] == "linear"
    assert model.get_layer("dense0").use_bias  # kept, as in the original (redundant with BN's beta)
    assert model.get_layer("dense0_act").get_config()["activation"] == "relu"
    assert model.get_layer("dense0_dropout").rate == 0.5
    assert model.get_layer("flatten").output.shape[1] == 512 * (LENGTH // 32)


def test_mozaffari_layers() -> None:
    model = build("mozaffari")
    assert names(model) == ["spectrum", "conv1", "flatten", "dense0", "output"]
    assert model.get_layer("dense0").input.shape[1] == 32 * LENGTH


def test_bhattacharya_cnn_lstm() -> None:
    model = zoo.build("bhattacharya", num_classes=27, compile=False)
    lstm = model.get_layer("lstm")
    assert isinstance(lstm, keras.layers.LSTM) and lstm.units == 32 and not lstm.return_sequences
    assert lstm.input.shape[1:] == (312, 32) and lstm.count_params() == 8_320
    assert follows(model, "lstm", "maxpool4")
    assert [model.get_layer(f"conv{i}").kernel_size for i in range(1, 5)] == [(2,)] * 4
    assert names(model)[-7:] == [
        "flatten", "dense0_dropout", "dense0", "dense1_dropout", "dense1", "output_dropout", "output",
    ]  # fmt: skip


def test_schuetzke_kernels_and_options() -> None:
    model = build("schuetzke")
    assert [model.get_layer(f"conv{i}").kernel_size[0] for i in range(1, 6)] == [127, 63, 42, 31, 25]
    assert model.get_layer("flatten").output.shape[1] == 64 * (LENGTH // 32)
    small = build("schuetzke", num_layers=3, filters=16, kernel=30)
    assert [small.get_layer(f"conv{i}").kernel_size[0] for i in (1, 2, 3)] == [30, 15, 10]
    assert small.get_layer("flatten").output.shape[1] == 16 * (LENGTH // 8)


@pytest.mark.parametrize("length", [333, 777])
def test_feature_length_formulas(length: int) -> None:
    """The width entering the head at other input lengths (spec §12)."""
    a = math.ceil(length / 5)
    b = (a - 3) // 2 + 1
    park_width = 80 * (math.ceil((math.ceil(b / 5) - 2) / 2) - 2)
    expected = {
        "park": park_width, "vecsei": park_width, "fan": 64 * (length // 4), "oviedo": 32,
        "sang": 512 * (length // 32), "mozaffari": 32 * length, "bhattacharya": 32,
        "schuetzke": 64 * (length // 32),
    }  # fmt: skip
    for name, width in expected.items():
        model = build(name, length)
        assert model.get_layer("flatten").output.shape[1] == width, name


# ------------------------------------------------------------------------------------------- toggles
@pytest.mark.parametrize("name", MORE)
def test_conv_dropout_positions(name: str) -> None:
    model = build(name, conv_dropout=0.25)
    head = {"output_dropout"} | {f"dense{i}_dropout" for i in range(3)}
    dropouts = [n for n in names(model) if "dropout" in n and n not in head]
    assert dropouts == [layer for layer, _ in CONV_DROPOUTS[name]]
    for layer, previous in CONV_DROPOUTS[name]:
        assert model.get_layer(layer).rate == 0.25 and follows(model, layer, previous)
    published = build(name)
    expected = CONV_DROPOUTS[name] if PUBLISHED[name][3] else []
    assert [n for n in names(published) if "dropout" in n and n not in head] == [n for n, _ in expected]


@pytest.mark.parametrize("name", MORE)
def test_batch_norm_between_every_conv_and_its_activation(name: str) -> None:
    model = build(name, batch_norm=True)
    for i in range(1, CONVS[name] + 1):
        assert model.get_layer(f"conv{i}").get_config()["activation"] == "linear"
        assert follows(model, f"conv{i}_bn", f"conv{i}") and follows(model, f"conv{i}_act", f"conv{i}_bn")
    head_bn = 1 if name == "sang" else 0
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == CONVS[name] + head_bn
    plain = [type(layer) for layer in build(name).layers]
    assert plain.count(keras.layers.BatchNormalization) == head_bn


@pytest.mark.parametrize("name", MORE)
def test_fc_toggles(name: str) -> None:
    model = build(name, fc_widths=(16, 8), fc_activation="gelu", fc_dropout=0.1)
    assert [model.get_layer(f"dense{i}").units for i in (0, 1)] == [16, 8]
    if name == "sang":  # Dense (linear) -> BN -> activation -> Dropout
        for i in (0, 1):
            assert model.get_layer(f"dense{i}").get_config()["activation"] == "linear"
            assert model.get_layer(f"dense{i}_act").get_config()["activation"] == "gelu"
            assert follows(model, f"dense{i}_dropout", f"dense{i}_act")
        assert follows(model, "dense0", "flatten") and follows(model, "output", "dense1_dropout")
    else:  # [Dropout -> Dense] per width -> Dropout -> output
        for i in (0, 1):
            assert model.get_layer(f"dense{i}").get_config()["activation"] == "gelu"
            assert follows(model, f"dense{i}", f"dense{i}_dropout")
        assert follows(model, "output", "output_dropout")
    head = [n for n in names(model) if n.startswith(("dense", "output_")) and "drop" in n]
    assert [model.get_layer(n).rate for n in head] == [0.1] * (2 if name == "sang" else 3)
    bare = build(name, fc_widths=(), fc_dropout=0.0)
    assert not any(n.startswith("dense") for n in names(bare)) and follows(bare, "output", "flatten")


def test_oviedo_fc_activation_needs_widths() -> None:
    with pytest.raises(ValueError, match="cannot apply to oviedo"):
        build("oviedo", fc_activation="relu")
    assert build("oviedo", fc_widths=(8,)).get_layer("dense0").get_config()["activation"] == "relu"


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("park", {"length": 256}, "input_length=256 is too short for park: layer 'avgpool3'"),
        ("bhattacharya", {"length": 15}, "input_length=15 is too short for bhattacharya: layer 'maxpool4'"),
        ("schuetzke", {"kernel": 4}, "kernel: must be an integer >= 5, got 4"),
        ("schuetzke", {"num_layers": 0}, "num_layers: must be an integer >= 1"),
        ("sang", {"kernel": 3}, "sang: unknown argument 'kernel'"),
    ],
)
def test_one_line_errors(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        build(name, **kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ export, load, predict
@pytest.mark.parametrize("name", MORE)
def test_export_load_predict(name: str, tmp_path: pathlib.Path) -> None:
    length = 128 if name == "fan" else LENGTH  # fan's dense0 grows as 64 * L / 4 * 3584
    model = zoo.build(name, num_classes=3, input_length=length, compile=False)
    path = zoo.export(model, tmp_path / name, class_names=["a", "b", "c"])
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["model"] == name and metadata["build_args"]["input_length"] == length
    rng = np.random.default_rng(0)
    raw = (rng.random((5, length)) * rng.uniform(1.0, 100.0, (5, 1))).astype(np.float32)
    normalised = (raw / raw.max(axis=1, keepdims=True))[..., None]
    expected = model.predict(normalised, verbose=0)
    np.testing.assert_allclose(zoo.load(path).predict(raw), expected, atol=1e-5)
    assert metadata["keras_file"] is None  # rebuilt from the registry, the weights read from the SavedModel
    np.testing.assert_array_equal(zoo.load_keras_model(path).predict(normalised, verbose=0), expected)
    assert zoo.load(path).classify(raw[:1], top_k=1)[0][0][0] == "abc"[int(expected[0].argmax())]


def test_docs_registry_table_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.study.blocks import block_is_current

    assert main(["models", "--format", "markdown", "--no-variants"]) == 0
    table = capsys.readouterr().out.strip()
    assert block_is_current("registry-table", table), (
        "paste the output of: spectrazoo models --format markdown --no-variants"
    )
