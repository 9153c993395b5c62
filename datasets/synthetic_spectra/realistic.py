"""The realistic options in NumPy: Lorentzian kernels, coupled variations, backgrounds, noise, mixtures.

Everything works on blocks of spectra at once (no loop over points). The random numbers of every
option come from a stream of its own, keyed by the config's seed, the split and a block (a class of a
single-label config, :data:`MIXTURE_BLOCK` rows of a mixture config), see :func:`streams`. The
published stream (``default_rng(seed)``) is never touched, and switching one option on or off never
changes the draws of another. Formulas (``t = index / (datapoints - 1)`` runs from 0 to 1):

* Lorentzian peak of width sigma: ``1 / (1 + (x / gamma)²)`` with ``gamma = FWHM / 2``, where
  ``FWHM = 2 sqrt(2 ln 2) sigma`` is the FWHM of the Gaussian of the same sigma; cut at ``truncate``
  FWHMs and normalised to sum 1 (so a peak's height is its area, as for the Gaussian);
* pseudo-Voigt: ``eta * Lorentzian + (1 - eta) * Gaussian``, both of that FWHM;
* shift: position ``p -> p + s`` (``s`` a whole number of points, the same for every peak);
* height offset: heights below the spectrum's highest ``H`` become ``max(h + offset * H, 0)``;
* strain: position ``p -> round(p * (1 + strain))``; broadening: width at ``p`` is
  ``sigma * (1 + broadening * p / (datapoints - 1))``;
* backgrounds (in units of the spectrum's highest peak value): polynomial
  ``a * sum_k c_k C(d, k) t^k (1 - t)^(d - k)`` with ``c_k`` uniform in [0, 1]; exponential
  ``a * exp(-t / decay)``; humps ``sum_j a_j exp(-(t - center_j)² / (2 width_j²))``;
* noise on the noiseless spectrum ``s``: Poisson ``Poisson(s * k) / k`` with
  ``k = counts / max(s)``, then Gaussian of standard deviation ``max(s) / snr``;
* mixture fractions: ``min_fraction + (1 - n * min_fraction) * Dirichlet(1, …, 1)`` over ``n`` classes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from synthetic_spectra.config import SPLITS, canonical_split
from synthetic_spectra.options import LORENTZIAN_TRUNCATE, Background, Coupling, Mixture, Noise, PeakShape

#: FWHM of a Gaussian of width sigma, in sigmas: every peak shape of width sigma has this FWHM.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: First key of the streams of a single-label config's blocks (one block per class).
CLASS_STREAM = 1
#: First key of the streams of a mixture config's blocks (of MIXTURE_BLOCK spectra each).
MIXTURE_STREAM = 2
#: Mixture spectra drawn and rendered together (part of the definition of a mixture dataset).
MIXTURE_BLOCK = 128
#: First key of the streams of training-time augmentation (one block per class and epoch).
AUGMENT_STREAM = 3


class Streams(NamedTuple):
    """One random generator per option (and part of an option) for one block of spectra."""

    shape: np.random.Generator
    coupling: np.random.Generator
    polynomial: np.random.Generator
    exponential: np.random.Generator
    humps: np.random.Generator
    poisson: np.random.Generator
    gaussian: np.random.Generator
    composition: np.random.Generator
    variation: np.random.Generator


def streams(seed: int, kind: int, split: str, block: int, epoch: int | None = None) -> Streams:
    """The generators of one block of ``split`` (of one ``epoch`` for :data:`AUGMENT_STREAM`).

    Field ``i`` of :class:`Streams` is ``default_rng(SeedSequence(seed, spawn_key=(kind, s, block, i)))``
    with ``s`` the split's index in ``train, validation, test``; with an ``epoch`` the key is
    ``(kind, s, block, epoch, i)``.
    """
    key = (kind, SPLITS.index(canonical_split(split)), block, *(() if epoch is None else (epoch,)))
    return Streams(
        *(
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, option)))
            for option in range(len(Streams._fields))
        )
    )


def _uniform(
    rng: np.random.Generator, bounds: tuple[float, float], size: int | tuple[int, ...]
) -> np.ndarray:
    """Uniform draws in ``bounds = (low, high)`` (the value itself when ``low == high``)."""
    return rng.uniform(bounds[0], bounds[1], size)


# ---------------------------------------------------------------------------------------- peak shape
def lorentzian_kernels(sigmas: np.ndarray, truncate: float = LORENTZIAN_TRUNCATE) -> np.ndarray:
    """One-sided normalised truncated Lorentzian kernels of the Gaussians' FWHM, one row per sigma.

    Column ``j`` is the weight at offsets ``+j`` and ``-j``: ``1 / (1 + (j / gamma)²)`` with
    ``gamma = FWHM / 2 = sqrt(2 ln 2) sigma``, zero beyond ``int(truncate * FWHM + 0.5)`` points,
    divided by the sum over the whole kernel. Returns float64 ``[n, r + 1]`` for the largest radius ``r``.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    fwhm = FWHM_PER_SIGMA * sigmas
    radii = (truncate * fwhm + 0.5).astype(np.int64)
    offsets = np.arange(int(radii.max(initial=0)) + 1)
    weights = np.multiply.outer(2.0 / fwhm, offsets)  # j / gamma
    weights = 1.0 / (1.0 + weights * weights)
    weights[offsets > radii[:, None]] = 0.0
    weights /= (2.0 * weights.sum(axis=1) - weights[:, 0])[:, None]
    return weights


def draw_eta(shape: PeakShape, rng: np.random.Generator, n: int) -> np.ndarray | None:
    """The Lorentzian fraction of each of ``n`` spectra; None for Gaussian peaks."""
    bounds = shape.eta_range
    return None if bounds is None else _uniform(rng, bounds, n)


# ------------------------------------------------------------------------------------------ coupling
def couple(
    coupling: Coupling,
    rng: np.random.Generator,
    positions: np.ndarray,
    heights: np.ndarray,
    sigmas: np.ndarray,
    datapoints: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the coupled variations to ``[n, k]`` positions (padding < 0) and heights, ``[n]`` widths.

    Order: shift, then strain (both clip to the spectrum, padding kept), broadening, height offset.
    Returns the new positions, ``[n, k]`` heights and widths (``[n]`` as given without broadening,
    per peak ``[n, k]`` with it). The stream's draws are fixed
    whichever variations are on: ``2 n`` uniforms (strain, broadening), then ``2 n`` (shift, offset).
    """
    n = sigmas.shape[0]
    unit = rng.random((2, n))  # strain, broadening: the same draws whichever is on
    common = rng.random((2, n))  # shift, height offset: drawn after, so older configs keep their draws
    live = positions >= 0
    if coupling.shift is not None:
        low, high = coupling.shift
        moves = low + np.floor(common[0] * (high - low + 1)).astype(np.int64)
        moved = np.clip(positions + moves[:, None], 0, datapoints - 1)
        positions = np.where(live, moved, positions)
    if coupling.strain is not None:
        low, high = coupling.strain
        factor = 1.0 + low + (high - low) * unit[0]
        strained = np.clip(np.rint(positions * factor[:, None]), 0, datapoints - 1).astype(np.int64)
        positions = np.where(live, strained, positions)
    if coupling.broadening is not None:
        low, high = coupling.broadening
        gradient = low + (high - low) * unit[1]
        along = np.where(live, positions, 0) / max(datapoints - 1, 1)
        sigmas = sigmas[:, None] * (1.0 + gradient[:, None] * along)
    if coupling.height_offset is not None:
        low, high = coupling.height_offset
        highest = heights.max(axis=1, keepdims=True)
        offset = (low + (high - low) * common[1])[:, None] * highest
        heights = np.where(live & (heights < highest), np.maximum(heights + offset, 0.0), heights)
    return positions, heights, sigmas


# ---------------------------------------------------------------------------------------- background
def _axis(datapoints: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, datapoints)


def polynomial_background(
    degree: int, amplitude: tuple[float, float], rng: np.random.Generator, n: int, datapoints: int
) -> np.ndarray:
    """``[n, datapoints]`` random Bernstein polynomials of ``degree``, each in ``[0, a]``."""
    from scipy.special import comb  # SciPy only here: `import synthetic_spectra` stays light

    t = _axis(datapoints)
    k = np.arange(degree + 1)[:, None]
    basis = comb(degree, k) * t**k * (1.0 - t) ** (degree - k)  # [degree + 1, datapoints]
    coefficients = rng.random((n, degree + 1)) * _uniform(rng, amplitude, n)[:, None]
    total = np.zeros((n, datapoints))
    for term in range(degree + 1):  # faster than a BLAS product with this short inner dimension
        total += coefficients[:, term, None] * basis[term]
    return total


def exponential_background(
    amplitude: tuple[float, float],
    decay: tuple[float, float],
    rng: np.random.Generator,
    n: int,
    datapoints: int,
) -> np.ndarray:
    """``[n, datapoints]`` decays ``a * exp(-t / decay)``."""
    scale, length = _uniform(rng, amplitude, n), _uniform(rng, decay, n)
    return scale[:, None] * np.exp(-_axis(datapoints) / length[:, None])


def hump_background(
    count: tuple[int, int],
    amplitude: tuple[float, float],
    center: tuple[float, float],
    width: tuple[float, float],
    rng: np.random.Generator,
    n: int,
    datapoints: int,
) -> np.ndarray:
    """``[n, datapoints]`` sums of ``count`` broad Gaussian humps."""
    most = count[1]
    counts = rng.integers(count[0], most, n, endpoint=True)
    heights = _uniform(rng, amplitude, (n, most)) * (np.arange(most) < counts[:, None])
    centres, widths = _uniform(rng, center, (n, most)), _uniform(rng, width, (n, most))
    t = _axis(datapoints)
    total = np.zeros((n, datapoints))
    for j in range(most):  # a handful of humps; each is vectorised over spectra and points
        total += heights[:, j, None] * np.exp(-0.5 * ((t - centres[:, j, None]) / widths[:, j, None]) ** 2)
    return total


def background(
    settings: Background, rngs: Streams, peak_maxima: np.ndarray, datapoints: int
) -> np.ndarray | None:
    """The ``[n, datapoints]`` background of spectra whose highest peaks are ``peak_maxima``; None if off."""
    n = peak_maxima.shape[0]
    parts = []
    if settings.polynomial is not None:
        poly = settings.polynomial
        parts.append(polynomial_background(poly.degree, poly.amplitude, rngs.polynomial, n, datapoints))
    if settings.exponential is not None:
        exp = settings.exponential
        parts.append(exponential_background(exp.amplitude, exp.decay, rngs.exponential, n, datapoints))
    if settings.humps is not None:
        humps = settings.humps
        parts.append(
            hump_background(
                humps.count, humps.amplitude, humps.center, humps.width, rngs.humps, n, datapoints
            )
        )
    if not parts:
        return None
    return sum(parts[1:], parts[0]) * peak_maxima[:, None]


# --------------------------------------------------------------------------------------------- noise
def add_noise(settings: Noise, rngs: Streams, spectra: np.ndarray) -> None:
    """Add Poisson noise, then Gaussian noise, to ``[n, datapoints]`` non-negative ``spectra`` in place."""
    if settings.counts is None and settings.snr is None:
        return
    n = spectra.shape[0]
    maxima = spectra.max(axis=1)
    safe = np.where(maxima > 0, maxima, 1.0)[:, None]  # an empty spectrum stays empty
    if settings.counts is not None:
        per_unit = _uniform(rngs.poisson, settings.counts, n)[:, None] / safe
        spectra[:] = rngs.poisson.poisson(np.maximum(spectra, 0.0) * per_unit) / per_unit
    if settings.snr is not None:
        std = np.where(maxima > 0, maxima, 0.0) / _uniform(rngs.gaussian, settings.snr, n)
        spectra += rngs.gaussian.standard_normal(spectra.shape) * std[:, None]


# ------------------------------------------------------------------------------------------- mixture
def draw_composition(
    mixture: Mixture, rng: np.random.Generator, n: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Classes and fractions of ``n`` mixture spectra.

    Returns int64 ``classes`` and float64 ``fractions``, both ``[n, components_max]``: each row
    names distinct classes (padded with -1, fraction 0) whose fractions sum to 1.
    """
    low, high = mixture.components
    counts = rng.integers(low, high, n, endpoint=True)
    chosen = np.argsort(rng.random((n, num_classes)), axis=1)[:, :high]  # a random permutation's start
    live = np.arange(high) < counts[:, None]
    weights = rng.standard_exponential((n, high)) * live  # normalised: flat Dirichlet
    free = 1.0 - counts * mixture.min_fraction
    fractions = live * mixture.min_fraction + free[:, None] * weights / weights.sum(axis=1, keepdims=True)
    return np.where(live, chosen, -1), fractions


def multi_hot(classes: np.ndarray, fractions: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, num_classes]`` int64 multi-hot labels and float64 fractions from :func:`draw_composition`."""
    rows, slots = np.nonzero(classes >= 0)
    labels = np.zeros((classes.shape[0], num_classes), dtype=np.int64)
    dense = np.zeros((classes.shape[0], num_classes))
    labels[rows, classes[rows, slots]] = 1
    dense[rows, classes[rows, slots]] = fractions[rows, slots]
    return labels, dense
