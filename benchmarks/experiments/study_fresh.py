"""Score the study's exported runs on fresh in-distribution spectra (the panel's fresh draws).

For every row of ``benchmarks/results/study/<dataset>/results.jsonl`` whose export still exists and that
has no score yet, load the export and classify the training and validation splits of the same classes
drawn with the panel's fresh seeds (:data:`zoo.study.panel.FRESH_SEEDS`); append one line per run to
``fresh.jsonl`` beside the rows (run id, accuracy, misclassified, spectra, machine). Runs whose export is
gone (trained on another machine) stay unscored, and the study's table says so with a dash.

Usage:  python benchmarks/experiments/study_fresh.py [--dataset challenge] [--runs-root DIR]
        (DIR: where the rows' relative ``export_dir`` paths start, e.g. the campaign's worktree)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from zoo.checks import OneLineParser

RESULTS = pathlib.Path("benchmarks/results/study")
FRESH_FILE = "fresh.jsonl"


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

    from zoo.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import numpy as np

    from zoo.study.panel import PanelModel, panel_sets
    from zoo.training.environment import cpu_info, hardware, versions
    from zoo.training.results import read_results

    out = rows_path.parent / FRESH_FILE
    done = (
        {json.loads(line)["run_id"] for line in out.read_text().splitlines() if line.strip()}
        if out.exists()
        else set()
    )
    todo = []
    for row in read_results(rows_path):
        export = runs_root / (row.get("export_dir") or "")
        if row["run_id"] not in done and row.get("export_dir") and export.is_dir():
            todo.append((row, export))
    if not todo:
        print("nothing to score")
        return 0
    sets = [s for s in panel_sets(args.dataset) if s.group == "fresh draws"]
    parts = [s.generate() for s in sets]
    spectra = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    for row, export in todo:
        model = PanelModel.load(row["run_id"], str(export))
        wrong = int(np.sum(np.argmax(model.predictor.predict(spectra), axis=1) != labels))
        record = {
            "run_id": row["run_id"],
            "fresh_accuracy": 1.0 - wrong / labels.size,
            "misclassified": wrong,
            "spectra": int(labels.size),
            "sets": [s.name for s in sets],
            "hardware": hardware(),
            "cpu": cpu_info(),
            "versions": versions(),
        }
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        print(f"{row['run_id']:36s} fresh draws {record['fresh_accuracy']:.2%} ({wrong}/{labels.size} wrong)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
