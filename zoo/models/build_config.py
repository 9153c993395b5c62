"""The fully resolved arguments of one build: what :func:`zoo.models.registry.resolve_config` returns and
every architecture's builder (through :func:`zoo.models.blocks.spectrum_classifier`) receives.

Its own module so that the registry and the building blocks both import it without importing each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Fully resolved, validated arguments of one build (what the builders receive)."""

    num_classes: int
    input_length: int
    fc_activation: str | None
    fc_dropout: float
    conv_dropout: float
    batch_norm: bool
    fc_widths: tuple[int, ...]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def as_build_args(self) -> dict[str, Any]:
        """Keyword arguments that make :func:`build` rebuild exactly this model (JSON-serialisable)."""
        return {
            "num_classes": self.num_classes,
            "input_length": self.input_length,
            "fc_activation": self.fc_activation,
            "fc_dropout": self.fc_dropout,
            "conv_dropout": self.conv_dropout,
            "batch_norm": self.batch_norm,
            "fc_widths": list(self.fc_widths),
            **self.options,
        }
