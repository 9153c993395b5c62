"""Per-spectrum max normalisation in NumPy (the study's preprocessing; no TensorFlow needed)."""

from __future__ import annotations

import numpy as np


def normalize_max(spectra: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """Divide each spectrum (last axis) by its own maximum.

    Raises:
        ValueError: a spectrum has no positive maximum (all zero, or all negative), which would
            otherwise become NaN or flip sign; the message names the first bad row.
    """
    array = np.asarray(spectra, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] == 0:
        raise ValueError(f"spectra: expected at least one value per spectrum, got shape {array.shape}")
    maxima = array.max(axis=-1, keepdims=True)
    bad = np.flatnonzero(~(maxima > 0))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"spectra: row {row} has maximum {float(maxima.reshape(-1)[row])!r}; "
            "max normalisation needs a positive maximum (an all-zero spectrum is not a valid input)"
        )
    return (array / maxima).astype(dtype)
