"""spectrazoo: a Keras model zoo for one-dimensional spectra.

``import zoo`` is light (neither Keras nor TensorFlow is imported): :func:`build`, :func:`compile_model` and
:func:`count_flops` import Keras on first use, and only :func:`export` imports TensorFlow (the SavedModel
format needs it).

    >>> import zoo
    >>> zoo.list_models()[:4]
    ['cnn2', 'cnn3', 'inc3', 'inc6']

The package is built in rooms, and imports point one way: :mod:`zoo.commands` → :mod:`zoo.study` and
:mod:`zoo.training` (peers: neither imports the other) → the library (:mod:`zoo.models`,
:mod:`zoo.inference`) → :mod:`synthetic_spectra`. Each room's docstring says what it may import
(``tests/test_layering.py`` reads those sentences and checks every import, lazy ones included). The core —
the modules directly in ``zoo/``: :mod:`zoo.errors`, :mod:`zoo.checks`, :mod:`zoo.paths`, :mod:`zoo.locks`,
:mod:`zoo.tfquiet` — imports only itself, and every room may import it. This module, the public API, may
import: the core and the library (:mod:`zoo.models`, :mod:`zoo.inference`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError, import_keras
from zoo.inference.export import export
from zoo.models.presets import from_preset, get_preset, list_presets
from zoo.models.registry import ModelInfo, Paper, build, get_model_info, list_models

if TYPE_CHECKING:
    from zoo.inference.predict import load, load_keras_model
    from zoo.models.batch_norm import reestimate_batch_norm
    from zoo.models.compile import compile_model
    from zoo.models.flops import count_flops

__all__ = [
    "ModelInfo",
    "Paper",
    "UserError",
    "build",
    "compile_model",
    "count_flops",
    "export",
    "from_preset",
    "get_model_info",
    "get_preset",
    "list_models",
    "list_presets",
    "load",
    "load_keras_model",
    "reestimate_batch_norm",
]

#: Public functions whose modules import Keras (or are not needed by every user), loaded on first access.
_LAZY = {
    "compile_model": "zoo.models.compile",
    "count_flops": "zoo.models.flops",
    "load": "zoo.inference.predict",
    "load_keras_model": "zoo.inference.predict",
    "reestimate_batch_norm": "zoo.models.batch_norm",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import_keras()  # every lazy function runs on Keras: without a backend, say what to install
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
