"""ResNet of Ho et al. (2019), Raman identification of pathogenic bacteria.

Ho, C.-S., Jean, N., Hogan, C. A. et al. Rapid identification of pathogenic bacteria using Raman
spectroscopy and deep learning. Nature Communications 10, 4927 (2019). doi:10.1038/s41467-019-12898-9

A linear conv(64, 5) + BN stem, then six stages of two residual blocks (100 filters, kernel 5): the first
block of each stage halves the length with a strided conv and a projection shortcut, the second is an
identity block. The original has no hidden FC layers (only Dropout(0.5) before the softmax output). The
study's ``resnet_mod`` drops every BN, adds a ReLU to the stem and two ReLU FC layers.
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, check_activation, conv_unit, dropout, residual_block

STEM = Conv(64, 5)
FILTERS = 100
KERNEL_SIZE = 5
STAGES = 6
BLOCKS_PER_STAGE = 2


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float, stem_activation: str) -> Any:
    """Stem conv(64, 5) → [BN] → ``stem_activation``, then 6 × (conv block, identity block).

    ``conv_dropout`` adds a Dropout after every stage (the stages are where the length is reduced).
    """
    check_activation("stem_activation", stem_activation)
    x = conv_unit(x, STEM, activation=stem_activation, batch_norm=batch_norm, name="stem_conv")
    for stage in range(1, STAGES + 1):
        for block in range(1, BLOCKS_PER_STAGE + 1):
            first = block == 1
            x = residual_block(
                x,
                FILTERS,
                KERNEL_SIZE,
                strides=2 if first else 1,
                projection=first,
                batch_norm=batch_norm,
                name=f"stage{stage}_block{block}",
            )
        x = dropout(x, conv_dropout, name=f"stage{stage}_dropout")
    return x
