"""Time to prepare and to read the TFDS datasets, against generating the same splits in the same run.

For each config: the NumPy generator renders every split (the baseline, in this process), then
``tfds.builder("synthetic_spectra/<config>").download_and_prepare()`` builds the dataset into a fresh
temporary data directory (render + serialise + shuffle-free write of TFRecords), the size on disk is
summed, and every split is read back once with ``tfds.load(..., split=...)`` batched at 128 (parse +
decode, no cache). The ratios ``TFDS build / NumPy generation`` and ``TFDS read / NumPy generation``
are the cost of the storage format; CPU times are given too because the machine may be shared.

    .venv/bin/python benchmarks/measure/tfds_build.py                       # mini, challenge and benchmark
    .venv/bin/python benchmarks/measure/tfds_build.py --out benchmarks/results/tfds_build.md
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

from zoo.tfquiet import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow_quietly()  # its C++ start-up lines stay off stderr (errors are one line)

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from synthetic_spectra.config import SPLITS, get_config  # noqa: E402
from synthetic_spectra.generator import RENDER_THREADS, generate  # noqa: E402
from synthetic_spectra.synthetic_spectra_dataset_builder import Builder, builder  # noqa: E402
from zoo.training.environment import hardware  # noqa: E402


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def generate_all(config_name: str) -> None:
    """Every split of a config as NumPy arrays (float64, the generator's output)."""
    config = get_config(config_name)
    for split in SPLITS:
        generate(config, split)


def write_arrays(config_name: str) -> None:
    """Allocate every split's float64 array and write every element once: the memory-bound floor."""
    config = get_config(config_name)
    for split in SPLITS:
        np.zeros((config.split_size(split), config.datapoints))[:] = 1.0


def build(config_name: str, data_dir: pathlib.Path) -> int:
    """Prepare the TFDS dataset into ``data_dir``; return its size on disk in bytes."""
    builder(config_name, data_dir=str(data_dir)).download_and_prepare()
    return sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())


def read_all(config_name: str, data_dir: pathlib.Path) -> int:
    """Read every split of the prepared dataset through ``tfds.load``, batched at 128; the spectra read."""
    count = 0
    for split in SPLITS:
        examples = tfds.load(f"synthetic_spectra/{config_name}", split=split, data_dir=str(data_dir))
        for batch in examples.batch(128):
            count += int(batch["spectrum"].shape[0])
    return count


def measure(config_name: str) -> dict[str, Any]:
    """Timings and size of one config."""
    config = get_config(config_name)
    write_wall, _ = timed(lambda: write_arrays(config_name))
    numpy_wall, numpy_cpu = timed(lambda: generate_all(config_name))
    spectra = sum(config.split_size(split) for split in SPLITS)
    with tempfile.TemporaryDirectory() as tmp:
        size: list[int] = []
        tfds_wall, tfds_cpu = timed(lambda: size.append(build(config_name, pathlib.Path(tmp))))
        read: list[int] = []
        read_wall, read_cpu = timed(lambda: read.append(read_all(config_name, pathlib.Path(tmp))))
    if read[0] != spectra:
        raise RuntimeError(f"{config_name}: read {read[0]} spectra back, expected {spectra}")
    return {
        "config": config_name,
        "spectra": spectra,
        "datapoints": config.datapoints,
        "write_wall": write_wall,
        "numpy_wall": numpy_wall,
        "numpy_cpu": numpy_cpu,
        "tfds_wall": tfds_wall,
        "tfds_cpu": tfds_cpu,
        "read_wall": read_wall,
        "read_cpu": read_cpu,
        "size_mb": size[0] / 1e6,
    }


def _load() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def report(rows: list[dict[str, Any]], load_before: str) -> str:
    """A markdown table of the measurements."""
    version = Builder.VERSION
    lines = [
        "# TFDS build and read time of the synthetic_spectra configs",
        "",
        f"- machine: {hardware()}; Python {platform.python_version()}, "
        f"tensorflow-datasets {tfds.__version__}, builder version {version}, "
        f"generator threads {RENDER_THREADS}",
        f"- load average (1/5/15 min): {load_before} before, {_load()} after "
        "(a shared machine slows wall times; ratios measured in the same run are what counts)",
        "- baseline: the NumPy generator rendering every split (float64) in the same process, same run; "
        "read: every split through `tfds.load`, batched at 128, no cache; "
        "NumPy / write: generation against allocating and writing the same float64 arrays once",
        "",
        "| config | spectra × points | NumPy wall s | NumPy CPU s | NumPy / write (wall) | "
        "TFDS build wall s | TFDS build CPU s | "
        "build / NumPy (wall) | build / NumPy (CPU) | TFDS read wall s | read / NumPy (wall) | "
        "read spectra/s | on disk MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['spectra']:,} × {row['datapoints']:,} | {row['numpy_wall']:.2f} | "
            f"{row['numpy_cpu']:.2f} | {row['numpy_wall'] / row['write_wall']:.1f}× | "
            f"{row['tfds_wall']:.2f} | {row['tfds_cpu']:.2f} | "
            f"{row['tfds_wall'] / row['numpy_wall']:.1f}× | {row['tfds_cpu'] / row['numpy_cpu']:.1f}× | "
            f"{row['read_wall']:.2f} | {row['read_wall'] / row['numpy_wall']:.1f}× | "
            f"{row['spectra'] / row['read_wall']:,.0f} | {row['size_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs",
        default="mini,challenge,benchmark",
        help="comma-separated configs (mini,challenge,benchmark)",
    )
    parser.add_argument("--out", help="also write the markdown report here")
    args = parser.parse_args()
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    try:  # an unknown config is one line and exit status 2, before anything is built
        for name in names:
            get_config(name)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.out and not pathlib.Path(args.out).resolve().parent.is_dir():
        parser.exit(2, f"{parser.prog}: error: --out: no such directory: {pathlib.Path(args.out).parent}\n")
    load_before = _load()
    tfds.disable_progress_bar()
    text = report([measure(name) for name in names], load_before)
    print(text, end="")
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
