"""How much of a batch-normalised model's accuracy its moving statistics hide (``zoo.study.batch_norm``).

For each SOURCE, load its weights into the model they belong to and measure top-1 accuracy on the training
split, the validation split and the panel's fresh in-distribution draws, twice: with the stored moving
statistics (what ``predict``, the protocol's validation loss and early stopping see) and with every
batch-normalised layer's statistics replaced by the training split's own. Nothing is fitted: the weights
stay as trained; the test split is not used. One row per source goes to ``--out``'s ``rows.jsonl`` (a source
measured again replaces its row: same name and kind) and ``batch_norm.md`` is regenerated from the rows.

A SOURCE is one of:

- a study run's folder (``.../runs/<setup>-seed<k>``, with ``settings.json``): its backup's latest weights
  (``backup/latest.weights.h5``, the epoch its ``training_metadata.json`` names), so a run still training
  can be looked at;
- a KerasTuner trial folder of a search (``.../project/trial_<id>``, with ``trial.json``, its search's
  ``search.json`` beside it): KerasTuner's checkpoint, the best epoch of the trial's executions (of those
  the process that trained last ran, for a trial resumed before the search learnt to carry its best over);
- an export (a folder with ``metadata.json``, ``zoo.export``): the weights a finished run kept.

Usage:  python benchmarks/experiments/batch_norm_statistics.py SOURCE... [--dataset challenge]
        [--out benchmarks/results/batch_norm]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zoo.checks import OneLineParser
from zoo.errors import UserError

OUT = pathlib.Path("benchmarks/results/batch_norm")
ROWS_FILE = "rows.jsonl"
REPORT_FILE = "batch_norm.md"
#: KerasTuner hyperparameters that are not build arguments.
NOT_BUILD_ARGUMENTS = ("learning_rate",)


@dataclass(frozen=True)
class Source:
    """Weights and what to build them into, resolved from a SOURCE argument."""

    label: str
    kind: str
    weights: pathlib.Path
    model: str
    options: dict[str, Any]
    at: str


def _json(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable as JSON ({exc.__class__.__name__})") from None


def resolve(folder: pathlib.Path) -> Source:
    """The :class:`Source` of a study run folder or a KerasTuner trial folder; UserError otherwise."""
    if (folder / "settings.json").is_file():
        weights = folder / "backup" / "latest.weights.h5"
        if not weights.is_file():
            raise UserError(f"{folder}: a study run without backup weights ({weights.name})")
        toggles = {
            k: v for k, v in (_json(folder / "settings.json").get("toggles") or {}).items() if v is not None
        }
        metadata = folder / "backup" / "training_metadata.json"
        epoch = _json(metadata).get("epoch") if metadata.is_file() else None
        at = f"latest weights, after epoch {epoch + 1}" if isinstance(epoch, int) else "latest weights"
        return Source(folder.name, "study run", weights, folder.name.split("-")[0], toggles, at)
    if (folder / "trial.json").is_file():
        weights, search_file = folder / "checkpoint.weights.h5", folder.parent / "search.json"
        if not weights.is_file():
            raise UserError(f"{folder}: a search trial without its checkpoint ({weights.name})")
        if not search_file.is_file():
            raise UserError(f"{folder}: a search trial without its search's {search_file.name} beside it")
        try:
            values = dict(_json(folder / "trial.json")["hyperparameters"]["values"])
            base = str(_json(search_file)["base"])
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"{folder}: trial.json without hyperparameter values or search.json without a base"
            ) from None
        options = {k: v for k, v in values.items() if k not in NOT_BUILD_ARGUMENTS}
        label = f"{folder.parent.parent.name} {folder.name.replace('_', ' ')}"
        return Source(label, "search trial", weights, base, options, "KerasTuner's checkpoint")
    if (folder / "metadata.json").is_file():
        metadata = _json(folder / "metadata.json")
        build_args = metadata.get("build_args")
        if not isinstance(build_args, dict) or "model" not in metadata:
            raise UserError(f"{folder}: an export whose metadata.json has no model and build arguments")
        options = {k: v for k, v in build_args.items() if k not in ("num_classes", "input_length")}
        return Source(folder.name, "export", folder, metadata["model"], options, "export: the weights kept")
    raise UserError(
        f"{folder}: neither a study run folder (settings.json), a search trial (trial.json) "
        "nor an export (metadata.json)"
    )


def report(rows: Sequence[dict[str, Any]]) -> str:
    """``batch_norm.md`` from the rows."""
    lines = [
        "# Batch normalisation: stored moving statistics against the training spectra's own",
        "",
        "Generated by `python benchmarks/experiments/batch_norm_statistics.py` from `rows.jsonl`. Top-1 "
        "accuracy of the same weights with the moving statistics training left (*stored*) and with every "
        "batch-normalised layer's statistics measured on the training split (*population*); nothing else "
        "changes and nothing is fitted. Variance ratio: stored over population variance of the layer's "
        "input, median over channels (1 = they agree). The test split is not used.",
        "",
        "| weights | model | options | taken | train stored → population | validation stored → population "
        "| fresh draws stored → population | variance ratio per layer | machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        stored, population = row["accuracy_stored"], row["accuracy_population"]
        cells = [
            f"{100 * stored[s]:.2f} → {100 * population[s]:.2f} %" for s in ("train", "validation", "fresh")
        ]
        ratios = ", ".join(f"{name} {ratio:.3g}" for name, ratio in row["variance_ratio"].items())
        options = ", ".join(f"{k}={v}" for k, v in sorted(row["options"].items())) or "published"
        lines.append(
            f"| {row['label']} ({row['kind']}) | {row['model']} | {options} | {row['at']} | "
            + " | ".join(cells)
            + f" | {ratios} | {row['hardware']}, {row['date']} |"
        )
    lines += [
        "",
        "Fresh draws: the training and validation splits of the same classes drawn with the panel's fresh "
        "seeds. Spectra per split are in `rows.jsonl`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=pathlib.Path, metavar="SOURCE")
    parser.add_argument("--dataset", default="challenge")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        from synthetic_spectra import get_config

        config = get_config(args.dataset)
        sources = [resolve(folder) for folder in args.sources]
        rows_path = args.out / ROWS_FILE
        kept = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()] if (
            rows_path.is_file()) else []  # fmt: skip
    except (UserError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")

    from zoo.tfquiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import numpy as np

    import zoo
    from synthetic_spectra.generator import generate
    from synthetic_spectra.normalize import normalize_max
    from zoo.inference.predict import load_keras_model
    from zoo.study.batch_norm import diagnose
    from zoo.study.panel import panel_sets
    from zoo.training.environment import cpu_info, hardware, versions

    def prepared(split: tuple[Any, Any]) -> tuple[Any, Any]:
        return normalize_max(split[0])[..., None], split[1]

    train, validation = (prepared(generate(config, name)) for name in ("train", "validation"))
    fresh_sets = [prepared(s.generate()) for s in panel_sets(config) if s.group == "fresh draws"]
    fresh = (np.concatenate([x for x, _ in fresh_sets]), np.concatenate([y for _, y in fresh_sets]))
    machine = {"hardware": hardware(), "cpu": cpu_info(), "versions": versions()}
    models, length = [], train[0].shape[1]
    for source in sources:  # every source loads before the first is measured
        try:
            if source.kind == "export":
                model = load_keras_model(source.weights)
            else:
                model = zoo.build(source.model, config.num_classes, length, compile=False, **source.options)
                model.load_weights(source.weights)
        except UserError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
        except ValueError as exc:
            reason = (str(exc).strip().splitlines() or ["no reason given"])[0]
            parser.exit(
                2, f"{parser.prog}: error: {source.weights}: not weights of {source.model} ({reason})\n"
            )
        if model.output_shape[-1] != config.num_classes or model.input_shape[1] != length:
            parser.exit(
                2, f"{parser.prog}: error: {source.weights}: not a model of {config.name}'s spectra\n"
            )
        models.append(model)
    sets = {"train": train, "validation": validation, "fresh": fresh}
    measured = []
    for source, model in zip(sources, models, strict=True):
        found = diagnose(model, train[0], sets)
        row = {
            "label": source.label, "kind": source.kind, "weights": os.fspath(source.weights),
            "model": source.model, "options": source.options, "at": source.at, "dataset": config.name,
            "spectra": {name: len(labels) for name, (_, labels) in sets.items()},
            **found, **machine, "date": datetime.date.today().isoformat(),
        }  # fmt: skip
        measured.append(row)
        print(
            f"{source.label}: validation {found['accuracy_stored']['validation']:.2%} stored → "
            f"{found['accuracy_population']['validation']:.2%} population"
        )
    identities = {(row["label"], row["kind"]) for row in measured}
    rows = [row for row in kept if (row["label"], row["kind"]) not in identities] + measured
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")
    (args.out / REPORT_FILE).write_text(report(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
