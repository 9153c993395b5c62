"""PRNet design search (issue #7): train candidates in memory with the study's protocol, judge on validation.

Usage: ``python benchmarks/experiments/prnet_design.py CANDIDATE [--seed 0] [--epochs 30]``. Prints validation
accuracy and loss every epoch and, at the end, the accuracy on two *probe* sets: fixed-variation renders of
the training classes (whole-pattern shifts 0, ±20, ±28 points, heights 0, ±0.025, sigma 2 and 3.5; the
*tight* probe: shifts ±32, heights ±0.032) that measure whether the decision boundaries sit near the
midpoints between neighbouring classes. The probes are drawn from the class table only (not the test
split, whose shifts, heights and sigma differ); the test split is never touched here. Adam 3e-4, batch 128,
ReduceLROnPlateau and EarlyStopping as in ``spectrazoo benchmark``; the batches are shuffled by
``Model.fit`` (not the runner's seeded pipeline). ``--dataset challenge_realistic`` trains and validates on
the noisy set (candidates ``robust_*``: PRNet's robust option; the probes stay clean renders of its classes);
``--final`` runs the chosen robust option through the runner (seeds 0-2, cross-test on challenge).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

from zoo.checks import OneLineParser
from zoo.tfquiet import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow_quietly()  # its C++ start-up lines stay off stderr (errors are one line)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
from synthetic_spectra.config import get_config  # noqa: E402
from synthetic_spectra.generator import generate, render  # noqa: E402
from synthetic_spectra.normalize import normalize_max  # noqa: E402
from zoo.models.prnet import ROBUST_OPTION  # noqa: E402

DATASET = "challenge"
#: The input and output size every candidate is built for (challenge and challenge_realistic).
NUM_CLASSES, DATAPOINTS = 27, 5000
PROBE_SHIFTS = (-28, -20, 0, 20, 28)
PROBE_VARIATIONS = (-0.025, 0.0, 0.025)
PROBE_SIGMAS = (2.0, 3.5)
#: A tighter probe: closer to the midpoints between classes (margins 3 points and 0.0055 in height).
TIGHT_SHIFTS = (-32, 32)
TIGHT_VARIATIONS = (-0.032, 0.032)


def probe_set(
    config_name: str = DATASET,
    shifts: tuple[int, ...] = PROBE_SHIFTS,
    variations: tuple[float, ...] = PROBE_VARIATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Max-normalised probe spectra ``[n, points, 1]`` and labels (shift x variation x sigma per class)."""
    config = get_config(config_name)
    rows: list[tuple[np.ndarray, np.ndarray, float]] = []
    labels: list[int] = []
    for label, (positions, heights) in enumerate(zip(config.positions, config.heights, strict=True)):
        base_p, base_h = np.array(positions), np.array(heights)
        for shift, variation, sigma in itertools.product(shifts, variations, PROBE_SIGMAS):
            varied = np.where(base_h == 1.0, 1.0, np.clip(base_h + variation, 0.0, 2.0))
            rows.append((base_p + shift, varied, sigma))
            labels.append(label)
    width = max(len(p) for p, _, _ in rows)
    positions = np.full((len(rows), width), -1, dtype=np.int64)
    heights = np.zeros((len(rows), width))
    for index, (p, h, _) in enumerate(rows):
        positions[index, : len(p)], heights[index, : len(h)] = p, h
    sigmas = np.array([s for _, _, s in rows])
    x = render(positions, heights, sigmas, config.datapoints)
    return normalize_max(x)[..., None], np.array(labels)


def arrays(split: str, dataset: str = DATASET) -> tuple[np.ndarray, np.ndarray]:
    """One split of the dataset, max-normalised, ``[n, points, 1]``."""
    x, y = generate(get_config(dataset), split)
    return normalize_max(x)[..., None], y


def prnet(**options: Any) -> Callable[[], keras.Model]:
    """A PRNet build with some options changed: v2 (absolute positions) unless ``positions`` is given."""
    options = {"positions": "absolute", **options}
    return lambda: zoo.build("prnet", NUM_CLASSES, DATAPOINTS, compile=False, **options)


def absolute_and_relative(gain: float = 30.0, spacing: int = 25) -> Callable[[], keras.Model]:
    """Both position codes side by side: absolute cells and cells of the offset from the strongest apex.

    The README's row for this idea was measured with a scratch version of it (a bias channel per feature,
    421,227 parameters); this function is the idea written with the zoo's layers, not re-run.
    """
    from zoo.models.prnet import AppendConstant as Bias
    from zoo.models.prnet import PeakCoding, RelativeToStrongest, position_cells

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        code = PeakCoding(11)(inputs)
        relative = RelativeToStrongest()(code)
        cells = [position_cells(c, spacing, gain) for c in (code, relative)]
        x = keras.layers.Concatenate(axis=1)(cells)
        x = keras.layers.Flatten()(Bias(gain / x.shape[1])(x))
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="candidate")

    return build


@keras.saving.register_keras_serializable(package="design")
class MaxNorm(keras.layers.Layer):
    """Divide each spectrum by its maximum over length and channels."""

    def call(self, inputs: Any) -> Any:
        peak = keras.ops.max(inputs, axis=(1, 2), keepdims=True)
        return inputs / keras.ops.maximum(peak, 1e-12)


def candidate(
    *,
    box: int = 15,
    passes: int = 3,
    pool: int = 8,
    epsilon: float = 1e-3,
    layer_norm: bool = False,
    convs: tuple[tuple[int, int], ...] = (),
    hidden: tuple[int, ...] = (),
    rate: float = 0.0,
    gain: float = 1.0,
) -> Callable[[], keras.Model]:
    """Smooth → re-max-normalise → [linear, log] → convs → average pool → [LayerNorm] → flatten → head."""
    from zoo.models.prnet import LogCompression

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        x = inputs
        for index in range(passes):
            x = keras.layers.AveragePooling1D(box, 1, padding="same", name=f"blur{index}")(x)
        x = MaxNorm()(x)
        if epsilon:
            x = keras.layers.Concatenate()([x, LogCompression(epsilon)(x)])
        for filters, kernel in convs:
            x = keras.layers.Conv1D(filters, kernel, padding="same", activation="relu")(x)
        x = keras.layers.AveragePooling1D(pool, pool)(x)
        if layer_norm:
            x = keras.layers.LayerNormalization(axis=(1, 2))(x)
        if gain != 1.0:
            x = keras.layers.Rescaling(gain)(x)
        x = keras.layers.Flatten()(x)
        for width in hidden:
            x = keras.layers.Dropout(rate)(x) if rate else x
            x = keras.layers.Dense(width, activation="relu")(x)
        x = keras.layers.Dropout(rate)(x) if rate else x
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="candidate")

    return build


def splat(
    *,
    blur: int = 0,
    spacing: int = 25,
    levels: int = 21,
    gain: float = 30.0,
    window: int = 11,
    extra: bool = False,
    periods: tuple[int, ...] = (),
    bias: float = 0.0,
    height: bool = False,
) -> Callable[[], keras.Model]:
    """[blur] → max-normalise → peak apexes → height levels → triangular position cells → gain → linear.

    The peak code is the zoo's :class:`~zoo.models.prnet.PeakCoding` with its design options.
    """
    from zoo.models.prnet import AppendConstant, PeakCoding

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        x = inputs
        for index in range(2 if blur else 0):
            x = keras.layers.AveragePooling1D(blur, 1, padding="same", name=f"blur{index}")(x)
        x = MaxNorm()(x)
        x = PeakCoding(levels, window=window, extra_channels=extra, linear_height=height, periods=periods)(x)
        x = keras.layers.AveragePooling1D(2 * spacing, 1, padding="same")(x)
        x = keras.layers.AveragePooling1D(2 * spacing, spacing, padding="same")(x)
        if bias:
            x = AppendConstant(bias / (2 * spacing * x.shape[1]))(x)
        x = keras.layers.Rescaling(gain * 2 * spacing)(x)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="candidate")

    return build


def peaks(
    linear: bool = False, levels: int = 11, spacing: int = 25, gain: float = 30.0, zero_init: bool = False
) -> Callable[[], keras.Model]:
    """The zoo's PRNet trunk with the height levels on a log (default) or linear height scale."""
    from zoo.models.prnet import AppendConstant as Bias
    from zoo.models.prnet import PeakCoding, position_cells

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        x = position_cells(PeakCoding(levels, linear_levels=linear)(inputs), spacing, gain)
        x = Bias(gain / x.shape[1])(x)
        init = "zeros" if zero_init else "glorot_uniform"
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_initializer=init)(x)
        return keras.Model(inputs, outputs, name="candidate")

    return build


def multiscale(
    coarse: int = 100, split: bool = False, spacing: int = 25, gain: float = 30.0, linear: bool = False
) -> Callable[[], keras.Model]:
    """Fine position cells (all channels, or presence + log height only) plus coarse cells for the levels."""
    from zoo.models.prnet import AppendConstant as Bias
    from zoo.models.prnet import PeakCoding

    def cells(x: Any, step: int) -> Any:
        x = keras.layers.AveragePooling1D(2 * step, 1, padding="same")(x)
        x = keras.layers.AveragePooling1D(2 * step, step, padding="same")(x)
        return keras.layers.Flatten()(keras.layers.Rescaling(gain * 2 * step)(x))

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        code = PeakCoding(11, linear_levels=linear)(inputs)
        fine = code[..., 11:] if split else code
        x = keras.layers.Concatenate()([cells(fine, spacing), cells(code[..., :11], coarse)])
        x = Bias(gain)(x[:, None, :])
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(x))
        return keras.Model(inputs, outputs, name="candidate")

    return build


@keras.saving.register_keras_serializable(package="design")
class CellMoments(keras.layers.Layer):
    """Triangular position cells of a code map plus first moments (offset from the cell centre / spacing)."""

    def __init__(self, spacing: int, moment_channels: int, **kw):
        super().__init__(**kw)
        self.spacing, self.moment_channels = spacing, moment_channels

    def call(self, code: Any) -> Any:
        ops = keras.ops
        step = self.spacing
        t = ops.arange(code.shape[1], dtype="float32")[None, :, None] / step
        both = ops.concatenate([code, code[..., : self.moment_channels] * t], axis=-1)
        pooled = ops.average_pool(both, 2 * step, 1, padding="same")
        pooled = ops.average_pool(pooled, 2 * step, step, padding="same") * (2 * step)
        zero, first = pooled[..., : code.shape[-1]], pooled[..., code.shape[-1] :]
        centres = ops.arange(pooled.shape[1], dtype="float32")[
            None, :, None
        ]  # approximate: offsets within ±2
        return ops.concatenate([zero, first - centres * zero[..., : self.moment_channels]], axis=-1)


def moments(spacing: int = 100, channels: str = "presence", gain: float = 30.0) -> Callable[[], keras.Model]:
    """Peak code on coarse cells with first moments (linear in position inside a cell) for some channels."""
    from zoo.models.prnet import AppendConstant as Bias
    from zoo.models.prnet import PeakCoding

    def build() -> keras.Model:
        inputs = keras.Input((DATAPOINTS, 1))
        code = PeakCoding(11)(inputs)
        if channels == "presence":  # moments of presence and log height only
            code = keras.layers.Concatenate()([code[..., 11:], code[..., :11]])
            count = 2
        else:
            count = 13
        x = CellMoments(spacing, count)(code)
        x = keras.layers.Rescaling(gain)(x)
        x = Bias(gain / x.shape[1])(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(x))
        return keras.Model(inputs, outputs, name="candidate")

    return build


#: The design iterations in the order they were tried (README of benchmarks/results/new_model).
CANDIDATES: dict[str, Callable[[], keras.Model]] = {
    # 1. smoothed, re-max-normalised spectrum [linear, log], average pool 8, linear read-out
    "lin": candidate(),
    "lin_ln": candidate(layer_norm=True),
    "lin_g10": candidate(gain=10.0),
    "lin_g100": candidate(gain=100.0),
    "lin_g300": candidate(gain=300.0),
    "mlp_ln": candidate(layer_norm=True, hidden=(256,)),
    "conv_ln": candidate(layer_norm=True, convs=((32, 9),)),
    # 2. peak apexes coded by log-height levels and triangular position cells, linear read-out
    "splat": splat(),
    "splat_g10": splat(gain=10.0),
    "splat_g100": splat(gain=100.0),
    "splat_s50": splat(spacing=50),
    "splat_x11": splat(levels=11, extra=True),
    "splat_x11_p400": splat(levels=11, extra=True, periods=(400,)),
    "splat_x11_b1": splat(levels=11, extra=True, bias=1.0),  # = the chosen design (PRNet v2)
    "splat_x11h_b1": splat(levels=11, extra=True, height=True, bias=1.0),
    "splat_x11h_b1_s50": splat(levels=11, extra=True, height=True, bias=1.0, spacing=50),
    "splat_x0h_b1": splat(levels=0, extra=True, height=True, bias=1.0),
    "splat_x0h_b1_s50": splat(levels=0, extra=True, height=True, bias=1.0, spacing=50),
    # 3. the zoo's PRNet layers (prnet_log11 = zoo.build("prnet")) and variations tried after it
    "prnet": prnet(),
    "prnet_log11": peaks(),
    "prnet_lin11": peaks(linear=True),
    "prnet_log11_zero": peaks(zero_init=True),
    "prnet_lin11_zero": peaks(linear=True, zero_init=True),
    "prnet_g10": peaks(gain=10.0),
    "prnet_g100": peaks(gain=100.0),
    "prnet_s50": peaks(spacing=50),
    "ms100": multiscale(),
    "ms100_split": multiscale(split=True),
    "ms50_split": multiscale(coarse=50, split=True),
    "mom100": moments(100),
    "mom50": moments(50),
    "mom100_all": moments(100, "all"),
    # 4. robust peak encoder for noisy spectra (challenge_realistic): smoothing, baseline, noise threshold
    "robust_s7": prnet(smooth=7),
    "robust_s7_b51": prnet(smooth=7, background=51),
    "robust_s7_b51_n2": prnet(smooth=7, background=51, noise=2.0),
    "robust_s7_b51_n1.5": prnet(smooth=7, background=51, noise=1.5),
    "robust_s5_b51_n2": prnet(smooth=5, background=51, noise=2.0),
    "robust_s5_b51_n1.5": prnet(smooth=5, background=51, noise=1.5),
    "robust_s7_b51_n3": prnet(smooth=7, background=51, noise=3.0),
    "robust_s9_b61_n3": prnet(smooth=9, background=61, noise=3.0),
    # 5. positions relative to the strongest apex (PRNet v3 = `relative`, the registry default since)
    "absolute_and_relative": absolute_and_relative(),
    "relative": prnet(positions="relative"),
    "relative_l21": prnet(positions="relative", levels=21),
}


def train(name: str, seed: int, epochs: int, dataset: str = DATASET) -> None:
    """Train one candidate with the study's protocol and print validation and probe metrics."""
    x_train, y_train = arrays("train", dataset)
    x_val, y_val = arrays("validation", dataset)
    x_probe, y_probe = probe_set(dataset)
    x_tight, y_tight = probe_set(dataset, shifts=TIGHT_SHIFTS, variations=TIGHT_VARIATIONS)
    keras.utils.set_random_seed(seed)
    model = zoo.compile_model(CANDIDATES[name]())
    print(f"{name}: {model.count_params():,} params, {zoo.count_flops(model) / 1e6:.2f} MFLOP")
    callbacks = [
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=10),
        keras.callbacks.EarlyStopping("val_loss", patience=25, min_delta=1e-4, restore_best_weights=True),
    ]
    start = time.time()
    history = model.fit(
        x_train,
        np.eye(NUM_CLASSES)[y_train],
        batch_size=128,
        epochs=epochs,
        validation_data=(x_val, np.eye(NUM_CLASSES)[y_val]),
        callbacks=callbacks,
        verbose=0,
    )
    h = history.history
    for epoch in range(len(h["loss"])):
        print(
            f"  epoch {epoch + 1:2d} train {h['accuracy'][epoch]:.3f}/{h['loss'][epoch]:.3f} "
            f"val {h['val_accuracy'][epoch]:.3f}/{h['val_loss'][epoch]:.3f}"
        )
    best = int(np.argmin(h["val_loss"]))
    probe = model.predict(x_probe, verbose=0).argmax(axis=1)
    wrong = np.bincount(y_probe[probe != y_probe] // 9, minlength=3)
    combos = list(itertools.product(PROBE_SHIFTS, PROBE_VARIATIONS, PROBE_SIGMAS))
    for index in np.flatnonzero(probe != y_probe):
        shift, variation, sigma = combos[index % len(combos)]
        where = f"shift {shift} height {variation:+} sigma {sigma}"
        print(f"  probe miss: class {y_probe[index]} {where} -> {probe[index]}")
    tight = model.predict(x_tight, verbose=0).argmax(axis=1)
    tight_wrong = np.bincount(y_tight[tight != y_tight] // 9, minlength=3)
    print(
        f"RESULT {name} seed {seed}: best epoch {best + 1} val acc {h['val_accuracy'][best]:.3f} "
        f"val loss {h['val_loss'][best]:.3f}; probe acc {np.mean(probe == y_probe):.3f} "
        f"(wrong per group minor/position/intensity {wrong.tolist()}); "
        f"tight probe acc {np.mean(tight == y_tight):.3f} "
        f"(wrong {tight_wrong.tolist()}); {time.time() - start:.0f} s"
    )


#: The robust peak encoder chosen on challenge_realistic's validation split (candidate robust_s7_b51_n1.5).
ROBUST = ROBUST_OPTION
FINAL_OUT = "benchmarks/results/new_model_realistic"


def final_runs(seeds: tuple[int, ...] = (0, 1, 2), epochs: int = 30) -> None:
    """The robust option of the registry's PRNet (v3) through ``zoo.training.runner``: variant ``robust`` on
    challenge_realistic, cross-tested on challenge (v2's rows: ``results_v2_absolute.jsonl`` there)."""
    from zoo.training.protocol import Protocol, RunSpec
    from zoo.training.runner import run_benchmark

    toggles = tuple(sorted({**ROBUST, "fc_activation": None}.items()))
    specs = [RunSpec(get_config("challenge_realistic"), "prnet", seed, "robust", toggles) for seed in seeds]
    run_benchmark(specs, Protocol(max_epochs=epochs), FINAL_OUT, saved_models_dir="saved_models",
                  cross_tests=["challenge"], verbose=0)  # fmt: skip


def check_arguments(
    candidate: str | None, final: bool, epochs: int, dataset: str | None = None, seed: int | None = None
) -> None:
    """Raise ``ValueError`` (one line for people) for a bad command line, before anything is generated.

    ``dataset`` and ``seed`` are ``None`` when not given (``DATASET`` and 0 then apply to a candidate).
    """
    if not final and candidate is None:
        raise ValueError("name a candidate or pass --final")
    if final and (candidate, dataset, seed) != (None, None, None):
        raise ValueError(
            "--final: runs the robust option on challenge_realistic, seeds 0-2; "
            "give no candidate, --dataset or --seed with it"
        )
    if candidate is not None and candidate not in CANDIDATES:
        raise ValueError(f"candidate: must be one of {', '.join(sorted(CANDIDATES))}, got {candidate!r}")
    if epochs < 1:
        raise ValueError(f"--epochs: must be a positive integer, got {epochs}")
    if seed is not None and seed < 0:
        raise ValueError(f"--seed: must be a non-negative integer, got {seed}")
    dataset = DATASET if dataset is None else dataset
    config = get_config(dataset)
    if (config.num_classes, config.datapoints) != (NUM_CLASSES, DATAPOINTS):
        raise ValueError(
            f"--dataset {dataset}: the candidates are built for {NUM_CLASSES} classes x {DATAPOINTS} points "
            f"(challenge, challenge_realistic), got {config.num_classes} x {config.datapoints}"
        )


def main() -> None:
    """Command line: a bad argument is one stderr line and exit status 2."""
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", nargs="?", help=f"one of: {', '.join(sorted(CANDIDATES))}")
    parser.add_argument("--seed", type=int, help="candidate runs only (default 0)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--dataset", help=f"training/validation config (probes: its classes; default {DATASET})"
    )
    parser.add_argument("--final", action="store_true", help="the robust option's final runs (seeds 0-2)")
    args = parser.parse_args()
    try:
        check_arguments(args.candidate, args.final, args.epochs, args.dataset, args.seed)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.final:
        final_runs(epochs=args.epochs)
    else:
        seed = 0 if args.seed is None else args.seed
        dataset = DATASET if args.dataset is None else args.dataset
        train(args.candidate, seed, args.epochs, dataset)


if __name__ == "__main__":
    main()
