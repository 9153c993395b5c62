"""Generated blocks of the README: the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

The scripts that own a block rewrite it (``write_block``); their tests compare it (``block_is_current``), so a
table in the README cannot drift from the data it is generated from.
"""

from __future__ import annotations

import pathlib

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of block ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, block: str) -> str:
    """``text`` with block ``name`` replaced by ``block`` (its markers must occur once each)."""
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"README must hold {begin} and {end} once each")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def write_block(name: str, block: str, readme: pathlib.Path = README) -> None:
    """Rewrite block ``name`` of the README."""
    readme.write_text(replace_block(readme.read_text(encoding="utf-8"), name, block), encoding="utf-8")


def block_is_current(name: str, block: str, readme: pathlib.Path = README) -> bool:
    """True if the README's block ``name`` is exactly ``block``."""
    text = readme.read_text(encoding="utf-8")
    return replace_block(text, name, block) == text
