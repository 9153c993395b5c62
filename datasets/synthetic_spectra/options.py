"""Realistic dataset options: the optional sections of a config (dataset.md §6 "room to go beyond").

Every section is a frozen dataclass, validated on creation, and off by default, so a config without
them renders exactly the published data. In a config file (all keys optional)::

    peak_shape:                   # default gaussian
      kind: pseudo_voigt          # gaussian | lorentzian | pseudo_voigt
      eta: [0.2, 0.8]             # pseudo_voigt only: Lorentzian fraction, a number or [low, high]
      truncate: 20                # lorentzian/pseudo_voigt: Lorentzian tails end at 20 FWHM from the centre
    noise:                        # default none
      snr: [50, 200]              # additive Gaussian noise, std = max(noiseless spectrum) / snr
      counts: [1000, 10000]       # Poisson noise: the noiseless maximum is this many counts
    background:                   # default none; amplitudes are fractions of the spectrum's highest peak
      polynomial: {degree: 2, amplitude: [0.0, 0.2]}
      exponential: {amplitude: [0.1, 0.5], decay: [0.05, 0.3]}
      humps: {count: [1, 2], amplitude: [0.05, 0.3], center: [0.1, 0.9], width: [0.03, 0.15]}
    coupling:                     # default none
      strain: [-0.01, 0.01]       # all peak positions of a spectrum scale by 1 + strain
      broadening: [0.0, 1.0]      # widths grow along the axis: sigma * (1 + b * position / (datapoints - 1))
      shift: [-20, 20]            # all peaks of a spectrum move together by this many points (integers)
      height_offset: [-0.03, 0.03]  # all but the highest peaks change height together (units of the highest)
    mixture:                      # default none: spectra of 2-3 classes with random fractions
      {n_train: 2700, n_val: 540, n_test: 540, components: [2, 3], min_fraction: 0.1}

A range ``[low, high]`` is drawn uniformly once per spectrum (a single number fixes the value).
Positions along the spectrum (``center``, ``width``, ``decay``) are fractions of its length. See
:mod:`synthetic_spectra.realistic` for the exact formulas.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from synthetic_spectra._validation import as_float, as_int, as_range, check_keys, fail

#: Peak shapes: ``eta`` (the Lorentzian fraction) is 0 for gaussian, 1 for lorentzian, drawn for pseudo_voigt.
PEAK_SHAPES: tuple[str, ...] = ("gaussian", "lorentzian", "pseudo_voigt")
#: Default radius of the Lorentzian kernel in FWHMs (the tails beyond hold 1.6 % of the area).
LORENTZIAN_TRUNCATE = 20.0
#: Largest strain magnitude (positions scale by 1 + strain).
MAX_STRAIN = 0.5

Range = tuple[float, float]
IntRange = tuple[int, int]
SectionT = TypeVar("SectionT", bound="Section")


class Section:
    """File conversion shared by the option sections (frozen dataclasses validated in ``__post_init__``)."""

    #: The section's place in a config file, the prefix of its error messages.
    WHERE: ClassVar[str]
    #: Fields that are sections themselves, by name.
    SUBSECTIONS: ClassVar[Mapping[str, type[Section]]] = {}

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @property
    def is_default(self) -> bool:
        """Whether every field keeps its default (for the top-level sections: the option is off)."""
        return self == type(self)()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form without the fields that are unset (None); see :meth:`from_dict`."""
        result: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, Section):
                result[field.name] = value.to_dict()
            elif value is not None:
                result[field.name] = list(value) if isinstance(value, tuple) else value
        return result

    @classmethod
    def from_dict(cls: type[SectionT], data: Mapping[str, Any]) -> SectionT:
        """Build from the section's mapping in a config file (every key optional)."""
        check_keys(cls.WHERE, data, [field.name for field in dataclasses.fields(cls)])  # type: ignore[arg-type]
        values = dict(data)
        for key, kind in cls.SUBSECTIONS.items():
            if values.get(key) is not None:
                values[key] = kind.from_dict(values[key])
        return cls(**values)

    def _range(self, name: str, **bounds: Any) -> None:
        """Normalise the optional range field ``name`` in place (None stays None)."""
        value = getattr(self, name)
        if value is not None:
            self._set(name, as_range(f"{self.WHERE}.{name}", value, **bounds))

    def _subsection(self, name: str, kind: type[Section]) -> None:
        value = getattr(self, name)
        if value is not None and not isinstance(value, kind):
            fail(f"{self.WHERE}.{name}", f"must be a {kind.__name__}", value)


# ---------------------------------------------------------------------------------------- peak shape
@dataclass(frozen=True)
class PeakShape(Section):
    """The line shape of every peak; all shapes have the FWHM of the Gaussian of the same sigma.

    ``kind``: ``gaussian`` (the study's), ``lorentzian`` or ``pseudo_voigt``, the mixture
    ``eta * L + (1 - eta) * G`` with ``eta`` fixed or drawn per spectrum from ``[low, high]``.
    The Gaussian part ends at 4 sigma as in the study, the Lorentzian part at ``truncate`` FWHMs.
    Every kernel sums to 1, so a peak's height is its area, as in the study.
    """

    WHERE: ClassVar[str] = "peak_shape"

    kind: str = "gaussian"
    eta: Range | None = None
    truncate: float = LORENTZIAN_TRUNCATE

    def __post_init__(self) -> None:
        if self.kind not in PEAK_SHAPES:
            fail("peak_shape.kind", f"must be one of {', '.join(PEAK_SHAPES)}", self.kind)
        if (self.kind == "pseudo_voigt") != (self.eta is not None):
            expected = "required for pseudo_voigt" if self.eta is None else "only for kind pseudo_voigt"
            fail("peak_shape.eta", f"{expected} (a number or [low, high] in [0, 1])", self.eta)
        self._range("eta", minimum=0.0, maximum=1.0)
        self._set("truncate", as_float("peak_shape.truncate", self.truncate, positive=True))
        if self.kind == "gaussian" and self.truncate != LORENTZIAN_TRUNCATE:
            fail("peak_shape.truncate", "only for lorentzian and pseudo_voigt peaks", self.truncate)

    @property
    def eta_range(self) -> Range | None:
        """The Lorentzian fraction's range; None for Gaussian peaks."""
        return {"gaussian": None, "lorentzian": (1.0, 1.0)}.get(self.kind, self.eta)


# --------------------------------------------------------------------------------------------- noise
@dataclass(frozen=True)
class Noise(Section):
    """Noise added last, per spectrum: Poisson counting noise, then additive Gaussian noise.

    ``counts``: the noiseless spectrum ``s`` becomes ``Poisson(s * c / max(s)) * max(s) / c`` with
    ``c`` counts at its maximum. ``snr``: Gaussian noise of standard deviation ``max(s) / snr``.
    """

    WHERE: ClassVar[str] = "noise"

    snr: Range | None = None
    counts: Range | None = None

    def __post_init__(self) -> None:
        self._range("snr", positive=True)
        self._range("counts", positive=True)


# ---------------------------------------------------------------------------------------- background
@dataclass(frozen=True)
class PolynomialBackground(Section):
    """A random polynomial of ``degree``: Bernstein form, coefficients in [0, amplitude], so values too."""

    WHERE: ClassVar[str] = "background.polynomial"

    degree: int = 2
    amplitude: Range = (0.0, 0.2)

    def __post_init__(self) -> None:
        self._set("degree", as_int("background.polynomial.degree", self.degree, 0, 20))
        self._range("amplitude", minimum=0.0)


@dataclass(frozen=True)
class ExponentialBackground(Section):
    """``amplitude * exp(-t / decay)`` along the spectrum (``t`` from 0 to 1)."""

    WHERE: ClassVar[str] = "background.exponential"

    amplitude: Range = (0.1, 0.5)
    decay: Range = (0.05, 0.3)

    def __post_init__(self) -> None:
        self._range("amplitude", minimum=0.0)
        self._range("decay", positive=True)


@dataclass(frozen=True)
class HumpBackground(Section):
    """``count`` broad Gaussian humps (an amorphous halo): each ``a * exp(-(t - center)² / 2 width²)``."""

    WHERE: ClassVar[str] = "background.humps"

    count: IntRange = (1, 2)
    amplitude: Range = (0.05, 0.3)
    center: Range = (0.1, 0.9)
    width: Range = (0.03, 0.15)

    def __post_init__(self) -> None:
        self._range("count", integer=True, minimum=1, maximum=20)
        self._range("amplitude", minimum=0.0)
        self._range("center", minimum=0.0, maximum=1.0)
        self._range("width", positive=True)


@dataclass(frozen=True)
class Background(Section):
    """A smooth background added under the peaks; amplitudes are fractions of the spectrum's highest peak."""

    WHERE: ClassVar[str] = "background"
    SUBSECTIONS: ClassVar[Mapping[str, type[Section]]] = {
        "polynomial": PolynomialBackground,
        "exponential": ExponentialBackground,
        "humps": HumpBackground,
    }

    polynomial: PolynomialBackground | None = None
    exponential: ExponentialBackground | None = None
    humps: HumpBackground | None = None

    def __post_init__(self) -> None:
        for name, kind in self.SUBSECTIONS.items():
            self._subsection(name, kind)


# ------------------------------------------------------------------------------------------ coupling
@dataclass(frozen=True)
class Coupling(Section):
    """Variations shared by all peaks of a spectrum, on top of the independent ones.

    ``strain``: every (already shifted) position ``p`` becomes ``round(p * (1 + strain))``.
    ``broadening``: the peak at ``p`` gets width ``sigma * (1 + broadening * p / (datapoints - 1))``,
    so widths grow together along the axis (as with the angle in diffraction).
    ``shift``: every position moves by the same whole number of points, drawn uniformly from
    ``[low, high]`` (both included), then is clipped to the spectrum (as the test design's shifts).
    ``height_offset``: every peak lower than the spectrum's highest changes its height by the same
    amount, ``offset * highest`` (heights stay >= 0), as the test design's common height changes.
    """

    WHERE: ClassVar[str] = "coupling"

    strain: Range | None = None
    broadening: Range | None = None
    shift: IntRange | None = None
    height_offset: Range | None = None

    def __post_init__(self) -> None:
        self._range("strain", minimum=-MAX_STRAIN, maximum=MAX_STRAIN)
        self._range("broadening", minimum=0.0)
        self._range("shift", integer=True)
        self._range("height_offset", minimum=-1.0, maximum=1.0)


# ------------------------------------------------------------------------------------------- mixture
@dataclass(frozen=True)
class Mixture(Section):
    """Multi-phase spectra: each is the sum of ``fraction * spectrum`` of 2-3 (``components``) classes.

    Each spectrum takes a number of distinct classes uniformly from ``components``, and fractions
    (summing to 1, each at least ``min_fraction``) from a flat Dirichlet distribution; every
    component varies like a training sample. Sizes are spectra per split, not per class.
    """

    WHERE: ClassVar[str] = "mixture"

    n_train: int = 1000
    n_val: int = 200
    n_test: int = 200
    components: IntRange = (2, 3)
    min_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            self._set(name, as_int(f"mixture.{name}", getattr(self, name), 1))
        self._range("components", integer=True, minimum=1)
        largest = 1.0 / self.components[1]  # every component takes at least min_fraction
        self._set("min_fraction", as_float("mixture.min_fraction", self.min_fraction, 0.0, maximum=largest))

    def split_size(self, split: str) -> int:
        """Spectra in a (canonical) split."""
        return {"train": self.n_train, "validation": self.n_val, "test": self.n_test}[split]


#: The sections a config may hold, by key (the mixture may also be absent: None).
OPTION_SECTIONS: Mapping[str, type[Section]] = {
    "peak_shape": PeakShape,
    "noise": Noise,
    "background": Background,
    "coupling": Coupling,
    "mixture": Mixture,
}


__all__ = [
    "LORENTZIAN_TRUNCATE",
    "OPTION_SECTIONS",
    "PEAK_SHAPES",
    "Background",
    "Coupling",
    "ExponentialBackground",
    "HumpBackground",
    "Mixture",
    "Noise",
    "PeakShape",
    "PolynomialBackground",
    "Section",
]
