"""The protocol's callbacks: ReduceLROnPlateau and EarlyStopping on ``val_loss``, the run's logs, and
:class:`ResumableBackup`, which Keras' own backup needed to resume a run exactly."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from zoo.models.batch_norm import reestimate_batch_norm
from zoo.training.environment import backend
from zoo.training.protocol import Protocol

#: Attributes that make up the resumable state of the stateful protocol callbacks.
_STATE_FIELDS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also backs up the state of other callbacks.

    Keras' ``BackupAndRestore`` restores the weights, the optimizer and the epoch of a killed run, but
    ``EarlyStopping`` and ``ReduceLROnPlateau`` start over (patience counters, best value, the best
    weights to restore) and the dropout layers' random-seed states are not in the weights file. This
    subclass saves those at the end of every epoch next to Keras' backup and restores them at the
    start of training, so a resumed run ends exactly as an uninterrupted one.
    Put it *last* in the callback list: it must see the other callbacks' end-of-epoch state and restore
    theirs after their own ``on_train_begin`` reset it.
    """

    def __init__(self, backup_dir: str, stateful: Sequence[keras.callbacks.Callback], **kwargs: Any) -> None:
        # Keras writes its weights file in place: a kill during that write leaves a file that cannot be
        # read. ``double_checkpoint`` keeps the previous epoch's files and falls back to them.
        kwargs.setdefault("double_checkpoint", True)
        super().__init__(backup_dir, **kwargs)
        self._stateful = list(stateful)
        self._state_path = pathlib.Path(backup_dir) / "callback_state.json"
        self._best_weights_path = pathlib.Path(backup_dir) / "best_weights.npz"
        self._seed_states_path = pathlib.Path(backup_dir) / "seed_states.npz"

    def _seed_state_variables(self) -> list[Any]:
        return [v for v in self.model.non_trainable_variables if v.path.endswith("seed_generator_state")]

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        metadata = pathlib.Path(self.backup_dir) / "training_metadata.json"
        if not (self._state_path.exists() and metadata.exists()):
            return
        saved = json.loads(self._state_path.read_text())
        if saved.get("epoch") != json.loads(metadata.read_text()).get("epoch"):
            return  # killed between the two writes: the callbacks restart, as in plain Keras
        if self._seed_states_path.exists():
            with np.load(self._seed_states_path) as arrays:
                for i, variable in enumerate(self._seed_state_variables()):
                    variable.assign(arrays[f"s{i}"])
        for callback, state in zip(self._stateful, saved["callbacks"], strict=True):
            for field, value in state.items():
                setattr(callback, field, value)
            if getattr(callback, "restore_best_weights", False) and self._best_weights_path.exists():
                with np.load(self._best_weights_path) as arrays:
                    callback.best_weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pathlib.Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        states = []
        for callback in self._stateful:
            states.append({f: _plain(getattr(callback, f)) for f in _STATE_FIELDS if hasattr(callback, f)})
            best_weights = getattr(callback, "best_weights", None)
            if best_weights is not None:
                np.savez(self._best_weights_path, **{f"w{i}": w for i, w in enumerate(best_weights)})
        seed_states = [keras.ops.convert_to_numpy(v) for v in self._seed_state_variables()]
        np.savez(self._seed_states_path, **{f"s{i}": state for i, state in enumerate(seed_states)})
        _write_atomically(self._state_path, json.dumps({"epoch": epoch + 1, "callbacks": states}))
        super().on_epoch_end(epoch, logs)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before every evaluation (``fit``'s validation included), sets the model's batch-norm statistics to
    those of ``spectra``, the training spectra (:func:`zoo.models.batch_norm.reestimate_batch_norm`).

    Validation, the protocol's callbacks that watch it, the best weights early stopping keeps, the backup
    and the export then all see the statistics the weights were trained with, not Keras's moving averages
    (which, with few steps per epoch, are still close to their starting values). Training itself is
    unchanged: it normalises with each batch's statistics and draws no extra random numbers.
    """

    def __init__(self, spectra: Any, *, batch_size: int = 128) -> None:
        super().__init__()
        self.spectra = spectra
        self.batch_size = batch_size

    def __deepcopy__(self, memo: dict) -> PreciseBatchNorm:
        """A fresh callback over the same spectra (KerasTuner copies its callbacks for every trial; the
        spectra, a ``tf.data.Dataset`` or an array only read, are shared)."""
        return PreciseBatchNorm(self.spectra, batch_size=self.batch_size)

    def on_test_begin(self, logs: dict | None = None) -> None:
        reestimate_batch_norm(self.model, self.spectra, batch_size=self.batch_size)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time of the epoch, validation included) and ``epoch_cpu_seconds`` (CPU
    time of the process over the epoch, all its threads) to each epoch's logs.

    Put it before the ``CSVLogger``: the history file then holds every epoch's times, and a run that was
    killed and resumed still knows its total training time (the sum over its epochs).
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        self._cpu_started = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started
            logs["epoch_cpu_seconds"] = time.process_time() - self._cpu_started


def _plain(value: Any) -> Any:
    """A JSON-compatible copy of a callback attribute (NumPy scalars become Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_atomically(path: pathlib.Path, text: str) -> None:
    staging = path.with_suffix(path.suffix + ".tmp")
    staging.write_text(text)
    staging.replace(path)


def protocol_callbacks(protocol: Protocol, *, verbose: int) -> tuple[Any, Any]:
    """The protocol's ``(ReduceLROnPlateau, EarlyStopping)`` on ``val_loss``, in the order they must run."""
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=protocol.lr_factor, patience=protocol.lr_patience, verbose=min(verbose, 1)
    )
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=protocol.es_patience,
        min_delta=protocol.es_min_delta,
        restore_best_weights=True,
        verbose=min(verbose, 1),
    )
    return reduce_lr, early_stopping


def resume_callbacks(run_dir: pathlib.Path, stateful: Sequence[keras.callbacks.Callback]) -> list[Any]:
    """What makes a training in ``run_dir`` resumable: the epoch log (``history.csv``, appended across
    resumes) and the per-epoch :class:`ResumableBackup` in ``backup/`` of the model and of ``stateful``.
    Put them after every other callback (the backup must see their end-of-epoch state)."""
    return [
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        ResumableBackup(str(run_dir / "backup"), stateful=stateful),
    ]


def make_callbacks(protocol: Protocol, run_dir: pathlib.Path, *, verbose: int) -> tuple[list[Any], Any]:
    """The protocol's callbacks in the order they must run; returns ``(callbacks, early_stopping)``."""
    reduce_lr, early_stopping = protocol_callbacks(protocol, verbose=verbose)
    callbacks = [
        reduce_lr,  # first: it adds `learning_rate` to the epoch logs the others record
        EpochTimer(),  # adds `epoch_seconds` to the logs, before the CSVLogger writes them
        early_stopping,
    ]
    if backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False))
    # Last: the backup saves the state the callbacks above reached at the end of each epoch.
    callbacks += resume_callbacks(run_dir, stateful=[reduce_lr, early_stopping])
    return callbacks, early_stopping
