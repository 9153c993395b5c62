"""Output locations checked before any work: a folder the user names must be creatable and writable.

:func:`check_output_dir` is called by every command for each folder it will write (``--out``,
``--saved-models``, ``--project-dir``, ``--data-dir``, ...) before it loads data or trains; it creates
nothing (a probe folder made to test writability is removed at once).
"""

from __future__ import annotations

import os
import pathlib
import tempfile

from zoo.errors import UserError


def _nearest_existing(path: pathlib.Path) -> pathlib.Path:
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            return folder
    return pathlib.Path(path.anchor or ".")


def check_output_dir(path: str | os.PathLike, option: str) -> pathlib.Path:
    """``path`` as a Path, after checking that it is (or can be made) a writable folder.

    Raises:
        UserError: one line naming ``option``, the path and the problem (a file in the way, a folder that
            may not be written, a broken link).
    """
    target = pathlib.Path(path).expanduser()
    existing = _nearest_existing(target.absolute())
    if not existing.exists():  # a dangling symbolic link
        raise UserError(f"{option} {target}: {existing} is a broken symbolic link")
    if not existing.is_dir():
        where = (
            "is a file, not a folder"
            if existing == target.absolute()
            else f"cannot be made: {existing} is a file"
        )
        raise UserError(f"{option} {target}: {where}")
    what = (
        "the output folder is not writable"
        if existing == target.absolute()
        else (f"cannot create the output folder ({existing} is not writable)")
    )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {target}: {what} (permission denied)")
    try:  # os.access says yes to root and on read-only mounts: try it
        probe = tempfile.mkdtemp(prefix=".spectrazoo-write-check-", dir=existing)
    except OSError as exc:
        raise UserError(f"{option} {target}: {what} ({exc.strerror or exc})") from None
    os.rmdir(probe)
    return target
