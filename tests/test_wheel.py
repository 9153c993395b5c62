"""An installed wheel, used from outside the checkout: every committed preset loads by name.

The wheel is built from a copy of the sources (nothing is written into the checkout; with this interpreter's
setuptools when it is recent enough, else in pip's isolated build environment from the configured index) and
installed with ``--no-deps --no-index`` into a fresh venv; the venv sees this interpreter's packages
(TensorFlow, Keras) through a ``.pth`` file, so nothing is downloaded. About 20 s on 2 CPU cores, most of it
TensorFlow's import.
"""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from zoo.models.presets import get_preset, list_presets

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = [name for name in list_presets() if get_preset(name).committed]
SOURCES = ("pyproject.toml", "README.md", "zoo", "datasets/synthetic_spectra")


def _run(*command: str | os.PathLike, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False,
                            timeout=900, **kwargs)  # fmt: skip
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A fresh venv with the wheel installed; returns its python."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, source / name)
    wheels = base / "dist"
    # This interpreter's setuptools if it can build the project (>= 77), else pyproject's build requirement
    # from the configured package index.
    setuptools = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:1])
    isolation = ["--no-build-isolation"] if setuptools >= (77,) else []
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        *isolation,
        "--wheel-dir",
        wheels,
        source,
    )
    (wheel,) = wheels.glob("spectrazoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in COMMITTED:
        assert f"zoo/models/preset_weights/{get_preset(name).weights}" in names, f"{name} not in the wheel"
        bank = get_preset(name).feature_bank
        assert bank is None or f"zoo/models/preset_weights/{bank}" in names, f"{name}'s bank not in the wheel"
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        wheel,
        env=_outside_env(),  # a PYTHONPATH naming the checkout makes pip see its egg-info as installed
    )
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    # After the install: this interpreter's packages (TensorFlow, Keras, ...) behind the venv's own.
    (pathlib.Path(purelib) / "host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _outside_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPECTRAZOO_PRESETS")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": os.environ.get("HOME", "/tmp")}


def test_every_committed_preset_loads_from_an_installed_wheel(installed, tmp_path):
    script = (
        "import pathlib, sys, zoo\n"
        "from zoo.models.presets import get_preset\n"
        "assert 'site-packages' in zoo.__file__, zoo.__file__\n"
        f"for name in {COMMITTED!r}:\n"
        "    model = zoo.from_preset(name)\n"
        "    assert model.count_params() == get_preset(name).params, name\n"
        "    print(name, 'ok')\n"
    )
    result = _run(installed, "-c", script, cwd=tmp_path, env=_outside_env())
    assert result.stdout.split() == [word for name in COMMITTED for word in (name, "ok")]
    assert not any(tmp_path.iterdir())  # nothing written into the working folder


def test_installed_preset_build_refuses_the_shipped_folder(installed, tmp_path):
    script = (
        "import sys\nfrom zoo.commands.cli import main\nfrom zoo.models.presets import SHIPPED_PRESETS_DIR\n"
        f"sys.exit(main(['preset', 'build', {COMMITTED[0]!r}, '--weights-dir', str(SHIPPED_PRESETS_DIR)]))\n"
    )
    result = subprocess.run([str(installed), "-c", script], cwd=tmp_path, env=_outside_env(),
                            capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "shipped presets folder is read-only" in result.stderr
    assert not any(tmp_path.iterdir())
