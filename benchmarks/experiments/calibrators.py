"""Which calibrator brings a `challenge` preset to ECE ≤ 1 %? One temperature does not (see the calibration
page): this measures richer maps, each fitted on a large fresh draw of the training classes (validation data
the generator draws anew, seed ``FIT_SEED``; never a test split) and judged on another (``FRESH_SEEDS[0]``).

- ``temperature``: ``softmax(z / T)``, T fitted on the validation split (what the presets ship) and on the
  fit draw;
- ``vector scaling``: ``softmax(a ⊙ z + b)``, a scale and a bias per class (negative log-likelihood);
- ``confidence map``: the top probability after the preset's temperature (fitted on its validation split)
  by an isotonic regression of "the prediction is right" on it
  (:func:`zoo.inference.calibration.fit_confidence_map`; the prediction itself is unchanged, only its
  confidence moves). Its row holds the map, which ``calibration.py ship`` writes into the presets.

Each is judged by the ECE of its confidence in the top class (15 bins) beside the noise floor of a
perfectly calibrated model of the same confidences on the same number of spectra, and by accuracy and the
negative log-likelihood where the map gives a full probability vector. Rows go to
``benchmarks/results/calibration/calibrators.jsonl``, the table to ``calibrators.md``::

    python benchmarks/experiments/calibrators.py --presets vgg_relu_challenge --per-class 1000
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.checks import OneLineParser
from zoo.errors import UserError

OUT = pathlib.Path(__file__).resolve().parents[1] / "results" / "calibration"
ROWS_FILE, TABLE_FILE = "calibrators.jsonl", "calibrators.md"


def fit_vector_scaling(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``a`` and bias ``b`` per class minimising the mean negative log-likelihood of
    ``softmax(a * logits + b)`` (L-BFGS with the analytic gradient), starting from ``a = 1, b = 0``."""
    from scipy.optimize import minimize

    logits = np.asarray(logits, dtype=np.float64)
    n, classes = logits.shape
    onehot = np.eye(classes)[labels]

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        scores = logits * params[:classes] + params[classes:]
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1, keepdims=True))
        log_p = scores - log_norm
        residual = (np.exp(log_p) - onehot) / n  # d loss / d scores
        gradient = np.concatenate([(residual * logits).sum(axis=0), residual.sum(axis=0)])
        return float(-(log_p * onehot).sum() / n), gradient

    start = np.concatenate([np.ones(classes), np.zeros(classes)])
    result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B")
    return result.x[:classes], result.x[classes:]


def judge(
    name: str,
    fitted_on: str,
    judged_on: str,
    confidence: np.ndarray,
    correct: np.ndarray,
    nll: float | None,
) -> dict[str, Any]:
    """One row: a calibrator's confidences on a judged set against whether the predictions are right."""
    from zoo.inference.calibration import confidence_noise_floor, confidence_reliability

    return {
        "calibrator": name,
        "fitted_on": fitted_on,
        "judged_on": judged_on,
        "judged_size": len(correct),
        "accuracy": float(np.mean(correct)),
        "ece": confidence_reliability(confidence, correct).ece,
        "noise_floor": confidence_noise_floor(confidence),
        "nll": nll,
    }


#: The calibrator a preset ships: its temperature, then the confidence map.
SHIPPED = "confidence map (after the shipped temperature)"


def measure(
    fit: tuple[np.ndarray, np.ndarray],
    judged: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    names: tuple[str, str, str],
    shipped_temperature: float | None = None,
) -> list[dict[str, Any]]:
    """Rows of every calibrator: ``fit``, ``judged`` and ``validation`` are (logits, labels); ``names``
    name the three sets in the rows. Every calibrator is judged on ``judged``; the shipped ones (the
    validation temperature, and the confidence map after it) also on ``validation``, where the
    temperature was fitted (in-sample) and the map was not. The map's row records the map
    (``confidence_map``: :meth:`zoo.inference.calibration.ConfidenceMap.to_dict`) and its temperature:
    ``shipped_temperature`` (the preset's own, fitted on its validation split where it was built), else
    the one fitted on ``validation`` here."""
    from zoo.inference import calibration as cal

    (zf, yf), (zj, yj), (zv, yv) = fit, judged, validation
    fit_name, judged_name, validation_name = names
    rows = []

    def probability_row(name: str, fitted_on: str, probabilities: np.ndarray) -> dict[str, Any]:
        nll = float(-np.log(np.maximum(probabilities[np.arange(len(yj)), yj], 1e-300)).mean())
        correct = probabilities.argmax(axis=1) == yj
        return judge(name, fitted_on, judged_name, probabilities.max(axis=1), correct, nll)

    rows.append(probability_row("none (raw softmax)", "–", cal.softmax(zj)))
    temperatures = {name: cal.fit_temperature(z, y) for name, (z, y) in
                    ((validation_name, (zv, yv)), (fit_name, (zf, yf)))}  # fmt: skip
    for fitted_on, temperature in temperatures.items():
        row = probability_row("temperature", fitted_on, cal.softmax(zj, temperature))
        rows.append({**row, "temperature": temperature})
    scale, bias = fit_vector_scaling(zf, yf)
    rows.append(probability_row("vector scaling", fit_name, cal.softmax(zj * scale + bias)))
    shipped = cal.Calibration(shipped_temperature or temperatures[validation_name])
    mapped = shipped.with_confidence_map(zf, yf, notes={"fitted_on": fit_name})
    confidence_map = mapped.confidence_map
    extra = {"temperature": shipped.temperature, "map_knots": len(confidence_map.x)}
    for judged_on, (z, y) in ((judged_name, (zj, yj)), (validation_name, (zv, yv))):
        correct = z.argmax(axis=1) == y
        if judged_on == validation_name:  # the temperature where it was fitted
            nll = cal.negative_log_likelihood(z, y, shipped.temperature)
            row = judge("temperature", validation_name, judged_on, shipped.confidence(z), correct, nll)
            rows.append({**row, **extra})
        row = judge(SHIPPED, fit_name, judged_on, mapped.confidence(z), correct, None)
        rows.append({**row, **extra, "confidence_map": confidence_map.to_dict()})
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown page of ``rows`` (one section per preset, one table per judged set)."""
    lines = [
        "# Calibrators beyond one temperature: `challenge` presets",
        "",
        "Generated by `python benchmarks/experiments/calibrators.py` (see its docstring). ECE (15 bins) of "
        "the confidence in the top class on the judged set, beside the noise floor: the ECE a perfectly "
        "calibrated model with the same confidences shows on that many spectra. NLL where the calibrator "
        "gives a full probability vector. Goal: ECE ≤ 1 %. The presets ship the confidence map: their "
        "temperature (fitted on the validation split), then the map fitted on the fit draw (the "
        "predictions are unchanged; only the confidence in them moves). On the validation split the "
        "temperature is judged where it was fitted.",
        "",
    ]
    for preset in dict.fromkeys(row["preset"] for row in rows):
        group = [row for row in rows if row["preset"] == preset]
        lines += [f"## {preset}", "", f"{group[0]['hardware']}, {group[0]['seconds']:.0f} s.", ""]
        for judged_on in dict.fromkeys(row["judged_on"] for row in group):
            lines += [
                f"Judged on {judged_on}:",
                "",
                "| calibrator | fitted on | accuracy | ECE | noise floor | NLL |",
                "|---|---|---:|---:|---:|---:|",
            ]
            for row in (r for r in group if r["judged_on"] == judged_on):
                nll = "–" if row["nll"] is None else f"{row['nll']:.4f}"
                lines.append(
                    f"| {row['calibrator']} | {row['fitted_on']} | {100 * row['accuracy']:.2f} % | "
                    f"{100 * row['ece']:.2f} % | {100 * row['noise_floor']:.2f} % | {nll} |"
                )
            lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="vgg_relu_challenge")
    parser.add_argument("--per-class", type=int, default=1000, help="spectra per class of each draw")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--table", action="store_true", help="rewrite the table from the rows only")
    args = parser.parse_args(argv)
    if args.table:
        (args.out / TABLE_FILE).write_text(table(_read_rows(args.out / ROWS_FILE)), encoding="utf-8")
        return 0
    try:
        from zoo.models.presets import get_preset

        if args.per_class < 1:
            raise UserError(f"--per-class: must be a positive integer, got {args.per_class!r}")
        names = [name.strip() for name in args.presets.split(",") if name.strip()]
        if not names:
            raise UserError("--presets: name at least one preset")
        from synthetic_spectra.config import get_config
        from zoo.inference.calibration import MIN_MAP_SPECTRA

        for name in names:
            classes = get_config(get_preset(name).dataset).num_classes  # an unknown name: one line
            if args.per_class * classes < MIN_MAP_SPECTRA:
                raise UserError(
                    f"--per-class: {args.per_class} × {classes} classes of {name} is below the "
                    f"{MIN_MAP_SPECTRA} spectra a confidence map needs"
                )
    except UserError as exc:
        print(f"calibrators.py: error: {exc}", file=sys.stderr)
        return 2
    from zoo.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import zoo
    from synthetic_spectra.config import fresh_draw, get_config
    from synthetic_spectra.generator import generate
    from zoo.inference.calibration import Calibration
    from zoo.inference.logits import predict_logits
    from zoo.study.confidence import FIT_SEED, FRESH_SEEDS, normalised
    from zoo.training.environment import hardware

    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        started = time.perf_counter()
        preset = get_preset(name)
        model, config = zoo.from_preset(name), get_config(preset.dataset)
        shipped = Calibration.from_dict(preset.calibration).temperature if preset.calibration else None
        sets = {}
        for key, (draw, split) in {
            "fit": (dataclasses.replace(fresh_draw(config, FIT_SEED), n_train=args.per_class), "train"),
            "judged": (
                dataclasses.replace(fresh_draw(config, FRESH_SEEDS[0]), n_train=args.per_class),
                "train",
            ),
            "validation": (config, "validation"),
        }.items():
            x, y = generate(draw, split)
            sets[key] = (predict_logits(model, normalised(x)), y, f"{draw.name} {split} ({len(y):,})")
        measured = measure(
            sets["fit"][:2], sets["judged"][:2], sets["validation"][:2],
            (sets["fit"][2], sets["judged"][2], sets["validation"][2]), shipped,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        rows = [{"preset": name, **row, "hardware": hardware(), "seconds": seconds} for row in measured]
        for row in rows:
            print(f"{name}: {row['calibrator']} ({row['fitted_on']}) on {row['judged_on']}: "
                  f"ECE {row['ece']:.2%} (floor {row['noise_floor']:.2%})", flush=True)  # fmt: skip
        # each preset's rows land as soon as it is measured; a preset measured again replaces its rows
        all_rows = [row for row in _read_rows(args.out / ROWS_FILE) if row["preset"] != name] + rows
        (args.out / ROWS_FILE).write_text("".join(json.dumps(r) + "\n" for r in all_rows), encoding="utf-8")
        (args.out / TABLE_FILE).write_text(table(all_rows), encoding="utf-8")
    return 0


def _read_rows(path: pathlib.Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    sys.exit(main())
