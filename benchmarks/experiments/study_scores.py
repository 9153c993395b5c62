"""Score the study's exported runs on the generalisation panel: fresh draws and perturbed sets.

For every row of ``benchmarks/results/study/<dataset>/results.jsonl`` whose export still exists, load the
export once and classify, where that run has no score yet:

- **fresh draws** (``fresh.jsonl``): the training and validation splits of the same classes drawn with the
  panel's fresh seeds (:data:`zoo.study.panel.FRESH_SEEDS`) — in-distribution spectra no run has seen;
- **perturbed sets** (``perturbed.jsonl``): the panel's noise, background, peak-shape and shift sets
  (:func:`zoo.study.panel.panel_sets`); the record holds each set's accuracy, each group's mean and the
  mean over all of them (every set weighs the same).

One line per run and kind, with the machine that scored it. Runs whose export is gone (trained on another
machine) stay unscored, and the study's table shows a dash.

Usage:  python benchmarks/experiments/study_scores.py [--dataset challenge] [--runs-root DIR]
        (DIR: where the rows' relative ``export_dir`` paths start, e.g. the campaign's worktree)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
from collections.abc import Sequence

from zoo.checks import OneLineParser

RESULTS = pathlib.Path("benchmarks/results/study")
#: What is scored: kind → (file beside the rows, the panel groups whose sets it uses).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fresh": ("fresh.jsonl", ("fresh draws",)),
    "perturbed": ("perturbed.jsonl", ("noise", "background", "peak shape", "shift")),
}


def _scored(path: pathlib.Path) -> set[str]:
    """Run ids already in a scores file."""
    if not path.exists():
        return set()
    return {
        json.loads(line)["run_id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="challenge")
    parser.add_argument("--runs-root", default=".", help="folder the rows' export paths are relative to")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows_path = pathlib.Path(args.results) / args.dataset / "results.jsonl"
    if not rows_path.is_file():
        parser.exit(2, f"{parser.prog}: error: {rows_path}: no such results file\n")
    runs_root = pathlib.Path(args.runs_root)
    if not runs_root.is_dir():
        parser.exit(2, f"{parser.prog}: error: --runs-root: {runs_root} is not a folder\n")

    from zoo.training.results import read_results

    outputs = {kind: rows_path.parent / name for kind, (name, _) in KINDS.items()}
    done = {kind: _scored(path) for kind, path in outputs.items()}
    todo = []
    for row in read_results(rows_path):
        export = runs_root / (row.get("export_dir") or "")
        missing = [kind for kind in KINDS if row["run_id"] not in done[kind]]
        if missing and row.get("export_dir") and export.is_dir():
            todo.append((row, export, missing))
    if not todo:
        print("nothing to score")
        return 0
    from zoo.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import numpy as np

    from zoo.study.panel import PanelModel, panel_sets
    from zoo.training.environment import cpu_info, hardware, versions

    needed = {kind for _, _, missing in todo for kind in missing}
    sets = {
        kind: [s for s in panel_sets(args.dataset) if s.group in KINDS[kind][1]] for kind in sorted(needed)
    }
    data = {kind: [(s, *s.generate()) for s in found] for kind, found in sets.items()}
    machine = {"hardware": hardware(), "cpu": cpu_info(), "versions": versions()}
    for row, export, missing in todo:
        model = PanelModel.load(row["run_id"], str(export))
        for kind in missing:
            per_set, wrong, total = {}, 0, 0
            for panel_set, spectra, labels in data[kind]:
                errors = int(np.sum(np.argmax(model.predictor.predict(spectra), axis=1) != labels))
                per_set[panel_set.name] = 1.0 - errors / labels.size
                wrong, total = wrong + errors, total + labels.size
            groups = {
                group: statistics.fmean(per_set[s.name] for s, _, _ in data[kind] if s.group == group)
                for group in KINDS[kind][1]
            }
            record = {
                "run_id": row["run_id"],
                f"{kind}_accuracy": (1.0 - wrong / total)
                if kind == "fresh"
                else statistics.fmean(per_set.values()),
                "misclassified": wrong,
                "spectra": total,
                "sets": list(per_set),
                "set_accuracy": per_set,
                "group_accuracy": groups,
                **machine,
            }
            with outputs[kind].open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
            print(
                f"{row['run_id']:36s} {KINDS[kind][0].split('.')[0]:10s} {record[f'{kind}_accuracy']:.2%} "
                f"({wrong}/{total} wrong)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
