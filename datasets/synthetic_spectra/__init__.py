"""The universal synthetic spectra dataset (Schuetzke, Szymanski & Reischl, npj Comput. Mater. 2023).

NumPy generator (importable without TensorFlow)::

    from synthetic_spectra import generate
    x, y = generate("challenge", "test")          # float64 [162, 5000], int64 [162]

TFDS (importing this package registers the ``synthetic_spectra`` builder when TFDS is installed)::

    import synthetic_spectra, tensorflow_datasets as tfds
    ds = tfds.load("synthetic_spectra/challenge", split="test")

tf.data input pipeline (normalised, cached, seeded shuffle, batched)::

    ds = synthetic_spectra.input_pipeline("challenge", "train", batch_size=128, shuffle_seed=0)
"""

from __future__ import annotations

import importlib.util
from typing import Any

from synthetic_spectra.classes import draw_class_table
from synthetic_spectra.config import (
    BUILTIN_CONFIGS,
    SPLITS,
    DatasetConfig,
    TestOverride,
    TestSpec,
    canonical_split,
    class_table,
    get_config,
    load_config,
)
from synthetic_spectra.generator import (
    MixtureSplit,
    generate,
    generate_mixtures,
    iter_class_batches,
    iter_mixture_batches,
    render,
)
from synthetic_spectra.normalize import normalize_max

__all__ = [
    "BUILTIN_CONFIGS",
    "SPLITS",
    "DatasetConfig",
    "MixtureSplit",
    "TestOverride",
    "TestSpec",
    "builder",
    "canonical_split",
    "class_table",
    "draw_class_table",
    "generate",
    "generate_mixtures",
    "get_config",
    "input_pipeline",
    "iter_class_batches",
    "iter_mixture_batches",
    "load_config",
    "normalize_max",
    "render",
]

# TensorFlow-dependent parts are loaded lazily, so the generator works where only NumPy is installed.
_LAZY = {
    "input_pipeline": "synthetic_spectra.pipeline",
    "builder": "synthetic_spectra.synthetic_spectra_dataset_builder",
    "Builder": "synthetic_spectra.synthetic_spectra_dataset_builder",
}

if importlib.util.find_spec("tensorflow_datasets") is not None:
    # Registers the `synthetic_spectra` TFDS builder, as `tfds.load("synthetic_spectra/...")` expects.
    from synthetic_spectra import synthetic_spectra_dataset_builder  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthetic_spectra' has no attribute {name!r}")
