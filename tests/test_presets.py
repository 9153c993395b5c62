"""Presets: every committed one loads by name, its checksum holds, and it reproduces its recorded numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import zoo
from zoo.errors import UserError
from zoo.models.presets import Preset, evaluate_on_test_split, get_preset, preset_table_markdown

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

COMMITTED = [name for name in zoo.list_presets() if get_preset(name).committed]


def test_the_campaigns_vgg_and_prnet_are_presets():
    assert {"vgg_relu_challenge", "vgg_relu_benchmark", "prnet_challenge"} <= set(COMMITTED)


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_preset_reproduces_its_row_exactly(name):
    preset = get_preset(name)
    model = zoo.from_preset(name)  # verifies the SHA-256
    assert model.count_params() == preset.params
    accuracy, wrong, size = evaluate_on_test_split(model, preset.dataset)
    assert (wrong, size) == (preset.misclassified, preset.test_size)
    assert accuracy == pytest.approx(preset.test_accuracy)
    assert preset.protocol["stop_reason"] in ("early_stopping", "max_epochs")
    assert preset.protocol["max_epochs"] == 500  # the protocol's end, never a capped run


def test_a_changed_weights_file_is_one_clear_error(tmp_path):
    preset = get_preset(COMMITTED[0])
    copy = tmp_path / preset.weights
    shutil.copy(preset.weights_path(), copy)
    with copy.open("r+b") as handle:
        handle.seek(copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(UserError, match=r"SHA-256 .* not the recorded"):
        zoo.from_preset(preset.name, weights_dir=tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        zoo.from_preset(preset.name, weights_dir=tmp_path / "nowhere")
    with pytest.raises(UserError, match="unknown preset 'nope'; known presets: "):
        zoo.from_preset("nope")


def test_docs_table_is_generated_from_the_registry():
    from zoo.study.blocks import block_is_current

    assert block_is_current("presets-table", preset_table_markdown()), "run spectrazoo preset make"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)  # fmt: skip


def test_predict_and_models_know_the_presets(tmp_path):
    import numpy as np

    from synthetic_spectra.generator import generate

    x, _ = generate("challenge", "test")
    np.save(tmp_path / "two.npy", x[:2])
    model = f"preset:{COMMITTED[0]}"
    result = _cli("predict", "--model", model, "--format", "json", str(tmp_path / "two.npy"))
    assert result.returncode == 0, result.stderr
    assert "class_0" in result.stdout
    listed = _cli("models", "--presets")
    assert listed.returncode == 0 and f"`{COMMITTED[0]}`" in listed.stdout
    unknown = _cli("preset", "build", "nope")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "unknown preset 'nope'" in unknown.stderr


def _mini_preset(**recorded) -> Preset:
    """A recipe for CNN6 on `mini` (a larger model than the committed presets), 2 epochs."""
    from synthetic_spectra.config import get_config

    config = get_config("mini")
    return Preset.from_dict({
        "name": "cnn6_relu_mini", "model": "cnn6", "toggles": {"fc_activation": "relu"}, "dataset": "mini",
        "num_classes": config.num_classes, "datapoints": config.datapoints, "seed": 0,
        "protocol": {"max_epochs": 2, "batch_size": 128, "lr_factor": 0.5, "precision": "float32",
                     "jit_compile": "auto", "epochs_run": 2, "stop_reason": "max_epochs"},
        "source": {"results": "-", "run_id": "mini/cnn6-relu-seed0"}, "params": 0,
        "weights": "cnn6_relu_mini.weights.h5",
        "sha256": "-", "size_bytes": 0, "hardware": "-", "committed": False, "paper": "–",
        "test_size": config.split_size("test"), **recorded,
    })  # fmt: skip


def test_a_preset_is_rebuilt_from_its_recipe_and_says_whether_it_reproduced(tfds_data_dir, tmp_path):
    from zoo.models.presets import build_preset_model, verified_weights
    from zoo.training.presets import build_preset

    wrong = _mini_preset(test_accuracy=0.0, misclassified=-1)
    first = build_preset(wrong, tmp_path / "first", weights_dir=tmp_path / "presets", verbose=0)
    assert not first.reproduced and first.row["epochs_run"] == 2
    row = first.row
    recorded = _mini_preset(test_accuracy=row["test_accuracy"], misclassified=row["misclassified"])
    second = build_preset(recorded, tmp_path / "second", weights_dir=tmp_path / "presets", verbose=0)
    assert second.reproduced, second.summary()  # same recipe, same seed: the same result
    model = build_preset_model(recorded)
    model.load_weights(verified_weights(recorded, tmp_path / "presets"))  # checked against the build record
    _, misclassified, _ = evaluate_on_test_split(model, "mini")
    assert misclassified == recorded.misclassified
    data = bytearray(second.weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    second.weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="not the built"):
        verified_weights(recorded, tmp_path / "presets")


def test_preset_build_never_writes_into_the_shipped_folder(tmp_path, monkeypatch):
    from zoo.models.presets import SHIPPED_PRESETS_DIR, presets_dir
    from zoo.training.presets import build_preset

    before = {path.name: path.stat().st_mtime_ns for path in SHIPPED_PRESETS_DIR.iterdir()}
    with pytest.raises(UserError, match="shipped presets folder is read-only"):
        build_preset(get_preset(COMMITTED[0]), tmp_path / "work", weights_dir=SHIPPED_PRESETS_DIR)
    assert {path.name: path.stat().st_mtime_ns for path in SHIPPED_PRESETS_DIR.iterdir()} == before
    assert not (tmp_path / "work").exists()
    monkeypatch.delenv("SPECTRAZOO_PRESETS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert presets_dir() == tmp_path / "data" / "spectrazoo" / "presets"  # the default: a user folder
    monkeypatch.setenv("SPECTRAZOO_PRESETS", str(tmp_path / "mine"))
    assert presets_dir() == tmp_path / "mine"
    # a committed preset is still read from the shipped folder, whatever the user folder holds
    assert get_preset(COMMITTED[0]).weights_path().parent == SHIPPED_PRESETS_DIR


def test_preset_list_does_not_import_tensorflow():
    script = (
        "import sys\nfrom zoo.commands.cli import main\nassert main(['preset', 'list']) == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "| `vgg_relu_challenge` |" in result.stdout
