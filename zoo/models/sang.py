"""A VGG-19-like 1-D CNN with batch normalisation in its FC head, as implemented in the authors' benchmark
code (``model_implementations/sang.py``; the code cites no paper and none could be confirmed).

Five stages of 2, 2, 4, 4, 4 convolutions (kernel 3; 64, 128, 256, 512, 512 filters), each closed by a max
pool (2, 2); 7.7 GFLOP per spectrum at 5000 points, the most expensive trunk of the zoo. Its head is
:func:`zoo.models.blocks.bn_classifier_head` (Dense 512 → BN → ReLU → Dropout 0.5), registered as part of the
architecture; the ``batch_norm`` toggle adds BN to the 16 convolutions (off, as published).
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages

#: (convolutions, filters) per stage.
SANG_STAGES: tuple[Stage, ...] = tuple(
    Stage(tuple(Conv(filters, 3) for _ in range(count)), pool_size=2, pool_strides=2)
    for count, filters in ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """[conv(64,3)]x2 mp [conv(128,3)]x2 mp [conv(256,3)]x4 mp [conv(512,3)]x4 mp [conv(512,3)]x4 mp."""
    return conv_pool_stages(x, SANG_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)
