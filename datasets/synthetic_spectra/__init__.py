"""The universal synthetic spectra dataset (Schuetzke, Szymanski & Reischl, npj Comput. Mater. 2023).

NumPy generator (importable without TensorFlow)::

    from synthetic_spectra import generate
    x, y = generate("challenge", "test")          # float64 [162, 5000], int64 [162]

TFDS (importing this package registers the ``synthetic_spectra`` builder when TFDS is installed; TFDS
itself is not imported: the builder registers the moment TFDS is, so the import stays light)::

    import synthetic_spectra, tensorflow_datasets as tfds
    ds = tfds.load("synthetic_spectra/challenge", split="test")

The same examples from the prepared files, parsed a batch of records at a time (much faster)::

    ds = synthetic_spectra.read_batches("challenge", "test", batch_size=256)

tf.data input pipeline (normalised, cached, seeded shuffle, batched)::

    ds = synthetic_spectra.input_pipeline("challenge", "train", batch_size=128, shuffle_seed=0)

The bottom room of the project: it knows nothing of the model zoo. May import: NumPy, SciPy, PyYAML,
TensorFlow and TFDS (on demand) — nothing of ``zoo``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

from synthetic_spectra.augment import Augmentation, parse_augmentation
from synthetic_spectra.classes import draw_class_table
from synthetic_spectra.config import (
    BUILTIN_CONFIGS,
    SPLITS,
    DatasetConfig,
    TestOverride,
    TestSpec,
    canonical_split,
    class_table,
    fresh_draw,
    get_config,
    load_config,
)
from synthetic_spectra.generator import (
    MixtureSplit,
    generate,
    generate_augmented,
    generate_mixtures,
    iter_class_batches,
    iter_mixture_batches,
    render,
)
from synthetic_spectra.normalize import normalize_max

__all__ = [
    "BUILTIN_CONFIGS",
    "SPLITS",
    "Augmentation",
    "DatasetConfig",
    "MixtureSplit",
    "TestOverride",
    "TestSpec",
    "builder",
    "canonical_split",
    "class_table",
    "draw_class_table",
    "fresh_draw",
    "generate",
    "generate_augmented",
    "generate_mixtures",
    "get_config",
    "input_pipeline",
    "iter_class_batches",
    "iter_mixture_batches",
    "load_config",
    "normalize_max",
    "parse_augmentation",
    "read_batches",
    "render",
]

# TensorFlow-dependent parts are loaded lazily, so the generator works where only NumPy is installed.
_LAZY = {
    "input_pipeline": "synthetic_spectra.pipeline",
    "read_batches": "synthetic_spectra.pipeline",
    "builder": "synthetic_spectra.synthetic_spectra_dataset_builder",
    "Builder": "synthetic_spectra.synthetic_spectra_dataset_builder",
}

_BUILDER_MODULE = "synthetic_spectra.synthetic_spectra_dataset_builder"


class _RegisteringLoader:
    """Wraps TFDS's own loader: runs it, then imports the builder module (which registers the builder)."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers, get_source, ...: TFDS's loader answers
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        importlib.import_module(_BUILDER_MODULE)


class _RegisterWhenTfdsLoads:
    """A one-shot import hook: the first ``import tensorflow_datasets`` also registers our builder."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "tensorflow_datasets":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


# `tfds.load("synthetic_spectra/...")` needs the builder registered; TFDS (and through it TensorFlow) takes
# about a second to import, so it is registered now only when TFDS is already loaded, else when it loads.
if "tensorflow_datasets" in sys.modules:
    importlib.import_module(_BUILDER_MODULE)
elif importlib.util.find_spec("tensorflow_datasets") is not None:
    sys.meta_path.insert(0, _RegisterWhenTfdsLoads())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthetic_spectra' has no attribute {name!r}")
