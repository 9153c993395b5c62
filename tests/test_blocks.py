"""The generated blocks of the README and the docs: every marker belongs to a registered block, every
registered block sits once in the file ``zoo.study.blocks.BLOCKS`` names (their content is checked by the
tests of the scripts that write them)."""

from __future__ import annotations

import pathlib

import pytest

from zoo.study.blocks import BLOCKS, ROOT, block_file, block_is_current, blocks_in, markers, write_block

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_marker_in_the_docs_is_a_registered_block_in_its_own_file() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): blocks_in(path.read_text(encoding="utf-8")) for path in DOC_FILES
    }
    placed = {name: path for path, names in found.items() for name in names}
    assert placed == BLOCKS


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_block_has_both_markers_once_in_order(name: str) -> None:
    text = block_file(name).read_text(encoding="utf-8")
    begin, end = markers(name)
    assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end)


def test_write_then_check_a_block_in_a_named_file(tmp_path: pathlib.Path) -> None:
    begin, end = markers("t")
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n{begin}\nold\n{end}\ntail\n", encoding="utf-8")
    assert not block_is_current("t", "new", page)
    assert write_block("t", "new", page) == page
    assert page.read_text(encoding="utf-8") == f"# Page\n{begin}\nnew\n{end}\ntail\n"
    assert block_is_current("t", "new", page)


def test_an_unknown_block_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown block 'nope'; known blocks: headline-table"):
        block_file("nope")


def test_end_before_begin_is_refused(tmp_path: pathlib.Path) -> None:
    begin, end = markers("t")
    page = tmp_path / "page.md"
    page.write_text(f"{end}\n{begin}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="once each, in that order"):
        block_is_current("t", "x", page)
