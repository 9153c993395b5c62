"""A one-convolution Raman CNN, as implemented in the authors' benchmark code
(``model_implementations/mozaffari.py``; by its name from M. H. Mozaffari and L.-L. Tay's work on 1-D CNNs
for Raman spectra, but which of their papers it follows, if any, cannot be told from the code).

One conv(32, 3), no pooling, then the full-length feature map (32 × L) into one ReLU layer of 64 units:
10.2 M parameters at 5000 points, nearly all in that layer. A toggled conv dropout follows the convolution.
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages

MOZAFFARI_STAGES: tuple[Stage, ...] = (Stage((Conv(32, 3),), pool_size=1, pool_strides=1, pool="none"),)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(32,3), no pooling."""
    return conv_pool_stages(x, MOZAFFARI_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)
