"""``spectrazoo models``: the model zoo as a table (or JSON / Markdown), straight from the registry."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from zoo.models.registry import ModelInfo, get_model_info, list_models

COLUMNS: tuple[str, ...] = (
    "name", "display name", "domain", "source", "FC widths", "FC act", "FC drop", "conv drop", "BN",
    "params (500)", "params (27)", "DOI",
)  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the ``models`` sub-command."""
    parser = subparsers.add_parser(
        "models",
        help="list the architectures of the zoo",
        description="List every registered model: paper, domain, published defaults and parameter counts.",
    )
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    parser.add_argument(
        "--no-variants", action="store_true", help="without the ablation variants (published models, our own)"
    )
    parser.add_argument(
        "--presets", action="store_true", help="list the trained presets instead (see spectrazoo preset)"
    )
    parser.set_defaults(handler=run, needs_tensorflow=False)


def _row(info: ModelInfo) -> tuple[str, ...]:
    defaults = info.defaults
    widths = defaults["fc_widths"]
    source = info.paper.short if info.base is None else f"{info.paper.short} (from {info.base})"
    return (
        info.name,
        info.display_name,
        info.domain,
        source,
        "-".join(map(str, widths)) or "none",
        (defaults["fc_activation"] or "-") if widths else "-",
        f"{defaults['fc_dropout']:g}",
        f"{defaults['conv_dropout']:g}",
        "yes" if defaults["batch_norm"] else "no",
        f"{info.params_500:,}",
        f"{info.params_27:,}",
        info.paper.doi or "-",
    )


def format_table(rows: Sequence[Sequence[str]], *, markdown: bool = False) -> str:
    """Render ``COLUMNS`` + ``rows`` as aligned plain text or as a Markdown table."""
    table = [COLUMNS, *rows]
    if markdown:
        lines = [f"| {' | '.join(row)} |" for row in table]
        lines.insert(1, "|" + "|".join("---" for _ in COLUMNS) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the registry in the requested format (or the presets table); return 0."""
    if args.presets:
        from zoo.models.presets import preset_table_markdown

        print(preset_table_markdown())
        return 0
    infos = [get_model_info(name) for name in list_models(include_variants=not args.no_variants)]
    if args.format == "json":
        print(json.dumps([info.to_dict() for info in infos], indent=2))
    else:
        print(format_table([_row(info) for info in infos], markdown=args.format == "markdown"))
    return 0
