"""MkDocs hook: files that live outside ``docs/`` become part of the site at their repository path.

The committed results under ``benchmarks/results/`` (markdown reports, figures, CSV and JSON tables, as
the scripts write them) and the dataset card ``datasets/synthetic_spectra/README.md`` with the figure it
embeds: the docs pages link to them where they are, so the site never holds a stale copy. Measurement logs
with a history of their own (:data:`NOT_PUBLISHED`) stay in the repository only.
"""

from __future__ import annotations

import pathlib
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = "benchmarks/results"
#: Single files published at their repository path: the dataset card and the figure it links to.
SINGLE_FILES = ("datasets/synthetic_spectra/README.md", "docs/realistic_options.png")
SUFFIXES = {".md", ".png", ".svg", ".csv", ".json"}
#: Run logs kept for the record: their numbers are quoted, with hardware, on the docs pages instead.
NOT_PUBLISHED = {
    "benchmarks/results/throughput.md",
    "benchmarks/results/export_size.md",
    "benchmarks/results/new_model/README.md",
}


def on_files(files: Files, config: Any) -> Files:
    """Add every published results file and the dataset card to the site at its repository path."""
    results = [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / RESULTS).rglob("*"))]
    for relative in [*results, *SINGLE_FILES]:
        path = ROOT / relative
        if path.is_file() and path.suffix in SUFFIXES and relative not in NOT_PUBLISHED:
            files.append(
                File(
                    relative,
                    src_dir=str(ROOT),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files
