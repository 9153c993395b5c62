"""Reading measured spectra from files, and resampling them onto a model's grid.

Pure NumPy (no TensorFlow): used by ``spectrazoo predict`` and :mod:`zoo.inference.predict`.

Supported files (the suffix decides the reader):

* ``.npy`` — a 1-D array (one spectrum) or a 2-D array (one spectrum per row). Never unpickled.
* ``.npz`` — the array named ``spectra`` or ``x`` if present, else the only array in the archive;
  1-D or 2-D as for ``.npy``.
* ``.csv``, ``.tsv``, ``.txt``, ``.xy``, ``.dat`` — text, one spectrum per row; or exactly **two
  columns** ``x, y`` holding a single spectrum (the first column is its axis and must be strictly
  monotonic); or exactly one column holding a single spectrum. Cells are separated by ``;``, tab,
  ``,`` or white space (the first data line decides). Blank lines, comment lines and trailing
  comments (``#`` or ``%``) are ignored, and so are header lines at the top of the file (lines
  with words in which no cell is a number). A decimal comma is not supported.

Rows are numbered from 0 in file order (header and comment lines not counted); text-parsing
errors name the line number (from 1, as an editor shows it). Every problem is a one-line
:class:`ValueError` (:class:`FileNotFoundError` for a missing file) naming the file.
"""

from __future__ import annotations

import errno
import glob
import math
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Suffixes read as delimited text.
TEXT_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt", ".xy", ".dat")
#: Every suffix :func:`read_spectra` accepts.
SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".npz", *TEXT_SUFFIXES)
#: Preferred array names inside an ``.npz`` archive, in order.
NPZ_KEYS: tuple[str, ...] = ("spectra", "x")

_COMMENT = re.compile(r"[#%]")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SpectraFile:
    """The spectra read from one file.

    Attributes:
        path: the file.
        spectra: float64 array ``[n, points]``.
        axis: the x values of a two-column text file (ascending), else ``None``.
        single: the file holds exactly one spectrum by its layout (1-D array, one- or two-column
            text), so rows are not numbered in names.
    """

    path: Path
    spectra: np.ndarray
    axis: np.ndarray | None = None
    single: bool = False

    def row_names(self) -> list[str]:
        """A name for each spectrum: the file, plus ``row i`` for files holding several rows."""
        if self.single:
            return [str(self.path)]
        return [f"{self.path} row {i}" for i in range(len(self.spectra))]


def expand_paths(patterns: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand file arguments (paths or glob patterns, ``**`` recursive) into existing files.

    Order is kept (glob matches sorted); a file named twice is read once.

    Raises:
        FileNotFoundError: a path does not exist or a pattern matches no file.
        ValueError: a path is a directory.
    """
    paths: list[Path] = []
    for pattern in patterns:
        text = os.fspath(pattern)
        if _GLOB_CHARS.search(text) and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}")
        else:
            path = Path(text)
            check_regular_file(path)
            matches = [path]
        paths.extend(m for m in matches if m not in paths)
    return paths


def check_regular_file(path: Path) -> None:
    """FileNotFoundError/ValueError saying what ``path`` is when it is not a readable regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(f"{path}: a symbolic link to a missing file") from None
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{path}: a loop of symbolic links") from None
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory, expected a spectra file")
    if not stat.S_ISREG(mode):
        kind = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                stat.S_IFSOCK: "a socket"}.get(stat.S_IFMT(mode), "not a regular file")  # fmt: skip
        raise ValueError(f"{path}: is {kind}, expected a regular spectra file")


def read_spectra(path: str | os.PathLike[str]) -> SpectraFile:
    """Read one file of spectra (format chosen by suffix; see the module docstring)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported file type {suffix or '(no suffix)'!r}; expected one of "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    check_regular_file(path)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    if suffix == ".npy":
        return _from_array(path, _load_npy(path))
    if suffix == ".npz":
        return _from_array(path, _load_npz(path))
    return _read_text(path)


def read_many(paths: Sequence[str | os.PathLike[str]]) -> list[SpectraFile]:
    """Expand ``paths`` (globs allowed) and read every file; the first bad file raises."""
    return [read_spectra(p) for p in expand_paths(paths)]


def check_range(x_range: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` as floats; one-line ValueError unless both are finite and ``low < high``."""
    low, high = (float(value) for value in x_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"x range: needs LOW < HIGH, both finite, got {low:g} {high:g}")
    return low, high


def check_x_range(x_range: Sequence[float], axis: np.ndarray | None) -> tuple[float, float]:
    """``(low, high)`` of a model's grid in the x units of spectra with ``axis``; one-line ValueError if the
    range is not increasing and finite, the spectra have no x values, or their x values do not cover it.

    Half a step of the spectra's own spacing is tolerated at each end (the ends are then held constant).
    """
    low, high = check_range(x_range)
    if axis is None:
        raise ValueError("x range: needs the spectra's x values (a two-column x,y file, or axis=)")
    axis = np.asarray(axis, dtype=np.float64)
    first, last = sorted((float(axis[0]), float(axis[-1])))  # a descending axis covers the same range
    slack = 0.5 * (last - first) / max(len(axis) - 1, 1)
    if low < first - slack or high > last + slack:
        raise ValueError(
            f"x range {low:g}-{high:g} is not covered: the spectrum's x values run from {first:g} to {last:g}"
        )
    return low, high


def check_axis(axis: Any, points: int) -> np.ndarray:
    """``axis`` as float64 x values of spectra of ``points`` points; one-line ValueError unless it is 1-D,
    of that length, finite and strictly monotonic (ascending or descending)."""
    values = np.asarray(axis, dtype=np.float64)
    if values.shape != (points,):
        raise ValueError(f"axis: {points} x values needed (one per point), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("axis: holds NaN or infinite values")
    steps = np.diff(values)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError("axis: the x values are not strictly increasing or decreasing")
    return values


def resample(
    spectra: np.ndarray,
    datapoints: int,
    axis: np.ndarray | None = None,
    x_range: Sequence[float] | None = None,
) -> np.ndarray:
    """Linearly interpolate spectra ``[n, points]`` onto ``datapoints`` evenly spaced points.

    The new grid spans the same range as the old one: the first and last values are kept. With
    ``axis`` (strictly monotonic x values, possibly unevenly spaced; descending ones are read from low to
    high x, as two-column files are) the grid is even in x; without it the
    points are taken as evenly spaced. With ``x_range`` (needs ``axis``) the grid spans that range
    instead, in the axis' units: the part of the spectra outside it is dropped (see :func:`check_x_range`).
    Narrow peaks can be attenuated when downsampling.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    points = spectra.shape[-1]
    if points < 2:
        raise ValueError(f"cannot resample a spectrum of {points} point(s); need at least 2")
    if axis is None:
        old = np.arange(points, dtype=np.float64)
    else:
        old = check_axis(axis, points)
        if old[0] > old[-1]:  # descending x values: the same spectra read from low to high x
            old, spectra = old[::-1], spectra[..., ::-1]
    low, high = (
        (old[0], old[-1]) if x_range is None else check_x_range(x_range, None if axis is None else old)
    )
    grid = np.linspace(low, high, datapoints)
    # Fractional index of every new grid point on the old grid, then one vectorised gather for all rows.
    position = np.interp(grid, old, np.arange(points, dtype=np.float64))
    lower = np.minimum(np.floor(position).astype(np.intp), points - 2)
    weight = position - lower
    return spectra[..., lower] * (1.0 - weight) + spectra[..., lower + 1] * weight


def _check_npy_header(path: Path) -> None:
    """ValueError unless the header is readable and the file holds the data it promises (read nothing else).

    A corrupt or hostile header may claim terabytes; this check comes before NumPy allocates anything.
    """
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with path.open("rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a NumPy .npy file (bad header)")
        handle.seek(0)
        try:
            reader = readers.get(np.lib.format.read_magic(handle))
            if reader is None:  # a newer format version: NumPy's own checks only
                return
            shape, _, dtype = reader(handle)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path}: truncated or corrupted .npy file ({exc})") from None
        if dtype.hasobject:
            raise ValueError(f"{path}: holds Python objects, which are never unpickled")
        promised = dtype.itemsize * math.prod(shape)
        held = path.stat().st_size - handle.tell()
    if promised > held:
        raise ValueError(
            f"{path}: truncated or corrupted .npy file (its header promises {promised:,} bytes of data, "
            f"the file holds {held:,})"
        )


def _load_npy(path: Path) -> np.ndarray:
    _check_npy_header(path)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{path}: holds Python objects, which are never unpickled") from None
        raise ValueError(f"{path}: truncated or corrupted .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: truncated or corrupted .npy file ({exc})") from None


def _load_npz(path: Path) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a valid .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = _npz_key(path, list(archive.files))
            return archive[key]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a valid .npz archive ({exc})") from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError(f"{path}: holds Python objects, which are never unpickled") from None
        raise


def _npz_key(path: Path, names: list[str]) -> str:
    """The archive member holding the spectra: a preferred name, else the only array."""
    key = next((k for k in NPZ_KEYS if k in names), names[0] if len(names) == 1 else None)
    if key is None:
        raise ValueError(
            f"{path}: cannot tell which array holds the spectra (arrays: {', '.join(names) or 'none'}); "
            f"name it {' or '.join(NPZ_KEYS)}, or store only one"
        )
    return key


def _from_array(path: Path, array: np.ndarray) -> SpectraFile:
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: non-numeric array of dtype {array.dtype}; expected numbers")
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{path}: {array.ndim}-D array of shape {array.shape}; expected 1-D (one spectrum) "
            "or 2-D (one spectrum per row)"
        )
    if array.size == 0:
        raise ValueError(f"{path}: empty array of shape {array.shape}")
    return SpectraFile(path, np.atleast_2d(array.astype(np.float64)), single=array.ndim == 1)


def _split(line: str, delimiter: str | None) -> list[str]:
    cells = line.split(delimiter)
    if delimiter is not None and len(cells) > 1 and not cells[-1].strip():
        cells.pop()  # a trailing delimiter, as some spreadsheet exports write
    return cells


def _parse_cells(cells: list[str]) -> np.ndarray | None:
    """The cells as floats, or None if any cell is not a number."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return None


def _is_header(line: str, cells: list[str]) -> bool:
    """A header line has words and no number (so '1,5;2,5' with decimal commas is an error, not a header)."""
    return any(c.isalpha() for c in line) and all(_parse_cells([c]) is None for c in cells)


def _first_bad_cell(cells: list[str]) -> tuple[int, str]:
    for column, cell in enumerate(cells):
        if _parse_cells([cell]) is None:
            return column, cell.strip()
    raise AssertionError("no bad cell")  # only called after a failed parse


def _read_text(path: Path) -> SpectraFile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    rows: list[np.ndarray] = []
    first_line = 0
    delimiter: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.split(raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if not rows:
            delimiter = next((d for d in (";", "\t", ",") if d in line), None)
        cells = _split(line, delimiter)
        values = _parse_cells(cells)
        if values is None:
            if not rows and _is_header(line, cells):
                continue
            column, cell = _first_bad_cell(cells)
            raise ValueError(f"{path} line {number}: non-numeric value {cell!r} in column {column + 1}")
        if rows and values.size != rows[0].size:
            raise ValueError(
                f"{path} line {number}: {values.size} values, but line {first_line} has "
                f"{rows[0].size} (ragged rows)"
            )
        if not rows:
            first_line = number
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: empty file (no numeric data)")
    table = np.stack(rows)
    if table.shape[1] == 1:
        return SpectraFile(path, table.T, single=True)
    if table.shape[1] == 2:
        return _two_columns(path, table)
    return SpectraFile(path, table)


def _two_columns(path: Path, table: np.ndarray) -> SpectraFile:
    """A two-column x, y file: one spectrum whose axis is the first column (made ascending)."""
    axis, values = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(axis)):
        raise ValueError(f"{path}: the x column holds NaN or infinite values")
    steps = np.diff(axis)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(
            f"{path}: two columns read as x, y but x is not strictly monotonic "
            "(put one spectrum per row instead)"
        )
    if steps.size and steps[0] < 0:
        axis, values = axis[::-1], values[::-1]
    return SpectraFile(path, values[np.newaxis, :].copy(), axis=axis.copy(), single=True)
