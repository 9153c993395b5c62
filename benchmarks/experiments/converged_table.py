"""The docs' table of the extra runs at the protocol's end (seed 0, mostly mixed precision), generated from
the committed results rows.

Reads `benchmarks/results/<dataset>_converged/results.jsonl` (the earlier campaign groups of
`benchmarks/experiments/campaign.py`, no epoch cap) and the precision check of
`benchmarks/results/precision_check/`, and renders one line per run. These rows are labelled extras: the
paper's claims are judged from the study's float32 five-seed rows only
(`benchmarks/experiments/study_table.py`). `--write` replaces the generated blocks (`zoo.study.blocks`);
`--check` exits 1 if a block differs from what the rows give (a test runs it).

    python benchmarks/experiments/converged_table.py --write
"""

from __future__ import annotations

import pathlib
import statistics
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SCRIPT = "benchmarks/experiments/converged_table.py"
DATASETS = ("challenge", "benchmark")
BLOCK = "converged-table"
#: PRNet v4's runs (campaign group 11, issue #15 part 3): their results root and README block.
V4_RESULTS = RESULTS / "prnet_v4"
V4_BLOCK = "prnet-v4-table"


def paper_figures() -> dict[tuple[str, str, str], str]:
    """The paper's figure per (dataset, model, variant), where it states one (medians over 5 seeds)."""
    from zoo.study import paper

    figures: dict[tuple[str, str, str], str] = {}
    for pair in paper.ABLATION_PAIRS:
        for model, median in ((pair.original, pair.median_original), (pair.modified, pair.median_modified)):
            variant = paper.ABLATION_VARIANT if model in ("cnn6", "vgg", "cnn_bn") else "default"
            figures[(paper.ABLATION_DATASET, model, variant)] = f"{median:.2f} % (median)"
    best = paper.BENCHMARK_BEST_MEAN_MISCLASSIFIED
    figures[(paper.BENCHMARK_DATASET, paper.BENCHMARK_BEST_MODEL, "relu")] = f"≈ {best:.0f} wrong (mean)"
    return figures


def load_rows(results: pathlib.Path = RESULTS) -> list[dict[str, Any]]:
    """Every converged row, in the study's model order (dataset, model, variant, seed)."""
    from zoo.study import paper
    from zoo.training.results import read_results

    rows = [row for d in DATASETS for row in read_results(results / f"{d}_converged" / "results.jsonl")]
    order = {name: i for i, name in enumerate(paper.MODEL_ORDER)}
    return sorted(
        rows,
        key=lambda r: (DATASETS.index(r["dataset"]), order.get(r["model"], 99), r["variant"], r["seed"]),
    )


def _cpu(hardware: str) -> str:
    """``2-core CPU (AMD EPYC)`` → ``AMD EPYC``; accelerators kept."""
    inside = hardware.split("(", 1)[1].rsplit(")", 1)[0] if "(" in hardware else hardware
    extra = hardware.rsplit(")", 1)[1].strip() if ")" in hardware else ""
    return f"{inside} {extra}".strip()


def _paper_cell(row: Mapping[str, Any], figures: Mapping[tuple[str, str, str], str]) -> str:
    key = (row["dataset"], row["model"], row["variant"])
    if key in figures:
        return figures[key]
    return "≥ 98.9 %" if row["dataset"] == "benchmark" else "–"


def render(rows: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]] = ()) -> str:
    """Markdown: one line per run, then the precision check against its float32 twin."""
    figures = paper_figures()
    lines = [
        "| dataset | model | FC | seed | test accuracy | wrong | paper | val accuracy | "
        "epochs (best, from 1) | stop | wall | precision | CPU |",
        "|---|---|---|---:|---:|---:|---|---:|---|---|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['variant']} | {row['seed']} | "
            f"{100 * row['test_accuracy']:.2f} % | {row['misclassified']}/{row['test_size']} | "
            f"{_paper_cell(row, figures)} | {100 * row['val_accuracy']:.2f} % | "
            f"{row['epochs_run']} ({row['best_epoch'] + 1}) | "
            f"{row['stop_reason'].replace('_', ' ')} | {row['wall_time_s'] / 60:.1f} min | "
            f"{row.get('precision', 'float32')} | {_cpu(row['hardware'])} |"
        )
    by_id = {row["run_id"]: row for row in rows}
    for check in checks:
        twin = by_id.get(check["run_id"])
        if twin is None:
            continue
        lines += [
            "",
            f"Precision check, `{check['run_id']}`: {check.get('precision')} "
            f"{100 * check['test_accuracy']:.2f} % ({check['misclassified']} wrong, {check['epochs_run']} "
            f"epochs, {check['wall_time_s'] / 60:.1f} min) against {twin.get('precision', 'float32')} "
            f"{100 * twin['test_accuracy']:.2f} % ({twin['misclassified']} wrong, {twin['epochs_run']} "
            f"epochs, {twin['wall_time_s'] / 60:.1f} min); both {_cpu(check['hardware'])}.",
        ]
    return "\n".join(lines)


def load_v4_rows(results: pathlib.Path = V4_RESULTS) -> list[dict[str, Any]]:
    """PRNet v4's rows (every ``*_converged`` folder under ``results``), by dataset then seed."""
    from zoo.training.results import read_results

    rows = [row for path in sorted(results.glob("*_converged/results.jsonl")) for row in read_results(path)]
    return sorted(rows, key=lambda r: (r["dataset"], r["seed"]))


def render_v4(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: PRNet v4's runs, one line each with its cross-tests, then the median per training set."""
    lines = [
        "| trained on | seed | test accuracy | wrong | val accuracy | cross-tests | epochs (best, from 1) | "
        "stop | wall | precision | CPU |",
        "|---|---:|---:|---:|---:|---|---|---|---:|---|---|",
    ]
    for row in rows:
        cross = "; ".join(
            f"{name} {100 * result['test_accuracy']:.2f} %"
            for name, result in sorted((row.get("cross_tests") or {}).items())
        )
        lines.append(
            f"| {row['dataset']} | {row['seed']} | {100 * row['test_accuracy']:.2f} % | "
            f"{row['misclassified']}/{row['test_size']} | {100 * row['val_accuracy']:.2f} % | "
            f"{cross or '–'} | {row['epochs_run']} ({row['best_epoch'] + 1}) | "
            f"{row['stop_reason'].replace('_', ' ')} | {row['wall_time_s'] / 60:.1f} min | "
            f"{row.get('precision', 'float32')} | {_cpu(row['hardware'])} |"
        )
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], []).append(row)
    if by_dataset:
        lines += ["", "Medians over the seeds run:"]
    for dataset, runs in by_dataset.items():
        test = 100 * statistics.median(r["test_accuracy"] for r in runs)
        val = 100 * statistics.median(r["val_accuracy"] for r in runs)
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(f"- `{dataset}` (seeds {seeds}): test {test:.2f} %, validation {val:.2f} %.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from zoo.checks import OneLineParser  # zoo is imported late here

    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale")
    args = parser.parse_args(argv)
    from zoo.training.results import read_results

    checks = read_results(RESULTS / "precision_check" / "challenge" / "results.jsonl")
    rows = load_rows()
    blocks = {
        BLOCK: render(rows, checks),
        V4_BLOCK: render_v4(load_v4_rows()),
    }
    if not (args.write or args.check):
        print("\n\n".join(blocks.values()))
        return 0
    from zoo.study.blocks import BLOCKS, block_is_current, write_block

    if args.check:
        stale = [name for name, block in blocks.items() if not block_is_current(name, block)]
        if stale:
            names = ", ".join(f"{name} ({BLOCKS[name]})" for name in stale)
            print(f"stale generated block: {names}; run python {SCRIPT} --write")
            return 1
        return 0
    for name, block in blocks.items():
        write_block(name, block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
