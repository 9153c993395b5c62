"""The whole paper on one GPU machine: JAX backend, data from the NumPy generator, several runs at once.

Made for a machine whose Python has JAX but neither TensorFlow nor Keras and no network (Keras and the
pure-Python packages it lacks travel as wheels; see docs/study.md, "Without TensorFlow: JAX and the
one-command GPU study"). It runs the study's protocol (no epoch cap: early stopping or 500 epochs) in
float32 for the study's run plan as :mod:`zoo.study.paper` defines it (the same plan as the CPU campaign),
seed by seed:

  1. challenge, seed 0: the setups the paper's claims rest on, then the other published setups;
  2. benchmark (500 classes), seed 0: the original models in the paper's setup;
  3. seeds 1-4 of both, seed by seed.

``--workers`` runs train at once, each in its own process with a bounded share of the device's memory
(``XLA_PYTHON_CLIENT_MEM_FRACTION``), so one GPU is kept busy by several small models. Each finished run
appends its row (the CPU runner's schema, with ``device``) to ``OUT/<dataset>/results.jsonl`` at once, so
a call that is cut off still returns every finished row. At ``--budget-s`` seconds the workers are stopped
and the command exits 0; the next call skips every run found in ``OUT`` or in a ``--finished`` folder
(default: the study's rows, ``benchmarks/results/study``) and resumes interrupted runs from their per-epoch
backups in ``--work`` (default ``OUT/work``, so the backups come back with the output folder and can be
carried into the next device call). ``--merge FOLDER`` appends the rows of a returned output folder to the
study's rows (new run ids only), where ``benchmarks/experiments/study_table.py`` reads them.

    KERAS_BACKEND=jax python benchmarks/experiments/gpu_study.py --out $OUT --budget-s 540 --workers 6
    python benchmarks/experiments/gpu_study.py --merge RETURNED_OUT      # on the CPU machine, afterwards
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

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Where the study's rows live (what the table generator reads, and what a call skips by default).
STUDY_RESULTS = ROOT / "benchmarks" / "results" / "study"
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
    """The study's runs (:mod:`zoo.study.paper`), seed by seed; within a seed, dataset by dataset.

    A dataset whose name starts with ``benchmark`` gets the paper's ``benchmark`` setups; any other gets the
    ``challenge`` study's (the claims' setups, then the other published ones). ``models`` keeps only those
    models (for tests and partial reruns).
    """
    from zoo.study import paper

    challenge = (*paper.CHALLENGE_CLAIM_SETUPS, *paper.CHALLENGE_FOLLOW_UP_SETUPS)
    plan = []
    for seed in seeds:
        for dataset in datasets:
            runs = paper.BENCHMARK_PAPER_SETUPS if dataset.startswith("benchmark") else challenge
            plan += [Planned(dataset, m, v, seed) for m, v in runs if models is None or m in models]
    return plan


def merge_rows(returned: pathlib.Path, study: pathlib.Path = STUDY_RESULTS) -> list[str]:
    """Append the rows under ``returned/<dataset>/results.jsonl`` whose run ids ``study`` lacks; their ids."""
    import json

    from zoo.training.results import RESULTS_FILE, read_results

    added = []
    for path in sorted(returned.glob(f"*/{RESULTS_FILE}")):
        target = study / path.parent.name / RESULTS_FILE
        have = {row["run_id"] for row in read_results(target)}
        new = [row for row in read_results(path) if row["run_id"] not in have]
        if new:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row, sort_keys=True) + "\n" for row in new)
            added += [row["run_id"] for row in new]
    return added


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
    from zoo.checks import OneLineParser  # zoo is imported late here

    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="rows land in OUT/<dataset>/results.jsonl")
    parser.add_argument("--work", help="per-run logs and per-epoch backups (default OUT/work)")
    parser.add_argument(
        "--finished", action="append", default=None,
        help=f"folder of rows to skip (repeat; default {STUDY_RESULTS.relative_to(ROOT)})",
    )  # fmt: skip
    parser.add_argument("--merge", metavar="FOLDER", help="append a returned OUT's rows to the study's rows")
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

    if args.merge is not None:
        if not pathlib.Path(args.merge).is_dir():
            parser.exit(2, f"{parser.prog}: error: --merge: {args.merge} is not a folder\n")
        return args
    if args.out is None:
        parser.exit(2, f"{parser.prog}: error: --out is required (or --merge FOLDER)\n")
    args.work = args.work or str(pathlib.Path(args.out) / "work")
    args.finished = args.finished if args.finished is not None else [str(STUDY_RESULTS)]
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
    if args.merge is not None:
        added = merge_rows(pathlib.Path(args.merge))
        print(f"{len(added)} row(s) added to {STUDY_RESULTS.relative_to(ROOT)}: {', '.join(added) or '-'}")
        return 0
    return run_worker(args) if args.worker else run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
