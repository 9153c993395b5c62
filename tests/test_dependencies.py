"""The dependencies declared in pyproject.toml match what the package imports (issue #16, part 1).

Every import in ``zoo/`` and ``datasets/synthetic_spectra`` is read with ``ast`` — module level and lazy ones
inside functions, plus ``importlib.import_module("x")`` / ``importlib.util.find_spec("x")`` with a literal
name — and its top-level module mapped to a distribution. The declared set (core + every extra) must equal
the imported set plus the run-time needs our dependencies do not declare themselves; those have to sit in the
same extra as the dependency that needs them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "zoo", ROOT / "datasets" / "synthetic_spectra")
FIRST_PARTY = {"zoo", "synthetic_spectra"}
#: Top-level module -> distribution, where the names differ (otherwise ``_`` becomes ``-``).
DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "keras_tuner": "keras-tuner",
    "tensorflow_datasets": "tensorflow-datasets",
    "tensorflow": "tensorflow-cpu",
}
#: Distribution needed at run time but not imported by us -> (the distribution that needs it, why).
INDIRECT = {
    "importlib-resources": ("tensorflow-datasets", "tfds.load imports it; tensorflow-datasets omits it"),
}
#: Distributions declared for a reason other than an import of ours.
DECLARED_WITHOUT_IMPORT = {
    "tensorboard": "the TensorBoard callbacks of `benchmark` and `tune` (and `tensorboard --logdir`)",
}
LITERAL_IMPORTERS = {"import_module", "find_spec"}


def _normalise(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _declared() -> dict[str, set[str]]:
    """``{"core": {...}, extra: {...}}`` of normalised distribution names from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": project.get("dependencies", [])} | project.get("optional-dependencies", {})
    return {group: {_normalise(item) for item in items} for group, items in groups.items()}


def _imported_modules(tree: ast.AST) -> set[str]:
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in LITERAL_IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules.add(node.args[0].value)
    return {module.split(".")[0] for module in modules}


def third_party_imports() -> dict[str, list[str]]:
    """Distribution -> the files that import it (third-party only, every import in the sources)."""
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            for module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if module in sys.stdlib_module_names or module in FIRST_PARTY:
                    continue
                distribution = DISTRIBUTIONS.get(module, module.replace("_", "-")).lower()
                found.setdefault(distribution, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared_and_every_declaration_is_used() -> None:
    declared = set().union(*_declared().values())
    imported = third_party_imports()
    missing = {name: files[:3] for name, files in imported.items() if name not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    unused = declared - set(imported) - set(INDIRECT) - set(DECLARED_WITHOUT_IMPORT)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_the_known_imports_are_found() -> None:
    """The walk sees lazy imports and literal import_module/find_spec names (guards the walk itself)."""
    imported = third_party_imports()
    assert {"pyyaml", "scikit-learn", "keras-tuner", "tensorflow-datasets", "tensorflow-cpu"} <= set(imported)
    assert "zoo/training/tuning/search.py" in imported["scikit-learn"]  # find_spec("sklearn")


@pytest.mark.parametrize("needed", sorted(INDIRECT))
def test_indirect_needs_sit_beside_what_needs_them_and_are_still_undeclared_upstream(needed: str) -> None:
    needer, _ = INDIRECT[needed]
    groups = [group for group, names in _declared().items() if needer in names]
    assert groups, f"{needer} is not declared"
    for group in groups:
        assert needed in _declared()[group] or needed in _declared()["core"], (needed, group)
    upstream = {
        _normalise(requirement.name)
        for requirement in map(Requirement, importlib.metadata.requires(needer) or [])
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})
    }  # what installing `needer` brings along on this Python
    assert needed not in upstream, f"{needer} now declares {needed} itself: drop it from INDIRECT"


def test_every_import_is_in_an_installed_distribution_of_that_name() -> None:
    """The module -> distribution map is right for what is installed here (catches a wrong mapping)."""
    installed = {_normalise(dist.metadata["Name"]) for dist in importlib.metadata.distributions()}
    aliases = {"tensorflow-cpu": {"tensorflow-cpu", "tensorflow"}}
    not_in_dev_venv = {"torch"}  # the torch backend is declared (extra `torch`) but not pinned for `make`
    absent = [
        name
        for name in third_party_imports()
        if not aliases.get(name, {name}) & installed and name not in not_in_dev_venv
    ]
    assert not absent, f"no installed distribution for: {absent}"
