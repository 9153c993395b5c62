"""``spectrazoo generate``: write a synthetic spectra dataset as NumPy ``.npy`` files.

Writes ``x_train.npy``, ``y_train.npy``, ``x_val.npy``, ``y_val.npy``, ``x_test.npy``,
``y_test.npy`` (the published layout: raw spectra ``[n, datapoints]``, int64 labels ``[n]``, rows in
canonical class-major order) and ``config.json`` (the full config, loadable with ``--config``).
Spectra are float64 by default, bit-for-bit what :func:`synthetic_spectra.generate` returns;
``--dtype float32`` halves the size. A mixture config (``challenge_mixtures``) writes ``x_*``,
``labels_*`` (multi-hot int64 ``[n, classes]``) and ``fractions_*`` (float64 ``[n, classes]``) instead
of ``y_*``. Each split streams block by block into a memory-mapped file, so memory stays small
whatever the size; a file appears under its final name only once complete. The arrays' size is checked
against the free disk space before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.paths import check_output_dir

#: Split name -> the suffix of its files (the published arrays call validation "val").
FILE_SUFFIXES: dict[str, str] = {"train": "train", "validation": "val", "test": "test"}
CONFIG_FILE = "config.json"


def register(subparsers: Any) -> None:
    """Add the ``generate`` sub-command."""
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic spectra dataset (x_*.npy, y_*.npy) to a directory",
        description="Write a synthetic spectra dataset as .npy files (see zoo/commands/generate.py).",
    )
    parser.add_argument(
        "--config",
        required=True,
        metavar="NAME_OR_FILE",
        help="a built-in config (benchmark, challenge, mini, *_realistic, ...) or a .json/.yaml/.yml file",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory (created)")
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=("train", "validation", "val", "test"),
        default=("train", "validation", "test"),
        metavar="SPLIT",
        help="splits to write: train, validation (or val), test (default: all)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="spectra dtype (default float64, the exact published values)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run, needs_tensorflow=False)


def array_files(out: Path, split: str) -> tuple[Path, Path]:
    """The spectra and label files of ``split`` (a canonical name) in ``out``."""
    return out / f"x_{FILE_SUFFIXES[split]}.npy", out / f"y_{FILE_SUFFIXES[split]}.npy"


def split_arrays(config: Any, split: str, dtype: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Array prefix -> (dtype, shape) of one split: ``x``, ``y``; a mixture config ``x``, ``labels``,
    ``fractions`` (multi-hot int64 and float64 ``[n, classes]``)."""
    size = config.split_size(split)
    arrays = {"x": (dtype, (size, config.datapoints))}
    if config.is_mixture:
        return {
            **arrays,
            "labels": ("int64", (size, config.num_classes)),
            "fractions": ("float64", (size, config.num_classes)),
        }
    return {**arrays, "y": ("int64", (size,))}


def split_files(out: Path, config: Any, split: str, dtype: str) -> dict[str, Path]:
    """Array prefix -> its ``.npy`` file in ``out``, e.g. ``x`` -> ``out/x_val.npy``."""
    return {
        prefix: out / f"{prefix}_{FILE_SUFFIXES[split]}.npy" for prefix in split_arrays(config, split, dtype)
    }


def _batches(config: Any, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
    from synthetic_spectra.generator import iter_class_batches, iter_mixture_batches

    if config.is_mixture:
        for start, part in iter_mixture_batches(config, split):
            yield start, {"x": part.spectra, "labels": part.labels, "fractions": part.fractions}
    else:
        for start, spectra, labels in iter_class_batches(config, split):
            yield start, {"x": spectra, "y": labels}


def _nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    import numpy as np

    return int(np.dtype(dtype).itemsize) * math.prod(shape)


def check_space(config: Any, splits: list[str], dtype: str, out: Path) -> None:
    """UserError (before anything is written) if the splits cannot fit on ``out``'s file system."""
    needed = sum(_nbytes(*spec) for split in splits for spec in split_arrays(config, split, dtype).values())
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(
            f"{config.name}: the arrays need {needed / 1e9:,.1f} GB, {existing} has {free / 1e9:,.1f} GB free"
        )


def make_output_folder(out: Path) -> None:
    """Create ``out`` (UserError naming it as the output folder if that fails)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: the output folder is not writable")


def partial_file(path: Path, pid: int) -> Path:
    """The hidden file ``path`` is written to by process ``pid`` until it is complete."""
    return path.with_name(f".{path.name}.{pid}.partial")


def remove_stale_partials(out: Path) -> None:
    """Delete the partial files of ``generate`` processes that no longer run (killed, e.g. ``kill -9``)."""
    for path in out.glob(".*.partial"):
        pid = path.name.removesuffix(".partial").rsplit(".", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: does the process exist?
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()
        except PermissionError:  # alive, another user's
            pass


def run(args: argparse.Namespace) -> int:
    """Generate the requested splits into ``args.out``; return the exit status."""
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    from synthetic_spectra.config import canonical_split, get_config

    config = get_config(args.config)
    splits = list(dict.fromkeys(canonical_split(split) for split in args.splits))
    out: Path = args.out
    config_text = json.dumps(config.to_dict(), indent=1) + "\n"
    config_path = out / CONFIG_FILE
    files = {split: split_files(out, config, split, args.dtype) for split in splits}
    existing = [path for paths in files.values() for path in paths.values() if path.exists()]
    if config_path.exists() and config_path.read_text(encoding="utf-8") != config_text:
        existing.append(config_path)  # the same config may stay: more splits can be added later
    if existing and not args.force:
        raise UserError(f"{existing[0]}: already exists (use --force to overwrite)")
    check_output_dir(out, "--out")
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    make_output_folder(out)
    try:
        check_space(config, splits, args.dtype, out)
    except UserError:
        for folder in created:  # nothing left behind: the folders this call made, innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise

    remove_stale_partials(out)
    for split in splits:
        arrays = split_arrays(config, split, args.dtype)
        partial = {prefix: partial_file(path, os.getpid()) for prefix, path in files[split].items()}
        try:
            memmaps = {
                prefix: open_memmap(partial[prefix], mode="w+", dtype=dtype, shape=shape)
                for prefix, (dtype, shape) in arrays.items()
            }
            title = f"{config.name} {split}"
            with tqdm(
                total=config.split_size(split), desc=title, unit=" spectra", disable=args.no_progress
            ) as bar:
                for start, batch in _batches(config, split):
                    for prefix, values in batch.items():
                        memmaps[prefix][start : start + len(values)] = values
                    bar.update(len(batch["x"]))
            for memmap in memmaps.values():
                memmap.flush()
            del memmaps
            for prefix, path in files[split].items():
                os.replace(partial[prefix], path)
        finally:
            for path in partial.values():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    config_path.write_text(config_text, encoding="utf-8")
    sizes = ", ".join(f"{split} {config.split_size(split):,}" for split in splits)
    print(f"wrote {config.name} ({sizes} spectra x {config.datapoints} points, {args.dtype}) to {out}")
    return 0
