"""A CNN-LSTM, as implemented in the authors' benchmark code (``model_implementations/bhattacharya.py``; the
code cites no paper and none could be confirmed).

Four conv(k2)/max-pool(2, 2) stages (128, 64, 64, 32 filters), then an LSTM(32) that reads the remaining
floor(L / 16) steps and returns its last hidden state: the feature vector of the head. The conv dropout
(published 0.2, tied to the FC dropout in the original) follows the pools of stages 1-3; stage 4 feeds the
LSTM directly. :func:`zoo.count_flops` counts Conv1D and Dense layers only, not the LSTM (5.1 MFLOP more at
5000 points).
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages, lstm_stage

BHATTACHARYA_STAGES: tuple[Stage, ...] = tuple(
    Stage((Conv(filters, 2),), pool_size=2, pool_strides=2) for filters in (128, 64, 64, 32)
)
LSTM_UNITS = 32


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(128,2) mp D conv(64,2) mp D conv(64,2) mp D conv(32,2) mp, LSTM(32); D = conv dropout."""
    x = conv_pool_stages(
        x,
        BHATTACHARYA_STAGES,
        batch_norm=batch_norm,
        conv_dropout=conv_dropout,
        dropout_after_last_stage=False,
    )
    return lstm_stage(x, LSTM_UNITS)
