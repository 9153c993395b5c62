"""Inference speed of an exported model through :mod:`zoo.inference.predict`, against raw ``model.predict``.

Reports, in one run on this machine:

* single-spectrum latency of ``Predictor.predict`` (p50 / p95 / mean over ``--calls`` calls after
  ``--warmup`` calls) for each predictor setting (``--settings``: the plain serving function and/or
  XLA ``jit_compile``; calls of the settings are interleaved so load changes hit them alike), and of
  raw ``keras.Model.predict`` on the same spectra for reference;
* batch throughput (spectra/s) of ``Predictor.predict(x, batch_size=B)`` on raw spectra against
  ``model.predict(x_normalised, batch_size=B)`` on the same, already normalised batches: the median
  of ``--repeats`` interleaved passes, and the ratio (target: predictor time ≤ 1.2 × raw).

Wall time and process CPU time (all threads) are both reported: on a CPU shared with other work the
wall times grow with the load, the CPU times much less. By default CNN6 (500 classes, 5000 points,
random weights: speed does not depend on them) is built and exported to a temporary directory;
``--model`` times an existing export instead.

    python benchmarks/measure/inference.py --out benchmarks/results/inference.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.checks import OneLineParser, int_argument
from zoo.training.environment import describe_cpu

SETTINGS = {"plain": False, "xla": True}  # name -> jit_compile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="an existing export directory (default: build and export)")
    parser.add_argument("--arch", default="cnn6", help="zoo model to build when --model is not given (cnn6)")
    parser.add_argument(
        "--classes", type=int_argument(1), default=500, help="classes of the built model (500)"
    )
    parser.add_argument(
        "--datapoints", type=int_argument(16), default=5000, help="input length of the built model (5000)"
    )
    parser.add_argument(
        "--calls", type=int_argument(1), default=300, help="timed single-spectrum calls per setting (300)"
    )
    parser.add_argument("--warmup", type=int_argument(0), default=20, help="untimed calls first (20)")
    parser.add_argument(
        "--raw-calls", type=int_argument(1), default=50, help="timed raw model.predict single calls (50)"
    )
    parser.add_argument(
        "--batch-size", type=int_argument(1), default=128, help="batch size for throughput (128)"
    )
    parser.add_argument("--batches", type=int_argument(1), default=4, help="batches per throughput pass (4)")
    parser.add_argument(
        "--repeats", type=int_argument(1), default=3, help="interleaved throughput passes (3)"
    )
    parser.add_argument(
        "--settings", default="plain,xla", help=f"predictor settings, from {','.join(SETTINGS)}"
    )
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    args.settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = sorted(set(args.settings) - set(SETTINGS))
    if unknown or not args.settings:
        parser.error(f"--settings: unknown {unknown or 'empty'}; choose from {', '.join(SETTINGS)}")
    if args.model is not None and not args.model.is_dir():
        parser.error(f"--model: {args.model} is not an export folder")
    from zoo.models.registry import list_models

    if args.model is None and args.arch not in list_models():
        parser.error(f"--arch: unknown model {args.arch!r}")
    return args


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - start_cpu


def latencies(
    calls: dict[str, Callable[[int], object]], warmup: int, count: int
) -> dict[str, dict[str, float]]:
    """Per name: wall p50 / p95 / mean and mean CPU time (ms) of ``call(i)``, the names interleaved."""
    for i in range(warmup):
        for call in calls.values():
            call(i)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for i in range(count):
        for name, call in calls.items():
            samples[name].append(timed(lambda call=call, i=i: call(i)))
    stats = {}
    for name, pairs in samples.items():
        wall = np.array([w for w, _ in pairs]) * 1e3
        stats[name] = {
            "p50": float(np.percentile(wall, 50)),
            "p95": float(np.percentile(wall, 95)),
            "mean": float(wall.mean()),
            "cpu": float(np.mean([c for _, c in pairs]) * 1e3),
        }
    return stats


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = load_average()
    import keras
    import tensorflow as tf

    import zoo
    from zoo.inference.predict import load

    with tempfile.TemporaryDirectory(prefix="inference-bench-") as tmp:
        if args.model is None:
            model = zoo.build(
                args.arch, num_classes=args.classes, input_length=args.datapoints, compile=False
            )
            export_path = zoo.export(model, Path(tmp) / "export", model_name=args.arch)
        else:
            export_path = args.model
            model = zoo.load_keras_model(export_path)
        datapoints = model.input_shape[1]
        rng = np.random.default_rng(0)
        n = args.batch_size * args.batches
        spectra = rng.random((n, datapoints)) * rng.uniform(1.0, 1000.0, (n, 1))
        normalised = (spectra / spectra.max(axis=1, keepdims=True))[..., np.newaxis].astype(np.float32)

        predictors = {}
        for name in args.settings:
            start = time.perf_counter()
            predictors[name] = load(export_path, jit_compile=SETTINGS[name])
            predictors[name].predict(spectra[0])
            print(f"{name}: load + first call {time.perf_counter() - start:.2f} s", flush=True)

        single = latencies(
            {
                f"Predictor.predict ({name})": lambda i, p=p: p.predict(spectra[i % n])
                for name, p in predictors.items()
            },
            args.warmup,
            args.calls,
        )
        single |= latencies(
            {
                f"raw model.predict ({args.raw_calls} calls)": lambda i: model.predict(
                    normalised[i % n][None], verbose=0
                )
            },
            5,
            args.raw_calls,
        )

        batched: dict[str, Callable[[], object]] = {
            name: lambda p=p: p.predict(spectra, batch_size=args.batch_size) for name, p in predictors.items()
        }
        batched["raw"] = lambda: model.predict(normalised, batch_size=args.batch_size, verbose=0)
        passes: dict[str, list[tuple[float, float]]] = {name: [] for name in batched}
        for repeat in range(args.repeats + 1):  # the first pass warms up (tracing, XLA compilation)
            for name, call in batched.items():
                result = timed(call)
                if repeat:
                    passes[name].append(result)
        reference = model.predict(normalised, batch_size=args.batch_size, verbose=0)
        max_diff = max(float(np.abs(p.predict(spectra) - reference).max()) for p in predictors.values())

    wall = {name: statistics.median(w for w, _ in times) for name, times in passes.items()}
    cpu = {name: statistics.median(c for _, c in times) for name, times in passes.items()}
    flops = zoo.count_flops(model) if args.model is None else None
    best, best_cpu = min((s["p50"], s["cpu"]) for name, s in single.items() if name.startswith("Predictor"))
    lines = [
        f"# Inference speed: {args.arch if args.model is None else export_path} through `zoo.load`",
        "",
        f"- CPU: {describe_cpu()}, {os.cpu_count()} logical cores; Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}",
        f"- model: {datapoints} points, {reference.shape[1]} classes"
        + (f", {flops / 1e9:.2f} GFLOP per spectrum (forward)" if flops else ""),
        f"- load average (1/5/15 min) before: {load_before}; after: {load_average()} "
        "(the CPU is shared: a load above the core count slows every wall time)",
        f"- max |predictor − model.predict| over {n} spectra: {max_diff:.2e}",
        "",
        f"## Single spectrum: {args.calls} calls after {args.warmup} warm-up calls (ms)",
        "",
        "| path | p50 | p95 | mean | CPU per call (all threads) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s['p50']:.1f} | {s['p95']:.1f} | {s['mean']:.1f} | {s['cpu']:.1f} |"
            for name, s in single.items()
        ),
        "",
        f"Target: p50 ≤ 20 ms. Best predictor p50: {best:.1f} ms. Its CPU time per call spread over "
        f"{os.cpu_count()} cores, {best_cpu / os.cpu_count():.1f} ms, is the wall time an idle machine could "
        "reach with perfect thread scaling (an estimate from the CPU time, not a measurement).",
        "",
        f"## Batch throughput: {n} spectra in batches of {args.batch_size}, median of {args.repeats} passes "
        "after a warm-up pass",
        "",
        "| path | wall s | spectra/s | wall vs raw | CPU s | CPU vs raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in passes:
        label = "raw model.predict (pre-normalised)" if name == "raw" else f"Predictor.predict ({name})"
        lines.append(
            f"| {label} | {wall[name]:.2f} | {n / wall[name]:.1f} | {wall[name] / wall['raw']:.2f}× "
            f"| {cpu[name]:.2f} | {cpu[name] / cpu['raw']:.2f}× |"
        )
    lines += ["", "Target: predictor time ≤ 1.2 × raw model.predict on the same batches."]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
