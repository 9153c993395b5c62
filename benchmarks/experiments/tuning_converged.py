"""A grid search of VGG's toggles on `challenge` in which every trial reaches the protocol's end.

The space the study varies — FC activation {linear, ReLU}, FC dropout {0, 0.25, 0.5, 0.75}, conv dropout
{0, 0.2}, batch norm {off, on}: 32 configurations — every configuration trained twice (seeds 0 and 1, the
same two seeds for every configuration) until early stopping (the study's protocol: patience 25, at most
500 epochs), in float32, objective the best validation accuracy. A full grid rather than Hyperband: the
analysis pairs configurations that differ in one toggle, which needs every combination, and Hyperband's
short brackets would end most trials before the protocol does — the very flaw of the 8-epoch search.

The search runs one configuration per call of :func:`zoo.training.tuning.run_search`, so the trials table,
the per-execution records and the analysis in ``benchmarks/results/tuning_converged/`` are rewritten after
every configuration. KerasTuner's state (its ``oracle.json`` and ``trial_*/trial.json``, not the
checkpoints) lives in ``benchmarks/results/tuning_converged/project/`` and is committed with the tables, so
a later session on another machine resumes where the committed state ends (an interrupted configuration is
trained again from its first epoch there; on the machine that ran it, it goes on after its last finished
epoch from the per-epoch backups in ``project/resume/``, which are not committed).

Usage:  python benchmarks/experiments/tuning_converged.py            # search (resumable), then analysis
        python benchmarks/experiments/tuning_converged.py --analyse  # analysis from the committed records
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from zoo.checks import OneLineParser
from zoo.study.blocks import block_is_current, write_block
from zoo.study.toggle_effects import analysis_markdown, read_executions, summary_markdown

RESULTS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "tuning_converged"
PROJECT = "project"
ANALYSIS = "analysis.md"
DATASET, BASE, SEED, EXECUTIONS = "challenge", "vgg", 0, 2
#: The grid: every value of the study's four toggles (ranges are low, high, step).
SPACE = {
    "fc_activation": ("linear", "relu"),
    "fc_dropout": (0.0, 0.75, 0.25),
    "conv_dropout": (0.0, 0.2, 0.2),
    "batch_norm": (False, True),
    "learning_rate": 3e-4,
}
GRID_SIZE = 2 * 4 * 2 * 2
CONTEXT = (
    "Grid search of VGG on `challenge` (`benchmarks/experiments/tuning_converged.py`): every configuration "
    "trained with seeds 0 and 1 until early stopping (patience 25, ReduceLROnPlateau patience 10, at most "
    "500 epochs), float32, batch 128, learning rate 3e-4; validation split only (270 spectra: one spectrum "
    "is 0.37 points, so differences of a spectrum or two are tie-breaking). Each pair differs in one toggle "
    "and shares the seed. The CPU and library versions behind each configuration are in `machines.jsonl`."
)


def analysis_text(root: pathlib.Path = RESULTS) -> str:
    """``analysis.md`` as the search's records under ``root`` make it."""
    return analysis_markdown(
        read_executions(root / PROJECT / "executions.jsonl"),
        title="Converged toggle search: VGG on challenge",
        grid_size=GRID_SIZE,
        executions_per_trial=EXECUTIONS,
        context=CONTEXT,
    )


#: The summary blocks (zoo.study.blocks) and the link to the analysis in each (the site publishes the
#: results at their repository path, so a docs page links to it as the README does).
SUMMARY_BLOCKS = {
    "tuning-summary": "benchmarks/results/tuning_converged/analysis.md",
    "tuning-summary-docs": "benchmarks/results/tuning_converged/analysis.md",
}


def summary_blocks(root: pathlib.Path = RESULTS) -> dict[str, str]:
    """The front page's and the tuning page's summary of the search, by block name."""
    executions = read_executions(root / PROJECT / "executions.jsonl")
    return {
        name: summary_markdown(
            executions, grid_size=GRID_SIZE, executions_per_trial=EXECUTIONS, analysis_link=link
        )
        for name, link in SUMMARY_BLOCKS.items()
    }


def stale_summaries(root: pathlib.Path = RESULTS) -> list[str]:
    """The summary blocks that differ from what the records give."""
    return [name for name, block in summary_blocks(root).items() if not block_is_current(name, block)]


def write_analysis(root: pathlib.Path = RESULTS) -> str:
    """Regenerate ``analysis.md`` from the search's records (and, for the committed search, the summary
    blocks of the README and the tuning page); return the analysis."""
    text = analysis_text(root)
    (root / ANALYSIS).write_text(text, encoding="utf-8")
    if root.resolve() == RESULTS.resolve():
        for name, block in summary_blocks(root).items():
            write_block(name, block)
    return text


def trials_with_status(project: pathlib.Path, status: str) -> list[str]:
    """The ids of ``project``'s trials whose status is ``status`` (``COMPLETED``, ``FAILED``...)."""
    found = []
    for path in sorted(project.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text(encoding="utf-8"))
        if trial.get("status") == status:
            found.append(trial.get("trial_id", path.parent.name))
    return found


def completed_trials(project: pathlib.Path) -> int:
    """Configurations KerasTuner has finished in ``project``."""
    return len(trials_with_status(project, "COMPLETED"))


def search(root: pathlib.Path, trials: int) -> None:
    """Run the grid one configuration at a time up to ``trials``, rewriting the tables after each."""
    from zoo.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from zoo.training.environment import cpu_info, versions
    from zoo.training.protocol import Protocol
    from zoo.training.tuning import SearchSpace, run_search

    space = SearchSpace(**SPACE)
    project = root / PROJECT
    while (done := completed_trials(project)) < trials:
        run_search(
            DATASET,
            BASE,
            tuner="grid",
            max_trials=done + 1,
            executions_per_trial=EXECUTIONS,
            space=space,
            protocol=Protocol(),
            project_dir=project,
            seed=SEED,
            final_epochs=0,
            out_dir=root,
            saved_models_dir=None,
        )
        machines = root / "machines.jsonl"  # which CPU and versions trained each configuration
        with machines.open("a", encoding="utf-8") as handle:
            record = {
                "trials_completed": completed_trials(project),
                "cpu": cpu_info(),
                "versions": versions(),
            }
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        write_analysis(root)
        if failed := trials_with_status(project, "FAILED"):  # kept with its backups; the next run retries it
            raise SystemExit(
                f"tuning_converged.py: trial {', '.join(failed)} failed (its error is in "
                f"{project}/trial_<id>/trial.json); run the command again to retry it"
            )
        if completed_trials(project) == done:  # the grid is exhausted
            break


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--analyse", action="store_true", help="only regenerate analysis.md from the records")
    parser.add_argument(
        "--trials", type=int, default=GRID_SIZE, help=f"stop after N configurations ({GRID_SIZE})"
    )
    parser.add_argument("--results", default=str(RESULTS), help="results folder (default %(default)s)")
    args = parser.parse_args()
    if not 1 <= args.trials <= GRID_SIZE:
        parser.exit(2, f"{parser.prog}: error: --trials: expected 1..{GRID_SIZE}, got {args.trials}\n")
    root = pathlib.Path(args.results)
    if root.exists() and not root.is_dir():
        parser.exit(2, f"{parser.prog}: error: --results: {root} is not a folder\n")
    if not args.analyse:
        search(root, args.trials)
    sys.stdout.write(write_analysis(root))


if __name__ == "__main__":
    main()
