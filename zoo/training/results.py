"""The results file of a study (``results.jsonl``, one JSON row per finished run) and a run's per-epoch
history (``history.csv``)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pathlib
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


def epochs_backed_up(backup_dir: str | pathlib.Path) -> int:
    """Epochs a killed run had finished, from Keras' ``BackupAndRestore`` metadata in ``backup_dir``: the
    epoch it resumes at, counted from 0 (0 for a run that starts afresh)."""
    metadata = pathlib.Path(backup_dir) / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


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
