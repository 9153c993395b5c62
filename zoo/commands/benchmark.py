"""``spectrazoo benchmark``: train models with the study's protocol and record the results."""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError

if TYPE_CHECKING:
    from synthetic_spectra.augment import Augmentation


def register(subparsers: Any) -> None:
    """Add the ``benchmark`` sub-command."""
    parser = subparsers.add_parser(
        "benchmark",
        help="train (model, FC activation, seed) runs with the study's protocol",
        description="Train every (model, FC activation, seed) combination with the protocol of "
        "Schuetzke et al. (2023), evaluate on the test split, export to OUT/saved_models/ and append a "
        "row per run to OUT/results.jsonl. Finished runs are skipped; killed runs resume.",
    )
    parser.add_argument(
        "--dataset", required=True, help="a built-in config (benchmark, challenge, ...) or a config file"
    )
    parser.add_argument("--models", required=True, help="comma-separated model names, or 'all'")
    parser.add_argument(
        "--fc-activation",
        default="default",
        help="comma-separated FC activations (e.g. linear,relu); 'default' = each model's published one",
    )
    parser.add_argument("--seeds", default="0", help="e.g. 0-4 or 0,2,5 (default 0)")
    parser.add_argument("--max-epochs", type=int, default=500, help="epoch cap (default 500, the paper's)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr-factor", type=float, default=0.5, help="ReduceLROnPlateau factor (paper 0.5)")
    parser.add_argument("--lr-patience", type=int, default=10)
    parser.add_argument("--es-patience", type=int, default=25)
    parser.add_argument("--hparams", help="JSON file of toggles applied to every run (e.g. from `tune`)")
    parser.add_argument("--out", help="results folder (default benchmarks/results/<dataset>)")
    parser.add_argument("--saved-models", metavar="DIR", help="export root (default OUT/saved_models)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing exports of these runs")
    parser.add_argument("--no-export", action="store_true", help="do not export the trained models")
    parser.add_argument("--data-dir", help="TFDS data directory")
    parser.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker"))
    parser.add_argument(
        "--cross-test",
        default="",
        help="comma-separated dataset configs (same classes and length) whose test splits every trained "
        "model is also evaluated on, e.g. challenge_realistic (robustness)",
    )
    parser.add_argument(
        "--augment",
        metavar="NAME|JSON|FILE",
        help="training-time augmentation, re-drawn every epoch: a preset (noise, background, shape, shift, "
        "realistic, all), a JSON object of realistic sections or a .json file; recorded in each row",
    )
    parser.add_argument(
        "--batch-norm-statistics",
        default="moving",
        choices=("moving", "precise"),
        help="the statistics batch-norm layers use in validation, test and export: 'moving', Keras's moving "
        "averages (the paper's protocol), or 'precise', re-estimated from the training spectra before every "
        "validation (variants end in -precisebn; every model must have batch norm)",
    )
    parser.add_argument("--quiet", action="store_true", help="one line per run instead of one per epoch")
    parser.add_argument(
        "--skip-busy",
        action="store_true",
        help="leave a run that another process is training to it (several processes share one --out)",
    )
    parser.set_defaults(handler=run, needs_tensorflow=False)  # imported once the names are checked


#: A toggles file is a few lines; anything larger is refused before it is read.
MAX_HPARAMS_BYTES = 1 << 20


def read_hparams(path: str) -> dict[str, Any]:
    """Toggles from a JSON file: either the toggles themselves or ``{"toggles": {...}}``."""
    from synthetic_spectra.config import check_size

    file = pathlib.Path(path)
    if not file.is_file():
        raise UserError(f"--hparams: no such file {path!r}")
    if file.stat().st_size > MAX_HPARAMS_BYTES:
        raise UserError(
            f"--hparams: {path} is larger than {MAX_HPARAMS_BYTES // 2**20} MiB: not a toggles file"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except RecursionError:
        raise UserError(f"--hparams: {path} is nested too deeply to read") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--hparams: {path} is not valid JSON ({exc})") from None
    check_size(data, f"--hparams: {path}", max_depth=10, max_values=10_000)
    toggles = data.get("toggles", data) if isinstance(data, dict) else None
    if not isinstance(toggles, dict):
        raise UserError(f"--hparams: {path} must hold a JSON object of toggles")
    return toggles


def read_augment(text: str) -> Augmentation:
    """The ``--augment`` value (a preset, inline JSON or a .json file); UserError naming what is wrong."""
    from synthetic_spectra.augment import parse_augmentation

    try:
        return parse_augmentation(text)
    except ValueError as exc:  # "augment.noise.snr: ..." -> "--augment: noise.snr: ..."
        message = str(exc)
        if message.startswith("augment"):
            message = message.removeprefix("augment").lstrip(".:").lstrip()
        raise UserError(f"--augment: {message}") from None


def run(args: argparse.Namespace) -> int:
    """Validate everything first (nothing is trained on a bad argument), then run the study."""
    from synthetic_spectra.config import get_config
    from zoo.models.registry import get_model_info, list_models
    from zoo.tfquiet import import_tensorflow_quietly
    from zoo.training.protocol import Protocol, parse_seeds, plan_runs
    from zoo.training.runner import check_output_dirs, run_benchmark

    config = get_config(args.dataset)
    models = (
        list_models() if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    )
    if not models:
        raise UserError("--models: no model named")
    for model in models:
        get_model_info(model)
    activations = [a.strip() for a in args.fc_activation.split(",") if a.strip()] or ["default"]
    protocol = Protocol(
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        lr_factor=args.lr_factor,
        lr_patience=args.lr_patience,
        es_patience=args.es_patience,
    )
    hparams = read_hparams(args.hparams) if args.hparams else None
    augment = read_augment(args.augment) if args.augment is not None else None
    seeds = parse_seeds(args.seeds)
    if args.batch_norm_statistics == "precise" and args.strategy == "multiworker":
        raise UserError("--batch-norm-statistics precise: not supported with --strategy multiworker")
    out = pathlib.Path(args.out or f"benchmarks/results/{config.name}")
    saved_models = None if args.no_export else pathlib.Path(args.saved_models or out / "saved_models")
    check_output_dirs(out, saved_models_dir=saved_models, data_dir=args.data_dir)
    cross_tests = [get_config(name.strip()) for name in args.cross_test.split(",") if name.strip()]
    import_tensorflow_quietly()  # the names, files and folders above are checked without it (seconds)
    specs = plan_runs(
        config, models, activations, seeds, hparams=hparams,
        variant_suffix="-tuned" if hparams else "", augment=augment,
        batch_norm_statistics=args.batch_norm_statistics,
    )  # fmt: skip
    run_benchmark(
        specs,
        protocol,
        out,
        saved_models_dir=saved_models,
        data_dir=args.data_dir,
        strategy=args.strategy,
        cross_tests=cross_tests,
        verbose=0 if args.quiet else 2,
        overwrite_exports=args.overwrite,
        skip_busy=args.skip_busy,
    )
    return 0
