"""The results file of a study (``results.jsonl``, one JSON row per finished run) and a run's per-epoch
history (``history.csv``)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

from zoo.errors import UserError

RESULTS_FILE = "results.jsonl"
SCHEMA_VERSION = 1


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl`` (an absent file has none)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
    return rows


def append_result(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Append one JSON line atomically (one ``write`` under an exclusive lock)."""
    data = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_whole(path: pathlib.Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole: under a temporary name first, then renamed in one step (a kill
    leaves the old file or the new one, never a torn one)."""
    staging = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        staging.write_text(data, encoding="utf-8")
    else:
        staging.write_bytes(data)
    staging.replace(path)


#: Keras ``BackupAndRestore``'s files in a backup folder, and the previous epoch's copies it keeps
#: (``double_checkpoint``) and falls back to when the latest weights cannot be read.
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"
PREVIOUS_SUFFIX = ".bkp"


def _backed_up_epoch(weights: pathlib.Path, metadata: pathlib.Path) -> int | None:
    """The epoch a pair of backup files holds; ``None`` when either cannot be read (a kill while Keras
    rewrote it in place)."""
    import h5py

    try:
        epoch = int(json.loads(metadata.read_text())["epoch"])
        if weights.exists():
            h5py.File(weights, "r").close()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch


def torn_backup(backup_dir: str | pathlib.Path) -> bool:
    """Whether the latest backup in ``backup_dir`` cannot be read: its metadata is not JSON or its weights
    file does not open. A resume then falls back to the previous epoch's copies."""
    backup = pathlib.Path(backup_dir)
    metadata = backup / BACKUP_METADATA
    if not metadata.exists():
        return False
    return _backed_up_epoch(backup / BACKUP_WEIGHTS, metadata) is None


def _previous_epoch(backup: pathlib.Path) -> int | None:
    """The epoch of the previous copies Keras keeps in ``backup``, ``None`` without a readable pair."""
    weights = backup / (BACKUP_WEIGHTS + PREVIOUS_SUFFIX)
    if not weights.exists():
        return None
    return _backed_up_epoch(weights, backup / (BACKUP_METADATA + PREVIOUS_SUFFIX))


def epochs_backed_up(backup_dir: str | pathlib.Path) -> int:
    """Epochs a killed run had finished, from Keras' ``BackupAndRestore`` metadata in ``backup_dir``: the
    epoch it resumes at, counted from 0 (0 for a run that starts afresh). For a torn latest backup
    (:func:`torn_backup`), the previous epoch's copies, which the resume then starts from (0 without
    them; :func:`settle_torn_backup`)."""
    backup = pathlib.Path(backup_dir)
    if not (backup / BACKUP_METADATA).exists():
        return 0
    latest = _backed_up_epoch(backup / BACKUP_WEIGHTS, backup / BACKUP_METADATA)
    return latest if latest is not None else _previous_epoch(backup) or 0


def settle_torn_backup(backup_dir: str | pathlib.Path) -> None:
    """Make a torn latest backup (:func:`torn_backup`) the previous epoch's copies, or remove it when there
    are none, so that Keras resumes at :func:`epochs_backed_up` (it falls back by itself only when the
    weights file fails to open, and only when the previous copies exist)."""
    backup = pathlib.Path(backup_dir)
    if not torn_backup(backup):
        return
    has_previous = _previous_epoch(backup) is not None
    for name in (BACKUP_WEIGHTS, BACKUP_METADATA):
        latest, previous = backup / name, backup / (name + PREVIOUS_SUFFIX)
        if has_previous:
            shutil.copyfile(previous, latest)
        else:
            latest.unlink(missing_ok=True)


#: In a run's folder: one JSON line per resume whose callbacks' state could not be restored (the run then
#: goes on from Keras's backup of the weights and epoch, as plain Keras would, but not exactly).
INEXACT_RESUMES = "inexact_resumes.jsonl"


def read_inexact_resumes(run_dir: str | pathlib.Path) -> list[dict[str, Any]]:
    """The resumes of the run in ``run_dir`` that could not restore its callbacks (epoch, reason)."""
    path = pathlib.Path(run_dir) / INEXACT_RESUMES
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_history(path: pathlib.Path) -> dict[str, list[float]]:
    """Per-epoch logs from a CSVLogger file; an epoch logged twice (killed, resumed) keeps its last line.

    A damaged file never blocks a resume: lines that are not an epoch's numbers (a repeated header, lines
    interleaved or cut by another process) are skipped, and so are columns missing from some epochs.
    """
    if not path.exists():
        return {}
    by_epoch: dict[int, dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            try:
                epoch = int(row.get("epoch") or "")
                values = {key: float(value) for key, value in row.items() if key and key != "epoch"}
            except (TypeError, ValueError):
                continue
            by_epoch[epoch] = values
    epochs = sorted(by_epoch)
    keys = [key for key in (by_epoch[epochs[0]] if epochs else {}) if all(key in by_epoch[e] for e in epochs)]
    return {key: [by_epoch[e][key] for e in epochs] for key in keys}
