"""The search space: which toggles are searched, over which choices or ranges (:class:`SearchSpace`)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import keras

from zoo.models.compile import LEARNING_RATE

#: FC activations searched by default: the study's two plus a few common Keras ones.
DEFAULT_ACTIVATIONS: tuple[str, ...] = ("linear", "relu", "elu", "gelu", "swish", "tanh")


@dataclasses.dataclass(frozen=True)
class Choice:
    """A categorical dimension: one of ``values`` (a single value fixes the dimension)."""

    values: tuple[Any, ...]

    @property
    def fixed(self) -> bool:
        """True when the dimension has a single value."""
        return len(self.values) == 1

    def to_json(self) -> list[Any]:
        """JSON form: the list of values (tuples become lists)."""
        return [list(value) if isinstance(value, tuple) else value for value in self.values]


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric dimension ``[low, high]``, optionally stepped or log-sampled (``low == high`` fixes it)."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    @property
    def fixed(self) -> bool:
        """True when the range holds a single value."""
        return self.low == self.high

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"low", "high", "step", "log"}``."""
        return dataclasses.asdict(self)


#: Range dimensions -> (smallest allowed low, bound high must stay below; None: no upper bound).
_RANGE_BOUNDS: Mapping[str, tuple[float, float | None]] = {
    "fc_dropout": (0.0, 1.0),
    "conv_dropout": (0.0, 1.0),
    "learning_rate": (math.ulp(0.0), None),
}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The dimensions searched by :class:`SpectraHyperModel`; each can be narrowed or fixed.

    Each field accepts its canonical type or a shorthand, normalised on construction:

    * ``fc_activation``, ``batch_norm``: a :class:`Choice`, a sequence of values, or one value (fixed).
    * ``fc_dropout``, ``conv_dropout``, ``learning_rate``: a :class:`Range`, ``(low, high)`` or
      ``(low, high, step)``, or one number (fixed). The learning rate is sampled on a log scale.
    * ``fc_widths``: ``None`` (the base model's published widths), a :class:`Choice` of width tuples or a
      sequence of width tuples, e.g. ``[(3100, 1200), (2000, 500)]`` (one tuple fixes it).

    Raises:
        ValueError: one line naming the dimension, for an empty choice or range, a value out of bounds or
            of the wrong type.
    """

    fc_activation: Choice | Sequence[str] | str = DEFAULT_ACTIVATIONS
    fc_dropout: Range | Sequence[float] | float = (0.0, 0.8, 0.1)
    conv_dropout: Range | Sequence[float] | float = (0.0, 0.5, 0.1)
    batch_norm: Choice | Sequence[bool] | bool = (False, True)
    fc_widths: Choice | Sequence[Sequence[int]] | None = None
    learning_rate: Range | Sequence[float] | float = LEARNING_RATE

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "fc_activation", _choice("fc_activation", self.fc_activation, _activation))
        set_field(self, "batch_norm", _choice("batch_norm", self.batch_norm, _boolean))
        if self.fc_widths is not None:
            set_field(self, "fc_widths", _choice("fc_widths", self.fc_widths, _width_tuple, scalar=False))
        for name in _RANGE_BOUNDS:
            set_field(self, name, _range(name, getattr(self, name), log=name == "learning_rate"))

    def narrowed(self, **changes: Any) -> SearchSpace:
        """A copy with some dimensions replaced (same shorthands as the constructor)."""
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"search space: unknown dimension {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """JSON form of every dimension (``fc_widths`` is ``null`` for the base model's widths)."""
        return {
            field.name: None if getattr(self, field.name) is None else getattr(self, field.name).to_json()
            for field in dataclasses.fields(self)
        }


def _choice(name: str, value: Any, check: Any, *, scalar: bool = True) -> Choice:
    if isinstance(value, Choice):
        values = value.values
    elif scalar and (isinstance(value, str | bool | numbers.Number) or value is None):
        values = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        values = tuple(value)
    else:
        raise ValueError(f"{name}: expected a value or a list of values, got {value!r}")
    if not values:
        raise ValueError(f"{name}: empty choice (give at least one value)")
    values = tuple(check(name, item) for item in values)
    duplicates = sorted({repr(item) for item in values if values.count(item) > 1})
    if duplicates:
        raise ValueError(f"{name}: value {duplicates[0]} given twice")
    return Choice(values)


def _activation(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a Keras activation name, got {value!r}")
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(f"{name}: unknown Keras activation {value!r}") from None
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


def _width_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name}: expected a non-empty list of layer widths, got {value!r}")
    if not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in value):
        raise ValueError(f"{name}: layer widths must be positive integers, got {value!r}")
    return tuple(int(w) for w in value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _range(name: str, value: Any, *, log: bool) -> Range:
    if isinstance(value, Range):
        low, high, step, log = value.low, value.high, value.step, value.log
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        low = high = value
        step = None
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) in (2, 3):
        low, high, step = (*value, None) if len(value) == 2 else value
    else:
        raise ValueError(f"{name}: expected a number, (low, high) or (low, high, step), got {value!r}")
    low, high = _number(name, low), _number(name, high)
    if high < low:
        raise ValueError(f"{name}: empty range {low:g}..{high:g} (low > high)")
    minimum, bound = _RANGE_BOUNDS[name]
    if low < minimum or (bound is not None and high >= bound):
        allowed = f"[{minimum:g}, {bound:g})" if bound is not None else "> 0"
        raise ValueError(f"{name}: range {low:g}..{high:g} is outside {allowed}")
    if step is not None:
        step = _number(name, step)
        if step <= 0 or (log and step <= 1):
            raise ValueError(f"{name}: step must be {'> 1 (a factor)' if log else 'positive'}, got {step:g}")
    return Range(low, high, step, log)


def tidy(value: Any) -> Any:
    """Hyperparameter values without the binary noise of stepped floats (``0.30000000000000004``)."""
    return round(value, 12) if isinstance(value, float) else value
