"""Generated blocks of the user docs: the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

Every block lives in one file of the repository checkout — the README or a page under ``docs/`` — named in
:data:`BLOCKS`. The script that owns a block rewrites it (:func:`write_block`) and its test compares it
(:func:`block_is_current`), so a generated table cannot drift from the data it is made from; moving a block
to another page is a change of one line here. ``tests/test_blocks.py`` checks that the markers in the
README and the docs are exactly the registered blocks, each once.

The blocks belong to the checkout, not to an installed package: :data:`ROOT` is the folder above ``zoo/``.
"""

from __future__ import annotations

import pathlib
import re

#: The repository root (the checkout that holds ``README.md`` and ``docs/``).
ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Block name → the file (relative to :data:`ROOT`) that holds it, and who writes it.
BLOCKS: dict[str, str] = {
    "headline-table": "README.md",  # benchmarks/experiments/study_table.py --write
    "study-table": "docs/results.md",  # benchmarks/experiments/study_table.py --write
    "registry-table": "docs/models.md",  # spectrazoo models --format markdown --no-variants
    "presets-table": "docs/presets.md",  # spectrazoo preset make
    "converged-table": "docs/results.md",  # benchmarks/experiments/converged_table.py --write
    "prnet-v4-table": "docs/prnet.md",  # benchmarks/experiments/converged_table.py --write
    "tuning-summary": "README.md",  # benchmarks/experiments/tuning_converged.py --analyse
    "tuning-summary-docs": "docs/tuning.md",  # benchmarks/experiments/tuning_converged.py --analyse
}

#: The block listing the presets (written by ``spectrazoo preset make``).
PRESETS_BLOCK = "presets-table"

_MARKER = re.compile(r"<!-- ([a-z0-9-]+):(begin|end) -->")


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of block ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def block_file(name: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    """The file that holds block ``name``."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}")
    return root / BLOCKS[name]


def blocks_in(text: str) -> list[str]:
    """The names of the blocks whose begin or end marker occurs in ``text``, in order, each once."""
    return list(dict.fromkeys(match.group(1) for match in _MARKER.finditer(text)))


def replace_block(text: str, name: str, block: str) -> str:
    """``text`` with block ``name`` replaced by ``block`` (its markers must occur once each)."""
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"the file must hold {begin} and {end} once each, in that order")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def write_block(name: str, block: str, path: pathlib.Path | None = None) -> pathlib.Path:
    """Rewrite block ``name`` in its file (or in ``path``); returns the file written."""
    path = path or block_file(name)
    path.write_text(replace_block(path.read_text(encoding="utf-8"), name, block), encoding="utf-8")
    return path


def block_is_current(name: str, block: str, path: pathlib.Path | None = None) -> bool:
    """True if block ``name`` in its file (or in ``path``) is exactly ``block``."""
    text = (path or block_file(name)).read_text(encoding="utf-8")
    return replace_block(text, name, block) == text
