"""Is the input pipeline ever the bottleneck? Pipeline throughput vs CNN6 and VGG training steps.

Measures, in one run on this machine:
  * TFDS reading: spectra/s of `tfds.load("synthetic_spectra/<dataset>", split="train")` batched at 128
    (parse + decode of the prepared records one at a time, no cache; the dataset is prepared before
    timing), and of `synthetic_spectra.read_batches(<dataset>, "train")` (the same examples, 256 records
    parsed at a time);
  * the pipeline's first epoch: `input_pipeline(...)` reading TFDS (with `read_batches`), normalising and
    filling its cache;
  * the pipeline: spectra/s of `synthetic_spectra.input_pipeline(<dataset>, "train", 128, shuffle_seed=0)`
    over full epochs after the first (cached) epoch — normalisation, shuffling, batching, one-hot;
  * with `--augment NAME` (repeatable): the same for the augmented pipeline
    (`input_pipeline(..., augment=parse_augmentation(NAME), epochs=...)`), every epoch timed from the
    pipeline's start — each renders the training split anew with the augmentation's options;
  * the models: spectra/s of CNN6 and VGG `train_on_batch` on batches of 128 spectra (a few warm-up
    steps, then timed steps; `--models` picks others);
and prints each pipeline's ratio to each model's training (target: at least 20x CNN6's consumption)
and the first epoch's rate against the cached epochs'.
Rates are per second of wall time and per second of this process's CPU time (all threads): on a
machine shared with other jobs the wall rates drop with the load, the CPU rates much less.

Usage:  python benchmarks/measure/pipeline.py [--dataset challenge] [--epochs 3] [--train-steps 3]
                                             [--models cnn6,vgg] [--augment all]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from zoo.checks import OneLineParser, int_argument

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Rate(NamedTuple):
    """Spectra per second of wall time and per second of the process's CPU time."""

    wall: float
    cpu: float


def _timed(batches: Iterable[Any]) -> Rate:
    """Consume ``(spectra, labels)`` batches; their spectra per second."""
    count, wall, cpu = 0, time.perf_counter(), time.process_time()
    for spectra, _labels in batches:
        count += int(spectra.shape[0])
    return Rate(count / (time.perf_counter() - wall), count / (time.process_time() - cpu))


def tfds_read_throughput(dataset: str, epochs: int) -> Rate:
    """Spectra per second of reading the prepared TFDS train split with ``tfds.load``, batched at 128."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from synthetic_spectra.synthetic_spectra_dataset_builder import builder

    builder(dataset).download_and_prepare()  # prepared (if needed) before timing
    examples = tfds.load(f"synthetic_spectra/{dataset}", split="train")
    batches = examples.batch(128).map(lambda e: (e["spectrum"], e["label"])).prefetch(tf.data.AUTOTUNE)
    return _timed(batch for _ in range(epochs) for batch in batches)


def batched_read_throughput(dataset: str, epochs: int) -> Rate:
    """Spectra per second of reading the prepared TFDS train split with ``read_batches`` (256 a batch)."""
    import tensorflow as tf

    from synthetic_spectra.pipeline import read_batches

    batches = read_batches(dataset, "train").map(lambda e: (e["spectrum"], e["label"]))
    return _timed(batch for _ in range(epochs) for batch in batches.prefetch(tf.data.AUTOTUNE))


def pipeline_throughput(dataset: str, epochs: int) -> tuple[Rate, Rate]:
    """Spectra per second of the training pipeline's first epoch (reads TFDS, fills the cache) and of
    the cached epochs after it."""
    from synthetic_spectra.pipeline import input_pipeline

    pipeline = input_pipeline(dataset, "train", 128, shuffle_seed=0)
    first = _timed(pipeline)
    return first, _timed(batch for _ in range(epochs) for batch in pipeline)


def augmented_throughput(dataset: str, augment: str, epochs: int) -> Rate:
    """Spectra per second of the augmented training pipeline over ``epochs`` whole epochs.

    Every epoch is timed (the peak parameters are drawn before): the pipeline renders the next epoch
    while one is consumed, so only a timed run from its start counts every rendering.
    """
    from synthetic_spectra.augment import parse_augmentation
    from synthetic_spectra.generator import generate_augmented
    from synthetic_spectra.pipeline import input_pipeline

    augmentation = parse_augmentation(augment)
    generate_augmented(dataset, "train", augmentation, 0, 0)  # draws and caches the peak parameters
    return _timed(input_pipeline(dataset, "train", 128, shuffle_seed=0, augment=augmentation, epochs=epochs))


def training_throughput(dataset: str, steps: int, model_name: str = "cnn6", warmup: int = 2) -> Rate:
    """Spectra per second of a zoo model's training steps on pipeline batches of 128."""
    import zoo
    from synthetic_spectra.config import get_config
    from synthetic_spectra.pipeline import input_pipeline

    config = get_config(dataset)
    model = zoo.build(model_name, config.num_classes, config.datapoints)
    batches = iter(input_pipeline(dataset, "train", 128, shuffle_seed=0).repeat())
    for _ in range(warmup):
        model.train_on_batch(*next(batches))
    timed = [next(batches) for _ in range(steps)]

    def train() -> Iterable[Any]:
        for spectra, labels in timed:
            model.train_on_batch(spectra, labels)
            yield spectra, labels

    return _timed(train())


def main(argv: Sequence[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="challenge")
    parser.add_argument("--epochs", type=int_argument(1), default=3, help="timed pipeline epochs")
    parser.add_argument(
        "--train-steps", type=int_argument(1), default=3, help="timed training steps per model"
    )
    parser.add_argument("--models", default="cnn6,vgg", help="comma-separated zoo models to train (cnn6,vgg)")
    parser.add_argument(
        "--augment",
        action="append",
        default=[],
        metavar="NAME",
        help="also time the pipeline with this augmentation (a preset, JSON or file; repeatable)",
    )
    args = parser.parse_args(argv)
    from synthetic_spectra.augment import parse_augmentation
    from synthetic_spectra.config import get_config
    from zoo.models.registry import list_models

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(list_models()))
    if unknown or not models:
        parser.error(f"--models: unknown model {unknown[0]!r}" if unknown else "--models: name at least one")
    try:
        get_config(args.dataset)
        for augment in args.augment:
            parse_augmentation(augment)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc).splitlines()[0])
    tfds_read = tfds_read_throughput(args.dataset, args.epochs)
    batched_read = batched_read_throughput(args.dataset, args.epochs)
    first, cached = pipeline_throughput(args.dataset, args.epochs)
    pipelines = {
        "TFDS read: tfds.load(...).batch(128), no cache": tfds_read,
        "TFDS read: read_batches(...), 256 a batch, no cache": batched_read,
        "input pipeline, first epoch (TFDS read, fills cache)": first,
        "input pipeline (cached, shuffled, normalised, one-hot)": cached,
    }
    for augment in args.augment:
        pipelines[f"augmented pipeline --augment {augment}"] = augmented_throughput(
            args.dataset, augment, args.epochs
        )
    training = {name: training_throughput(args.dataset, args.train_steps, name) for name in models}
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPU cores, load average {load}; dataset {args.dataset}, batch 128")
    header = "".join(f" {'x ' + name:>9s}" for name in models)
    print(f"{'':56s} {'spectra/s (wall)':>17s}{header} {'spectra/CPU-s':>14s}{header}")
    for label, rate in [*pipelines.items(), *((f"{name} training step", r) for name, r in training.items())]:
        wall = "".join(f" {rate.wall / t.wall:8.1f}x" for t in training.values())
        cpu = "".join(f" {rate.cpu / t.cpu:8.1f}x" for t in training.values())
        print(f"{label:56s} {rate.wall:17.1f}{wall} {rate.cpu:14.1f}{cpu}")
    print(
        f"first epoch from TFDS: {cached.wall / first.wall:.1f}x the time of a cached epoch "
        f"({cached.cpu / first.cpu:.1f}x per CPU-second)"
    )
    print(
        f"TFDS read: read_batches {batched_read.wall / tfds_read.wall:.1f}x the rate of tfds.load "
        f"({batched_read.cpu / tfds_read.cpu:.1f}x per CPU-second)"
    )
    print("target: every pipeline >= 20x CNN6 training")


if __name__ == "__main__":
    main()
