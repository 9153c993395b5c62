"""Speed and memory of the vectorised generator against a per-spectrum scipy loop.

The loop is the straightforward implementation of dataset.md: one scalar random call per number,
one ``scipy.ndimage.gaussian_filter1d`` per spectrum, written into a preallocated split array.
Each implementation runs in fresh subprocesses. One generates every split ``--repeat`` times and
reports wall and CPU time (first and best run) and peak resident memory (``getrusage``); then it
generates the splits once more, untimed, and saves them for the parent to compare (max abs
difference per split). Another generates every split once under ``tracemalloc`` (peak traced
memory), so tracing does not slow the timed runs. A split's arrays are freed before the next split.

Before timing, each worker faults in (and frees) as much memory as its largest split: on a virtual
machine the first touch of memory a process has not used before can cost seconds per gigabyte,
which would otherwise swamp the generators' own time. On a shared machine compare CPU times.

    nice -n 5 .venv/bin/python benchmarks/measure/generation.py                    # the 500-class benchmark
    .venv/bin/python benchmarks/measure/generation.py --config challenge            # a quick run
    .venv/bin/python benchmarks/measure/generation.py --output benchmarks/results/generation.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from synthetic_spectra.config import (
    HEIGHT_CLIP,
    HEIGHT_CODES,
    POSITION_CODES,
    SPLITS,
    DatasetConfig,
    get_config,
)
from synthetic_spectra.generator import generate

Generator = Callable[[DatasetConfig, str], tuple[np.ndarray, np.ndarray]]


def loop_generate(config: DatasetConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """dataset.md §2–§4 spelled out: one spectrum, one scalar draw, one scipy call at a time."""
    x = np.empty((config.split_size(split), config.datapoints))
    y = np.empty(len(x), dtype=np.int64)
    row = 0

    def emit(label: int, positions: list[int], heights: list[float], sigma: float) -> None:
        nonlocal row
        scan = np.zeros(config.datapoints)
        scan[np.clip(positions, 0, config.datapoints - 1)] = np.clip(heights, *HEIGHT_CLIP)
        x[row] = gaussian_filter1d(scan, sigma, mode="constant")
        y[row] = label
        row += 1

    classes = list(enumerate(zip(config.positions, config.heights, strict=True)))
    if split == "test":
        for label, (positions, heights) in classes:
            shift, variation, patterns = config.test.for_class(label)
            for pattern in patterns:
                moved = [p + POSITION_CODES[pattern[0]] * shift for p in positions]
                varied = [h if h == 1.0 else h + HEIGHT_CODES[pattern[1:]] * variation for h in heights]
                emit(label, moved, varied, config.test.sigma)
        return x, y

    rng = np.random.default_rng(config.seed)
    shift, variation = config.position_shift, config.height_variation
    for label, (positions, heights) in classes:
        for sample in range(config.n_train + config.n_val):
            moved = [rng.integers(p - shift, p + shift) for p in positions] if shift else list(positions)
            varied = [
                h if h == 1.0 and not config.vary_unit_height else rng.uniform(h - variation, h + variation)
                for h in heights
            ]
            sigma = rng.uniform(*config.sigma_range)
            if (sample < config.n_train) == (split == "train"):
                emit(label, moved, varied, sigma)
    return x, y


IMPLEMENTATIONS: dict[str, Generator] = {"vectorised": generate, "scipy loop": loop_generate}


def _worker(implementation: str, config_name: str, repeat: int, out_dir: Path | None) -> dict[str, float]:
    """Generate every split ``repeat`` times (traced once when ``repeat`` is 0); report time and memory."""
    config = get_config(config_name)
    produce = IMPLEMENTATIONS[implementation]
    if not repeat:
        tracemalloc.start()
    else:  # fault in (then free) as much memory as the largest split: see the module docstring
        np.ones((max(config.split_size(split) for split in SPLITS), config.datapoints))
    runs = []
    for _ in range(max(repeat, 1)):
        wall = cpu = 0.0
        for split in SPLITS:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            x, y = produce(config, split)
            wall, cpu = wall + time.perf_counter() - wall_start, cpu + time.process_time() - cpu_start
            del x, y
        runs.append((wall, cpu))
    if not repeat:
        return {"peak_traced_mib": tracemalloc.get_traced_memory()[1] / 2**20}
    result = {
        "first_wall_s": runs[0][0],
        "wall_s": min(wall for wall, _ in runs),
        "cpu_s": min(cpu for _, cpu in runs),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for split in SPLITS if out_dir is not None else ():  # an untimed run, so saving disturbs no timing
        x, y = produce(config, split)
        np.save(out_dir / f"x_{split}.npy", x)
        np.save(out_dir / f"y_{split}.npy", y)
        del x, y
    return result


def _run_worker(implementation: str, config_name: str, repeat: int, out_dir: Path | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--config", config_name, "--worker", implementation]
    command += ["--repeat", str(repeat)]
    if out_dir is not None:
        command += ["--out", str(out_dir)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _max_abs_difference(first: Path, second: Path) -> dict[str, float]:
    differences = {}
    for split in SPLITS:
        if not np.array_equal(np.load(first / f"y_{split}.npy"), np.load(second / f"y_{split}.npy")):
            raise SystemExit(f"labels of split {split} differ between the implementations")
        a = np.load(first / f"x_{split}.npy", mmap_mode="r")
        b = np.load(second / f"x_{split}.npy", mmap_mode="r")
        blocks = (slice(i, i + 1000) for i in range(0, len(a), 1000))
        differences[split] = max((float(np.abs(a[rows] - b[rows]).max()) for rows in blocks), default=0.0)
    return differences


COLUMNS: dict[str, str] = {
    "first_wall_s": "first wall [s]",
    "wall_s": "best wall [s]",
    "cpu_s": "best CPU [s]",
    "peak_traced_mib": "traced [MiB]",
    "peak_rss_mib": "RSS [MiB]",
}
WIDTH = 15


def main(argv: list[str] | None = None) -> int:
    from zoo.checks import OneLineParser  # zoo is imported late here

    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="benchmark", help="built-in name or config file")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per implementation (default 2)")
    parser.add_argument("--output", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=sorted(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.config, args.repeat, args.out)))
        return 0
    if args.repeat < 1:
        parser.error(f"--repeat: must be at least 1, got {args.repeat}")

    config = get_config(args.config)
    sizes = {split: config.split_size(split) for split in SPLITS}
    split_sizes = ", ".join(f"{split} {size:,}" for split, size in sizes.items())
    print(
        f"config {config.name}: {sum(sizes.values()):,} spectra x {config.datapoints} points "
        f"({split_sizes}); {os.cpu_count()} CPUs {platform.machine()}, numpy {np.__version__}"
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="generation-benchmark-") as scratch:
        directories = {}
        for implementation in IMPLEMENTATIONS:
            directories[implementation] = Path(scratch) / implementation.replace(" ", "_")
            directories[implementation].mkdir()
            results[implementation] = {
                **_run_worker(implementation, args.config, args.repeat, directories[implementation]),
                **_run_worker(implementation, args.config, 0, None),
            }
        differences = _max_abs_difference(*directories.values())

    print(f"{'':<12}" + "".join(f"{title:>{WIDTH}}" for title in COLUMNS.values()))
    for implementation, result in results.items():
        print(f"{implementation:<12}" + "".join(f"{result[key]:>{WIDTH}.2f}" for key in COLUMNS))
    fast, slow = results["vectorised"], results["scipy loop"]
    speedups = {key: slow[key] / fast[key] for key in ("first_wall_s", "wall_s", "cpu_s")}
    print("peak memory: traced = tracemalloc peak, RSS = peak resident set size")
    print("speed-up: " + ", ".join(f"{COLUMNS[key][:-4]} {value:.1f}x" for key, value in speedups.items()))
    print("max |vectorised - scipy loop|: " + ", ".join(f"{s} {d:.2e}" for s, d in differences.items()))
    if args.output:
        report = {"config": config.name, "sizes": sizes, "results": results, "speedup": speedups}
        args.output.write_text(json.dumps({**report, "max_abs_difference": differences}, indent=2) + "\n")
    return 0 if max(differences.values()) <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
