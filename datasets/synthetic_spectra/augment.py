"""Training-time augmentation: the realistic options, drawn afresh for every epoch of the training split.

An :class:`Augmentation` holds the sections of :mod:`synthetic_spectra.options` that change how a
spectrum looks (``peak_shape``, ``noise``, ``background``, ``coupling``; not ``mixture``). Each epoch
re-renders the training samples — the positions, heights and widths of the published draw — with
these options, drawn from streams keyed by ``(augment seed, epoch, split, class)``
(:func:`synthetic_spectra.generator.generate_augmented`), so an epoch is a function of the seed and
its number. The augmentation's sections replace the config's own section by section; those it leaves
off keep the config's (off for the published configs).

Presets (:data:`PRESETS`, ranges drawn uniformly per spectrum and epoch):

* ``noise``: Gaussian noise of SNR 50-500 and Poisson noise of 1,000-50,000 counts at the maximum;
* ``background``: the ``*_realistic`` configs' background (cubic polynomial up to 0.2, exponential
  decay up to 0.3, 1-2 humps of 0.05-0.2, in units of the highest peak);
* ``shape``: pseudo-Voigt peaks, Lorentzian fraction eta 0-1 (the FWHM stays the Gaussian's);
* ``shift``: every peak of a spectrum moves by the same whole number of points in [-30, 30] (the
  test split's L/R patterns move by 30 in ``benchmark`` and ``challenge``);
* ``realistic``: the ``*_realistic`` configs' options (:data:`~synthetic_spectra.config.REALISTIC_OPTIONS`);
* ``all``: ``noise``, ``background``, ``shape`` and ``shift`` together.

:func:`parse_augmentation` reads a preset name, an inline JSON object of sections (as in a config
file, e.g. ``{"noise": {"snr": [20, 100]}}``) or a ``.json`` file holding one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from synthetic_spectra._validation import check_keys, fail
from synthetic_spectra.config import REALISTIC_OPTIONS
from synthetic_spectra.options import Background, Coupling, Noise, PeakShape, Section


@dataclass(frozen=True)
class Augmentation:
    """Realistic options re-drawn every epoch; every section off by default (then nothing changes)."""

    #: The sections an augmentation may hold, by key.
    SECTIONS: ClassVar[Mapping[str, type[Section]]] = {
        "peak_shape": PeakShape,
        "noise": Noise,
        "background": Background,
        "coupling": Coupling,
    }

    peak_shape: PeakShape = dataclasses.field(default_factory=PeakShape)
    noise: Noise = dataclasses.field(default_factory=Noise)
    background: Background = dataclasses.field(default_factory=Background)
    coupling: Coupling = dataclasses.field(default_factory=Coupling)

    def __post_init__(self) -> None:
        for key, kind in self.SECTIONS.items():
            if not isinstance(getattr(self, key), kind):
                fail(f"augment.{key}", f"must be a {kind.__name__}", getattr(self, key))

    @property
    def is_default(self) -> bool:
        """Whether every section is off (the augmented render is then the published one)."""
        return not self.sections()

    def sections(self) -> dict[str, Section]:
        """The sections that are on, by key (to replace a config's own)."""
        return {key: getattr(self, key) for key in self.SECTIONS if not getattr(self, key).is_default}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the sections that are on; :meth:`from_dict` reads it back."""
        return {key: section.to_dict() for key, section in self.sections().items()}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal augmentations give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def name(self) -> str:
        """A short folder-safe name: the preset's, else ``custom-`` and 8 hex digits of the JSON's SHA-256."""
        for preset, augmentation in PRESETS.items():
            if augmentation == self:
                return preset
        return "custom-" + hashlib.sha256(self.to_json().encode()).hexdigest()[:8]

    @classmethod
    def from_dict(cls, data: Any) -> Augmentation:
        """Build from a mapping of section keys to sections (as in a config file; null leaves one off)."""
        check_keys("augment", data, cls.SECTIONS)
        sections = {}
        for key, value in data.items():
            if value is not None:
                try:
                    sections[key] = cls.SECTIONS[key].from_dict(value)
                except ValueError as exc:  # the sections' messages start with their own key
                    raise ValueError(f"augment.{exc}") from None
        return cls(**sections)


_SHAPE = PeakShape(kind="pseudo_voigt", eta=(0.0, 1.0))
_NOISE = Noise(snr=(50.0, 500.0), counts=(1000.0, 50000.0))
_SHIFT = Coupling(shift=(-30, 30))

#: The named augmentations ``parse_augmentation`` accepts (see the module's docstring).
PRESETS: Mapping[str, Augmentation] = {
    "noise": Augmentation(noise=_NOISE),
    "background": Augmentation(background=REALISTIC_OPTIONS["background"]),
    "shape": Augmentation(peak_shape=_SHAPE),
    "shift": Augmentation(coupling=_SHIFT),
    "realistic": Augmentation(**REALISTIC_OPTIONS),
    "all": Augmentation(
        peak_shape=_SHAPE, noise=_NOISE, background=REALISTIC_OPTIONS["background"], coupling=_SHIFT
    ),
}


def parse_augmentation(text: str) -> Augmentation:
    """An augmentation from a preset name, an inline JSON object or the path of a ``.json`` file.

    Every problem raises a one-line ``ValueError`` naming the field and the bad value; an
    augmentation with no section on is refused (it would change nothing).
    """
    if not isinstance(text, str):
        fail("augment", "must be a preset name, a JSON object or a .json file", text)
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text]
    if text.startswith("{"):
        return _from_json(text)
    if text.lower().endswith(".json") or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"augment: no such file {text!r}")
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"augment: cannot read {text} ({type(exc).__name__})") from None
        try:
            return _from_json(source)
        except ValueError as exc:
            raise ValueError(f"{text}: {exc}") from None
    fail("augment", f"must be one of {', '.join(PRESETS)}, a JSON object or a .json file", text)


def _from_json(source: str) -> Augmentation:
    """An augmentation from JSON text (a non-empty object of sections)."""
    try:
        data = json.loads(source)
    except ValueError as exc:
        raise ValueError(f"augment: not valid JSON ({str(exc).splitlines()[0]})") from None
    augmentation = Augmentation.from_dict(data)
    if augmentation.is_default:
        fail("augment", f"must switch on at least one of {', '.join(Augmentation.SECTIONS)}", data)
    return augmentation


__all__ = ["PRESETS", "Augmentation", "parse_augmentation"]
