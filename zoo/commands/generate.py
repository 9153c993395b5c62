"""``spectrazoo generate``: write a synthetic spectra dataset as NumPy ``.npy`` files.

Writes ``x_train.npy``, ``y_train.npy``, ``x_val.npy``, ``y_val.npy``, ``x_test.npy``,
``y_test.npy`` (the published layout: raw spectra ``[n, datapoints]``, int64 labels ``[n]``, rows in
canonical class-major order) and ``config.json`` (the full config, loadable with ``--config``).
Spectra are float64 by default, bit-for-bit what :func:`synthetic_spectra.generate` returns;
``--dtype float32`` halves the size. Each split streams class by class into a memory-mapped file,
so memory stays small whatever the size; a file appears under its final name only once complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from zoo.errors import UserError

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


def run(args: argparse.Namespace) -> int:
    """Generate the requested splits into ``args.out``; return the exit status."""
    import numpy as np
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    from synthetic_spectra.config import canonical_split, get_config
    from synthetic_spectra.generator import iter_class_batches

    config = get_config(args.config)
    splits = list(dict.fromkeys(canonical_split(split) for split in args.splits))
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    config_text = json.dumps(config.to_dict(), indent=1) + "\n"
    config_path = out / CONFIG_FILE
    existing = [path for split in splits for path in array_files(out, split) if path.exists()]
    if config_path.exists() and config_path.read_text(encoding="utf-8") != config_text:
        existing.append(config_path)  # the same config may stay: more splits can be added later
    if existing and not args.force:
        raise UserError(f"{existing[0]}: already exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)

    for split in splits:
        size = config.split_size(split)
        x_path, y_path = array_files(out, split)
        partial = [path.with_name(f".{path.name}.partial") for path in (x_path, y_path)]
        try:
            x = open_memmap(partial[0], mode="w+", dtype=args.dtype, shape=(size, config.datapoints))
            y = open_memmap(partial[1], mode="w+", dtype=np.int64, shape=(size,))
            title = f"{config.name} {split}"
            with tqdm(total=size, desc=title, unit=" spectra", disable=args.no_progress) as bar:
                for start, spectra, labels in iter_class_batches(config, split):
                    x[start : start + len(spectra)] = spectra
                    y[start : start + len(labels)] = labels
                    bar.update(len(spectra))
            x.flush()
            y.flush()
            del x, y
            os.replace(partial[0], x_path)
            os.replace(partial[1], y_path)
        finally:
            for path in partial:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    config_path.write_text(config_text, encoding="utf-8")
    sizes = ", ".join(f"{split} {config.split_size(split):,}" for split in splits)
    print(f"wrote {config.name} ({sizes} spectra x {config.datapoints} points, {args.dtype}) to {out}")
    return 0
