"""The all-convolutional thin-film XRD network attributed to Oviedo et al. (2019), as implemented in the
authors' later benchmark code (``model_implementations/oviedo.py``).

Oviedo, F., Ren, Z., Sun, S., Settens, C., Liu, Z., Hartono, N. T. P., Ramasamy, S., DeCost, B. L.,
Tian, S. I. P., Romano, G., Kusne, A. G. & Buonassisi, T. Fast and interpretable classification of small X-ray
diffraction datasets using data augmentation and deep neural networks. npj Computational Materials 5, 60
(2019). doi:10.1038/s41524-019-0196-x

Three non-overlapping strided convolutions (32 filters; kernel = stride = 8, 5, 3), no pooling layers, then
global average pooling straight into the softmax: no hidden FC layer, and a parameter count that does not
depend on the input length. A toggled conv dropout follows each convolution.
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.models.blocks import Conv, Stage, conv_pool_stages

OVIEDO_STAGES: tuple[Stage, ...] = tuple(
    Stage((Conv(32, k, k),), pool_size=1, pool_strides=1, pool="none") for k in (8, 5, 3)
)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(32,8,s8) conv(32,5,s5) conv(32,3,s3), then GlobalAveragePooling1D."""
    x = conv_pool_stages(x, OVIEDO_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)
    return keras.layers.GlobalAveragePooling1D(name="global_avgpool")(x)
