"""The DeepCID-style Raman CNN attributed to Fan et al. (2019), as implemented in the authors' later benchmark
code (``model_implementations/fan.py``).

Fan, X., Ming, W., Zeng, H., Zhang, Z. & Lu, H. Deep learning-based component identification for the Raman
spectra of mixtures. Analyst 144, 1789-1798 (2019). doi:10.1039/C8AN02212G

Two conv(k5)/max-pool(2) stages (32, 64 filters) and a very wide head (3584, 1024): at 5000 points the first
hidden layer alone holds 286.7 M of the 290.4 M parameters (the flattened map is 64 × floor(L / 4)). The
original shares one dropout rate between its conv dropout (after stage 1 only: stage 2 feeds the head, whose
first Dropout plays that role) and its FC dropouts; here they are the two toggles, both 0.3 by default.
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages

FAN_STAGES: tuple[Stage, ...] = (
    Stage((Conv(32, 5),), pool_size=2, pool_strides=2),
    Stage((Conv(64, 5),), pool_size=2, pool_strides=2),
)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(32,5) mp(2,2) D conv(64,5) mp(2,2); D = conv dropout (not after the last stage)."""
    return conv_pool_stages(
        x, FAN_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout, dropout_after_last_stage=False
    )
