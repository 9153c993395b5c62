"""The calibration and unknown-detection report: ``calibration.md`` and its figures, generated from the
rows :mod:`~zoo.study.confidence` measures (``rows.jsonl``), and the rows file itself.

A row's identity (model, kind, set, stage, score) says what it measures: rows measured again replace the
earlier rows of the same identity (:func:`replace_rows`). The training record of a row's export (how it was
trained, on what CPU, to which stop) is the same for every row of that export, so the folder keeps each record
once, in ``trainings.jsonl``, and a row names it by ``training_key``; :func:`read_rows` puts it back.
Rows of capped trainings (stopped at an epoch cap below the protocol's 500) go into tables of their own,
never beside rows at the protocol's end.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.study.confidence import (
    COVERAGE_GRID,
    DECISIONS,
    DEFAULT_RATE,
    FIT_SEED,
    KNN_K,
    SCORE_LABELS,
    SCORES,
    is_capped,
    validation_key,
)

#: The rows file in a results folder.
ROWS_FILE = "rows.jsonl"
#: Beside the rows file: each training record its rows name, once.
TRAININGS_FILE = "trainings.jsonl"
#: The report in a results folder, beside its figures.
REPORT_FILE = "calibration.md"


def row_identity(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a row measures: a later row with the same identity replaces it."""
    return tuple(str(row.get(key)) for key in ("model", "kind", "set", "stage", "score"))


def training_key(record: Any) -> str:
    """The key a training record is stored under: a digest of its content, so the same record always gets
    the same key, whichever rows name it."""
    text = json.dumps(record, sort_keys=True, default=float)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_trainings(folder: Path) -> dict[str, Any]:
    path = folder / TRAININGS_FILE
    if not path.is_file():
        return {}
    trainings = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            trainings[entry["key"]] = entry["training"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}:{number}: not a training record (key and training)") from None
    return trainings


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``folder``'s rows file (none if there is no file), each with its training record back in
    ``training`` where it names one. Rows that carry their record inline are read as they are."""
    path = folder / ROWS_FILE
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not any("training_key" in row for row in rows):
        return rows
    trainings = _read_trainings(folder)
    for row in rows:
        if "training_key" not in row:
            continue
        key = row.pop("training_key")
        if key not in trainings:
            raise UserError(
                f"{folder / TRAININGS_FILE}: no training record {key}, which a row of {path} names "
                f"(model {row.get('model')})"
            )
        row["training"] = copy.deepcopy(trainings[key])
    return rows


def write_rows(folder: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as ``folder``'s rows file (the folder is created), each distinct training record once
    in the trainings file beside it; ``rows`` themselves are left as they are."""
    folder.mkdir(parents=True, exist_ok=True)
    trainings: dict[str, Any] = {}
    stored = []
    for row in rows:
        if "training" not in row:
            stored.append(row)
            continue
        key = training_key(row["training"])
        trainings.setdefault(key, row["training"])
        stored.append({**{k: v for k, v in row.items() if k != "training"}, "training_key": key})
    # the records first: a rows file never names a record its folder lacks
    trainings_path = folder / TRAININGS_FILE
    if trainings:
        lines = (json.dumps({"key": k, "training": trainings[k]}, sort_keys=True, default=float)
                 for k in sorted(trainings))  # fmt: skip
        trainings_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif trainings_path.exists():
        trainings_path.unlink()
    text = "".join(json.dumps(row, sort_keys=True, default=float) + "\n" for row in stored)
    (folder / ROWS_FILE).write_text(text, encoding="utf-8")


def replace_rows(folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``rows`` to ``folder``'s rows file; earlier rows with the same identity give way to them.
    Returns every row the file now holds."""
    identities = {row_identity(row) for row in rows}
    merged = [row for row in read_rows(folder) if row_identity(row) not in identities] + rows
    write_rows(folder, merged)
    return merged


# -------------------------------------------------------------------------------------------- report
def _pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.2f} %"


def _auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _epochs(record: dict[str, Any]) -> str:
    """``"91 epochs of at most 500 (early_stopping)"``; a capped training says so in capitals."""

    def epochs(n: int) -> str:
        return f"{n} epoch{'' if n == 1 else 's'}"

    text = f"{epochs(record['epochs_run'])} of at most {record['max_epochs']} ({record['stop_reason']})"
    if is_capped(record):
        return f"**CAPPED** at {epochs(record['max_epochs'])} (the protocol: 500): {text}"
    return text


def _training_records(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row's training records: one for a seed, a list for an ensemble, none for a preset."""
    records = row.get("training")
    return records if isinstance(records, list) else [records] if records else []


def _capped_label(row: dict[str, Any]) -> str:
    """`` [capped: 30 of 30 epochs, max_epochs]`` for a row of a capped training, else ``""``."""
    capped = [t for t in _training_records(row) if is_capped(t)]
    if not capped:
        return ""
    return (
        " [capped: "
        + "; ".join(f"{t['epochs_run']} of {t['max_epochs']} epochs, {t['stop_reason']}" for t in capped)
        + "]"
    )


def _per_class_cell(per_class: dict[int, float], decision: bool) -> str:
    """Each held-out class's AUROC (or share caught); beyond 10 classes the spread and the lowest five."""

    def text(value: float) -> str:
        return _pct(value) + " caught" if decision else f"{value:.3f}"

    items = sorted(per_class.items())
    if len(items) <= 10:
        return ", ".join(f"{c}: {text(v)}" for c, v in items)
    values = np.array([v for _, v in items])
    lowest = sorted(items, key=lambda item: item[1])[:5]
    return (
        f"{len(items)} classes: min {text(values.min())}, median {text(float(np.median(values)))}, "
        f"max {text(values.max())}; lowest: " + ", ".join(f"{c}: {text(v)}" for c, v in lowest)
    )


def _models_line(rows: list[dict[str, Any]]) -> str:
    """Every model of the rows with its training record (budget, epochs, stop reason)."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows if r["kind"] != "separability"):
        row = next(r for r in rows if r["model"] == model)
        if row["source"].startswith("preset:"):
            lines.append(
                f"- **{model}**: the shipped preset (`zoo.from_preset`), trained on {row['trained_on']}, "
                f"seed {row['model_seed']}"
            )
            continue
        parts = [
            f"seed {t['seed']}: {_epochs(t)}, "
            f"patience {t['es_patience']}, best epoch {t['best_epoch']}, validation accuracy "
            f"{_pct(t['val_accuracy'])}, {t['train_seconds']:.0f} s"
            + (f" ({t['train_cpu_seconds'] / 60:.0f} CPU-minutes)" if "train_cpu_seconds" in t else "")
            for t in _training_records(row)
        ]
        lines.append(
            f"- **{model}**: {row['trained_on']} (classes {_classes(row['hold_out'])} of the full dataset "
            f"held out), exports in `{row['source']}`; " + "; ".join(parts)
        )
    return "\n".join(lines)


def _calibration_section(rows: list[dict[str, Any]]) -> list[str]:
    """ECE and NLL before and after temperature scaling, per model and set."""
    cal_rows = [r for r in rows if r["kind"] == "calibration"]
    if not cal_rows:
        return []
    lines = [
        "## Calibration: expected calibration error before and after temperature scaling",
        "",
        "The temperature is fitted on the validation split only (negative log-likelihood); the fresh "
        "draws "
        "are the same classes' training and validation splits drawn with other seeds "
        "(`synthetic_spectra.config.fresh_draw`). ECE: 15 equal-width confidence bins. Noise floor: the "
        "mean "
        "ECE a perfectly calibrated model with the calibrated confidences would show on a set this size "
        "(labels drawn from its own probabilities, 50 draws; "
        "`zoo.inference.calibration.ece_noise_floor`).",
        "",
        "| model | set (data seed) | spectra | accuracy | T | ECE raw | ECE calibrated | noise floor | "
        "NLL raw | NLL calibrated |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in cal_rows:
        pairs.setdefault((r["model"], r["set"]), {})[r["stage"]] = r
    for (model, name), stages in pairs.items():
        raw, calibrated = stages["raw"], stages["calibrated"]
        lines.append(
            f"| {model} | {name} ({raw['data_seed']}) | {raw['size']} | {_pct(raw['accuracy'])} | "
            f"{calibrated['temperature']:.3f} | {_pct(raw['ece'])} | {_pct(calibrated['ece'])} | "
            f"{_pct(calibrated['ece_noise_floor'])} | "
            f"{raw['nll']:.3f} | {calibrated['nll']:.3f} |"
        )
    lines.append("")
    return lines


def _presets_section(rows: list[dict[str, Any]]) -> list[str]:
    """What the presets ship: temperature, thresholds, feature bank."""
    shipped = [r for r in rows if r["kind"] == "preset_calibration"]
    if not shipped:
        return []
    lines = [
        "## What the presets ship",
        "",
        "Both rules are fitted on the validation split: the softmax threshold rejects "
        f"{_pct(DEFAULT_RATE / 2)} of it, the feature-distance threshold the most that keeps the two "
        f"rules together at {_pct(DEFAULT_RATE)} (`zoo.inference.calibration.fit_calibration`). The "
        "bank: the first spectra of each training class, as many as fit in "
        "`zoo.inference.calibration.MAX_BANK_BYTES` (float16), k scaled to the share kept.",
        "",
        "| preset | temperature | softmax threshold | feature threshold (k) | bank (per class, size) | "
        "false alarms on validation: softmax / feature / together | fitted on |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in shipped:
        c = r["calibration"]
        rule, notes, bank = c.get("feature_distance"), c["notes"], r.get("feature_bank")
        feature = "–" if rule is None else f"{rule['threshold']:.4f} ({rule['k']})"
        kept = "–" if rule is None else f"{rule['notes']['bank']} ({bank['bytes'] / 1e6:.2f} MB)"
        alarms = (
            _pct(c["false_alarm_rate"])
            if rule is None
            else " / ".join(
                _pct(notes[key])
                for key in (
                    "softmax_false_alarm_rate",
                    "feature_false_alarm_rate",
                    "total_false_alarm_rate",
                )
            )
        )
        lines.append(
            f"| {r['model']} | {c['temperature']:.4f} | {c['threshold']:.4f} | {feature} | {kept} | "
            f"{alarms} | {notes['fitted_on']} |"
        )
    lines.append("")
    return lines


def _unseen_section(rows: list[dict[str, Any]]) -> list[str]:
    """Unseen classes: each score's AUROC, false alarms and unknowns caught, per experiment."""
    lines: list[str] = []
    for (known_set, capped), unseen in _experiments([r for r in rows if r["kind"] == "unseen"]):
        first = unseen[0]
        lines += [
            f"## Unseen classes: {first['trained_on']}" + (CAPPED_HEADING if capped else ""),
            "",
            f"Known: {known_set} ({first['known_size']} spectra); unknown: {first['unknown_set']} "
            f"({first['unknown_size']} spectra of the held-out classes {_classes(first['hold_out'])}). "
            f"Thresholds at {_pct(DEFAULT_RATE)} false alarms on the known classes' validation split, for "
            "each score its own; the shipped rule: the export's own thresholds."
            + (CAPPED_NOTE if capped else ""),
            "",
            "| model (seeds) | score | AUROC | false alarms (known) | unknowns caught | accuracy on accepted "
            "known (coverage) | per held-out class (class of the full dataset: AUROC; for the shipped rule "
            "the share caught) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in _by_model_and_score(unseen):
            decision = r["score"] in DECISIONS  # per class: the share caught, not an AUROC
            by_class = r["detected_per_held_out_class"] if decision else r["auroc_per_held_out_class"]
            per_class = {r["hold_out"][int(k)]: v for k, v in by_class.items()}
            lines.append(
                f"| {r['model']} ({', '.join(map(str, r['model_seeds']))}){_capped_label(r)} | "
                f"{SCORE_LABELS[r['score']]} | "
                f"{_auc(r['auroc'])} | {_pct(r['false_alarm_rate'])} | {_pct(r['detected'])} | "
                f"{_pct(r['known_accepted_accuracy'])} ({_pct(r['known_coverage'])}) | "
                f"{_per_class_cell(per_class, decision)} |"
            )
        lines.append("")
    return lines


def _bank_size_section(rows: list[dict[str, Any]]) -> list[str]:
    """The k-NN score with smaller banks, per experiment."""
    lines: list[str] = []
    for (known_set, capped), sized in _experiments([r for r in rows if r["kind"] == "bank_size"]):
        lines += [
            f"## How many training spectra the bank needs: {sized[0]['trained_on']}"
            + (CAPPED_HEADING if capped else ""),
            "",
            f"The k-NN score with a bank of the first spectra of each training class only, k scaled to the "
            f"share kept (`zoo.inference.calibration.scaled_k`, {KNN_K} for the full split); threshold at "
            f"{_pct(DEFAULT_RATE)} false alarms on the validation split; known ({known_set}) and unknown "
            f"({sized[0]['unknown_set']}) sets as above." + (CAPPED_NOTE if capped else ""),
            "",
            "| model (seeds) | per class (k) | bank: vectors × features, float16 | AUROC | false alarms "
            "(known) | unknowns caught |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in sized:
            lines.append(
                f"| {r['model']} ({', '.join(map(str, r['model_seeds']))}){_capped_label(r)} | "
                f"{r['per_class']} ({r['k']}) | "
                f"{r['bank_size']} × {r['features']}, {r['bank_bytes'] / 1e6:.2f} MB | {r['auroc']:.3f} | "
                f"{_pct(r['false_alarm_rate'])} | {_pct(r['detected'])} |"
            )
        lines.append("")
    return lines


def _perturbed_section(rows: list[dict[str, Any]]) -> list[str]:
    """Perturbed panel sets: coverage and accuracy on accepted spectra, per score."""
    perturbed = [r for r in rows if r["kind"] == "perturbed"]
    if not perturbed:
        return []
    lines = [
        '## Perturbed panel sets: is "unknown" right where the model would be wrong?',
        "",
        "Per model and set, each score with its threshold at 5 % false alarms on the validation split: "
        "accuracy on all spectra, the fraction accepted (coverage), the accuracy on the accepted ones "
        "(– where none is accepted), and the largest coverage at which the accepted spectra are at least "
        "as accurate as the clean validation split. AUROC: how well the score tells right from wrong "
        "predictions (– where all are right).",
        "",
    ]
    for score in ("temperature", "knn", "shipped"):
        chosen = [r for r in perturbed if r["score"] == score]
        if not chosen:
            continue
        lines += [
            f"### {SCORE_LABELS[score]}",
            "",
            "| model | set (seed) | spectra | accuracy | coverage | accuracy on accepted | "
            "clean validation "
            "accuracy | coverage at clean accuracy | AUROC right/wrong |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in chosen:
            mark = "" if r["accepted_accuracy"] >= r["clean_accuracy"] else " ✗"
            auc = _auc(r["auroc_wrong"])
            lines.append(
                f"| {r['model']} | {r['set']} ({r['data_seed']}) | {r['size']} | {_pct(r['accuracy'])} | "
                f"{_pct(r['coverage'])} | {_pct(r['accepted_accuracy'])}{mark} | "
                f"{_pct(r['clean_accuracy'])} | {_pct(r['coverage_at_clean_accuracy'])} | {auc} |"
            )
        lines.append("")
    lines += [
        "✗: below the clean validation accuracy at the threshold (or nothing accepted).",
        "",
        "Scores compared (mean over the perturbed sets):",
        "",
        "| model | score | mean AUROC right/wrong | mean coverage at threshold | "
        "mean accuracy on accepted "
        "| sets at or above clean accuracy | of the others: sets refused whole |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model in dict.fromkeys(r["model"] for r in perturbed):
        for score in SCORES:
            group = [r for r in perturbed if r["model"] == model and r["score"] == score]
            if not group:
                continue
            aucs = [r["auroc_wrong"] for r in group if r["auroc_wrong"] is not None]
            ok = sum(r["accepted_accuracy"] >= r["clean_accuracy"] for r in group)
            refused = sum(r["coverage"] == 0 for r in group)
            lines.append(
                f"| {model} | {SCORE_LABELS[score]} | {_auc(float(np.mean(aucs)) if aucs else None)} | "
                f"{_pct(float(np.mean([r['coverage'] for r in group])))} | "
                f"{_pct(_mean_accepted(group))} | {ok} of {len(group)} | {refused} |"
            )
    lines.append("")
    return lines


def write_report(out: Path) -> Path:
    """Regenerate ``out``'s report and figures from its rows (no model is evaluated); returns the report's
    path. A folder without rows is an error (one line, nothing written)."""
    rows = read_rows(out)
    if not rows:
        raise UserError(f"{out / ROWS_FILE}: no rows")
    study = [r for r in rows if "study" in r]  # the study's seeds and ensembles: a section of their own
    rows = [r for r in rows if "study" not in r]
    lines = [
        "# Calibration and unknown detection",
        "",
        "Generated by `python benchmarks/experiments/calibration.py report` from `rows.jsonl` "
        "(written by `evaluate`)."
        + (f" Measured on {measured_on(rows, lambda r: r.get('model', r['kind']))}." if rows else ""),
        "",
        "## Models",
        "",
        _models_line(rows),
        "",
    ]
    lines += study_section(study)
    lines += _calibration_section(rows)
    lines += _presets_section(rows)
    lines += _unseen_section(rows)
    lines += _bank_size_section(rows)
    lines += separability_section([r for r in rows if r["kind"] == "separability"])
    lines += temperature_fit_section([r for r in rows if r["kind"] == "temperature_fit"])
    lines += _perturbed_section(rows)
    figures = plot(rows, out)
    lines += ["## Figures", ""] + [f"- `{name}`: {what}" for name, what in figures] + [""]
    path = out / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def _load_level(load: str) -> tuple[float, str]:
    """Sort key of a load line (``load average 6.2/8.0/8.0 on 2 cores``): its first figure, numerically."""
    found = re.search(r"\d+(?:\.\d+)?", load)
    return (float(found.group()) if found else float("inf"), load)


def measured_on(rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> str:
    """Where ``rows`` were measured: the CPU and the loads while measuring (lowest to highest); where they
    come from several CPUs, each CPU with what was measured on it (``label`` names a row's unit)."""
    by_cpu: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_cpu.setdefault(row["hardware"], []).append(row)

    def loads(group: list[dict[str, Any]]) -> str:
        values = sorted({r["load"] for r in group if "load" in r}, key=_load_level)
        if not values:
            return "load not recorded"
        return values[0] + (f" to {values[-1]}" if len(values) > 1 else "")

    if len(by_cpu) == 1:
        return f"{rows[0]['hardware']}, {loads(rows)} (a shared machine)"
    return (
        "; ".join(
            f"{cpu} for {', '.join(dict.fromkeys(label(r) for r in group))}, {loads(group)}"
            for cpu, group in by_cpu.items()
        )
        + " (shared machines)"
    )


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def _ece_cell(stages: dict[str, dict[str, Any]] | None) -> str:
    """``"5.60 % → 2.10 %"``: ECE raw → after temperature."""
    if not stages:
        return "–"
    return f"{_pct(stages['raw']['ece'])} → {_pct(stages['calibrated']['ece'])}"


#: The calibration rows' stages: raw softmax, then temperature-scaled.
STAGES = ("raw", "calibrated")


def _goal(rows: list[dict[str, Any]]) -> list[bool]:
    """Per perturbed set: accuracy on the accepted spectra at least the clean validation accuracy."""
    return [r["accepted_accuracy"] >= r["clean_accuracy"] for r in rows]


def study_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on the study's exports: per setup, each seed's and the deep ensemble's ECE
    and the perturbed sets where the accepted spectra are as accurate as clean validation spectra."""
    if not rows:
        return []
    sets = list(dict.fromkeys(r["set"] for r in rows if r["kind"] == "calibration"))
    # the split each temperature was fitted on leads (by name: the rows' order depends on what ran first)
    own = {validation_key(r["trained_on"]) for r in rows}
    sets.sort(key=lambda name: name not in own)
    cal: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for r in (r for r in rows if r["kind"] == "calibration"):
        cal.setdefault(r["model"], {}).setdefault(r["set"], {})[r["stage"]] = r
    sizes = {r["set"]: r["size"] for r in rows if r["kind"] == "calibration"}
    perturbed = [r for r in rows if r["kind"] == "perturbed"]
    panel = list(dict.fromkeys(r["set"] for r in perturbed))
    first: dict[str, dict[str, Any]] = {}  # each model's first row, in the rows' order
    for r in rows:
        first.setdefault(r["model"], r)
    setups = list(dict.fromkeys(r["study"] for r in rows))
    members = {
        (setup, ensemble): [
            m for m in first if first[m]["study"] == setup and first[m]["ensemble"] == ensemble
        ]
        for setup in setups
        for ensemble in (False, True)
    }

    def name(model: str) -> str:
        seeds = ", ".join(map(str, first[model]["model_seeds"]))
        return f"**ensemble** ({seeds})" if first[model]["ensemble"] else f"{model} ({seeds})"

    def ece_line(setup: str, model: str) -> str:
        stages, record = cal.get(model, {}), first[model]["training"]
        validation = stages.get(sets[0], {}).get("calibrated")
        training = (
            "the seeds'"
            if isinstance(record, list)
            else f"{record['epochs_run']} epochs ({record['stop_reason']})"
        )
        fitted = (
            f"{_pct(validation['accuracy'])} | {validation['temperature']:.3f}" if validation else "– | –"
        )
        return (
            f"| {setup} | {name(model)} | {training} | {fitted} | "
            + " | ".join(_ece_cell(stages.get(s)) for s in sets)
            + " |"
        )

    lines = [
        "## The study's seeds and their deep ensemble",
        "",
        "Generated from the rows of `evaluate --part study`: the study's exports ("
        + ", ".join(sorted({p for r in rows for p in r["precision"]}))
        + ", trained to early stopping; training rows: "
        + ", ".join(f"`{f}`" for f in sorted({r["study_rows"] for r in rows}))
        + "), each seed on its own and the deep ensemble of a setup's seeds: its probability is the "
        "members' mean, its temperature is fitted, like each seed's, on the validation split "
        "(negative log-likelihood), on the log of that mean, i.e. `softmax(log(mean) / T)`. "
        f"Measured on {measured_on(rows, lambda r: r['study'])}. "
        "ECE as above (spectra per set in brackets): raw → after temperature.",
        "",
        "| setup | model (seeds) | training | validation accuracy | T | "
        + " | ".join(f"ECE {s} ({sizes[s]})" for s in sets)
        + " |",
        "|---|---|---|---:|---:|" + "---:|" * len(sets),
    ]
    for setup in setups:
        seeds = [m for m in members[(setup, False)] if m in cal]
        lines += [ece_line(setup, m) for m in seeds]
        medians = [
            " → ".join(
                _pct(_median([cal[m][s][stage]["ece"] for m in seeds if s in cal[m]])) for stage in STAGES
            )
            for s in sets
        ]
        accuracy = _median([cal[m][sets[0]]["raw"]["accuracy"] for m in seeds if sets[0] in cal[m]])
        lines.append(f"| {setup} | seeds' median | | {_pct(accuracy)} | | " + " | ".join(medians) + " |")
        lines += [ece_line(setup, m) for m in members[(setup, True)] if m in cal]
    lines.append("")
    if not perturbed:
        return lines
    lines += [
        f"On the {len(panel)} perturbed panel sets ({', '.join(panel)}): thresholds at {_pct(DEFAULT_RATE)} "
        "false alarms on the validation split; a set *meets the goal* when the accuracy on the spectra "
        "accepted is at least the model's own clean validation accuracy. Temperature-scaled probability "
        "first; the raw probability (the ensemble's: its mean probability) and the energy score (the "
        "ensemble's: its members' mean) for comparison.",
        "",
        "| setup | model (seeds) | clean validation accuracy | sets meeting the goal: temperature / raw / "
        "energy | mean coverage | mean accuracy on accepted | worst set: accuracy on accepted (coverage) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]

    def goal_line(setup: str, model: str) -> tuple[str, tuple[int, float, float]]:
        mine = [r for r in perturbed if r["model"] == model]
        by_score = {score: [r for r in mine if r["score"] == score] for score in SCORES}
        main, raw = by_score["temperature"], by_score["ensemble"] or by_score["msp"]
        worst = min(main, key=lambda r: np.nan_to_num(r["accepted_accuracy"]) - r["clean_accuracy"])
        summary = (sum(_goal(main)), float(np.mean([r["coverage"] for r in main])), _mean_accepted(main))
        return (
            f"| {setup} | {name(model)} | {_pct(main[0]['clean_accuracy'])} | {summary[0]} / "
            f"{sum(_goal(raw))} / {sum(_goal(by_score['energy']))} of {len(main)} | {_pct(summary[1])} | "
            f"{_pct(summary[2])} | {worst['set']}: {_pct(worst['accepted_accuracy'])} "
            f"({_pct(worst['coverage'])}) |",
            summary,
        )

    for setup in setups:
        scored = {r["model"] for r in perturbed if r["score"] == "temperature"}
        seeds = [goal_line(setup, m) for m in members[(setup, False)] if m in scored]
        lines += [line for line, _ in seeds]
        if seeds:
            met, coverage, accepted = (_median([summary[i] for _, summary in seeds]) for i in range(3))
            lines.append(
                f"| {setup} | seeds' median | | {met:g} of {len(panel)} (temperature) | {_pct(coverage)} | "
                f"{_pct(accepted)} | |"
            )
        lines += [goal_line(setup, m)[0] for m in members[(setup, True)] if m in scored]
    lines += [
        "",
        "Per set (temperature-scaled probability): the ensemble's accuracy on accepted spectra (coverage), "
        "✓ where it meets the goal; the seeds: how many meet it, their median accuracy on accepted (median "
        "coverage).",
        "",
        "| set | " + " | ".join(f"{s}: ensemble | {s}: seeds" for s in setups) + " |",
        "|---|" + "---:|---:|" * len(setups),
    ]
    for panel_set in panel:
        cells = []
        for setup in setups:
            chosen = [
                r
                for r in perturbed
                if (r["study"], r["set"], r["score"]) == (setup, panel_set, "temperature")
            ]
            ensemble = [r for r in chosen if r["ensemble"]]
            seeds = [r for r in chosen if not r["ensemble"]]
            cells.append(
                f"{_pct(ensemble[0]['accepted_accuracy'])} ({_pct(ensemble[0]['coverage'])})"
                + (" ✓" if _goal(ensemble)[0] else "")
                if ensemble
                else "–"
            )
            median_accepted = _median([r["accepted_accuracy"] for r in seeds])
            cells.append(
                f"{sum(_goal(seeds))} of {len(seeds)}; {_pct(median_accepted)} "
                f"({_pct(_median([r['coverage'] for r in seeds]))})"
            )
        lines.append(f"| {panel_set} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


CAPPED_HEADING = " — capped trainings, not at the protocol's end"
CAPPED_NOTE = (
    " **These models stopped at an epoch cap, not at the protocol's end** (early stopping with patience "
    "25 within at most 500 epochs): their numbers are not comparable with those of models trained to the "
    "protocol's end, and every row says how many epochs ran."
)


def _is_capped_row(row: dict[str, Any]) -> bool:
    """Whether a row comes from a capped training (its ``capped`` field, else its training records)."""
    if "capped" in row:
        return bool(row["capped"])
    return any(is_capped(t) for t in _training_records(row))


def _experiments(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, bool], list[dict[str, Any]]]]:
    """Rows grouped by (known set, capped), in first-seen order with the capped groups last."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["known_set"], _is_capped_row(row)), []).append(row)
    return sorted(groups.items(), key=lambda item: item[0][1])  # stable: first-seen order within


def _classes(labels: Sequence[int]) -> str:
    """``[6, 7, 8, 13]`` → ``"6-8, 13"``."""
    labels = sorted(labels)
    runs: list[list[int]] = []
    for label in labels:
        if runs and label == runs[-1][-1] + 1:
            runs[-1].append(label)
        else:
            runs.append([label])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _by_model_and_score(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by model (first-seen order), scores in :data:`SCORES` order within a model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    return sorted(rows, key=lambda r: (models.index(r["model"]), SCORES.index(r["score"])))


def _mean_accepted(group: list[dict[str, Any]]) -> float:
    """Mean accuracy on accepted spectra over the sets where any spectrum was accepted (NaN if none)."""
    values = [r["accepted_accuracy"] for r in group if r["accepted_accuracy"] == r["accepted_accuracy"]]
    return float(np.mean(values)) if values else float("nan")


def plot(rows: list[dict[str, Any]], out: Path) -> list[tuple[str, str]]:
    """reliability.png, coverage.png and unseen.png from the rows; returns (file, description) pairs."""
    from matplotlib import colormaps

    from zoo.study.plots import new_figure

    written = []
    cal_rows = [
        r
        for r in rows
        if r["kind"] == "calibration" and (r["set"].endswith("validation") or "train (" in r["set"])
    ]
    chosen = [r for r in cal_rows if r["set"].endswith(" validation") and "fresh" not in r["set"]]
    chosen += [r for r in cal_rows if "train (" in r["set"]]
    panels = list(dict.fromkeys((r["model"], r["set"]) for r in chosen))
    if panels:
        columns = max(2, (len(panels) + 1) // 2)
        figure = new_figure(3.2 * columns + 0.5, 6.4)
        for index, (model, name) in enumerate(panels):
            axes = figure.add_subplot(2, columns, index + 1)
            for r in (r for r in chosen if (r["model"], r["set"]) == (model, name)):
                bins = r["bins"]
                conf = [c for c in bins["confidence"]]
                acc = [a for a in bins["accuracy"]]
                keep = [i for i, c in enumerate(conf) if c is not None]
                axes.plot(
                    [conf[i] for i in keep],
                    [acc[i] for i in keep],
                    "o-",
                    ms=3,
                    label=f"{r['stage']} (T {r['temperature']:.2f}), ECE {100 * r['ece']:.1f} %",
                )
            axes.plot([0, 1], [0, 1], ":", color="grey")
            axes.set_title(f"{model}\n{name} (data seed {r['data_seed']}, {r['size']} spectra)", fontsize=7)
            axes.set_xlabel("confidence", fontsize=7)
            axes.set_ylabel("accuracy", fontsize=7)
            axes.legend(fontsize=6)
            axes.tick_params(labelsize=6)
        figure.suptitle(
            "Reliability diagrams: raw softmax against temperature-scaled (15 bins); presets of model seed "
            + ", ".join(sorted({str(r.get("model_seed")) for r in chosen}))
            + f"; rows: {out / ROWS_FILE}",
            fontsize=9,
        )
        figure.savefig(out / "reliability.png", dpi=110)
        written.append(
            ("reliability.png", "reliability diagrams of " + ", ".join(f"{m} on {n}" for m, n in panels))
        )
    perturbed = [r for r in rows if r["kind"] == "perturbed" and r["score"] == "temperature"]
    models = list(dict.fromkeys(r["model"] for r in perturbed))
    if models:
        columns = min(4, len(models))
        grid_rows = (len(models) + columns - 1) // columns
        figure = new_figure(4.0 * columns, 3.6 * grid_rows + 0.6)
        for index, model in enumerate(models):
            axes = figure.add_subplot(grid_rows, columns, index + 1)
            group = [r for r in perturbed if r["model"] == model]
            axes.set_prop_cycle(color=colormaps["tab20"].colors)  # 17 sets: one colour each
            for r in group:
                axes.plot(COVERAGE_GRID, r["curve"], lw=0.9, label=r["set"])
            axes.axhline(
                group[0]["clean_accuracy"], color="black", ls="--", lw=0.8, label="clean validation accuracy"
            )
            axes.set_title(
                f"{model} (seeds {group[0].get('model_seeds') or group[0].get('model_seed')})", fontsize=8
            )
            axes.set_xlabel("coverage (most confident first)", fontsize=7)
            axes.set_ylabel("accuracy on accepted", fontsize=7)
            axes.tick_params(labelsize=6)
            axes.set_ylim(0, 1.02)
        axes.legend(fontsize=5, loc="lower left", ncol=2)
        figure.suptitle(
            "Selective accuracy against coverage on the panel's perturbed sets "
            "(temperature-scaled probability; sets and data seeds: zoo.study.panel, in the rows)\n"
            f"rows: {out / ROWS_FILE}",
            fontsize=9,
        )
        figure.savefig(out / "coverage.png", dpi=110)
        written.append(
            ("coverage.png", "coverage curves of " + ", ".join(models) + " on the perturbed panel sets")
        )
    unseen = _by_model_and_score([r for r in rows if r["kind"] == "unseen" and r["score"] not in DECISIONS])
    if unseen:
        scored = list(dict.fromkeys((r["model"], r["score"]) for r in unseen))
        columns = 4
        figure = new_figure(3.2 * columns, 2.4 * ((len(scored) + columns - 1) // columns))
        for index, (model, score) in enumerate(scored):
            r = next(r for r in unseen if (r["model"], r["score"]) == (model, score))
            axes = figure.add_subplot((len(scored) + columns - 1) // columns, columns, index + 1)
            edges = np.linspace(*r["hist_range"], 21)
            for key, label in (("known_scores_hist", "known"), ("unknown_scores_hist", "held-out")):
                counts = np.asarray(r[key], float)
                axes.stairs(counts / max(counts.sum(), 1), edges, label=label)
            axes.axvline(r["threshold"], color="black", ls="--", lw=0.8)
            seeds = ",".join(map(str, r["model_seeds"]))
            capped = _capped_label(r).replace(" [", "\n[")
            axes.set_title(
                f"{model} (seeds {seeds}): {r['score']}, AUROC {r['auroc']:.3f}{capped}", fontsize=6
            )
            axes.tick_params(labelsize=6)
            axes.legend(fontsize=6)
        sets = dict.fromkeys(
            f"{r['known_set']} against {r['unknown_set']} (classes {_classes(r['hold_out'])})" for r in unseen
        )
        figure.suptitle(
            "Scores of known and held-out spectra:\n" + "\n".join(sets) + "\n"
            "dashed: the threshold at 5 % false alarms; model seeds (and any epoch cap) in each title; "
            f"rows: {out / ROWS_FILE}",
            fontsize=8,
        )
        figure.savefig(out / "unseen.png", dpi=110)
        written.append(
            (
                "unseen.png",
                "score histograms, known against held-out classes, for "
                + ", ".join(dict.fromkeys(m for m, _ in scored)),
            )
        )
    return written


def temperature_fit_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on fitting the temperature on the validation split or on a larger draw."""
    if not rows:
        return []
    lines = [
        "## Does a temperature fitted on more spectra calibrate better?",
        "",
        "Generated by `python benchmarks/experiments/calibration.py temperature-fit`: each preset's "
        "temperature fitted (negative log-likelihood) on its validation split and on a larger fresh draw of "
        f"the same classes (seed {FIT_SEED}: validation data drawn anew), both judged on another fresh draw "
        "with the ECE (15 bins) and that set's noise floor (the ECE a perfectly calibrated model shows on a "
        f"set that size). Measured on {measured_on(rows, lambda r: r['model'])}.",
        "",
        "| preset | judged on (spectra) | accuracy | ECE raw | fitted on (spectra) | T | ECE | noise floor |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['set']} ({r['size']:,}) | {_pct(r['accuracy'])} | {_pct(r['ece_raw'])} | "
            f"{r['stage'].rsplit(' (', 1)[0]} ({r['fit_size']:,}) | {r['temperature']:.3f} | "
            f"{_pct(r['ece'])} | {_pct(r['noise_floor'])} |"
        )
    return [*lines, ""]


def separability_section(rows: list[dict[str, Any]]) -> list[str]:
    """The report's section on which held-out classes can be detected at all (from ``separability``
    rows)."""
    lines: list[str] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        group = [r for r in rows if r["model"] == model]
        classes = [r for r in group if "label" in r]
        pooled = next(r for r in group if "label" not in r)
        lines += [
            f"## Which held-out classes can be detected at all: {pooled['trained_on']}",
            "",
            f"Generated by `python benchmarks/experiments/calibration.py separability` "
            f"(`zoo.study.ceiling.held_out_separability`; {pooled['seconds']:.0f} s). Each held-out "
            f"spectrum's peaks ({pooled['unknown_set']}; known: {pooled['known_set']}) are judged under the "
            "training distribution of the full dataset, as the Bayes ceiling does: which classes can have "
            "produced them, and how likely. *Producible*: the share of a held-out class's spectra that some "
            "known class can produce — no detector catches those without false alarms on known spectra, so "
            "at zero false alarms at most the rest is caught. *Explained as well*: the share a known class "
            "produces at least as likely as the held-out class itself. *Cost*: the share of the known "
            "classes' spectra the held-out class can produce — the false alarms a detector must raise to "
            "catch all of it. *Bayes AUROC*: the detector that knows both distributions (the posterior of "
            "held out, equal priors); by the Neyman-Pearson lemma no detector that sees the spectra does "
            "better. Nothing here depends on a model or was chosen by looking at scores.",
            "",
            f"**Bayes detector over all held-out classes: AUROC {pooled['bayes_auroc']:.4f}.**",
            "",
        ]
        if len(classes) <= 10:
            lines += [
                "| held-out class | nearest known classes (template distance: what differs) | producible | "
                "explained as well | known classes that produce its spectra (share) | cost | Bayes AUROC |",
                "|---:|---|---:|---:|---|---:|---:|",
            ]
            for r in classes:
                nearest = "; ".join(f"{k} ({d:.2f}: {words})" for k, d, words in r["nearest"]) or "–"
                producers = ", ".join(f"{k}: {_pct(v)}" for k, v in r["producers"].items()) or "none"
                lines.append(
                    f"| {r['label']} | {nearest} | {_pct(r['producible'])} | {_pct(r['explained'])} | "
                    f"{producers} | {_pct(r['cost'])} | {r['bayes_auroc']:.4f} |"
                )
        else:
            overlapping = [r for r in classes if r["producible"] > 0]
            lines.append(
                f"{len(classes)} held-out classes; {len(overlapping)} with spectra a known class can produce"
                + (
                    ": "
                    + ", ".join(
                        f"{r['label']} ({_pct(r['producible'])}, cost {_pct(r['cost'])})" for r in overlapping
                    )
                    if overlapping
                    else ""
                )
                + f". Bayes AUROC per class: min {min(r['bayes_auroc'] for r in classes):.4f}. Closest to a "
                "known class (template distance: what differs): "
                + "; ".join(
                    f"{r['label']} → {r['nearest'][0][0]} ({r['nearest'][0][1]:.2f}: {r['nearest'][0][2]})"
                    for r in sorted((r for r in classes if r["nearest"]), key=lambda r: r["nearest"][0][1])[
                        :3
                    ]
                )
                + "."
            )
        lines.append("")
    return lines
