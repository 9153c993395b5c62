"""Validation of integer options and one-line usage errors, shared by the models, the registry, the tuner,
the CLI and the benchmark scripts."""

from __future__ import annotations

import argparse
import numbers
import sys
from collections.abc import Callable
from typing import Any


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def check_int(field: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; booleans and non-integers are refused.

    Raises ``ValueError("<field>: must be an integer >= <minimum>, got <value>")`` (or ``in [min, max]``).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{field}: must be an integer {bound}, got {value!r}")
    return int(value)


def int_argument(minimum: int = 1) -> Callable[[str], int]:
    """An argparse ``type`` for integers ``>= minimum`` (argparse names the option in its message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
