"""The strided-convolution / average-pooling XRD trunk of Park et al. (2017), and Vecsei et al.'s (2019) use
of it, as implemented in the authors' later benchmark code (``model_implementations/park.py``, ``vecsei.py``).

Park, W. B., Chung, J., Jung, J., Sohn, K., Singh, S. P., Pyo, M., Shin, N. & Sohn, K.-S. Classification of
crystal structure using a convolutional neural network. IUCrJ 4, 486-494 (2017). doi:10.1107/S205225251700714X

Vecsei, P. M., Choo, K., Chang, J. & Neupert, T. Neural network based classification of crystal symmetries
from x-ray diffraction patterns. Physical Review B 99, 245120 (2019). doi:10.1103/PhysRevB.99.245120

Three stages of one strided convolution (80 filters; kernels 100, 50, 25; strides 5, 5, 2) and an average
pool of 3 (strides 2, 1, 1). The benchmark code names its average pools ``maxpool1..3``; here they are
``avgpool1..3``. ``vecsei`` is the same trunk with its conv dropout *before* each pool (published 0.3) and a
wider head; ``park`` puts a toggled conv dropout after each pool, as every other trunk of the zoo.
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages

PARK_STAGES: tuple[Stage, ...] = (
    Stage((Conv(80, 100, 5),), pool_size=3, pool_strides=2, pool="avg"),
    Stage((Conv(80, 50, 5),), pool_size=3, pool_strides=1, pool="avg"),
    Stage((Conv(80, 25, 2),), pool_size=3, pool_strides=1, pool="avg"),
)


def park_trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(80,100,s5) ap(3,2) conv(80,50,s5) ap(3,1) conv(80,25,s2) ap(3,1); dropout after each pool."""
    return conv_pool_stages(x, PARK_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)


def vecsei_trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """Park's trunk with the conv dropout between each conv's activation and its average pool."""
    return conv_pool_stages(
        x, PARK_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout, dropout_before_pool=True
    )
