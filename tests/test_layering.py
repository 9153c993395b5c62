"""Imports point one way: every import of the package obeys the rules its room's docstring states.

Each room (:mod:`zoo.models`, :mod:`zoo.inference`, :mod:`zoo.training`, :mod:`zoo.study`,
:mod:`zoo.commands`, the public API :mod:`zoo` and :mod:`synthetic_spectra`) says in its docstring what it
"May import:"; the rooms named there with ``:mod:`` (plus "the core" and "the library") are the allowed
ones. Every module is read with ``ast`` — module-level imports, imports inside functions and under
``TYPE_CHECKING``, and module names written as strings for lazy imports (``"zoo.models.compile"``) — and
each arrow to another room must be allowed. The core (the modules directly in ``zoo/``) imports only
itself; ``zoo/__main__.py`` is the command line's entry point and belongs to :mod:`zoo.commands`.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"zoo": ROOT / "zoo", "synthetic_spectra": ROOT / "datasets" / "synthetic_spectra"}
ROOMS = ("zoo.models", "zoo.inference", "zoo.training", "zoo.study", "zoo.commands")
CORE = "the core"
API = "zoo"
#: Phrases of the "May import:" sentences that name several rooms at once.
PHRASES = {"the core": {CORE}, "the library": {"zoo.models", "zoo.inference"}}
_DOTTED = re.compile(r"(?:zoo|synthetic_spectra)(?:\.\w+)*")


def module_path(name: str) -> pathlib.Path | None:
    """The file of first-party module ``name`` (a package's ``__init__.py``), or None if there is none."""
    top, *rest = name.split(".")
    folder = PACKAGES.get(top)
    if folder is None:
        return None
    target = folder.joinpath(*rest)
    for candidate in (target / "__init__.py", target.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: pathlib.Path) -> str:
    """The dotted name of a first-party source file."""
    for top, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            return ".".join((top, *parts))
    raise ValueError(path)


def room(name: str) -> str:
    """The room of a first-party module name."""
    if name.split(".")[0] == "synthetic_spectra":
        return "synthetic_spectra"
    if name == API:
        return API
    if name == "zoo.__main__":
        return "zoo.commands"
    for candidate in ROOMS:
        if name == candidate or name.startswith(candidate + "."):
            return candidate
    return CORE  # a module directly in zoo/


def imported_names(tree: ast.AST) -> set[str]:
    """First-party modules a source imports: ``import``/``from`` anywhere, and module names as strings."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update([name for name in submodules if module_path(name)] or [node.module])
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _DOTTED.fullmatch(node.value)
            and module_path(node.value)
        ):
            found.add(node.value)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def documented_rules(package: str) -> set[str]:
    """The rooms ``package``'s docstring allows it to import (itself always)."""
    doc = ast.get_docstring(ast.parse(module_path(package).read_text(encoding="utf-8"))) or ""
    match = re.search(r"may\s+import:(.*?)(?:\.\s|\bnever\b|$)", doc, re.S | re.I)
    assert match, f"{package}: its docstring has no 'May import:' sentence"
    sentence = match.group(1)
    allowed = {room(name) for name in re.findall(r":mod:`~?([\w.]+)`", sentence)}
    for phrase, rooms in PHRASES.items():
        if phrase in sentence:
            allowed |= rooms
    return allowed | {room(package)}


RULES = {name: documented_rules(name) for name in (*ROOMS, API, "synthetic_spectra")}
RULES[CORE] = {CORE}


def arrows() -> list[tuple[str, str, str]]:
    """``(file, imported module, its room)`` for every first-party import that crosses into another room."""
    found = []
    for folder in PACKAGES.values():
        for path in sorted(folder.rglob("*.py")):
            source = room(module_name(path))
            for name in imported_names(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if room(name) != source:
                    found.append((str(path.relative_to(ROOT)), name, room(name)))
    return found


def test_the_documented_rules_are_the_intended_layering() -> None:
    assert RULES["synthetic_spectra"] == {"synthetic_spectra"}
    assert RULES["zoo.models"] == {"zoo.models", CORE, "synthetic_spectra"}
    assert RULES["zoo.inference"] == {"zoo.inference", "zoo.models", CORE, "synthetic_spectra"}
    assert RULES[API] == {API, "zoo.models", "zoo.inference", CORE}
    library = {"zoo.models", "zoo.inference", CORE, "synthetic_spectra"}
    for peer in ("zoo.training", "zoo.study"):
        assert RULES[peer] == library | {peer}, peer  # the peers import neither each other nor the commands
    assert RULES["zoo.commands"] == library | {"zoo.commands", "zoo.training", "zoo.study"}
    for name, allowed in RULES.items():  # one way: no two rooms may import each other
        assert not [other for other in allowed - {name} if name in RULES[other]], name


@pytest.mark.parametrize(
    ("source", "target", "room_of_target"),
    arrows(),
    ids=lambda value: value if isinstance(value, str) and "/" in value else "",
)
def test_every_import_keeps_to_its_rooms_rules(source: str, target: str, room_of_target: str) -> None:
    source_room = room(module_name(ROOT / source))
    assert room_of_target in RULES[source_room], (
        f"{source} ({source_room}) imports {target} ({room_of_target}); its docstring allows only "
        f"{sorted(RULES[source_room])}"
    )


def test_the_walk_sees_lazy_imports() -> None:
    """Guards the walk: a function-level import and a module name kept as a string are both found."""
    lazy = imported_names(ast.parse((ROOT / "zoo" / "__init__.py").read_text(encoding="utf-8")))
    assert {"zoo.models.compile", "zoo.inference.predict"} <= lazy
    tree = ast.parse("def f():\n    from zoo.study.blocks import write_block\nx = 'zoo.training.runner'\n")
    assert imported_names(tree) == {"zoo.study.blocks", "zoo.training.runner"}
    found = {(source, target) for source, target, _ in arrows()}
    assert ("zoo/commands/preset.py", "zoo.study.blocks") in found  # inside a handler


def test_a_broken_rule_is_reported() -> None:
    """An arrow against the rules is one the parametrised test fails on (the check can fail)."""
    assert room("zoo.study.panel") not in RULES["zoo.models"]
    assert room("zoo.commands.cli") not in RULES["zoo.training"]
    assert room("zoo.models.registry") not in RULES["synthetic_spectra"]


def test_no_benchmark_script_imports_the_command_line() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "benchmarks").rglob("*.py"))
        if "results" not in path.relative_to(ROOT).parts
        and any(room(name) == "zoo.commands" for name in imported_names(ast.parse(path.read_text())))
    ]
    assert not offenders, f"benchmark scripts import zoo.commands (use the library): {offenders}"
