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


#: CPU features that change which kernels oneDNN/XLA pick, as ``/proc/cpuinfo`` names them → the name shown.
KERNEL_FLAGS: dict[str, str] = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512F",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "avx512_fp16": "AVX512_FP16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX_BF16",
}


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                if fields:
                    break
                continue
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` knows); imports no backend."""
    return _cpuinfo_fields().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """Every feature flag of the CPU as ``/proc/cpuinfo`` names it (empty where there is none)."""
    return set(_cpuinfo_fields().get("flags", "").split())


def cpu_info() -> dict[str, Any]:
    """The CPU precisely enough to tell two machines apart: model name, vendor, family/model/stepping,
    core count and the instruction-set features that change kernels (:data:`KERNEL_FLAGS`)."""
    fields = _cpuinfo_fields()
    present = cpu_flags()
    info: dict[str, Any] = {
        "model_name": cpu_model(),
        "vendor": fields.get("vendor_id") or platform.machine(),
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "stepping": fields.get("stepping"),
        "cores": os.cpu_count(),
        "flags": [name for flag, name in KERNEL_FLAGS.items() if flag in present],
    }
    if not fields:  # not Linux: the flags are unknown, not absent
        info["flags"] = None
    return info


def describe_cpu(info: dict[str, Any] | None = None) -> str:
    """One line for tables: ``Intel(R) Xeon(R) Processor [6/207/2; AVX2 AVX-512F AVX512_BF16 AMX]``."""
    info = cpu_info() if info is None else info
    parts = []
    if info.get("family") is not None:
        parts.append(f"{info['family']}/{info['model']}/{info['stepping']}")
    flags = info.get("flags")
    significant = [f for f in flags or () if f in ("AVX2", "AVX-512F", "AVX512_BF16", "AMX")]
    parts.append(" ".join(significant) if flags is not None else "flags unknown")
    return f"{info['model_name']} [{'; '.join(parts)}]"


def hardware() -> str:
    """A one-line description of the machine: CPU (model, family/model/stepping, kernel-relevant flags)
    and cores, plus accelerators if any."""
    description = f"{os.cpu_count()}-core CPU ({describe_cpu()})"
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
