"""CNN BN of Liu et al. (2017), Raman spectrum recognition.

Liu, J., Osadchy, M., Ashton, L., Foster, M., Solomon, C. J. & Gibson, S. J. Deep convolutional neural
networks for Raman spectrum recognition: a unified solution. Analyst 142, 4067 (2017).
doi:10.1039/C7AN01371J

Three stages of conv → BatchNormalization → LeakyReLU(0.1) → max pool, then one wide FC layer. The study's
``cnn_bn_mod`` is this trunk with ``batch_norm=False`` (and ReLU in the FC layer).
"""

from __future__ import annotations

import functools
from typing import Any

import keras

from zoo.models.blocks import Conv, Stage, conv_pool_stages

CNN_BN_STAGES: tuple[Stage, ...] = (
    Stage((Conv(16, 21),), pool_size=2, pool_strides=2),
    Stage((Conv(32, 11),), pool_size=2, pool_strides=2),
    Stage((Conv(64, 5),), pool_size=2, pool_strides=2),
)
#: Negative slope of the LeakyReLU after every convolution.
NEGATIVE_SLOPE = 0.1


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """[conv(16,21) BN LReLU] mp(2,2) [conv(32,11) BN LReLU] mp(2,2) [conv(64,5) BN LReLU] mp(2,2)."""
    leaky_relu = functools.partial(keras.layers.LeakyReLU, negative_slope=NEGATIVE_SLOPE)
    return conv_pool_stages(
        x,
        CNN_BN_STAGES,
        activation=leaky_relu,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
    )
