"""The generalisation panel (issue #15): trained exports on sets beyond the test split.

Evaluates every model on every panel set of --dataset's classes (`zoo.study.panel`: the test and validation
splits, fresh draws, test-like random sets, noise, backgrounds, peak shapes, global shifts, the realistic
test split) and writes `panel.jsonl` (one row per model and set, with the set's seed and size),
`panel.md` (the table) and `panel.png` (a heat map) to OUT. `--refresh-ceilings` computes the Bayes
ceilings of an existing panel in OUT again (`zoo.study.ceiling`) and rewrites its three files, the models'
accuracies and notes kept: no model is evaluated.

Usage:  python benchmarks/experiments/panel.py --model LABEL=EXPORT_OR_preset:NAME [--model ...] [--out DIR]
                                   [--sets SUBSTRING] [--overwrite] [--list]
        python benchmarks/experiments/panel.py --refresh-ceilings [--dataset NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.checks import OneLineParser
from zoo.errors import UserError
from zoo.tfquiet import import_tensorflow_quietly

if TYPE_CHECKING:
    from zoo.study.panel import PanelModel

DEFAULT_OUT = Path("benchmarks/results/panel")


def parse_model_argument(text: str) -> tuple[str, str]:
    """``LABEL=PATH`` → ``(label, path)``; one-line UserError otherwise."""
    label, sep, path = text.partition("=")
    if not sep or not label.strip() or not path.strip():
        raise UserError(f"--model: expected LABEL=EXPORT_DIR or LABEL=preset:NAME, got {text!r}")
    return label.strip(), path.strip()


def model_note(model: PanelModel) -> str:
    """Where a model comes from, as its export's metadata says."""
    metadata = model.predictor.metadata
    metrics = metadata.get("metrics") or {}
    parts = [
        f"{metadata.get('display_name', metadata.get('model', '?'))} trained on {metadata.get('dataset')}"
    ]
    if metrics.get("seed") is not None:
        parts.append(f"seed {int(metrics['seed'])}")
    if metrics.get("epochs_run") is not None:
        parts.append(f"{int(metrics['epochs_run'])} epochs")
    if metrics.get("test_accuracy") is not None:
        parts.append(f"recorded test accuracy {metrics['test_accuracy']:.2%}")
    return ", ".join(parts) + f" ({model.source})"


def refresh_ceilings(out: Path, dataset: str) -> int:
    """Rewrite the panel in ``out`` with its sets' Bayes ceilings computed again (UserError: unusable)."""
    from zoo.study import panel

    for name in (panel.ROWS_FILE, panel.TABLE_FILE):
        if not (out / name).is_file():
            raise UserError(f"--refresh-ceilings: {out / name} does not exist")
    try:
        rows = panel.read_rows(out / panel.ROWS_FILE)
        head, notes = panel.table_parts((out / panel.TABLE_FILE).read_text())
        rows = panel.with_current_ceilings(rows, panel.panel_sets(dataset))
    except (ValueError, KeyError) as exc:
        raise UserError(f"--refresh-ceilings: {out}: {exc}") from None
    panel.write_rows(rows, out / panel.ROWS_FILE)
    (out / panel.TABLE_FILE).write_text(head + panel.markdown_table(rows, notes))
    panel.plot_panel(rows, out / panel.FIGURE_FILE)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="LABEL=EXPORT_DIR or LABEL=preset:NAME")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--sets", default="", help="only sets whose name contains this text")
    parser.add_argument("--dataset", default="challenge", help="the panel's classes (default challenge)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing panel in OUT")
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the sets with their Bayes ceilings and nearest-template accuracies and exit",
    )
    parser.add_argument(
        "--refresh-ceilings",
        action="store_true",
        help="compute the Bayes ceilings of the panel in OUT again and rewrite its files (no model is run)",
    )
    args = parser.parse_args(argv)

    from zoo.study.panel import FIGURE_FILE, ROWS_FILE, TABLE_FILE, panel_sets, same_classes

    try:
        if args.list:
            columns = ("group", "set", "size", "seed", "ceiling", "nearest")
            print("{:12s} {:28s} {:>6s}  {:9s} {:>8s} {:>8s} description".format(*columns))
            for panel_set in panel_sets(args.dataset):
                seed = "fixed" if panel_set.seed is None else f"seed {panel_set.seed}"
                ceiling, nearest = panel_set.bayes_ceiling(), panel_set.nearest_template()
                ceiling_text = "–" if ceiling is None else f"{ceiling:.2%}"
                nearest_text = "–" if nearest is None else f"{nearest:.2%}"
                line = f"{panel_set.group:12s} {panel_set.name:28s} {panel_set.size:6d}  {seed:9s}"
                print(line, f"{ceiling_text:>8s} {nearest_text:>8s}", panel_set.description, flush=True)
            return 0
        out: Path = args.out
        if args.refresh_ceilings:
            return refresh_ceilings(out, args.dataset)
        targets = [out / name for name in (ROWS_FILE, TABLE_FILE, FIGURE_FILE)]
        existing = [str(path) for path in targets if path.exists()]
        if existing and not args.overwrite:
            raise UserError(f"{existing[0]} exists; pass --overwrite to replace the panel")
        models = resolve_models(args.model)
        sets = [panel_set for panel_set in panel_sets(args.dataset) if args.sets in panel_set.name]
        if not sets:
            raise UserError(f"--sets: no panel set's name contains {args.sets!r}")
        for model in models:
            if not same_classes(model.dataset, sets[0].base):
                raise UserError(
                    f"--model {model.label}: trained on {model.dataset.name}, whose classes are not "
                    f"those of --dataset {args.dataset}"
                )
    except (UserError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")

    from zoo.study.panel import evaluate, markdown_table, plot_panel, write_rows
    from zoo.training.environment import hardware

    rows = evaluate(models, sets, hardware=hardware(), progress=print)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, out / ROWS_FILE)
    notes = {model.label: model_note(model) for model in models}
    header = (
        f"# Generalisation panel\n\nMachine: {hardware()}. "
        "Generated by `benchmarks/experiments/panel.py`.\n\n"
    )
    (out / TABLE_FILE).write_text(header + markdown_table(rows, notes))
    plot_panel(rows, out / FIGURE_FILE)
    print(f"wrote {len(rows)} rows to {out / ROWS_FILE}, {out / TABLE_FILE}, {out / FIGURE_FILE}")
    return 0


def resolve_models(arguments: Sequence[str]) -> list[PanelModel]:
    """Load every ``LABEL=PATH`` once (one-line UserError for a bad one); labels must be unique."""
    if not arguments:
        raise UserError("--model: give at least one LABEL=EXPORT_DIR or LABEL=preset:NAME")
    pairs = [parse_model_argument(text) for text in arguments]
    labels = [label for label, _ in pairs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise UserError(f"--model: label {repeated[0]!r} given twice")
    for _, path in pairs:  # before TensorFlow's start-up: a typo is reported at once
        if not path.startswith("preset:") and not Path(path).exists():
            raise UserError(f"--model: model path {path!r} does not exist")
    import_tensorflow_quietly()
    from zoo.study.panel import PanelModel

    return [PanelModel.load(label, path) for label, path in pairs]


if __name__ == "__main__":
    sys.exit(main())
