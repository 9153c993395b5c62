"""``spectrazoo predict``: classify spectra in files with an exported model.

All files are read and every spectrum is validated before anything is predicted or printed: one
bad file (missing, unreadable, NaN, wrong length, ...) stops the command with a one-line error on
stderr, exit status 2 and nothing on stdout. Results are printed only once every file succeeded.

Probabilities are the model's calibrated ones (:mod:`zoo.inference.calibration`). A model whose export
carries an unknown threshold calls a spectrum whose top probability is below it ``unknown``, and so does
one with a feature rule where the spectrum's features lie far from every training spectrum's (either rule
fires): the table gets a ``call`` column (the best class, or ``unknown`` with the best guess and its
probability beside it), JSON and CSV an ``unknown`` field; JSON also the ``feature_score`` and the model's
``feature_threshold``. Where the export has a confidence map (the chance that the best class is right, as
measured on many labelled spectra), the table and CSV get a ``confidence`` column; JSON gives every
prediction's ``confidence`` (without a map, the best class's probability).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.checks import int_argument

if TYPE_CHECKING:
    from zoo.inference.spectra_io import SpectraFile

FORMATS: tuple[str, ...] = ("table", "json", "csv")


@dataclass(frozen=True)
class Record:
    """The top classes of one input spectrum."""

    name: str
    file: str
    row: int | None
    resampled_from: int | None
    top: list[tuple[str, float]]
    unknown: bool = False
    feature_score: float | None = None
    #: the chance that the best class is right (its probability without a confidence map)
    confidence: float | None = None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` sub-command."""
    parser = subparsers.add_parser(
        "predict",
        help="classify spectra in files with an exported model",
        description=(
            "Classify spectra read from .npy (1-D or 2-D), .npz, .csv/.tsv/.txt/.xy/.dat files (one spectrum "
            "per row, or two columns x,y holding one spectrum; header and # comment lines are skipped). "
            "Every file is validated first: one bad file stops the command before anything is printed."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="spectra files or glob patterns")
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="export directory (zoo.export), .keras file or preset:NAME (spectrazoo preset list)",
    )
    parser.add_argument("--top-k", type=int_argument(1), default=3, metavar="K", help="classes to show (3)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (table)")
    parser.add_argument(
        "--batch-size", type=int_argument(1), default=128, metavar="B", help="batch size (128)"
    )
    parser.add_argument(
        "--resample",
        action="store_true",
        help="linearly interpolate spectra of another length onto the model's input grid",
    )
    parser.add_argument(
        "--x-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="the model's input grid in the files' x units (e.g. the 2θ range it was trained on): two-column "
        "files are cropped to LOW..HIGH and interpolated onto the model's points",
    )
    parser.set_defaults(handler=run, needs_tensorflow=False)  # imported once the files have been read


def run(args: argparse.Namespace) -> int:
    """Read and validate every file, predict, then print the results."""
    import numpy as np

    from zoo.inference.spectra_io import check_range, check_x_range, read_many
    from zoo.tfquiet import import_tensorflow_quietly

    if args.x_range is not None:
        check_range(args.x_range)  # a bad range is the range's fault, not the first file's
    files = read_many(args.files)  # NumPy only: a bad file is reported before TensorFlow's import
    if args.x_range is not None:
        for spectra_file in files:
            try:
                check_x_range(args.x_range, spectra_file.axis)
            except ValueError as exc:
                raise ValueError(f"{spectra_file.path}: {exc}") from None
    import_tensorflow_quietly()
    from zoo.inference.predict import load

    predictor = load(args.model, batch_size=args.batch_size)
    top_k = predictor.check_top_k(args.top_k)
    batches = [
        predictor.prepare(
            f.spectra, resample=args.resample, axis=f.axis, names=f.row_names(), x_range=args.x_range
        )
        for f in files
    ]
    identified = predictor.identify(np.concatenate(batches))
    tops = iter(predictor.top_classes(identified.probabilities, top_k))
    unknown = iter(identified.unknown.tolist())
    confidence = iter(identified.confidence.tolist())
    scores = iter([None] * len(identified.unknown) if identified.feature_score is None
                  else identified.feature_score.tolist())  # fmt: skip
    records = [
        Record(
            name,
            str(f.path),
            None if f.single else row,
            _resampled_from(f, predictor.datapoints, args.x_range),
            next(tops),
            next(unknown),
            next(scores),
            next(confidence),
        )
        for f in files
        for row, name in enumerate(f.row_names())
    ]
    if predictor.note:
        sys.stderr.write(f"note: {predictor.note}\n")
    threshold, rule = predictor.calibration.threshold, predictor.calibration.feature_distance
    mapped = predictor.calibration.confidence_map is not None
    if args.format == "json":
        feature_threshold = None if rule is None else rule.threshold
        text = format_json(records, str(args.model), threshold, feature_threshold, mapped=mapped)
    else:
        text = FORMATTERS[args.format](records, str(args.model), threshold, mapped=mapped)
    sys.stdout.write(text)
    return 0


def format_table(
    records: Sequence[Record], model: str, threshold: float | None = None, *, mapped: bool = False
) -> str:
    """Aligned columns: input, the call (with a threshold: the best class or ``unknown``), the confidence
    (``mapped``: the export has a confidence map), then class and probability for each rank, and a
    resampling note."""
    k = len(records[0].top)
    called = threshold is not None
    header = ["input"] + (["call"] if called else []) + (["confidence"] if mapped else [])
    header += [f"{label}{rank}" for rank in range(1, k + 1) for label in ("class", "p")]
    rows = [
        [r.name]
        + ([_call(r)] if called else [])
        + ([f"{r.confidence:.4f}"] if mapped else [])
        + [cell for name, p in r.top for cell in (name, f"{p:.4f}")]
        for r in records
    ]
    if any(r.resampled_from for r in records):
        header.append("note")
        for row, record in zip(rows, records, strict=True):
            row.append(f"resampled from {record.resampled_from} points" if record.resampled_from else "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def format_json(
    records: Sequence[Record],
    model: str,
    threshold: float | None = None,
    feature_threshold: float | None = None,
    *,
    mapped: bool = False,
) -> str:
    """One JSON document: the model path, its unknown threshold and feature threshold (null: none),
    whether its confidence goes through a confidence map (``mapped``) and, per input, the call (best class
    or ``unknown``), the confidence, ``unknown``, the feature score (null without a feature rule) and its
    top classes."""
    predictions = [
        {
            "input": r.name,
            "file": r.file,
            "row": r.row,
            "resampled_from": r.resampled_from,
            "call": _call(r),
            "confidence": r.confidence,
            "unknown": r.unknown,
            "feature_score": r.feature_score,
            "top_k": [{"class": name, "probability": p} for name, p in r.top],
        }
        for r in records
    ]
    document = {
        "model": model,
        "unknown_threshold": threshold,
        "feature_threshold": feature_threshold,
        "confidence_map": mapped,
        "predictions": predictions,
    }
    return json.dumps(document, indent=2) + "\n"


def format_csv(
    records: Sequence[Record], model: str, threshold: float | None = None, *, mapped: bool = False
) -> str:
    """Long CSV: one line per input and rank (``file,row,rank,class,probability,resampled_from,unknown``
    and, ``mapped``, ``confidence``; ``unknown`` and ``confidence`` are the input's, on each of its lines)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["file", "row", "rank", "class", "probability", "resampled_from", "unknown"]
    writer.writerow(header + (["confidence"] if mapped else []))
    for r in records:
        for rank, (name, p) in enumerate(r.top, start=1):
            writer.writerow(
                [r.file, "" if r.row is None else r.row, rank, name, f"{p:.6g}", r.resampled_from or "",
                 str(r.unknown).lower()] + ([f"{r.confidence:.6g}"] if mapped else [])
            )  # fmt: skip
    return buffer.getvalue()


def _call(record: Record) -> str:
    """The best class, or ``unknown`` when its probability is below the model's threshold."""
    return "unknown" if record.unknown else record.top[0][0]


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}


def _resampled_from(
    spectra_file: SpectraFile, datapoints: int, x_range: Sequence[float] | None = None
) -> int | None:
    """The file's points where they were interpolated onto the model's grid (other length, or x range)."""
    points = spectra_file.spectra.shape[1]
    return points if points != datapoints or x_range is not None else None
