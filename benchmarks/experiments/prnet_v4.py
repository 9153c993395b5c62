"""PRNet v4's front end (issue #15, part 3), chosen on validation splits only.

PRNet's robust option (``smooth=7, background=51, noise=1.5``) raises the apex threshold to 1.5 × the RMS of
what its smoothing removed. On a clean spectrum that residual is not zero on the peaks themselves, so the
threshold rises and minor peaks drop out: the robust PRNet loses about 5 points in distribution. The
candidates here estimate the noise level by the *median* absolute residual × 1.4826 instead
(``noise_statistic="mad"``: zero on clean spectra, whose residual vanishes off the peaks), with absolute
positions (v2's code: classes that are translates of each other stay apart, which the offset code of v3
loses on ``benchmark``), for several noise multipliers and smoothing widths.

Each candidate's fixed code is read out by a converged logistic regression (scikit-learn, C = 1) trained on
``challenge``'s training split, so the candidates compare front ends, not optimisation runs. They are judged
on validation splits only: the validation split of a fresh draw of ``challenge`` (data seed 3), clean and
under the generalisation panel's perturbation families (``zoo.study.panel.perturbations``; seeds 7000 + k,
none of them a panel seed), and ``challenge_realistic``'s validation split. The test split and the panel's
sets are not used. Writes ``benchmarks/results/prnet_v4/design.md``.

Usage: ``python benchmarks/experiments/prnet_v4.py [--candidates NAME,...] [--out PATH]``
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any

from zoo.checks import OneLineParser
from zoo.tfquiet import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from synthetic_spectra.config import fresh_draw, get_config  # noqa: E402
from synthetic_spectra.generator import generate  # noqa: E402
from synthetic_spectra.normalize import normalize_max  # noqa: E402
from zoo.models.prnet import ROBUST_OPTION, V4_OPTION, trunk  # noqa: E402
from zoo.study.panel import perturbations, perturbed  # noqa: E402
from zoo.training.environment import hardware  # noqa: E402

DATASET = "challenge"
#: Data seed of the fresh draw whose validation split judges the candidates (the panel uses 1 and 2).
FRESH_SEED = 3
#: Seeds of the perturbations of that split (the panel's are 101 + k + 1000 d).
PERTURBATION_SEED = 7000
#: The perturbation families used (a subset of the panel's, one per kind and strength).
FAMILIES = (
    "gaussian snr 1000", "gaussian snr 100", "gaussian snr 30", "poisson 1000 counts",
    "polynomial background", "amorphous hump", "pseudo-voigt peaks",
)  # fmt: skip
MAD = {"positions": "absolute", "background": 51, "noise_statistic": "mad"}
CANDIDATES: dict[str, dict[str, Any]] = {
    "absolute (v2)": {"positions": "absolute"},
    "absolute + robust option (RMS x1.5)": {"positions": "absolute", **ROBUST_OPTION},
    **{f"median x{k:g} smooth 7": {**MAD, "smooth": 7, "noise": k} for k in (1, 1.5, 2, 2.5, 3, 4, 5)},
    "median x4 smooth 5": {**MAD, "smooth": 5, "noise": 4.0},
    "median x3 smooth 9": {**MAD, "smooth": 9, "noise": 3.0},
}
#: The oracle read-out's inverse regularisation strength.
ORACLE_C = 1.0


def design_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The training split and the judging sets, max-normalised ``[n, points, 1]`` float32."""
    config = get_config(DATASET)
    fresh = fresh_draw(config, FRESH_SEED)
    families = {name: options for name, _group, _description, options in perturbations()}
    parts = {"training split": (config, "train"), "fresh validation": (fresh, "validation")}
    for offset, name in enumerate(FAMILIES):
        parts[name] = (perturbed(fresh, PERTURBATION_SEED + offset, **families[name]), "validation")
    parts["challenge_realistic validation"] = (get_config("challenge_realistic"), "validation")
    sets = {}
    for name, (part_config, split) in parts.items():
        x, y = generate(part_config, split)
        sets[name] = (normalize_max(x)[..., np.newaxis].astype(np.float32), y)
    return sets


def oracle_accuracies(options: Mapping[str, Any], sets: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Accuracy per judging set of a converged logistic regression on the candidate's fixed code."""
    inputs = keras.Input(next(iter(sets.values()))[0].shape[1:])
    code = trunk(
        inputs, batch_norm=False, conv_dropout=0.0, levels=11, spacing=25, gain=1.0,
        compression_epsilon=0.01, **options,
    )  # fmt: skip
    encoder = keras.Model(inputs, keras.layers.Flatten()(code))
    features = {name: encoder.predict(x, batch_size=256, verbose=0) for name, (x, _) in sets.items()}
    x_train, y_train = features.pop("training split"), sets["training split"][1]
    readout = LogisticRegression(C=ORACLE_C, max_iter=3000).fit(x_train, y_train)
    return {name: float((readout.predict(f) == sets[name][1]).mean()) for name, f in features.items()}


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated names")
    parser.add_argument("--out", default="benchmarks/results/prnet_v4/design.md")
    args = parser.parse_args()
    names = [name.strip() for name in args.candidates.split(",") if name.strip()]
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown or not names:
        bad = unknown[0] if unknown else "(none)"
        parser.exit(2, f"{parser.prog}: error: --candidates: unknown candidate {bad!r}\n")
    start = time.time()
    sets = design_sets()
    judged = [name for name in sets if name != "training split"]
    rows = []
    for name in names:
        accuracy = oracle_accuracies(CANDIDATES[name], sets)
        perturbed_mean = float(np.mean([accuracy[s] for s in judged if s != "fresh validation"]))
        rows.append((name, accuracy, perturbed_mean))
        clean = accuracy["fresh validation"]
        print(f"{name}: clean {clean:.4f}, perturbed mean {perturbed_mean:.4f}", flush=True)
    chosen = next(name for name, options in CANDIDATES.items() if options == {**V4_OPTION})
    lines = [
        "# PRNet v4's front end, chosen on validation splits (`benchmarks/experiments/prnet_v4.py`)",
        "",
        f"Machine: {hardware()}, shared with the campaign's training; {time.time() - start:.0f} s.",
        "Accuracy of a converged logistic regression (C = 1) on each candidate's fixed code, trained on",
        f"`{DATASET}`'s training split; judged on the validation split of a fresh draw (data seed",
        f"{FRESH_SEED}, {sets['fresh validation'][1].size} spectra) clean and under the panel's perturbation",
        f"families (seeds {PERTURBATION_SEED} + k), and on `challenge_realistic`'s validation split. No test",
        "split, no panel set.",
        f"Chosen (`zoo.models.prnet.V4_OPTION`): **{chosen}**. The multiplier trades missed minor peaks",
        "(too high) against noise maxima counted as apexes (too low); the perturbed mean falls off a cliff",
        "below x1.5 (x1), so the choice keeps one step of margin above the best multiplier when the two are",
        "within ~1 point (about 20 of the 2,160 perturbed spectra). Clean accuracy is the same for every",
        "median-based candidate: on clean spectra their threshold is the plain one.",
        "",
        "| candidate | " + " | ".join(judged) + " | mean of the perturbed |",
        "|---|" + "---:|" * (len(judged) + 1),
    ]
    for name, accuracy, perturbed_mean in rows:
        cells = " | ".join(f"{100 * accuracy[s]:.2f}" for s in judged)
        lines.append(f"| {name} | {cells} | {100 * perturbed_mean:.2f} |")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
