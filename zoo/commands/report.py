"""``spectrazoo report``: the markdown study report (tables, the paper's figures, failure modes, PNGs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.checks import int_argument
from zoo.study.report import DEFAULT_MAX_PAIRS, write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser(
        "report",
        help="write the markdown study report of a benchmark results file",
        description=(
            "Read RESULTS.jsonl files (a row per finished run; of rows with the same run_id the last counts) "
            "and write DIR/report.md with figures in DIR/figures: per dataset the test accuracy and "
            "misclassifications over seeds per model and variant, the paper's findings beside ours, "
            "ReLU vs linear FC, the ablation pairs, and the failure mode of every misclassification."
        ),
    )
    parser.add_argument(
        "results",
        type=Path,
        nargs="+",
        metavar="RESULTS.jsonl",
        help="the benchmark runner's results file(s), merged in order (e.g. the study's and a new model's)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: a 'report' folder beside the results file)",
    )
    parser.add_argument(
        "--max-pairs",
        type=int_argument(0),
        default=DEFAULT_MAX_PAIRS,
        metavar="N",
        help=f"confused class pairs listed and drawn per dataset, most frequent first ({DEFAULT_MAX_PAIRS})",
    )
    parser.set_defaults(handler=run, needs_tensorflow=False)


def run(args: argparse.Namespace) -> int:
    """Write the report and print its path."""
    from zoo.paths import check_output_dir

    out = args.out if args.out is not None else args.results[0].parent / "report"
    check_output_dir(out, "--out")
    print(write_report(args.results, out, max_pairs=args.max_pairs))
    return 0
