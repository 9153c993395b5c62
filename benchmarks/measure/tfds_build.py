"""Time to prepare the TFDS datasets, against generating the same splits as NumPy arrays in the same run.

For each config: the NumPy generator renders every split (the baseline, in this process), then
``tfds.builder("synthetic_spectra/<config>").download_and_prepare()`` builds the dataset into a fresh
temporary data directory (render + serialise + shuffle-free write of TFRecords), and the size on disk is
summed. The ratio ``TFDS build / NumPy generation`` is the cost of the storage format; CPU times are
given too because the machine may be shared.

    .venv/bin/python benchmarks/measure/tfds_build.py                               # challenge and mini
    .venv/bin/python benchmarks/measure/tfds_build.py --configs challenge,benchmark \\
        --out benchmarks/results/tfds_build.md
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

import tensorflow_datasets as tfds  # noqa: E402

from synthetic_spectra.config import get_config  # noqa: E402
from synthetic_spectra.generator import generate  # noqa: E402
from synthetic_spectra.synthetic_spectra_dataset_builder import builder  # noqa: E402
from zoo.training.environment import hardware  # noqa: E402


def timed(action: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def generate_all(config_name: str) -> None:
    """Every split of a config as NumPy arrays (float64, the generator's output)."""
    config = get_config(config_name)
    for split in ("train", "validation", "test"):
        generate(config, split)


def build(config_name: str, data_dir: pathlib.Path) -> int:
    """Prepare the TFDS dataset into ``data_dir``; return its size on disk in bytes."""
    builder(config_name, data_dir=str(data_dir)).download_and_prepare()
    return sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())


def measure(config_name: str) -> dict[str, Any]:
    """Timings and size of one config."""
    config = get_config(config_name)
    numpy_wall, numpy_cpu = timed(lambda: generate_all(config_name))
    with tempfile.TemporaryDirectory() as tmp:
        size: list[int] = []
        tfds_wall, tfds_cpu = timed(lambda: size.append(build(config_name, pathlib.Path(tmp))))
    spectra = sum(config.split_size(split) for split in ("train", "validation", "test"))
    return {
        "config": config_name,
        "spectra": spectra,
        "datapoints": config.datapoints,
        "numpy_wall": numpy_wall,
        "numpy_cpu": numpy_cpu,
        "tfds_wall": tfds_wall,
        "tfds_cpu": tfds_cpu,
        "size_mb": size[0] / 1e6,
    }


def report(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the measurements."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        "# TFDS build time of the synthetic_spectra configs",
        "",
        f"- machine: {hardware()}; "
        f"Python {platform.python_version()}, tensorflow-datasets {tfds.__version__}",
        f"- load average (1/5/15 min) at the end: {load} (a shared machine slows wall times; see CPU)",
        "- baseline: the NumPy generator rendering every split in the same process, same run",
        "",
        "| config | spectra × points | NumPy wall s | NumPy CPU s | TFDS build wall s | TFDS CPU s | "
        "build / NumPy (wall) | on disk MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['spectra']:,} × {row['datapoints']:,} | {row['numpy_wall']:.1f} | "
            f"{row['numpy_cpu']:.1f} | {row['tfds_wall']:.1f} | {row['tfds_cpu']:.1f} | "
            f"{row['tfds_wall'] / row['numpy_wall']:.1f}× | {row['size_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs", default="mini,challenge", help="comma-separated configs (mini,challenge)"
    )
    parser.add_argument("--out", help="also write the markdown report here")
    args = parser.parse_args()
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    try:  # an unknown config is one line and exit status 2, before anything is built
        for name in names:
            get_config(name)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    text = report([measure(name) for name in names])
    print(text, end="")
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
