"""Presets: every committed one loads by name, its checksum holds, and it reproduces its recorded numbers."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest

import zoo
from zoo.errors import UserError
from zoo.models.presets import evaluate_on_test_split, get_preset, preset_table_markdown

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
COMMITTED = [name for name in zoo.list_presets() if get_preset(name).committed]


def test_the_campaigns_vgg_is_a_preset():
    assert "vgg_relu_challenge" in COMMITTED


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


def test_readme_table_is_generated_from_the_registry():
    sys.path.insert(0, str(BENCHMARKS))
    from readme_blocks import block_is_current

    assert block_is_current("presets-table", preset_table_markdown()), "run benchmarks/make_preset.py"
