"""ResumableBackup survives a kill in the middle of writing its weights file (it falls back one epoch)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zoo.training.callbacks import ResumableBackup


class _Killed(Exception):
    pass


class _KillAfter(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.kill_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.kill_epoch:
            raise _Killed


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_a_torn_weights_file_resumes_from_the_previous_epoch(tmp_path):
    x = np.random.default_rng(0).random((16, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(16) % 2, 2)
    backup = tmp_path / "backup"
    with pytest.raises(_Killed):
        _model().fit(x, y, epochs=5, verbose=0, callbacks=[ResumableBackup(str(backup), []), _KillAfter(3)])
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 3  # 3 epochs done
    (backup / "latest.weights.h5").write_bytes(b"torn write")  # killed while Keras rewrote it
    history = _model().fit(x, y, epochs=5, verbose=0, callbacks=[ResumableBackup(str(backup), [])])
    assert history.epoch == [2, 3, 4]  # resumed from the previous epoch's copy, not from scratch
