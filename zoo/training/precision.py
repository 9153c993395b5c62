"""Numeric precision of training: float32, or Keras mixed precision where the hardware runs it natively.

The models' architecture and the protocol do not change with the precision: under ``mixed_bfloat16``
the layers compute in bfloat16 and keep float32 variables, the softmax output stays float32 (see
:func:`zoo.models.blocks.classifier_head`), and the runner evaluates and exports a float32 copy of the
trained weights. ``auto`` picks ``mixed_bfloat16`` only where the CPU has native bfloat16 arithmetic
(AVX512_BF16 or AMX) or an accelerator is in use, else ``float32``: the choice is made per machine at
run time, never hard-coded.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

#: Precisions a run can ask for (``auto`` resolves to one of the other two).
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bfloat16 flags this CPU reports (empty where none, or on a system without /proc)."""
    if cpuinfo is None:
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def resolve_precision(precision: str, *, accelerator: bool = False, cpuinfo: str | None = None) -> str:
    """``float32`` or ``mixed_bfloat16`` for a requested precision (``auto`` decided by the hardware)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if accelerator or cpu_bf16_flags(cpuinfo) else "float32"


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``precision`` (resolved) while models are built in the block."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
