"""Start-up: which heavy modules a command or an import loads (checked in fresh processes, not timed).

Wall times are measured by ``benchmarks/measure/startup.py``; here the import graph is asserted, which does
not depend on the machine's load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("tensorflow", "tensorflow_datasets", "keras", "scipy")


def _run(program: str) -> subprocess.CompletedProcess[str]:
    code = f"{program}\nimport sys\nprint('HEAVY', *[m for m in {HEAVY!r} if m in sys.modules])"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def _heavy_modules(program: str) -> list[str]:
    done = _run(program)
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("HEAVY")).split()[1:]


def _cli(*argv: str) -> str:
    return f"from zoo.commands.cli import main\nassert main({list(argv)!r}) == 0"


def test_import_synthetic_spectra_loads_no_tfds_tensorflow_or_scipy() -> None:
    assert _heavy_modules("import synthetic_spectra") == []


@pytest.mark.parametrize("argv", [("models",), ("models", "--format", "json"), ("models", "--presets")])
def test_models_command_loads_no_tensorflow_or_keras(argv: tuple[str, ...]) -> None:
    assert _heavy_modules(_cli(*argv)) == []


def test_generate_mini_loads_no_tensorflow(tmp_path: Path) -> None:
    heavy = _heavy_modules(_cli("generate", "--config", "mini", "--out", str(tmp_path), "--no-progress"))
    assert heavy == []
    assert (tmp_path / "x_test.npy").exists()


def test_tfds_finds_the_builder_imported_after_synthetic_spectra() -> None:
    program = (
        "import synthetic_spectra\nimport tensorflow_datasets as tfds\n"
        "cls = tfds.builder_cls('synthetic_spectra')\n"
        "assert cls is synthetic_spectra.Builder, cls\n"
        "assert {'challenge', 'mini'} <= set(cls.builder_configs)"
    )
    assert "tensorflow_datasets" in _heavy_modules(program)


def test_tfds_imported_first_still_registers_the_builder() -> None:
    program = (
        "import tensorflow_datasets as tfds\nimport synthetic_spectra\n"
        "assert tfds.builder_cls('synthetic_spectra') is synthetic_spectra.Builder"
    )
    _heavy_modules(program)


def test_polynomial_background_imports_scipy_on_use() -> None:
    program = (
        "import numpy as np\nfrom synthetic_spectra.realistic import polynomial_background\n"
        "x = polynomial_background(3, (0.0, 1.0), np.random.default_rng(0), 2, 50)\nassert x.shape == (2, 50)"
    )
    assert _heavy_modules(program) == ["scipy"]


def test_no_arguments_prints_usage_with_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.commands.cli import main

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: spectrazoo")
    for command in ("generate", "models", "benchmark", "predict"):
        assert f"    {command}" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    from zoo.commands.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"spectrazoo {version('spectrazoo')}"
