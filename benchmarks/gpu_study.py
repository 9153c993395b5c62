"""The whole paper on one GPU machine: JAX backend, data from the NumPy generator, several runs at once.

Made for a machine whose Python has JAX but neither TensorFlow nor Keras and no network (Keras and the
pure-Python packages it lacks travel as wheels; see README, "The whole paper as one GPU command"). It runs
the study's protocol (no epoch cap: early stopping or 500 epochs) for the paper's plan, most informative
runs first:

  1. challenge, seed 0: the eight published models x {linear, relu} (ResNet: its one setup) and the five
     ablations at their published setup;
  2. benchmark (500 classes), seed 0: the eight published models at their published setup;
  3. seeds 1-4 of both, seed by seed.

``--workers`` runs train at once, each in its own process with a bounded share of the device's memory
(``XLA_PYTHON_CLIENT_MEM_FRACTION``), so one GPU is kept busy by several small models. Each finished run
appends its row (the CPU runner's schema, with ``device``) to ``OUT/<dataset>/results.jsonl`` at once, so
a call that is cut off still returns every finished row. At ``--budget-s`` seconds the workers are stopped
and the command exits 0; the next call skips every run found in ``OUT`` or in a ``--finished`` folder and
resumes interrupted runs from their per-epoch backups in ``--work`` (while that folder survives).

    KERAS_BACKEND=jax python benchmarks/gpu_study.py --out $OUT --finished benchmarks/results/gpu_study \\
        --budget-s 540 --workers 6
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Published models, cheapest first; ResNet has no hidden FC layers (one run at its published setup).
PUBLISHED = ("vgg", "cnn2", "cnn3", "cnn6", "cnn_bn", "inc3", "inc6")
NO_FC = ("resnet",)
ABLATIONS = ("vgg_mod", "cnn6_bn", "cnn6_convdo", "cnn_bn_mod", "resnet_mod")
CROSS_TESTS = {"challenge": ("challenge_realistic",)}
#: Seconds kept back at the end of the budget for stopping the workers and writing the summary.
STOP_MARGIN_S = 15.0


@dataclasses.dataclass(frozen=True)
class Planned:
    """One run of the GPU plan: a run spec and where its row goes."""

    dataset: str
    model: str
    variant: str
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.dataset}/{self.model}-{self.variant}-seed{self.seed}"


def paper_plan(
    datasets: Sequence[str] = ("challenge", "benchmark"),
    seeds: Sequence[int] = range(5),
    models: Sequence[str] | None = None,
) -> list[Planned]:
    """The paper's runs, most informative first (seed by seed; within a seed, dataset by dataset).

    A dataset whose name starts with ``benchmark`` gets the published setups only (the paper's 500-class
    table); any other gets both FC activations and the ablations (the ``challenge`` study).
    ``models`` keeps only those models (for tests and partial reruns).
    """
    plan = []
    for seed in seeds:
        for dataset in datasets:
            if dataset.startswith("benchmark"):
                runs = [(m, "default") for m in (*PUBLISHED, *NO_FC)]
            else:
                runs = [(m, fc) for m in PUBLISHED for fc in ("linear", "relu")]
                runs += [(m, "default") for m in (*NO_FC, *ABLATIONS)]
            plan += [Planned(dataset, m, v, seed) for m, v in runs if models is None or m in models]
    return plan


def finished_run_ids(folders: Sequence[pathlib.Path]) -> set[str]:
    """Run ids of every row under the given folders (``*/results.jsonl`` and ``results.jsonl``)."""
    from zoo.training.results import RESULTS_FILE, read_results

    found: set[str] = set()
    for folder in folders:
        for path in [folder / RESULTS_FILE, *sorted(folder.glob(f"*/{RESULTS_FILE}"))]:
            found.update(row["run_id"] for row in read_results(path))
    return found


# --------------------------------------------------------------------------------------------- worker
def run_worker(args: argparse.Namespace) -> int:
    """Train one run (resuming from ``--work`` if a backup is there) and append its row to ``OUT``."""
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.runner import run_benchmark

    dataset, name = args.run.split("/", 1)
    model, variant, seed = _parse_name(name)
    spec = plan_runs(dataset, (model,), (variant,), seeds=(seed,))[0]
    run_benchmark(
        [spec],
        Protocol(max_epochs=args.max_epochs),
        pathlib.Path(args.out) / dataset,
        saved_models_dir=None,
        cross_tests=CROSS_TESTS.get(dataset, ()),
        precision=args.precision,
        work_dir=pathlib.Path(args.work) / dataset,
        verbose=2,
    )
    return 0


def _parse_name(name: str) -> tuple[str, str, int]:
    """``cnn6-relu-seed0`` → ``("cnn6", "relu", 0)`` (model names may contain underscores, not dashes)."""
    model, variant, seed = name.rsplit("-", 2)
    return model, variant, int(seed.removeprefix("seed"))


# --------------------------------------------------------------------------------------------- parent
def _worker_env(args: argparse.Namespace) -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / args.workers:.3f}")
    paths = [str(ROOT), str(ROOT / "datasets"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def _start(run: Planned, args: argparse.Namespace, log_dir: pathlib.Path) -> subprocess.Popen:
    log = (log_dir / f"{run.run_id.replace('/', '_')}.log").open("a")
    command = [
        sys.executable, __file__, "--worker", "--run", run.run_id, "--out", str(args.out),
        "--work", str(args.work), "--max-epochs", str(args.max_epochs), "--precision", args.precision,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=_worker_env(args), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(running: dict[str, subprocess.Popen], grace_s: float) -> None:
    """SIGTERM every worker's process group, then SIGKILL what is left after ``grace_s``."""
    for process in running.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_parent(args: argparse.Namespace) -> int:
    """Keep ``--workers`` runs going until the plan is done or the budget is spent; print a summary."""
    started = time.monotonic()
    deadline = started + args.budget_s - STOP_MARGIN_S
    out, work = pathlib.Path(args.out), pathlib.Path(args.work)
    done = finished_run_ids([out, *map(pathlib.Path, args.finished)])
    plan = [run for run in paper_plan(args.datasets, args.seeds, args.models) if run.run_id not in done]
    skipped = len(paper_plan(args.datasets, args.seeds, args.models)) - len(plan)
    out.mkdir(parents=True, exist_ok=True)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"gpu_study: {len(plan)} runs to train, {skipped} finished before, {args.workers} at once, "
          f"budget {args.budget_s:.0f} s", flush=True)  # fmt: skip
    queue, running, failed = list(plan), {}, []
    while (queue or running) and time.monotonic() < deadline:
        for run_id, process in list(running.items()):
            if process.poll() is not None:
                del running[run_id]
                status = "finished" if process.returncode == 0 else f"failed (exit {process.returncode})"
                if process.returncode != 0:
                    failed.append(run_id)
                print(f"[{time.monotonic() - started:6.0f} s] {run_id} {status}", flush=True)
        while queue and len(running) < args.workers:
            run = queue.pop(0)
            running[run.run_id] = _start(run, args, log_dir)
            print(f"[{time.monotonic() - started:6.0f} s] {run.run_id} started", flush=True)
        time.sleep(0.5)
    if running:
        print(f"budget reached: stopping {len(running)} run(s), resumable from {work}", flush=True)
        _stop(running, grace_s=min(10.0, STOP_MARGIN_S / 2))
    finished = finished_run_ids([out]) - done
    print(f"gpu_study: {len(finished)} run(s) finished in this call, {len(failed)} failed, "
          f"{len(queue) + len(running)} left; {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
    return 1 if failed and not finished else 0


def _seeds(text: str) -> list[int]:
    from zoo.training.protocol import parse_seeds

    return parse_seeds(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="rows land in OUT/<dataset>/results.jsonl")
    parser.add_argument("--work", default="/tmp/gpu_study", help="per-run logs and per-epoch backups")
    parser.add_argument("--finished", action="append", default=[], help="folder of rows to skip (repeat)")
    parser.add_argument("--datasets", default="challenge,benchmark")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--models", default=None, help="comma list: train only these models")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget of this call")
    parser.add_argument("--max-epochs", type=int, default=500)
    parser.add_argument("--precision", default="float32", help="float32 | mixed_bfloat16 | auto")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from zoo.errors import UserError

    try:  # every argument checked before anything starts: one line, exit status 2
        from synthetic_spectra.config import get_config
        from zoo.models.registry import list_models
        from zoo.training.precision import resolve_precision

        args.datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
        for name in args.datasets:
            get_config(name)
        args.seeds = _seeds(args.seeds)
        if args.models is not None:
            args.models = [name.strip() for name in args.models.split(",") if name.strip()]
            unknown = sorted(set(args.models) - set(list_models()))
            if unknown:
                raise ValueError(f"--models: unknown model {unknown[0]!r}")
        resolve_precision(args.precision)
        if args.workers < 1 or args.max_epochs < 1:
            raise ValueError("--workers and --max-epochs must be >= 1")
        if args.budget_s <= STOP_MARGIN_S:
            raise ValueError(f"--budget-s must exceed the {STOP_MARGIN_S:.0f} s kept for stopping")
    except (ValueError, UserError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return args


def _use_checkout() -> None:
    """Import ``zoo`` and ``synthetic_spectra`` from this checkout (the GPU machine has no install)."""
    for path in (ROOT / "datasets", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def main(argv: Sequence[str] | None = None) -> int:
    _use_checkout()
    args = parse_args(argv)
    return run_worker(args) if args.worker else run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
