"""The configurable plain CNN of the benchmark's author, as implemented in the authors' benchmark code
(``model_implementations/schuetzke.py``; J. Schuetzke's own model, no paper named).

``num_layers`` stages of one conv (``filters`` filters, kernel ``kernel // i`` for stage i = 1, 2, ...; 127,
63, 42, 31, 25 at the defaults) and a max pool (2, 2), then the head (one ReLU layer of 100 by default).
"""

from __future__ import annotations

from typing import Any

from zoo.checks import check_int
from zoo.models.blocks import Conv, Stage, conv_pool_stages


def trunk(
    x: Any, *, batch_norm: bool, conv_dropout: float, num_layers: int, filters: int, kernel: int
) -> Any:
    """``num_layers`` × [conv(filters, kernel // i) mp(2,2)], i = 1 ... num_layers."""
    check_int("num_layers", num_layers)
    check_int("filters", filters)
    check_int("kernel", kernel, minimum=num_layers)
    stages = tuple(
        Stage((Conv(filters, kernel // index),), pool_size=2, pool_strides=2)
        for index in range(1, num_layers + 1)
    )
    return conv_pool_stages(x, stages, batch_norm=batch_norm, conv_dropout=conv_dropout)
