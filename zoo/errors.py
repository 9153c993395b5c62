"""Exceptions whose message is meant for a person (printed as one line, exit status 2)."""

from __future__ import annotations

from types import ModuleType


class UserError(Exception):
    """A bad file, config, argument or model path; the message names what is wrong."""


class MissingBackendError(UserError, ModuleNotFoundError):
    """Keras cannot start: the package of its backend (TensorFlow unless ``KERAS_BACKEND`` says otherwise)
    is not installed. Also a :class:`ModuleNotFoundError`, so ``except ImportError`` still catches it."""


#: Keras backend module -> (its name for people, the extra that installs it).
BACKENDS = {"tensorflow": ("TensorFlow", "tf"), "jax": ("JAX", "jax"), "torch": ("PyTorch", "torch")}


def import_keras() -> ModuleType:
    """``keras``; where its backend is not installed, one :class:`MissingBackendError` saying what to install
    (instead of a ``ModuleNotFoundError`` from deep inside Keras)."""
    try:
        import keras
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in BACKENDS:
            raise
        name, extra = BACKENDS[missing]
        default = " (its default backend)" if missing == "tensorflow" else f" (KERAS_BACKEND={missing})"
        raise MissingBackendError(
            f'Keras needs {name}{default}, which is not installed: pip install "spectrazoo[{extra}]"',
            name=missing,
        ) from None
    return keras
