"""CNN6 of Szymanski et al. (2021), X-ray diffraction phase identification (XRD-AutoAnalyzer).

Szymanski, N. J., Bartel, C. J., Zeng, Y., Tu, Q. & Ceder, G. Probabilistic deep learning approach to
automate the interpretation of multi-phase diffraction spectra. Chemistry of Materials 33, 4204-4215 (2021).
doi:10.1021/acs.chemmater.1c01071

Six conv/pool stages of 64 filters with kernels shrinking from 35 to 10, then two ReLU FC layers with heavy
dropout (0.7). The study's ablations ``cnn6_bn`` and ``cnn6_convdo`` are this trunk with ``batch_norm=True``
or ``conv_dropout=0.2``.
"""

from __future__ import annotations

from typing import Any

from zoo.models.blocks import Conv, Stage, conv_pool_stages

CNN6_STAGES: tuple[Stage, ...] = (
    Stage((Conv(64, 35),), pool_size=3, pool_strides=2),
    Stage((Conv(64, 30),), pool_size=3, pool_strides=2),
    Stage((Conv(64, 25),), pool_size=2, pool_strides=2),
    Stage((Conv(64, 20),), pool_size=1, pool_strides=2),
    Stage((Conv(64, 15),), pool_size=1, pool_strides=2),
    Stage((Conv(64, 10),), pool_size=1, pool_strides=2),
)


def trunk(x: Any, *, batch_norm: bool, conv_dropout: float) -> Any:
    """conv(64,35) mp(3,2) conv(64,30) mp(3,2) conv(64,25) mp(2,2) conv(64,k) mp(1,2) for k = 20, 15, 10."""
    return conv_pool_stages(x, CNN6_STAGES, batch_norm=batch_norm, conv_dropout=conv_dropout)
