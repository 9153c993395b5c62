"""Checks shared by the config schema (:mod:`~synthetic_spectra.config`, :mod:`~synthetic_spectra.options`).

Each check returns the normalised value or raises a one-line ``ValueError`` that starts with the
field's name (``classes[3].peak_heights[1]``, ``noise.snr[1]``) and ends with the bad value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import numpy as np


def fail(field_name: str, expectation: str, value: Any) -> NoReturn:
    """Raise ``ValueError("<field_name>: <expectation>, got <value!r>")``."""
    raise ValueError(f"{field_name}: {expectation}, got {value!r}")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_int(field_name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, checked to be an integer in ``[minimum, maximum]``."""
    if not is_int(value):
        fail(field_name, "must be an integer", value)
    if minimum is not None and value < minimum:
        fail(field_name, f"must be >= {minimum}", value)
    if maximum is not None and value > maximum:
        fail(field_name, f"must be <= {maximum}", value)
    return int(value)


def as_float(
    field_name: str,
    value: Any,
    minimum: float | None = None,
    *,
    positive: bool = False,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite float, checked to be >= ``minimum`` (> 0 when ``positive``), <= ``maximum``."""
    if not (is_int(value) or isinstance(value, (float, np.floating))) or not math.isfinite(value):
        fail(field_name, "must be a finite number", value)
    if positive and value <= 0:
        fail(field_name, "must be > 0", value)
    if minimum is not None and value < minimum:
        fail(field_name, f"must be >= {minimum:g}", value)
    if maximum is not None and value > maximum:
        fail(field_name, f"must be <= {maximum:g}", value)
    return float(value)


def as_sequence(field_name: str, value: Any, *, non_empty: bool = True) -> tuple[Any, ...]:
    """``value`` (a list, tuple or 1-D array, not a string or mapping) as a tuple."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        fail(field_name, "must be a list", value)
    if non_empty and len(value) == 0:
        fail(field_name, "must not be empty", value)
    return tuple(value)


def as_range(field_name: str, value: Any, *, integer: bool = False, **bounds: Any) -> tuple[Any, Any]:
    """A number (a fixed value) or ``[low, high]`` as a ``(low, high)`` tuple with ``low <= high``.

    ``bounds`` (``minimum``, ``maximum``; ``positive`` for floats) apply to both ends; ``integer``
    asks for integers instead of floats.
    """
    check = as_int if integer else as_float
    if is_int(value) or isinstance(value, (float, np.floating, bool, np.bool_)):
        fixed = check(field_name, value, **bounds)
        return fixed, fixed
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2:
        fail(field_name, "must be a number or [low, high]", value)
    pair = tuple(value)
    low = check(f"{field_name}[0]", pair[0], **bounds)
    high = check(f"{field_name}[1]", pair[1], **bounds)
    if high < low:
        fail(f"{field_name}[1]", f"must be >= {field_name}[0] = {low:g}", pair[1])
    return low, high


def check_keys(where: str, mapping: Any, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
    """Reject a non-mapping, unknown keys and missing required keys of ``mapping``."""
    prefix = f"{where}." if where else ""
    if not isinstance(mapping, Mapping):
        fail(where or "config", "must be a mapping of keys to values", mapping)
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            raise ValueError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in mapping:
            raise ValueError(f"{prefix}{key}: missing required key")
