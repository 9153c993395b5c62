"""``spectrazoo preset``: the zoo's trained models (list them; rebuild one from its recipe; make one from a
finished run — a maintainer's step in a source checkout)."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``preset`` sub-command (``list``, ``build NAME`` and ``make``)."""
    parser = subparsers.add_parser(
        "preset",
        help="list the trained presets, or retrain one from its recipe",
        description="Presets are trained models of the zoo with the results row that proves their numbers.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="the presets as a Markdown table")
    listing.set_defaults(handler=run_list, needs_tensorflow=False)
    build = actions.add_parser(
        "build",
        help="retrain a preset from its recipe and check it against its recorded result",
        description="Retrain NAME with its recorded model, toggles, data, seed, protocol and precision "
        "through the study's runner (resumable: rerun the same command after a kill), store its weights "
        "in your presets folder ($SPECTRAZOO_PRESETS, default ~/.local/share/spectrazoo/presets; never the "
        "package's shipped weights) and say whether the recorded test result was reproduced.",
    )
    build.add_argument("name", metavar="NAME")
    build.add_argument("--work", default=None, help="run folder (default PRESETS_FOLDER/builds/NAME)")
    build.add_argument(
        "--weights-dir",
        default=None,
        help="where the weights go (default $SPECTRAZOO_PRESETS or ~/.local/share/spectrazoo/presets)",
    )
    build.add_argument(
        "--max-epochs", type=int, default=None, help="cap the epochs (a quick check, not the recipe)"
    )
    build.set_defaults(handler=run_build, needs_tensorflow=False)  # imported once the name is checked
    make = actions.add_parser(
        "make",
        help="make a preset from a finished run's results row and export (in a source checkout)",
        description="Load the run's export, copy its weights into the preset's architecture and save them "
        "without optimizer state as NAME.weights.h5 (default: the package's preset_weights folder); the "
        "preset must reproduce the row's misclassification count on its dataset's test split exactly. "
        "Then its entry (replacing one of the same name) goes to zoo/models/presets.json and the presets "
        "table of docs/presets.md is regenerated.",
    )
    make.add_argument("--name", required=True, help="the preset's name (lower-case letters, digits, '_')")
    make.add_argument("--results", required=True, type=pathlib.Path, help="the results.jsonl holding the row")
    make.add_argument("--run-id", required=True, help="the row's run_id")
    make.add_argument("--export", required=True, type=pathlib.Path, help="the row's export folder")
    make.add_argument("--paper", default="–", help="the paper's figure for this setup")
    make.add_argument("--recipe-only", action="store_true", help="record it, do not keep the weights")
    make.add_argument("--weights-dir", default=None, help="default: zoo/models/preset_weights")
    make.set_defaults(handler=run_make, needs_tensorflow=False)  # imported once the files are checked


def run_list(args: argparse.Namespace) -> int:
    """Print the presets table; return 0."""
    from zoo.models.presets import preset_table_markdown

    print(preset_table_markdown())
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Rebuild one preset; 0 if it reproduced its recorded result, 1 if it trained but did not."""
    from zoo.errors import UserError
    from zoo.models.presets import get_preset, presets_dir

    preset = get_preset(args.name)  # an unknown name is one line and exit 2, before anything is written
    if args.max_epochs is not None and args.max_epochs < 1:
        raise UserError(f"--max-epochs must be a positive integer, got {args.max_epochs}")
    from zoo.tfquiet import import_tensorflow_quietly
    from zoo.training.presets import build_preset, check_build_folders

    folder = presets_dir(args.weights_dir)
    work = args.work or folder / "builds" / preset.name
    check_build_folders(folder, work)
    import_tensorflow_quietly()
    print(f"building {preset.name}: run folder {work}, weights to {folder}", flush=True)
    build = build_preset(preset, work, weights_dir=folder, max_epochs=args.max_epochs)
    print(build.summary())
    return 0 if build.reproduced else 1


def run_make(args: argparse.Namespace) -> int:
    """Make a preset, add it to the table and regenerate the docs' presets table; return 0."""
    from zoo.errors import UserError
    from zoo.models.presets import preset_table_markdown
    from zoo.study.blocks import PRESETS_BLOCK, block_file, write_block
    from zoo.tfquiet import import_tensorflow_quietly
    from zoo.training.presets import finished_row, make_preset, write_entry

    finished_row(args.name, args.results, args.run_id, args.export)  # bad inputs fail before any work
    page = block_file(PRESETS_BLOCK)
    if not page.is_file():
        raise UserError(f"preset make regenerates {page}, which does not exist: run it in a source checkout")
    import_tensorflow_quietly()
    preset = make_preset(
        args.name, args.results, args.run_id, args.export,
        paper=args.paper, recipe_only=args.recipe_only, weights_dir=args.weights_dir,
    )  # fmt: skip
    write_entry(preset)
    write_block(PRESETS_BLOCK, preset_table_markdown())
    print(
        f"{preset.name}: {preset.misclassified}/{preset.test_size} wrong "
        f"({100 * preset.test_accuracy:.2f} %), {preset.size_bytes / 1e6:.1f} MB, "
        f"sha256 {preset.sha256[:12]}…"
    )
    return 0
