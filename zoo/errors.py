"""Exceptions whose message is meant for a person (printed as one line, exit status 2)."""

from __future__ import annotations


class UserError(Exception):
    """A bad file, config, argument or model path; the message names what is wrong."""
