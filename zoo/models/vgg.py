"""VGG of Wang et al. (2020), X-ray diffraction identification of metal-organic frameworks.

Wang, H., Xie, Y., Li, D., Deng, H., Zhao, Y., Xin, M. & Lin, J. Rapid identification of X-ray diffraction
patterns based on very limited data by interpretable convolutional neural networks. Journal of Chemical
Information and Modeling (2020). doi:10.1021/acs.jcim.0c00020

VGG-style stacks of 1, 2, 2 and 2 convolutions (6, 16, 32, 64 filters, kernel 5), each stage closed by a
max pool and Dropout(0.2), then three small linear FC layers. The study's ``vgg_mod`` is this trunk with
``kernel_size=20`` and no conv dropout (plus wider ReLU FC layers).
"""

from __future__ import annotations

from typing import Any

from zoo.checks import check_int
from zoo.models.blocks import Conv, Stage, conv_pool_stages

#: Filters of the convolutions of each stage.
STAGE_FILTERS: tuple[tuple[int, ...], ...] = ((6,), (16, 16), (32, 32), (64, 64))


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float, kernel_size: int) -> Any:
    """conv(6) mp D; conv(16)x2 mp D; conv(32)x2 mp D; conv(64)x2 mp D; pools (2, 2), D = conv dropout."""
    check_int("kernel_size", kernel_size)
    stages = tuple(
        Stage(tuple(Conv(filters, kernel_size) for filters in stage), pool_size=2, pool_strides=2)
        for stage in STAGE_FILTERS
    )
    return conv_pool_stages(x, stages, batch_norm=batch_norm, conv_dropout=conv_dropout)
