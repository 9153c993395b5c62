"""Is the tf.data input pipeline ever the bottleneck? Pipeline throughput vs a CNN6 training step.

Measures, in one run on this machine:
  * the pipeline: spectra/s of `synthetic_spectra.input_pipeline(<dataset>, "train", 128, shuffle_seed=0)`
    over full epochs after the first (cached) epoch — normalisation, shuffling, batching, one-hot;
  * the model: spectra/s of CNN6 `train_on_batch` on batches of 128 spectra (a few warm-up steps,
    then timed steps);
and prints their ratio (target: the pipeline at least 20x faster than training consumes).

Usage:  python benchmarks/pipeline.py [--dataset challenge] [--epochs 3] [--train-steps 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pipeline_throughput(dataset: str, epochs: int) -> float:
    """Spectra per second of the cached training pipeline (first epoch excluded: it fills the cache)."""
    from synthetic_spectra.pipeline import input_pipeline

    pipeline = input_pipeline(dataset, "train", 128, shuffle_seed=0)
    for _ in pipeline:  # fill the cache
        pass
    count, started = 0, time.perf_counter()
    for _ in range(epochs):
        for spectra, _labels in pipeline:
            count += int(spectra.shape[0])
    return count / (time.perf_counter() - started)


def training_throughput(dataset: str, steps: int, warmup: int = 2) -> float:
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
    started = time.perf_counter()
    for spectra, labels in timed:
        model.train_on_batch(spectra, labels)
    return sum(int(s.shape[0]) for s, _ in timed) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="challenge")
    parser.add_argument("--epochs", type=int, default=3, help="timed pipeline epochs")
    parser.add_argument("--train-steps", type=int, default=3, help="timed CNN6 training steps")
    args = parser.parse_args()
    pipeline = pipeline_throughput(args.dataset, args.epochs)
    training = training_throughput(args.dataset, args.train_steps)
    print(f"machine: {os.cpu_count()} CPU cores; dataset {args.dataset}, batch 128")
    print(f"input pipeline (cached, shuffled, normalised, one-hot): {pipeline:12.1f} spectra/s")
    print(f"CNN6 training step:                                     {training:12.1f} spectra/s")
    print(f"ratio pipeline / training: {pipeline / training:.0f}x (target >= 20x)")


if __name__ == "__main__":
    main()
