"""The registry (metadata, defaults, variants, validation) and ``spectrazoo models`` — no model is built."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest

import zoo
from zoo.commands.cli import main
from zoo.models.registry import TOGGLES, get_model_info, list_models, resolve_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = json.loads((ROOT / "tests" / "fixtures" / "zoo_param_counts.json").read_text())["params"]
PUBLISHED = ["cnn2", "cnn3", "inc3", "inc6", "cnn6", "cnn_bn", "vgg", "resnet"]
VARIANTS = ["cnn_bn_mod", "resnet_mod", "cnn6_bn", "cnn6_convdo", "vgg_mod"]
DOI = re.compile(r"^10\.\d{4,9}/\S+$")


def test_list_models_order_and_filter() -> None:
    # The study's models come first, in this order; the zoo may register more after them.
    assert list_models()[:13] == PUBLISHED + VARIANTS
    assert list_models(include_variants=False)[:8] == PUBLISHED
    assert not set(VARIANTS) & set(list_models(include_variants=False))
    assert zoo.list_models is list_models


@pytest.mark.parametrize("name", PUBLISHED + VARIANTS)
def test_metadata_is_complete(name: str) -> None:
    info = get_model_info(name)
    assert info.name == name and info.display_name and info.description
    assert info.domain in {"XRD", "Raman"}
    assert 2017 <= info.year <= 2023 and info.paper.title and info.paper.venue
    assert info.paper.doi is None or DOI.match(info.paper.doi)
    assert (info.params_500, info.params_27) == (SPEC[name]["500"], SPEC[name]["27"])
    assert set(TOGGLES) <= set(info.defaults)
    assert json.loads(json.dumps(info.to_dict()))["name"] == name


def test_published_sources() -> None:
    assert {get_model_info(n).paper.short for n in ("cnn2", "cnn3", "inc3", "inc6")} == {"Lee et al. 2020"}
    assert get_model_info("cnn6").paper.doi == "10.1021/acs.chemmater.1c01071"
    assert get_model_info("resnet").paper.doi == "10.1038/s41467-019-12898-9"
    for name in VARIANTS:
        assert get_model_info(name).paper.doi == "10.1038/s41524-023-01055-y"


@pytest.mark.parametrize(
    ("variant", "changes"),
    [
        ("cnn_bn_mod", {"batch_norm": False, "fc_activation": "relu"}),
        (
            "resnet_mod",
            {
                "batch_norm": False, "stem_activation": "relu", "fc_widths": (3100, 1200),
                "fc_activation": "relu",
            },
        ),
        ("cnn6_bn", {"batch_norm": True}),
        ("cnn6_convdo", {"conv_dropout": 0.2, "fc_dropout": 0.0}),
        (
            "vgg_mod",
            {
                "kernel_size": 20, "conv_dropout": 0.0, "fc_widths": (2000, 500), "fc_dropout": 0.3,
                "fc_activation": "relu",
            },
        ),
    ],
)  # fmt: skip
def test_variants_are_their_base_with_other_arguments(variant: str, changes: dict) -> None:
    info = get_model_info(variant)
    base = get_model_info(info.base)
    assert info.builder == base.builder and info.domain == base.domain
    assert dict(info.defaults) == {**base.defaults, **changes}


@pytest.mark.parametrize(
    ("name", "widths", "dropout", "activation"),
    [
        ("cnn2", (2000, 500), 0.3, "linear"),
        ("cnn3", (2500, 1000), 0.3, "linear"),
        ("inc3", (3700, 740), 0.3, "linear"),
        ("inc6", (4000, 400), 0.3, "linear"),
        ("cnn6", (3100, 1200), 0.7, "relu"),
        ("cnn_bn", (2048,), 0.5, "linear"),
        ("vgg", (120, 84, 186), 0.0, "linear"),
        ("resnet", (), 0.5, None),
    ],
)
def test_published_defaults(name: str, widths: tuple, dropout: float, activation: str | None) -> None:
    defaults = get_model_info(name).defaults
    assert (defaults["fc_widths"], defaults["fc_dropout"], defaults["fc_activation"]) == (
        widths, dropout, activation,
    )  # fmt: skip


def test_resolve_config_merges_over_defaults() -> None:
    config = resolve_config(get_model_info("vgg"), num_classes=27, input_length=5000, fc_dropout=0.1)
    assert (config.fc_dropout, config.conv_dropout, config.fc_widths) == (0.1, 0.2, (120, 84, 186))
    assert dict(config.options) == {"kernel_size": 5}
    resnet = resolve_config(get_model_info("resnet"), num_classes=3, input_length=100)
    assert resnet.fc_activation is None and resnet.fc_widths == ()
    widened = resolve_config(get_model_info("resnet"), num_classes=3, input_length=100, fc_widths=[8])
    assert widened.fc_activation == "linear" and widened.fc_widths == (8,)
    args = widened.as_build_args()
    assert json.loads(json.dumps(args)) == args | {"fc_widths": [8]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fc_activation": "relu"}, "fc_activation='relu' cannot apply to resnet"),
        ({"fc_dropout": -0.5}, "fc_dropout must be in"),
        ({"conv_dropout": 1}, "conv_dropout must be in"),
        ({"fc_dropout": True}, "fc_dropout must be a number"),
        ({"num_classes": 2.5}, "num_classes: must be an integer"),
        ({"kernel_size": 3}, "resnet: unknown argument 'kernel_size'"),
        ({"fc_widths": [10, -1]}, r"fc_widths\[1\]: must be an integer >= 1, got -1"),
    ],
)
def test_resolve_config_errors_are_one_line(kwargs: dict, message: str) -> None:
    arguments = {"num_classes": 3, "input_length": 100} | kwargs
    with pytest.raises(ValueError, match=message) as info:
        resolve_config(get_model_info("resnet"), **arguments)
    assert "\n" not in str(info.value)


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match=r"model: unknown name 'cnn7'; choose one of cnn2, .*vgg_mod"):
        get_model_info("cnn7")


def test_import_zoo_is_light() -> None:
    code = (
        "import sys, zoo; zoo.list_models(); zoo.get_model_info('cnn6'); "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -------------------------------------------------------------------------------------------- CLI
def run_models(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["models", *argv]) == 0
    return capsys.readouterr().out


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    lines = run_models(capsys).splitlines()
    assert lines[0].split()[:2] == ["name", "display"] and set(lines[1]) <= {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == list_models()
    cnn6 = next(line for line in lines if line.startswith("cnn6 "))
    assert "Szymanski et al. 2021" in cnn6 and "20,212,224" in cnn6 and "3100-1200" in cnn6


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    records = json.loads(run_models(capsys, "--format", "json"))
    assert [r["name"] for r in records] == list_models()
    assert {r["name"]: r["params_500"] for r in records if r["name"] in SPEC} == {
        n: SPEC[n]["500"] for n in SPEC
    }
    assert records[PUBLISHED.index("vgg")]["defaults"]["fc_widths"] == [120, 84, 186]


def test_cli_markdown_without_variants(capsys: pytest.CaptureFixture[str]) -> None:
    lines = run_models(capsys, "--format", "markdown", "--no-variants").splitlines()
    assert lines[0].startswith("| name | display name |") and lines[1].startswith("|---|")
    assert len(lines) == 2 + len(list_models(include_variants=False))
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_cli_rejects_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "--format", "xml"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
