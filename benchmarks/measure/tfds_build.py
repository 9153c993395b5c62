"""Time to prepare and to read the TFDS datasets, against generating the same splits in the same run.

For each config: the NumPy generator renders every split (the baseline, in this process), then
``tfds.builder("synthetic_spectra/<config>").download_and_prepare()`` builds the dataset into a fresh
temporary data directory (render + serialise + shuffle-free write of TFRecords), the size on disk is
summed, and every split is read back once with ``tfds.load(..., split=...)`` batched at 128 (parse +
decode one example at a time, no cache) and once with ``synthetic_spectra.read_batches`` (the same
examples, parsed 256 records at a time). The ratios ``TFDS build / NumPy generation`` and ``TFDS read /
NumPy generation`` are the cost of the storage format; CPU times are given too because the machine may
be shared.

First epochs (second table): the training pipeline of the train split (normalise, cache, seeded
shuffle, batches of 128) fed by ``tfds.load``'s examples one at a time (``prepare``), the same pipeline
as ``input_pipeline`` builds it (fed by ``read_batches``), and ``input_pipeline(..., epochs=...)``, the
epoch-keyed layout training uses (the split held in memory). Each pipeline is built three times (the
three in turn) and run for four epochs each time: its median first epoch (building it, reading TFDS,
filling the cache) against the median of its cached epochs after it, same run.

    .venv/bin/python benchmarks/measure/tfds_build.py                       # mini, challenge and benchmark
    .venv/bin/python benchmarks/measure/tfds_build.py --out benchmarks/results/tfds_build.md
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import os
import pathlib
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from zoo.checks import OneLineParser
from zoo.tfquiet import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow_quietly()  # its C++ start-up lines stay off stderr (errors are one line)

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from synthetic_spectra.config import SPLITS, get_config  # noqa: E402
from synthetic_spectra.generator import RENDER_THREADS, generate  # noqa: E402
from synthetic_spectra.pipeline import input_pipeline, prepare, read_batches  # noqa: E402
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


def read_all_batched(config_name: str, data_dir: pathlib.Path) -> int:
    """Read every split of the prepared dataset through ``read_batches`` (256 a batch); the spectra read."""
    count = 0
    for split in SPLITS:
        for batch in read_batches(config_name, split, data_dir=data_dir):
            count += int(batch["spectrum"].shape[0])
    return count


#: The pipelines whose first epoch is timed: label -> how each is built (config, data dir, epochs).
PIPELINES: dict[str, Callable[[str, pathlib.Path, int], Any]] = {
    "`tfds.load` per example → `prepare` (shuffle buffer)": lambda name, data_dir, epochs: prepare(
        builder(name, data_dir=str(data_dir)).as_dataset(split="train", shuffle_files=False),
        num_classes=get_config(name).num_classes,
        batch_size=128,
        shuffle_seed=0,
    ),
    "`input_pipeline` (`read_batches`, shuffle buffer)": lambda name, data_dir, epochs: input_pipeline(
        name, "train", 128, shuffle_seed=0, data_dir=data_dir
    ),
    "`input_pipeline(..., epochs=…)` (`read_batches`, epoch-keyed, as training)": (
        lambda name, data_dir, epochs: input_pipeline(
            name, "train", 128, shuffle_seed=0, data_dir=data_dir, epochs=epochs
        )
    ),
}


def epoch_times(
    build_pipeline: Callable[[], Any], steps: int, epochs: int, per_epoch: bool
) -> list[tuple[float, float]]:
    """Wall and CPU seconds of each of ``epochs`` epochs (``steps`` batches each) of the pipeline
    ``build_pipeline()`` returns; the first epoch includes building it. ``per_epoch``: each iteration of
    the pipeline is one epoch (else one iteration holds every epoch back to back)."""
    times = []
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline = build_pipeline()
    batches = itertools.chain.from_iterable(pipeline for _ in range(epochs)) if per_epoch else iter(pipeline)
    for _ in range(epochs):
        seen = sum(1 for _ in itertools.islice(batches, steps))
        if seen != steps:
            raise RuntimeError(f"an epoch of {seen} batches, expected {steps}")
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
        wall, cpu = time.perf_counter(), time.process_time()
    return times


def first_epochs(
    config_name: str, data_dir: pathlib.Path, cached_epochs: int = 3, repeats: int = 3
) -> dict[str, Any]:
    """Per pipeline of :data:`PIPELINES` (train split), each built afresh ``repeats`` times (in turn,
    pipeline after pipeline) and run for ``1 + cached_epochs`` epochs: the median first epoch and the
    median cached epoch (wall s, CPU s)."""
    steps = -(-get_config(config_name).split_size("train") // 128)
    runs: dict[str, list[list[tuple[float, float]]]] = {label: [] for label in PIPELINES}
    for _ in range(repeats):
        for label, make in PIPELINES.items():
            gc.collect()  # the last pipeline's cache goes before this one fills its own
            runs[label].append(
                epoch_times(
                    functools.partial(make, config_name, data_dir, 1 + cached_epochs),
                    steps,
                    1 + cached_epochs,
                    per_epoch="epoch-keyed" not in label,
                )
            )

    def median(epochs: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(wall for wall, _ in epochs), statistics.median(cpu for _, cpu in epochs)

    return {
        label: (median([times[0] for times in timed]), median([t for times in timed for t in times[1:]]))
        for label, timed in runs.items()
    }


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
        batched_wall, batched_cpu = timed(
            lambda: read.append(read_all_batched(config_name, pathlib.Path(tmp)))
        )
        epochs = {"epochs": first_epochs(config_name, pathlib.Path(tmp))}
    if read != [spectra, spectra]:
        raise RuntimeError(f"{config_name}: read {read} spectra back, expected {spectra} each time")
    return {
        **epochs,
        "train": config.split_size("train"),
        "batched_wall": batched_wall,
        "batched_cpu": batched_cpu,
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
        "read: every split through `tfds.load`, batched at 128, no cache; batched read: the same through "
        "`read_batches` (256 records parsed at a time); "
        "NumPy / write: generation against allocating and writing the same float64 arrays once",
        "",
        "| config | spectra × points | NumPy wall s | NumPy CPU s | NumPy / write (wall) | "
        "TFDS build wall s | TFDS build CPU s | "
        "build / NumPy (wall) | build / NumPy (CPU) | TFDS read wall s | read / NumPy (wall) | "
        "read spectra/s | batched read wall s | batched read spectra/s | read / batched read (wall, CPU) | "
        "on disk MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['spectra']:,} × {row['datapoints']:,} | {row['numpy_wall']:.2f} | "
            f"{row['numpy_cpu']:.2f} | {row['numpy_wall'] / row['write_wall']:.1f}× | "
            f"{row['tfds_wall']:.2f} | {row['tfds_cpu']:.2f} | "
            f"{row['tfds_wall'] / row['numpy_wall']:.1f}× | {row['tfds_cpu'] / row['numpy_cpu']:.1f}× | "
            f"{row['read_wall']:.2f} | {row['read_wall'] / row['numpy_wall']:.1f}× | "
            f"{row['spectra'] / row['read_wall']:,.0f} | {row['batched_wall']:.2f} | "
            f"{row['spectra'] / row['batched_wall']:,.0f} | {row['read_wall'] / row['batched_wall']:.1f}×, "
            f"{row['read_cpu'] / row['batched_cpu']:.1f}× | {row['size_mb']:.1f} |"
        )
    lines += [
        "",
        "First epoch of the training pipeline of the train split (normalise, cache or hold in memory, "
        "seeded shuffle, batches of 128) against the cached epochs after it, same run: each pipeline "
        "built 3 times (in turn), run for 4 epochs each time; the median first epoch (building the "
        "pipeline included) and the median of the 9 cached epochs:",
        "",
        "| config | train spectra | pipeline | first epoch wall s / CPU s | cached epoch wall s / CPU s | "
        "first / cached (wall) | first / cached (CPU) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        for label, ((first_wall, first_cpu), (cached_wall, cached_cpu)) in row["epochs"].items():
            lines.append(
                f"| {row['config']} | {row['train']:,} | {label} | {first_wall:.3f} / {first_cpu:.3f} | "
                f"{cached_wall:.3f} / {cached_cpu:.3f} | **{first_wall / cached_wall:.1f}×** | "
                f"{first_cpu / cached_cpu:.1f}× |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
