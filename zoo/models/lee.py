"""CNN2, CNN3, INC3 and INC6 of Lee et al. (2020), X-ray diffraction phase identification.

Lee, J.-W., Park, W. B., Lee, J. H., Singh, S. P. & Sohn, K.-S. A deep-learning technique for phase
identification in multiphase inorganic compounds using synthetic XRD powder patterns. Nature Communications
11, 86 (2020). doi:10.1038/s41467-019-13749-3

CNN2 and CNN3 are plain conv/pool stacks with large, partly strided kernels; INC3 and INC6 put three or six
GoogLeNet-style inception blocks (filters growing from A1 to A6) on top of the CNN3 trunk.
"""

from __future__ import annotations

from typing import Any

from zoo.checks import check_int
from zoo.models.blocks import Conv, Stage, conv_pool_stages, inception_block

CNN2_STAGES: tuple[Stage, ...] = (
    Stage((Conv(64, 50, 2),), pool_size=3, pool_strides=2),
    Stage((Conv(64, 25, 3),), pool_size=2, pool_strides=3),
)
CNN3_STAGES: tuple[Stage, ...] = (
    Stage((Conv(64, 20, 1),), pool_size=3, pool_strides=3),
    Stage((Conv(64, 15, 1),), pool_size=2, pool_strides=3),
    Stage((Conv(64, 10, 2),), pool_size=1, pool_strides=2),
)
#: Filters (f0 ... f5) of inception blocks A1 ... A6, see :func:`zoo.models.blocks.inception_block`.
INCEPTION_FILTERS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (22, 32, 42, 6, 12, 10),
    (28, 43, 56, 7, 14, 14),
    (37, 56, 73, 9, 18, 19),
    (49, 74, 96, 12, 24, 25),
    (65, 97, 126, 16, 32, 32),
    (85, 128, 166, 19, 38, 43),
)


def cnn2_trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """CNN2: conv(64, 50, 2) mp(3, 2) conv(64, 25, 3) mp(2, 3)."""
    return conv_pool_stages(x, CNN2_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)


def cnn3_trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """CNN3: conv(64, 20, 1) mp(3, 3) conv(64, 15, 1) mp(2, 3) conv(64, 10, 2) mp(1, 2)."""
    return conv_pool_stages(x, CNN3_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)


def inception_trunk(x: Any, *, batch_norm: bool, conv_dropout: float, blocks: int) -> Any:
    """INC3 / INC6: the CNN3 trunk, then inception blocks A1 ... A``blocks``."""
    check_int("blocks", blocks, maximum=len(INCEPTION_FILTERS))
    x = cnn3_trunk(x, batch_norm=batch_norm, conv_dropout=conv_dropout)
    for index, filters in enumerate(INCEPTION_FILTERS[:blocks], start=1):
        x = inception_block(x, filters, batch_norm=batch_norm, name=f"inception{index}")
    return x
