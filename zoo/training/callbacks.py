"""The protocol's callbacks: ReduceLROnPlateau and EarlyStopping on ``val_loss``, the run's logs, and
:class:`ResumableBackup`, which Keras' own backup needed to resume a run exactly."""

from __future__ import annotations

import io
import json
import pathlib
import time
import warnings
import zipfile
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from zoo.models.batch_norm import reestimate_batch_norm
from zoo.training.environment import backend
from zoo.training.protocol import Protocol
from zoo.training.results import INEXACT_RESUMES, epochs_backed_up, settle_torn_backup, write_whole

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

    A kill can land while any file is being written. Keras keeps the previous epoch's weights and falls
    back to them (``double_checkpoint``; a torn metadata file is settled the same way,
    :func:`zoo.training.results.settle_torn_backup`). The callbacks' state is written so that both epochs
    stay readable: each epoch's arrays go to files of their own (alternating between two names, each
    written whole under a temporary name first), and ``callback_state.json``, replaced in one step, names
    them for the latest epoch and the one before. The resume takes the record of the epoch Keras resumes
    at; without one (a run backed up by an older version, killed between the writes) the callbacks start
    over, as in plain Keras, with a warning.
    """

    def __init__(
        self,
        backup_dir: str,
        stateful: Sequence[keras.callbacks.Callback],
        *,
        inexact_log: str | pathlib.Path | None = None,
        **kwargs: Any,
    ) -> None:
        """``inexact_log``: a JSON-lines file (outside ``backup_dir``, which Keras removes when training
        ends) that gets one line per resume whose callbacks had to start over."""
        kwargs.setdefault("double_checkpoint", True)
        super().__init__(backup_dir, **kwargs)
        self._stateful = list(stateful)
        self._inexact_log = pathlib.Path(inexact_log) if inexact_log is not None else None
        self._folder = pathlib.Path(backup_dir)
        self._state_path = self._folder / "callback_state.json"
        self._record: dict[str, Any] | None = None  # the latest epoch's state record

    def _seed_state_variables(self) -> list[Any]:
        return [v for v in self.model.non_trainable_variables if v.path.endswith("seed_generator_state")]

    def on_train_begin(self, logs: dict | None = None) -> None:
        settle_torn_backup(self._folder)
        super().on_train_begin(logs)
        self._record = None
        epoch = epochs_backed_up(self._folder)
        if not epoch or not self._state_path.exists():
            return
        saved = json.loads(self._state_path.read_text())
        record = next((r for r in (saved, saved.get("previous")) if r and r.get("epoch") == epoch), None)
        try:
            restored = self._read_record(record) if record is not None else None
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:  # written in place by
            # an older version and torn by a kill
            restored, record = None, {"error": f"{type(error).__name__}: {error}"}
        if restored is None:
            why = record["error"] if record else "no record of that epoch"
            if self._inexact_log is not None:
                with self._inexact_log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"epoch": epoch, "reason": why}) + "\n")
            warnings.warn(
                f"{self._folder}: the callbacks' state at epoch {epoch} cannot be restored ({why}); early "
                "stopping and the learning-rate schedule start over",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        seed_states, states = restored
        if seed_states:
            for variable, value in zip(self._seed_state_variables(), seed_states, strict=True):
                variable.assign(value)
        for callback, (fields, best_weights) in zip(self._stateful, states, strict=True):
            for field, value in fields.items():
                setattr(callback, field, value)
            if best_weights is not None and getattr(callback, "restore_best_weights", False):
                callback.best_weights = best_weights
        self._record = {key: value for key, value in record.items() if key != "previous"}

    def _read_record(self, record: dict[str, Any]) -> tuple[list[np.ndarray], list[tuple[dict, Any]]]:
        """A record's arrays read into memory (nothing is assigned before all of them were read)."""
        files = record.get("files", _LEGACY_FILES)
        seed_path = self._folder / files["seed_states"]
        seed_states = _read_arrays(seed_path) if seed_path.exists() else []
        states = []
        for index, state in enumerate(record["callbacks"]):
            name = files.get(f"best_weights_{index}", files.get("best_weights"))  # the latter: older backups
            best = _read_arrays(self._folder / name) if name and (self._folder / name).exists() else None
            states.append((state, best))
        return seed_states, states

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        slot = (epoch + 1) % 2  # this epoch's files; the previous epoch's have the other name
        files: dict[str, str] = {"seed_states": f"seed_states.{slot}.npz"}
        states = []
        for index, callback in enumerate(self._stateful):
            states.append({f: _plain(getattr(callback, f)) for f in _STATE_FIELDS if hasattr(callback, f)})
            best_weights = getattr(callback, "best_weights", None)
            if best_weights is not None:
                files[f"best_weights_{index}"] = f"best_weights.{index}.{slot}.npz"
                _write_arrays(self._folder / files[f"best_weights_{index}"], best_weights)
        _write_arrays(
            self._folder / files["seed_states"],
            [keras.ops.convert_to_numpy(v) for v in self._seed_state_variables()],
        )
        record = {"epoch": epoch + 1, "callbacks": states, "files": files}
        _write_atomically(self._state_path, json.dumps({**record, "previous": self._record}))
        self._record = record
        super().on_epoch_end(epoch, logs)


#: The files of a backup written before each epoch had its own (one set, rewritten in place).
_LEGACY_FILES = {"seed_states": "seed_states.npz", "best_weights": "best_weights.npz"}


def _read_arrays(path: pathlib.Path) -> list[np.ndarray]:
    """The arrays of an ``.npz`` written by :func:`_write_arrays` (or, keys ``w0``/``s0``..., by an older
    version), in order."""
    with np.load(path) as arrays:
        if not arrays.files:
            return []
        prefix = arrays.files[0][0]
        return [arrays[f"{prefix}{i}"] for i in range(len(arrays.files))]


def _write_arrays(path: pathlib.Path, arrays: Sequence[Any]) -> None:
    """Write ``arrays`` to an ``.npz`` whole (:func:`zoo.training.results.write_whole`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"a{i}": array for i, array in enumerate(arrays)})
    write_whole(path, buffer.getvalue())


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
    """The state record's writer (a test stops a run in it, between an epoch's arrays and its record)."""
    write_whole(path, text)


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
    resumes) and the per-epoch :class:`ResumableBackup` in ``backup/`` of the model and of ``stateful``
    (resumes it could not make exact are logged in ``INEXACT_RESUMES``; :func:`read_inexact_resumes`).
    Put them after every other callback (the backup must see their end-of-epoch state)."""
    return [
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        ResumableBackup(str(run_dir / "backup"), stateful=stateful, inexact_log=run_dir / INEXACT_RESUMES),
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
