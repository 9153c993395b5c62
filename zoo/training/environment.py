"""Where a run trains: the Keras backend and seeding, ``tf.distribute`` strategies and the chief, and the
machine's description (hardware, package versions) recorded with every results row."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
from typing import Any

import numpy as np

from zoo.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")


def backend() -> str:
    """The Keras backend in use (without importing Keras twice)."""
    import keras

    return keras.backend.backend()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_strategy(name: str) -> Any:
    """A ``tf.distribute`` strategy by name (TensorFlow backend only); ``None`` for ``default``."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "default":
        return None
    if backend() != "tensorflow":
        raise UserError(f"strategy {name!r} needs the TensorFlow backend (KERAS_BACKEND={backend()})")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise UserError("strategy 'multiworker' reads the cluster from TF_CONFIG, which is not set")
    try:
        json.loads(os.environ["TF_CONFIG"])["cluster"]
    except (ValueError, KeyError, TypeError):
        raise UserError("strategy 'multiworker': TF_CONFIG is not JSON with a 'cluster' entry") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multiworker(strategy: Any) -> bool:
    """True for a ``MultiWorkerMirroredStrategy`` (trained by ``DistributedFit``)."""
    if strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def strategy_name(strategy: Any) -> str:
    """The public name of a strategy (``default`` for none), for the results row."""
    if strategy is None:
        return "default"
    return "MultiWorkerMirroredStrategy" if is_multiworker(strategy) else type(strategy).__name__


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief worker (only the chief records results)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    cluster = config.get("cluster") or {}
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster


def accelerators() -> list[str]:
    """Names of the accelerators the Keras backend trains on (empty on a CPU-only machine)."""
    if backend() == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    if backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend() == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` knows); imports no backend."""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> str:
    """A one-line description of the machine: CPU model and cores, plus accelerators if any."""
    description = f"{os.cpu_count()}-core CPU ({cpu_model()})"
    found = accelerators()
    if found:
        description += f" + {len(found)}x {found[0]}"
    return description


def versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    import keras

    found = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch"):
        if module == backend() or (module == "tensorflow" and backend() == "tensorflow"):
            found[module] = __import__(module).__version__
    return found
