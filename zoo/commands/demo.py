"""``spectrazoo demo``: the main job, end to end, on the `challenge` dataset.

1. builds ``synthetic_spectra/challenge`` through TFDS and prints a summary;
2. trains a small model with the study's protocol for a few epochs and reports its test accuracy;
3. exports it as a SavedModel under ``OUT/saved_models`` and prints the misclassification summary;
4. writes a few raw test spectra to ``OUT/spectra/`` (``.npy`` and ``.csv``) to try ``spectrazoo predict`` on.

Rerunning it skips the training that already finished (the results file is reused).
"""

from __future__ import annotations

import argparse
import pathlib
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser("demo", help="build challenge via TFDS, train, export, analyse (minutes)")
    parser.add_argument("--dataset", default="challenge", help="dataset config (default challenge)")
    parser.add_argument("--model", default="cnn2", help="model to train (default cnn2: fast to train)")
    parser.add_argument("--fc-activation", default="relu")
    parser.add_argument("--epochs", type=int, default=10, help="epoch cap (default 10)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("demo_output"))
    parser.add_argument("--data-dir", help="TFDS data directory (default $TFDS_DATA_DIR)")
    parser.set_defaults(handler=run, needs_tensorflow=False)  # imported once the names are checked


def _summarise_dataset(name: str, data_dir: str | None) -> Any:
    from zoo.training.data import prepare_dataset

    started = time.perf_counter()
    builder = prepare_dataset(name, data_dir)
    config = builder.dataset_config
    print(f"\n== Dataset synthetic_spectra/{config.name} (TFDS, {builder.data_dir})")
    size_mib = int(builder.info.dataset_size) / 2**20
    print(f"prepared in {time.perf_counter() - started:.1f} s; {config.num_classes} classes, "
          f"{config.datapoints} points per spectrum, {size_mib:.1f} MiB on disk")  # fmt: skip
    for split, info in builder.info.splits.items():
        print(f"  {split:<10} {info.num_examples:>6} spectra")
    return config


def _write_example_spectra(config: Any, out: pathlib.Path) -> pathlib.Path:
    import numpy as np

    from synthetic_spectra.generator import generate

    x, y = generate(config, "test")
    rows = np.arange(0, len(x), max(1, len(x) // 6))[:6]
    folder = out / "spectra"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "test_examples.npy", x[rows].astype(np.float32))
    np.savetxt(folder / "test_examples.csv", x[rows], delimiter=",", fmt="%.8g")
    labels = ", ".join(f"row {i}: {config.class_names()[label]}" for i, label in enumerate(y[rows]))
    (folder / "true_classes.txt").write_text(labels + "\n")
    return folder


def run(args: argparse.Namespace) -> int:
    """Run the demo; every step prints what it did."""
    from synthetic_spectra.config import get_config
    from zoo.models.registry import get_model_info
    from zoo.study.failure_modes import summarize
    from zoo.tfquiet import import_tensorflow_quietly
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.results import read_results
    from zoo.training.runner import check_output_dirs, run_benchmark

    if args.epochs < 1:
        raise ValueError(f"--epochs: must be >= 1, got {args.epochs}")
    # a bad dataset, model or activation, or a folder that cannot be written: one line, nothing prepared
    config = get_config(args.dataset)
    get_model_info(args.model)
    check_output_dirs(args.out, data_dir=args.data_dir)
    import_tensorflow_quietly()  # the activation is checked with Keras
    (spec,) = plan_runs(config, [args.model], [args.fc_activation], [0])
    config = _summarise_dataset(args.dataset, args.data_dir)
    results_dir = args.out / "results"
    print(f"\n== Training {spec.model} ({spec.variant} FC), seed 0, at most {args.epochs} epochs")
    run_benchmark([spec], Protocol(max_epochs=args.epochs), results_dir,
                  saved_models_dir=args.out / "saved_models", data_dir=args.data_dir)  # fmt: skip
    row = next(r for r in read_results(results_dir / "results.jsonl") if r["run_id"] == spec.run_id)
    print(f"\n== Result: test accuracy {row['test_accuracy']:.2%} "
          f"({row['misclassified']} of {row['test_size']} misclassified) after {row['epochs_run']} epochs "
          f"({row['stop_reason']}) on {row['hardware']}")  # fmt: skip
    print(f"SavedModel: {row['export_dir']}")

    summary = summarize(config, [(s["true"], s["pred"]) for s in row["misclassified_samples"]])
    print("\n== Misclassifications by failure mode")
    for mode, count in summary.mode_counts.items():
        print(f"  {mode:<18} {count:>4}")
    for pair in summary.pairs[:5]:
        print(f"  {config.class_names()[pair.true]} -> {config.class_names()[pair.pred]}: "
              f"{pair.count}x, {pair.mode}")  # fmt: skip
    folder = _write_example_spectra(config, args.out)
    print(f"\nExample raw spectra to classify: {folder}/test_examples.npy, test_examples.csv")
    print(f"Try: spectrazoo predict --model {row['export_dir']} {folder}/test_examples.csv")
    print(f"Full report: spectrazoo report {results_dir / 'results.jsonl'}")
    return 0
