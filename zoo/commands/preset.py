"""``spectrazoo preset``: the zoo's trained models (list them; rebuild one from its recipe)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``preset`` sub-command (``list`` and ``build NAME``)."""
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
    build.set_defaults(handler=run_build)


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
    from zoo.training.presets import build_preset, check_build_folders

    folder = presets_dir(args.weights_dir)
    work = args.work or folder / "builds" / preset.name
    check_build_folders(folder, work)
    print(f"building {preset.name}: run folder {work}, weights to {folder}", flush=True)
    build = build_preset(preset, work, weights_dir=folder, max_epochs=args.max_epochs)
    print(build.summary())
    return 0 if build.reproduced else 1
