"""Is the tf.data input pipeline ever the bottleneck? Pipeline throughput vs a CNN6 training step.

Measures, in one run on this machine:
  * the pipeline: spectra/s of `synthetic_spectra.input_pipeline(<dataset>, "train", 128, shuffle_seed=0)`
    over full epochs after the first (cached) epoch — normalisation, shuffling, batching, one-hot;
  * with `--augment NAME` (repeatable): the same for the augmented pipeline
    (`input_pipeline(..., augment=parse_augmentation(NAME), epochs=...)`), every epoch timed from the
    pipeline's start — each renders the training split anew with the augmentation's options;
  * the model: spectra/s of CNN6 `train_on_batch` on batches of 128 spectra (a few warm-up steps,
    then timed steps);
and prints each pipeline's ratio to training (target: at least 20x faster than training consumes).
Rates are per second of wall time and per second of this process's CPU time (all threads): on a
machine shared with other jobs the wall rates drop with the load, the CPU rates much less.

Usage:  python benchmarks/measure/pipeline.py [--dataset challenge] [--epochs 3] [--train-steps 3]
                                             [--augment all]
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


def pipeline_throughput(dataset: str, epochs: int) -> Rate:
    """Spectra per second of the cached training pipeline (first epoch excluded: it fills the cache)."""
    from synthetic_spectra.pipeline import input_pipeline

    pipeline = input_pipeline(dataset, "train", 128, shuffle_seed=0)
    for _ in pipeline:  # fill the cache
        pass
    return _timed(batch for _ in range(epochs) for batch in pipeline)


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


def training_throughput(dataset: str, steps: int, warmup: int = 2) -> Rate:
    """Spectra per second of CNN6 training steps on pipeline batches of 128."""
    import zoo
    from synthetic_spectra.config import get_config
    from synthetic_spectra.pipeline import input_pipeline

    config = get_config(dataset)
    model = zoo.build("cnn6", config.num_classes, config.datapoints)
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
    parser.add_argument("--train-steps", type=int_argument(1), default=3, help="timed CNN6 training steps")
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

    try:
        get_config(args.dataset)
        for augment in args.augment:
            parse_augmentation(augment)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc).splitlines()[0])
    pipelines = {
        "input pipeline (cached, shuffled, normalised, one-hot)": pipeline_throughput(
            args.dataset, args.epochs
        )
    }
    for augment in args.augment:
        pipelines[f"augmented pipeline --augment {augment}"] = augmented_throughput(
            args.dataset, augment, args.epochs
        )
    training = training_throughput(args.dataset, args.train_steps)
    print(f"machine: {os.cpu_count()} CPU cores; dataset {args.dataset}, batch 128")
    print(f"{'':58s} {'spectra/s (wall)':>17s} {'x CNN6':>7s} {'spectra/CPU-s':>14s} {'x CNN6':>7s}")
    for label, rate in [*pipelines.items(), ("CNN6 training step", training)]:
        print(
            f"{label:58s} {rate.wall:17.1f} {rate.wall / training.wall:6.0f}x "
            f"{rate.cpu:14.1f} {rate.cpu / training.cpu:6.0f}x"
        )
    print("target: every pipeline >= 20x CNN6 training")


if __name__ == "__main__":
    main()
