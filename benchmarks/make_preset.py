"""Make a preset from a finished results row and its export: weights file, checksum, registry entry.

The row's export is loaded (``zoo.load_keras_model``: rebuilt from the registry, or its ``model.keras``),
its weights are copied into the preset's architecture and saved without optimizer state to
``zoo/models/preset_weights/<name>.weights.h5`` (shipped with the package); the preset is evaluated on its
dataset's test split and accepted only if it reproduces the row's misclassification count exactly. Then the
entry (replacing one of the same name) is written to ``zoo/models/presets.json``. ``--recipe-only`` records
a preset whose weights are too large to commit (``spectrazoo preset build NAME`` retrains it).

    python benchmarks/make_preset.py --name vgg_relu_challenge \\
        --results benchmarks/results/challenge_converged/results.jsonl --run-id challenge/vgg-relu-seed0 \\
        --export saved_models/challenge/vgg-relu-seed0 --paper "68.52 % (median)"

"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections.abc import Sequence

from zoo.errors import UserError
from zoo.models.presets import (
    PRESETS_FILE,
    SHIPPED_PRESETS_DIR,
    Preset,
    evaluate_on_test_split,
    preset_table_markdown,
    sha256_of,
)
from zoo.training.results import read_results

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: A preset's name: also its weights file's name.
PRESET_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The generated block holding the presets table (its page: `zoo.study.blocks.BLOCKS`).
PRESETS_BLOCK = "presets-table"
PROTOCOL_KEYS = ("max_epochs", "epochs_run", "best_epoch", "stop_reason", "precision", "backend",
                 "lr_factor", "batch_size", "jit_compile")  # fmt: skip


def make_preset(args: argparse.Namespace) -> Preset:
    """Write the weights (unless recipe-only), check them against the row, return the registry entry."""
    from synthetic_spectra.config import get_config
    from zoo.inference.predict import load_keras_model
    from zoo.models.presets import build_preset_model

    if not PRESET_NAME.fullmatch(args.name):
        raise UserError(f"--name: lower-case letters, digits and '_' (a letter first), got {args.name!r}")
    if not args.results.is_file():
        raise UserError(f"--results: no such file {str(args.results)!r}")
    if not args.export.exists():
        raise UserError(f"--export: {str(args.export)!r} does not exist")
    rows = {row["run_id"]: row for row in read_results(args.results)}
    if args.run_id not in rows:
        raise UserError(f"{args.results}: no row with run_id {args.run_id!r}")
    row = rows[args.run_id]
    config = get_config(row["dataset"])
    weights = f"{args.name}.weights.h5"
    draft = Preset(
        name=args.name, model=row["model"],
        toggles={k: v for k, v in row["toggles"].items() if v is not None},
        dataset=row["dataset"], num_classes=config.num_classes, datapoints=config.datapoints,
        seed=row["seed"],
        protocol={key: row.get(key, "float32" if key == "precision" else None) for key in PROTOCOL_KEYS},
        source={"results": str(args.results.resolve().relative_to(ROOT)), "run_id": row["run_id"]},
        test_accuracy=row["test_accuracy"], misclassified=row["misclassified"], test_size=row["test_size"],
        params=row["params"], weights=weights, sha256="", size_bytes=0, hardware=row["hardware"],
        committed=not args.recipe_only, paper=args.paper,
    )  # fmt: skip
    trained = load_keras_model(args.export)
    model = build_preset_model(draft)
    model.set_weights(trained.get_weights())
    _, wrong, size = evaluate_on_test_split(model, draft.dataset)
    if (wrong, size) != (draft.misclassified, draft.test_size):
        raise UserError(
            f"{args.export}: {wrong}/{size} wrong on the {draft.dataset} test split, but the row records "
            f"{draft.misclassified}/{draft.test_size}: not the row's model"
        )
    target = pathlib.Path(args.weights_dir or SHIPPED_PRESETS_DIR) / weights
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(target)
    values = draft.to_dict()
    values.update(sha256=sha256_of(target), size_bytes=target.stat().st_size)
    if args.recipe_only:
        target.unlink()
    return Preset.from_dict(values)


def write_entry(preset: Preset, path: pathlib.Path = PRESETS_FILE) -> None:
    """Add ``preset`` to the table (replacing an entry of the same name), keeping the others' order."""
    records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    records = [r for r in records if r["name"] != preset.name] + [preset.to_dict()]
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--results", required=True, type=pathlib.Path)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--export", required=True, type=pathlib.Path)
    parser.add_argument("--paper", default="–", help="the paper's figure for this setup")
    parser.add_argument("--recipe-only", action="store_true", help="record it, do not keep the weights")
    parser.add_argument("--weights-dir", default=None, help="default: zoo/models/preset_weights")
    args = parser.parse_args(argv)
    try:
        preset = make_preset(args)
    except UserError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    write_entry(preset)
    from zoo.study.blocks import write_block

    write_block(PRESETS_BLOCK, preset_table_markdown())
    print(
        f"{preset.name}: {preset.misclassified}/{preset.test_size} wrong "
        f"({100 * preset.test_accuracy:.2f} %), {preset.size_bytes / 1e6:.1f} MB, "
        f"sha256 {preset.sha256[:12]}…"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
