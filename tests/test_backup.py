"""ResumableBackup survives a kill in the middle of writing its weights file (it falls back one epoch)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zoo.training.callbacks import ResumableBackup
from zoo.training.results import epochs_backed_up


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


# --- exact resumes whatever file a kill tears -------------------------------------------------------------
EPOCHS = 7


def _data() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    x = rng.random((32, 4)).astype("float32")
    y = keras.utils.to_categorical((x.sum(axis=1) > 2).astype(int), 2)
    x_val = rng.random((16, 4)).astype("float32")
    return x, y, (x_val, keras.utils.to_categorical((x_val.sum(axis=1) > 2).astype(int), 2))


def _fit(backup, *extra: keras.callbacks.Callback, inexact_log=None) -> tuple[list[int], list[np.ndarray]]:
    """A model with dropout, fitted with the protocol's stateful callbacks (patience short enough that
    they act within a few epochs) and the backup; returns the epochs this call trained and the final
    weights (early stopping's best ones)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.CategoricalCrossentropy(True))
    reduce_lr = keras.callbacks.ReduceLROnPlateau(patience=1, factor=0.5)
    stopping = keras.callbacks.EarlyStopping(patience=EPOCHS, restore_best_weights=True)
    x, y, validation = _data()
    backup_callback = ResumableBackup(str(backup), [reduce_lr, stopping], inexact_log=inexact_log)
    history = model.fit(
        x, y, epochs=EPOCHS, batch_size=8, shuffle=False, verbose=0, validation_data=validation,
        callbacks=[reduce_lr, stopping, backup_callback, *extra],
    )  # fmt: skip
    return history.epoch, [keras.ops.convert_to_numpy(w) for w in model.weights]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[np.ndarray]:
    epochs, weights = _fit(tmp_path_factory.mktemp("uninterrupted") / "backup")
    assert epochs == list(range(EPOCHS))
    return weights


def _assert_same(found: list[np.ndarray], expected: list[np.ndarray]) -> None:
    for a, b in zip(found, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def _kill_after(backup, epoch: int) -> None:
    with pytest.raises(_Killed):
        _fit(backup, _KillAfter(epoch))


def test_a_plain_kill_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted):
    _kill_after(tmp_path, 4)
    epochs, weights = _fit(tmp_path)
    assert epochs == [4, 5, 6]
    _assert_same(weights, uninterrupted)


def test_a_kill_before_the_callbacks_state_is_written_resumes_exactly(tmp_path, uninterrupted, monkeypatch):
    from zoo.training import callbacks

    written = callbacks._write_atomically
    calls = []

    def killed_on_the_fourth(path, text):  # epoch 4's arrays are on disk, its state record is not
        calls.append(path)
        if len(calls) == 4:
            raise _Killed
        written(path, text)

    monkeypatch.setattr(callbacks, "_write_atomically", killed_on_the_fourth)
    with pytest.raises(_Killed):
        _fit(tmp_path)
    monkeypatch.setattr(callbacks, "_write_atomically", written)
    epochs, weights = _fit(tmp_path)
    assert epochs == [3, 4, 5, 6]
    _assert_same(weights, uninterrupted)


@pytest.mark.parametrize("torn", ["latest.weights.h5", "training_metadata.json"])
def test_a_torn_keras_file_resumes_exactly_from_the_epoch_before(tmp_path, uninterrupted, torn):
    _kill_after(tmp_path, 4)
    (tmp_path / torn).write_bytes(b'{"epo')  # killed while Keras rewrote it: epoch 4 is lost
    assert epochs_backed_up(tmp_path) == 3
    epochs, weights = _fit(tmp_path)
    assert epochs == [3, 4, 5, 6]  # the previous epoch's state record goes with Keras's previous copies
    _assert_same(weights, uninterrupted)


def test_a_torn_first_epoch_starts_afresh(tmp_path, uninterrupted):
    _kill_after(tmp_path, 1)
    (tmp_path / "training_metadata.json").write_bytes(b"")
    assert epochs_backed_up(tmp_path) == 0
    epochs, weights = _fit(tmp_path)
    assert epochs == list(range(EPOCHS))
    _assert_same(weights, uninterrupted)


def _as_older_backup(backup) -> None:
    """Rewrite a backup as an older version left it: one set of arrays rewritten in place, no record of
    the previous epoch."""
    saved = json.loads((backup / "callback_state.json").read_text())
    files = saved["files"]
    (backup / files["seed_states"]).rename(backup / "seed_states.npz")
    best = next(name for key, name in files.items() if key.startswith("best_weights"))
    (backup / best).rename(backup / "best_weights.npz")
    for stale in backup.glob("*.[01].npz"):
        stale.unlink()
    (backup / "callback_state.json").write_text(
        json.dumps({"epoch": saved["epoch"], "callbacks": saved["callbacks"]})
    )


def test_a_backup_of_the_older_layout_resumes_exactly(tmp_path, uninterrupted):
    _kill_after(tmp_path, 4)
    _as_older_backup(tmp_path)
    epochs, weights = _fit(tmp_path)
    assert epochs == [4, 5, 6]
    _assert_same(weights, uninterrupted)


def test_a_torn_array_file_of_the_older_layout_warns_and_trains_on(tmp_path):
    backup, log = tmp_path / "backup", tmp_path / "inexact_resumes.jsonl"
    _kill_after(backup, 4)
    _as_older_backup(backup)
    (backup / "best_weights.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.warns(RuntimeWarning, match="cannot be restored .*start over"):
        epochs, _ = _fit(backup, inexact_log=log)
    assert epochs == [4, 5, 6]  # Keras's own backup still resumes the weights and the epoch
    (line,) = log.read_text().splitlines()  # the run's row will say so
    assert json.loads(line)["epoch"] == 4 and "BadZipFile" in json.loads(line)["reason"]
