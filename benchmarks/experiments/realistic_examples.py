"""Figure of example spectra for each realistic dataset option (``docs/realistic_options.png``).

Each row shows one training sample of one class (default: ``challenge`` class 7, two main peaks and a
3.5 % minor peak) with one option switched on, over the same sample without options (grey): the
whole spectrum on the left and a zoom on the right. Every spectrum is divided by its maximum, as a
model sees it. The last rows show the ``*_realistic`` options together and a mixture of classes
(``mixture`` with its defaults on the same config).

    .venv/bin/python benchmarks/experiments/realistic_examples.py          # writes docs/realistic_options.png
    .venv/bin/python benchmarks/experiments/realistic_examples.py --config mini --label 3 --zoom 300 500 \
        --output x.png
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
import numpy as np

from synthetic_spectra.config import REALISTIC_OPTIONS, DatasetConfig, get_config
from synthetic_spectra.generator import iter_class_batches, iter_mixture_batches
from synthetic_spectra.options import (
    Background,
    Coupling,
    ExponentialBackground,
    HumpBackground,
    Mixture,
    Noise,
    PeakShape,
    PolynomialBackground,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "realistic_options.png"

#: (title, config changes) of each row but the mixture's.
PANELS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Lorentzian peaks (same FWHM)", {"peak_shape": PeakShape(kind="lorentzian")}),
    ("pseudo-Voigt peaks, eta = 0.5", {"peak_shape": PeakShape(kind="pseudo_voigt", eta=0.5)}),
    ("Gaussian noise, SNR = 30", {"noise": Noise(snr=30.0)}),
    ("Poisson noise, 100 counts at the maximum", {"noise": Noise(counts=100.0)}),
    (
        "polynomial background (cubic, amplitude 0.5)",
        {"background": Background(polynomial=PolynomialBackground(degree=3, amplitude=0.5))},
    ),
    (
        "exponential background (amplitude 0.6, decay 0.15)",
        {"background": Background(exponential=ExponentialBackground(amplitude=0.6, decay=0.15))},
    ),
    (
        "two amorphous humps (amplitude 0.2-0.4)",
        {"background": Background(humps=HumpBackground(count=2, amplitude=(0.2, 0.4), width=(0.05, 0.1)))},
    ),
    ("strain +2 % (positions x 1.02)", {"coupling": Coupling(strain=0.02)}),
    ("correlated broadening 3 (widths x 1 + 3 t)", {"coupling": Coupling(broadening=3.0)}),
    ("all *_realistic options", dict(REALISTIC_OPTIONS)),
)


def class_sample(config: DatasetConfig, label: int, sample: int) -> np.ndarray:
    """Training sample ``sample`` of class ``label``, generating only the classes up to it."""
    for _, spectra, labels in iter_class_batches(config, "train"):
        if labels[0] == label:
            return spectra[sample]
    raise ValueError(f"label: must be below {config.num_classes}, got {label}")


def mixture_sample(config: DatasetConfig, label: int) -> tuple[np.ndarray, str]:
    """The first training mixture of ``config`` (with a mixture section) holding class ``label``."""
    for _, part in iter_mixture_batches(config, "train"):
        rows = np.flatnonzero(part.labels[:, label])
        if rows.size:
            classes = np.flatnonzero(part.labels[rows[0]])
            text = " + ".join(f"{part.fractions[rows[0], c]:.2f} x class {c}" for c in classes)
            return part.spectra[rows[0]], text
    raise ValueError(f"label: no training mixture holds class {label}")


def draw_row(
    axes: Sequence[Any], base: np.ndarray | None, spectrum: np.ndarray, title: str, zoom: slice
) -> None:
    """Plot ``spectrum`` over ``base`` (both max-normalised): whole on the left, ``zoom`` on the right."""
    points = np.arange(spectrum.size)
    for ax, part in zip(axes, (slice(None), zoom), strict=True):
        if base is not None:
            ax.plot(points[part], (base / base.max())[part], color="0.7", lw=1.0)
        ax.plot(points[part], (spectrum / spectrum.max())[part], color="C0", lw=0.8)
        ax.tick_params(labelsize=7)
    axes[0].set_title(title, fontsize=9, loc="left")


def main(argv: Sequence[str] | None = None) -> int:
    """Render the figure; return the exit status."""
    from zoo.checks import OneLineParser  # zoo is imported late here

    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="challenge", help="base config (default challenge)")
    parser.add_argument("--label", type=int, default=7, help="class shown (default 7)")
    parser.add_argument("--sample", type=int, default=0, help="training sample of that class (default 0)")
    parser.add_argument("--zoom", type=int, nargs=2, default=(2040, 2320), metavar=("FROM", "TO"))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="PNG file")
    args = parser.parse_args(argv)

    base_config = get_config(args.config)
    zoom = slice(*args.zoom)
    base = class_sample(base_config, args.label, args.sample)
    mixture_config = dataclasses.replace(base_config, name=f"{base_config.name}_mixture", mixture=Mixture())
    mixture, composition = mixture_sample(mixture_config, args.label)
    rows = len(PANELS) + 1
    figure, axes = plt.subplots(rows, 2, figsize=(12, 1.55 * rows), gridspec_kw={"width_ratios": (3, 1)})
    for row, (title, changes) in zip(axes[:-1], PANELS, strict=True):
        config = dataclasses.replace(base_config, name=f"{base_config.name}_example", **changes)
        draw_row(row, base, class_sample(config, args.label, args.sample), title, zoom)
    draw_row(axes[-1], None, mixture, f"mixture of 2-3 classes: {composition}", zoom)
    axes[-1][0].set_xlabel("point")
    figure.suptitle(
        f"Realistic options on {base_config.name} class {args.label}, training sample {args.sample} "
        "(grey: without options; every spectrum divided by its maximum)",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=90)
    plt.close(figure)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
