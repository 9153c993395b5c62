"""Training and inference throughput of the zoo's models on this CPU, under several runtime settings.

For every model (``--models``) and setting (``--settings``) a fresh subprocess builds the model (500
classes, 5000 points, batch 128 by default), runs ``--warmup`` untimed then ``--steps`` timed
``train_on_batch`` and ``predict_on_batch`` calls, and reports spectra/s, achieved GFLOP/s (FLOPs counted
from the layer shapes by :func:`zoo.count_flops`; a training step ≈ 3 × forward) and the fraction of the
CPU's FP32 peak (cores × 2 FMA units × SIMD lanes × 2 flop × clock, the clock read from /proc/cpuinfo).
Every setting is compared with ``baseline`` (Keras defaults) measured in the same run.

Settings differ in what must be fixed before TensorFlow starts (environment variables, thread pools), hence
one subprocess per (setting, model). Wall time and process CPU time are both reported: on a CPU shared with
other work, wall-clock throughput drops with the load; ``cpu%`` (process CPU time / wall time, 200 % = both
cores busy) shows how much of the machine the run actually got. The load average before and after is printed.

A last subprocess builds all selected models ``--rss-rounds`` times in one process (``clear_session``
between builds) and reports the resident memory after each round: it must not grow.

``--processes 1,2,3`` asks instead how to share the machine between trainings that run at once (the study
campaign beside a tuning search): for each setting and count, that many identical training processes start
together, warm up, wait for a common start time and run ``train_on_batch`` for ``--window`` seconds; the
figure is the spectra all of them trained per second, against one process with Keras defaults measured in
the same run. A process still warming up at the start time spoils the measurement and is reported as such
(raise ``--lead``). Needs a quiet machine.

    nice -n 0 python benchmarks/measure/throughput.py --models all --settings baseline,no_xla
    python benchmarks/measure/throughput.py --models cnn6 --settings all \
        --output benchmarks/results/throughput.md
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.checks import OneLineParser, int_argument
from zoo.training.environment import cpu_flags, describe_cpu
from zoo.training.precision import BF16_CPU_FLAGS

ROOT = Path(__file__).resolve().parents[2]
MARKER = "@@throughput "


@dataclasses.dataclass(frozen=True)
class Setting:
    """A runtime configuration: environment variables, XLA and TensorFlow thread pools."""

    name: str
    description: str
    jit_compile: bool | str = "auto"
    env: tuple[tuple[str, str], ...] = ()
    intra_op: int | None = None
    inter_op: int | None = None
    precision: str = "float32"
    backend: str = "tensorflow"
    needs: tuple[str, ...] = ()  # CPU flags (any of them) without which the setting is skipped


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "baseline",
            "Keras defaults: jit_compile='auto' (Keras turns XLA off for TensorFlow on a CPU-only machine), "
            "TF thread pools",
        ),
        Setting("no_xla", "jit_compile=False: TF graph mode with oneDNN kernels", jit_compile=False),
        Setting("threads", "jit_compile='auto', intra-op 2 / inter-op 1 threads", intra_op=2, inter_op=1),
        Setting("threads1", "jit_compile='auto', intra-op 1 / inter-op 1 threads", intra_op=1, inter_op=1),
        Setting("no_xla_threads", "no XLA, intra-op 2 / inter-op 1 threads", False, intra_op=2, inter_op=1),
        Setting(
            "no_xla_no_onednn",
            "no XLA, oneDNN off (Eigen kernels)",
            False,
            env=(("TF_ENABLE_ONEDNN_OPTS", "0"),),
        ),
        Setting(
            "xla_fast_math",
            "XLA with --xla_cpu_enable_fast_math=true",
            env=(("XLA_FLAGS", "--xla_cpu_enable_fast_math=true"),),
        ),
        Setting("xla_on", "jit_compile=True: XLA forced", jit_compile=True),
        Setting(
            "bf16",
            "Keras mixed precision mixed_bfloat16 (float32 variables and softmax), jit_compile='auto'",
            precision="mixed_bfloat16",
            needs=BF16_CPU_FLAGS,
        ),
        Setting(
            "bf16_no_xla",
            "mixed_bfloat16, jit_compile=False (oneDNN bf16 kernels)",
            False,
            precision="mixed_bfloat16",
            needs=BF16_CPU_FLAGS,
        ),
        Setting(
            "bf16_threads",
            "mixed_bfloat16, jit_compile='auto', intra-op 2 / inter-op 1 threads",
            intra_op=2,
            inter_op=1,
            precision="mixed_bfloat16",
            needs=BF16_CPU_FLAGS,
        ),
        Setting("jax", "KERAS_BACKEND=jax (XLA-compiled train step), float32", backend="jax"),
        Setting("torch", "KERAS_BACKEND=torch (PyTorch CPU, eager), float32", backend="torch"),
    )
}


# ------------------------------------------------------------------------------------------- hardware
@dataclasses.dataclass(frozen=True)
class Peak:
    """FP32 peak of this CPU and how it was derived."""

    cores: int
    fma_units: int
    lanes: int
    ghz: float
    clock_source: str

    @property
    def core_gflops(self) -> float:
        """Peak of one core: what one CPU-second of work can deliver at most."""
        return self.fma_units * self.lanes * 2 * self.ghz

    @property
    def gflops(self) -> float:
        return self.cores * self.core_gflops

    def derivation(self) -> str:
        return (
            f"{self.cores} cores x {self.fma_units} FMA units x {self.lanes} fp32 lanes x 2 flop/FMA x "
            f"{self.ghz:.3f} GHz ({self.clock_source}) = {self.gflops:.1f} GFLOP/s"
        )


def cpu_peak(cores: int | None = None) -> Peak:
    """FP32 peak from /proc/cpuinfo: AVX-512 → 16 lanes, AVX2 → 8, else SSE 4; 2 FMA units per core."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = cpu_flags()
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    mhz = [float(value) for value in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
    max_mhz = _lscpu_max_mhz()
    ghz, source = (
        (max_mhz / 1000, "lscpu CPU max MHz") if max_mhz else (max(mhz, default=0) / 1000, "cpuinfo MHz")
    )
    return Peak(cores or len(os.sched_getaffinity(0)), 2, lanes, ghz, source)


def _lscpu_max_mhz() -> float | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    match = re.search(r"^CPU max MHz:\s*([\d.]+)", out, re.M)
    return float(match.group(1)) if match else None


def rss_mib() -> float:
    """Current resident set size of this process in MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------- worker
def _configure(setting: Setting) -> None:
    """Apply the thread pools of ``setting`` (must run before TensorFlow executes anything)."""
    if setting.intra_op is None and setting.inter_op is None:
        return
    import tensorflow as tf

    if setting.intra_op is not None:
        tf.config.threading.set_intra_op_parallelism_threads(setting.intra_op)
    if setting.inter_op is not None:
        tf.config.threading.set_inter_op_parallelism_threads(setting.inter_op)


def _timed(step: Any, warmup: int, steps: int) -> tuple[float, float, float]:
    """Run ``step`` ``warmup`` + ``steps`` times; (first-call seconds, wall s/step, CPU s/step)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return first, (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def run_worker(args: argparse.Namespace) -> None:
    """Time one model under one setting; print one JSON record after :data:`MARKER`."""
    setting = SETTINGS[args.setting]
    _configure(setting)
    import keras
    import numpy as np

    import zoo

    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, args.length, 1), dtype=np.float32)
    y = np.eye(args.classes, dtype=np.float32)[rng.integers(0, args.classes, args.batch_size)]
    keras.config.set_dtype_policy(setting.precision)
    model = zoo.build(args.models[0], args.classes, args.length, compile=False)
    zoo.compile_model(model, jit_compile=setting.jit_compile)
    record: dict[str, Any] = {
        "model": args.models[0],
        "setting": setting.name,
        "params": model.count_params(),
        "forward_gflop": zoo.count_flops(model) / 1e9,
        "backend": keras.backend.backend(),
    }
    if args.start_at:
        record["train"] = _windowed(lambda: model.train_on_batch(x, y), args)
        print(MARKER + json.dumps(record), flush=True)
        return
    for mode, step in (
        ("train", lambda: model.train_on_batch(x, y)),
        ("infer", lambda: np.asarray(model.predict_on_batch(x))),
    ):
        first, wall, cpu = _timed(step, args.warmup, args.steps)
        record[mode] = {"first_s": first, "step_s": wall, "cpu_s": cpu, "spectra_s": args.batch_size / wall}
    print(MARKER + json.dumps(record), flush=True)


def _windowed(step: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, wait for the common start time ``--start-at`` (epoch seconds), then run ``step`` for
    ``--window`` seconds: steps done, wall and CPU seconds, spectra/s; ``late`` when the warm-up ended after
    the start time (the processes did not run together the whole window)."""
    for _ in range(args.warmup):
        step()
    late = time.time() - args.start_at
    if late < 0:
        time.sleep(-late)
    start, cpu, steps = time.perf_counter(), time.process_time(), 0
    while steps == 0 or time.perf_counter() - start < args.window:
        step()
        steps += 1
    wall = time.perf_counter() - start
    return {
        "steps": steps,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu,
        "spectra_s": steps * args.batch_size / wall,
        "late_s": max(0.0, late),
    }


def run_rss_worker(args: argparse.Namespace) -> None:
    """Build every selected model ``--rss-rounds`` times; print RSS (MiB) after each round."""
    import keras

    import zoo

    rounds = []
    for _ in range(args.rss_rounds):
        for name in args.models:
            model = zoo.build(name, args.classes, args.length)
            del model
            keras.backend.clear_session()
            gc.collect()
        rounds.append(rss_mib())
    print(MARKER + json.dumps({"rss_rounds_mib": rounds, "models": args.models}), flush=True)


# --------------------------------------------------------------------------------------------- parent
def _worker_command(args: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    """This script as a worker: ``extra`` and the shared sizes and step counts of ``args``."""
    return [
        sys.executable, __file__, *extra, "--batch-size", str(args.batch_size), "--length", str(args.length),
        "--classes", str(args.classes), "--warmup", str(args.warmup), "--steps", str(args.steps),
        "--rss-rounds", str(args.rss_rounds),
    ]  # fmt: skip


def _worker_record(stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    """The JSON record a worker printed after :data:`MARKER`, or ``{"error": ...}`` with its last line."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    tail = (stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {returncode}: {tail}"}


def _subprocess(args: argparse.Namespace, extra: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    command = _worker_command(args, extra)
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    return _worker_record(result.stdout, result.stderr, result.returncode)


def _together(args: argparse.Namespace, model: str, name: str, processes: int) -> dict[str, Any]:
    """``processes`` identical training workers of ``model`` under setting ``name``, started together and
    timed over the same window: their summed spectra/s, CPU share and each worker's record."""
    start_at = time.time() + args.lead
    window = ["--window", str(args.window), "--start-at", repr(start_at)]
    command = _worker_command(args, ["--worker", "--setting", name, "--models", model, *window])
    workers = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(SETTINGS[name]),
            cwd=ROOT,
        )
        for _ in range(processes)
    ]
    records = []
    for worker in workers:
        record = _worker_record(*worker.communicate(), worker.returncode)
        if "error" in record:
            return record
        records.append(record["train"])
    late = max(r["late_s"] for r in records)
    if late > 0:
        return {"error": f"a worker was still warming up {late:.1f} s into the window: raise --lead"}
    return {
        "processes": processes,
        "spectra_s": sum(r["spectra_s"] for r in records),
        "cpu_percent": 100 * sum(r["cpu_s"] for r in records) / max(r["wall_s"] for r in records),
        "workers": records,
    }


def sharing_report(records: list[dict[str, Any]], args: argparse.Namespace, loads: list[str]) -> str:
    """Markdown: one row per (model, setting, processes), total spectra/s against one default process."""
    base = {
        r["model"]: r["spectra_s"]
        for r in records
        if r["setting"] == "baseline" and r.get("processes") == 1 and "error" not in r
    }
    lines = [
        f"Trainings sharing the machine: batch {args.batch_size}, {args.length} points, {args.classes} "
        f"classes; {args.warmup} warm-up steps, then every process of a row `train_on_batch` for the same "
        f"{args.window:g} s window. Host: {platform.node()} ({describe_cpu()}, {os.cpu_count()} logical "
        f"CPUs), Python {platform.python_version()}; load average {' / '.join(loads)} (before / after).",
        "",
        "| model | setting | processes | spectra/s, all processes | × one process, defaults | "
        "spectra/s per process | cpu% (all) |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['setting']} | {r['asked']} | error: {r['error']} | | | |")
            continue
        ratio = r["spectra_s"] / base[r["model"]] if r["model"] in base else None
        each = ", ".join(f"{w['spectra_s']:.1f}" for w in r["workers"])
        lines.append(
            f"| {r['model']} | {r['setting']} | {r['processes']} | {r['spectra_s']:.1f} | {_fmt(ratio, 2)} | "
            f"{each} | {r['cpu_percent']:.0f} |"
        )
    lines += ["", "Settings:"]
    lines += [
        f"- `{name}`: {SETTINGS[name].description}" for name in dict.fromkeys(r["setting"] for r in records)
    ]
    return "\n".join(lines)


def _env(setting: Setting) -> dict[str, str]:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": setting.backend,
        **dict(setting.env),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(records: list[dict[str, Any]], peak: Peak, args: argparse.Namespace, loads: list[str]) -> str:
    """Markdown: one row per (model, setting), ratios against ``baseline``, CNN6 fraction of peak."""
    baseline = [r for r in records if r["setting"] == "baseline" and "train" in r]
    base = {(r["model"], mode): r[mode]["spectra_s"] for r in baseline for mode in ("train", "infer")}
    lines = [
        f"Batch {args.batch_size}, {args.length} points, {args.classes} classes; {args.warmup} warm-up + "
        f"{args.steps} timed steps. Peak: {peak.derivation()}.",
        f"Host: {platform.node()} ({describe_cpu()}), Python {platform.python_version()}; load average "
        f"{' / '.join(loads)} (before / after). Native bfloat16: "
        f"{', '.join(sorted(set(BF16_CPU_FLAGS) & cpu_flags())) or 'none (no AVX512_BF16, no AMX)'}.",
        "",
        "| model | setting | params | GFLOP/spectrum (fwd) | train spectra/s | ×baseline | train GFLOP/s | "
        "% peak | cpu% | GFLOP/cpu-s | % core peak | first step s | infer spectra/s | ×baseline | "
        "infer GFLOP/s | % peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['setting']} | error: {r['error']} |" + " |" * 13)
            continue
        cells = [r["model"], r["setting"], f"{r['params']:,}", f"{r['forward_gflop']:.3f}"]
        for mode, factor in (("train", 3), ("infer", 1)):
            m = r[mode]
            gflops = m["spectra_s"] * r["forward_gflop"] * factor
            ratio = m["spectra_s"] / base[(r["model"], mode)] if (r["model"], mode) in base else None
            cells += [_fmt(m["spectra_s"]), _fmt(ratio, 2), _fmt(gflops), _fmt(100 * gflops / peak.gflops)]
            if mode == "train":
                per_cpu_second = gflops * m["step_s"] / m["cpu_s"]
                cells += [
                    f"{100 * m['cpu_s'] / m['step_s']:.0f}",
                    _fmt(per_cpu_second),
                    _fmt(100 * per_cpu_second / peak.core_gflops),
                    _fmt(m["first_s"]),
                ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Settings:"]
    lines += [
        f"- `{name}`: {SETTINGS[name].description}" for name in dict.fromkeys(r["setting"] for r in records)
    ]
    lines += [
        "",
        "GFLOP/cpu-s = achieved FLOPs per second of process CPU time; against the peak of one core "
        f"({peak.core_gflops:.1f} GFLOP/s) it measures kernel efficiency independently of how many cores "
        "the run got on a shared machine.",
    ]
    models = dict.fromkeys(r["model"] for r in records)
    lines += [summary for summary in (_best_line(records, peak, model) for model in models) if summary]
    return "\n".join(lines)


def _best_line(records: list[dict[str, Any]], peak: Peak, model: str) -> str | None:
    """One sentence on the best training setting of ``model`` and its fraction of the FP32 peak."""
    timed = [r for r in records if r["model"] == model and "train" in r]
    if not timed:
        return None
    best = max(timed, key=lambda r: r["train"]["spectra_s"])
    base = next((r for r in timed if r["setting"] == "baseline"), best)
    train = best["train"]
    gflops = train["spectra_s"] * best["forward_gflop"] * 3
    per_cpu_second = gflops * train["step_s"] / train["cpu_s"]
    return (
        f"\n{model.upper()} training, best setting `{best['setting']}`: {train['spectra_s']:.1f} spectra/s "
        f"= {gflops:.1f} GFLOP/s = {100 * gflops / peak.gflops:.1f} % of the FP32 peak ({peak.gflops:.1f}) "
        f"with {100 * train['cpu_s'] / train['step_s']:.0f} % CPU; "
        f"{per_cpu_second:.1f} GFLOP per CPU-second = {100 * per_cpu_second / peak.core_gflops:.1f} % of one "
        f"core's peak; {train['spectra_s'] / base['train']['spectra_s']:.2f} × baseline."
    )


def memory_line(memory: dict[str, Any]) -> str:
    """One sentence on the RSS rounds of the memory worker."""
    if "error" in memory:
        return f"Memory test failed: {memory['error']}"
    rounds = memory["rss_rounds_mib"]
    return (
        f"Memory: RSS after each of {len(rounds)} rounds of building {', '.join(memory['models'])} in one "
        f"process (clear_session between builds): {' → '.join(f'{v:,.0f}' for v in rounds)} MiB; growth "
        f"after the first round {rounds[-1] - rounds[0]:+,.0f} MiB."
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default="cnn6,cnn2,vgg,resnet", help="comma list or 'all' (cnn6,cnn2,vgg,resnet)"
    )
    parser.add_argument(
        "--settings", default="baseline,no_xla", help=f"comma list or 'all' of {', '.join(SETTINGS)}"
    )
    parser.add_argument("--batch-size", type=int_argument(1), default=128)
    parser.add_argument(
        "--length", type=int_argument(16), default=5000, help="data points per spectrum (5000)"
    )
    parser.add_argument("--classes", type=int_argument(2), default=500)
    parser.add_argument(
        "--warmup", type=int_argument(1), default=2, help="untimed steps per mode, the first one included"
    )
    parser.add_argument("--steps", type=int_argument(1), default=3, help="timed steps per mode")
    parser.add_argument(
        "--rss-rounds", type=int_argument(0), default=3, help="rounds of the memory test (0: skip)"
    )
    parser.add_argument("--output", type=Path, help="write the markdown report here (appended with --append)")
    parser.add_argument("--append", action="store_true", help="append to --output instead of replacing it")
    parser.add_argument(
        "--processes",
        default="",
        help="comma list of process counts: measure trainings running at once instead (e.g. 1,2,3)",
    )
    parser.add_argument(
        "--window", type=int_argument(1), default=60, help="seconds every process trains (with --processes)"
    )
    parser.add_argument(
        "--lead",
        type=int_argument(1),
        default=60,
        help="seconds from the processes' start to the common start of the window (with --processes)",
    )
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setting", default="baseline", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from zoo.models.registry import list_models

    args.models = list_models() if args.models == "all" else [m.strip() for m in args.models.split(",") if m]
    args.settings = (
        list(SETTINGS) if args.settings == "all" else [s.strip() for s in args.settings.split(",")]
    )
    unknown = sorted(set(args.models) - set(list_models())) or sorted(set(args.settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown model or setting {unknown[0]!r}")
    if "baseline" not in args.settings:
        args.settings.insert(0, "baseline")
    counts = [n.strip() for n in args.processes.split(",") if n.strip()]
    if not all(n.isdigit() and int(n) >= 1 for n in counts):
        parser.error(f"--processes: expected a comma list of integers >= 1, got {args.processes!r}")
    args.processes = [int(n) for n in counts]
    if args.processes and 1 not in args.processes:
        args.processes.insert(0, 1)  # the baseline: one process with Keras defaults
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    if args.rss_worker:
        run_rss_worker(args)
        return 0
    peak = cpu_peak()
    loads = [" ".join(f"{v:.2f}" for v in os.getloadavg())]
    print(f"FP32 peak: {peak.derivation()}", flush=True)
    print(f"load average before: {loads[0]}", flush=True)
    flags = cpu_flags()
    if args.processes:
        return _sharing(args, loads)
    records = []
    for model in args.models:
        for name in args.settings:
            needs = SETTINGS[name].needs
            record = (
                _subprocess(args, ["--worker", "--setting", name, "--models", model], _env(SETTINGS[name]))
                if not needs or set(needs) & flags
                else {"error": f"skipped: the CPU has none of {', '.join(needs)}"}
            )
            records.append({"model": model, "setting": name, **record})
            summary = (
                record.get("error") or
                f"train {record['train']['spectra_s']:.1f}/s, infer {record['infer']['spectra_s']:.1f}/s"
            )  # fmt: skip
            print(f"  {model:12s} {name:16s} {summary}", flush=True)
    memory = None
    if args.rss_rounds:
        memory = _subprocess(
            args, ["--rss-worker", "--models", ",".join(args.models)], _env(SETTINGS["baseline"])
        )
    loads.append(" ".join(f"{v:.2f}" for v in os.getloadavg()))
    text = report(records, peak, args, loads)
    if memory is not None:
        text += "\n\n" + memory_line(memory)
    _publish(text, args)
    return 0


def _sharing(args: argparse.Namespace, loads: list[str]) -> int:
    """The ``--processes`` measurement: every (model, setting, count), then the report."""
    records = []
    for model in args.models:
        for name in args.settings:
            for count in args.processes:
                record = {
                    "model": model,
                    "setting": name,
                    "asked": count,
                    **_together(args, model, name, count),
                }
                records.append(record)
                summary = record.get("error") or f"{record['spectra_s']:.1f} spectra/s in all"
                print(f"  {model:12s} {name:16s} x{count}  {summary}", flush=True)
    loads.append(" ".join(f"{v:.2f}" for v in os.getloadavg()))
    _publish(sharing_report(records, args, loads), args)
    return 0


def _publish(text: str, args: argparse.Namespace) -> None:
    """Print the report; write it to --output too (appended with --append)."""
    print("\n" + text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("a" if args.append else "w", encoding="utf-8") as handle:
            handle.write(text + "\n\n")


if __name__ == "__main__":
    sys.exit(main())
