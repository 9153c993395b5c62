"""The shared integer validators."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from zoo.checks import check_int, int_argument


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "message"),
    [
        (0, 1, None, "n: must be an integer >= 1, got 0"),
        (True, 0, None, "n: must be an integer >= 0, got True"),
        (2.0, 1, None, "n: must be an integer >= 1, got 2.0"),
        ("3", 1, None, "n: must be an integer >= 1, got '3'"),
        (7, 1, 6, "n: must be an integer in [1, 6], got 7"),
    ],
)
def test_check_int_refuses_with_the_field_and_bound(value, minimum, maximum, message):
    with pytest.raises(ValueError) as error:
        check_int("n", value, minimum, maximum)
    assert str(error.value) == message


def test_check_int_accepts_numpy_integers_and_returns_int():
    value = check_int("n", np.int64(6), 1, 6)
    assert value == 6 and type(value) is int
    assert check_int("seed", 0, minimum=0) == 0


def test_int_argument_parses_and_names_the_bound():
    assert int_argument(0)("0") == 0
    for text, message in (
        ("-1", "expected an integer >= 0, got -1"),
        ("x", "expected an integer >= 0, got 'x'"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            int_argument(0)(text)
