"""The report's PNG figures (matplotlib, Agg): test accuracy per model, loss curves, and a confused pair's
spectra beside their classes' references."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.study.failure_modes import ConfusedPair, Tolerances
from zoo.study.runs import Group

if TYPE_CHECKING:
    from matplotlib.figure import Figure


#: File names of the figures the report writes (other files in the figures folder are left alone).
FIGURES_DIR = "figures"
OWN_FIGURE_PATTERNS = ("*_accuracy.png", "*_loss.png", "*_confusion_*_as_*.png")


def own_figures(figures: Path) -> list[Path]:
    """The report's own figures already in ``figures`` (from an earlier report)."""
    return sorted({path for pattern in OWN_FIGURE_PATTERNS for path in figures.glob(pattern)})


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas, independent of pyplot and its backend (imported on first use)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_accuracy(groups: Sequence[Group], path: Path) -> None:
    """Box plot of the test accuracy per model/variant, each seed drawn as a point beside it."""
    figure = new_figure(max(6.0, 0.55 * len(groups) + 2), 4.5)
    axes = figure.add_subplot()
    values = [[100 * r.test_accuracy for r in g.runs] for g in groups]
    axes.boxplot(values, showfliers=False)
    for position, accuracies in enumerate(values, start=1):
        spread = np.linspace(-0.15, 0.15, len(accuracies)) if len(accuracies) > 1 else np.zeros(1)
        axes.plot(position + spread, accuracies, "o", color="tab:blue", alpha=0.6, markersize=4)
    labels = [f"{g.model}\n{g.variant}" for g in groups]
    axes.set_xticks(range(1, len(groups) + 1), labels, rotation=60, fontsize=8)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(
        f"{groups[0].dataset}: test accuracy per model and FC variant (points: seeds)", fontsize=10
    )
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=90)


def plot_losses(groups: Sequence[Group], path: Path) -> None:
    """Training (solid) and validation (dashed) loss per epoch: one panel per model/variant, colour = seed."""
    columns = min(4, len(groups))
    rows = math.ceil(len(groups) / columns)
    figure = new_figure(3.6 * columns, 2.6 * rows)
    for panel, group in enumerate(groups, start=1):
        axes = figure.add_subplot(rows, columns, panel)
        for i, run in enumerate(group.runs):
            for key, style in (("loss", "-"), ("val_loss", "--")):
                curve = run.history.get(key, [])
                label = f"seed {run.seed}" if key == "loss" else None
                axes.plot(
                    range(1, len(curve) + 1), curve, style, color=f"C{i % 10}", linewidth=1, label=label
                )
        values = [v for r in group.runs for key in ("loss", "val_loss") for v in r.history.get(key, [])]
        if values and min(values) > 0:
            axes.set_yscale("log")
            axes.yaxis.set_minor_formatter("")  # keep the decade labels only
        axes.set_title(group.label, fontsize=9)
        axes.tick_params(labelsize=7)
        if panel == 1:
            axes.legend(fontsize=6, title="solid: train, dashed: val", title_fontsize=6)
    figure.supxlabel("epoch")
    figure.supylabel("loss")
    figure.savefig(path, dpi=90)


@dataclass(frozen=True)
class ClassReferences:
    """What the misclassification analysis takes from ``synthetic_spectra`` for one dataset."""

    config: Any
    test_spectra: np.ndarray
    test_labels: np.ndarray
    render: Callable[..., np.ndarray]

    def reference(self, class_index: int) -> np.ndarray:
        """A class's fingerprint rendered as a test spectrum without variation, divided by its maximum."""
        config = self.config
        spectrum = np.asarray(
            self.render(
                np.asarray([config.positions[class_index]]),
                np.asarray([config.heights[class_index]], dtype=np.float64),
                np.asarray([float(config.test.sigma)]),
                config.datapoints,
            )
        )[0]
        return spectrum / spectrum.max()


def plot_pair(data: ClassReferences, pair: ConfusedPair, sample_index: int, path: Path) -> None:
    """Both classes' reference spectra and one misclassified test sample: the full range and a zoom
    around the largest difference of the references."""
    true_ref, pred_ref = data.reference(pair.true), data.reference(pair.pred)
    sample = np.asarray(data.test_spectra[sample_index], dtype=np.float64)
    sample = sample / sample.max()
    curves = (
        (true_ref, f"true class {pair.true} (reference)", {"color": "tab:green", "linewidth": 1.2}),
        (pred_ref, f"predicted class {pair.pred} (reference)", {"color": "tab:red", "linewidth": 1.2}),
        (sample, f"test sample {sample_index}", {"color": "black", "linewidth": 0.8, "linestyle": ":"}),
    )
    half = max(int(Tolerances.from_config(data.config).position_window), 50)
    centre = int(np.argmax(np.abs(true_ref - pred_ref)))
    x = np.arange(len(sample))
    figure = new_figure(9, 5.5)
    for panel, window in enumerate((slice(None), slice(max(0, centre - half), centre + half + 1)), start=1):
        axes = figure.add_subplot(2, 1, panel)
        for values, label, style in curves:
            axes.plot(x[window], values[window], label=label, **style)
        axes.set_ylabel("intensity / max")
        axes.tick_params(labelsize=8)
        if panel == 1:
            axes.legend(fontsize=7)
    evidence = pair.comparison.evidence
    figure.suptitle(
        f"class {pair.true} predicted as {pair.pred} ({pair.count}×): {pair.mode} — {evidence}", fontsize=9
    )
    figure.supxlabel("datapoint")
    figure.savefig(path, dpi=90)
