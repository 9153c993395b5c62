"""``spectrazoo tune``: KerasTuner search over a zoo model's FC activation, dropout and BN toggles."""

from __future__ import annotations

import argparse
from typing import Any

from zoo.errors import UserError

#: Spellings of the batch-norm choices on the command line.
_BOOLEANS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def register(subparsers: Any) -> None:
    """Add the ``tune`` sub-command."""
    parser = subparsers.add_parser(
        "tune",
        help="search FC activation, dropout and batch norm of a model with KerasTuner",
        description="Search the toggles of a zoo model (FC activation, FC/conv dropout, batch norm; "
        "optionally FC widths and learning rate) on the train/validation splits with the study's pipeline "
        "and callbacks. Writes a trials table (CSV, markdown) and best_hparams.json (`benchmark --hparams`), "
        "then retrains the best configuration, reports its test accuracy and exports it. Rerunning with the "
        "same project dir resumes the search. Distributed: set KERASTUNER_TUNER_ID (chief / worker ids), "
        "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT and start the same command once per process.",
    )
    parser.add_argument("--dataset", required=True, help="built-in config (challenge, mini, ...) or file")
    parser.add_argument("--base", default="cnn6", help="model to tune (default cnn6)")
    parser.add_argument("--tuner", default="random", choices=("grid", "random", "bayesian", "hyperband"))
    parser.add_argument("--max-trials", type=int, default=10, help="trials in total, resumed ones included")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (Hyperband: its max_epochs)")
    parser.add_argument("--executions-per-trial", type=int, default=1, help="trainings per trial, averaged")
    parser.add_argument("--objective", default="val_accuracy", choices=("val_accuracy", "val_loss"))
    parser.add_argument("--project-dir", help="KerasTuner state (default runs/tuning/DATASET-BASE-TUNER)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start the project over instead of resuming (and replace an existing export of the retrained "
        "model made by another search or run)",
    )
    parser.add_argument("--seed", type=int, default=0, help="tuner, shuffle and model seed (default 0)")
    space = parser.add_argument_group(
        "search space", "LOW:HIGH[:STEP] searches a range, one value fixes it; lists are comma-separated"
    )
    space.add_argument("--fc-activation", help="e.g. linear,relu (default linear,relu,elu,gelu,swish,tanh)")
    space.add_argument("--fc-dropout", help="e.g. 0:0.8:0.1 (the default) or 0.5")
    space.add_argument("--conv-dropout", help="e.g. 0:0.5:0.1 (the default) or 0")
    space.add_argument("--batch-norm", help="on,off (the default), on or off")
    space.add_argument("--fc-widths", help="e.g. 3100-1200,2000-500 (default: the model's own widths)")
    space.add_argument("--learning-rate", help="e.g. 1e-4:1e-3 (log scale) or 3e-4 (the default)")
    training = parser.add_argument_group("training")
    training.add_argument("--batch-size", type=int, default=128)
    training.add_argument("--es-patience", type=int, default=25, help="EarlyStopping patience")
    training.add_argument("--lr-patience", type=int, default=10, help="ReduceLROnPlateau patience")
    training.add_argument(
        "--final-epochs", type=int, help="epochs of the retrained best model (default --epochs; 0: skip)"
    )
    training.add_argument(
        "--batch-norm-statistics",
        default="moving",
        choices=("moving", "precise"),
        help="'precise': every trial with batch norm re-estimates its statistics from the training split "
        "before each validation (default 'moving', Keras's moving averages, the study's protocol)",
    )
    parser.add_argument("--out", help="folder of trials.csv/.md and best_hparams.json (default: project dir)")
    parser.add_argument("--saved-models", default="saved_models", help="export root (default saved_models)")
    parser.add_argument("--no-export", action="store_true", help="do not export the retrained best model")
    parser.add_argument("--data-dir", help="TFDS data directory")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.set_defaults(handler=run, needs_tensorflow=False)  # imported once the names are checked


def _items(option: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UserError(f"{option}: empty value in {text!r}")
    return items


def _number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{option}: expected a number, got {text!r}") from None


def parse_range(option: str, text: str) -> float | tuple[float, ...]:
    """``"0.5"`` → ``0.5`` (fixed); ``"0:0.8"`` → ``(0.0, 0.8)``; ``"0:0.8:0.1"`` → with a step."""
    parts = text.split(":")
    if len(parts) > 3:
        raise UserError(f"{option}: expected VALUE, LOW:HIGH or LOW:HIGH:STEP, got {text!r}")
    numbers = tuple(_number(option, part.strip()) for part in parts)
    return numbers[0] if len(numbers) == 1 else numbers


def parse_booleans(option: str, text: str) -> list[bool]:
    """``"on,off"`` → ``[True, False]`` (also true/false, yes/no)."""
    values = []
    for item in _items(option, text):
        if item.lower() not in _BOOLEANS:
            raise UserError(f"{option}: expected on/off, got {item!r}")
        values.append(_BOOLEANS[item.lower()])
    return values


def parse_widths(option: str, text: str) -> list[tuple[int, ...]]:
    """``"3100-1200,2000-500"`` → ``[(3100, 1200), (2000, 500)]``."""
    choices = []
    for item in _items(option, text):
        try:
            choices.append(tuple(int(width) for width in item.split("-")))
        except ValueError:
            raise UserError(f"{option}: expected widths like 3100-1200, got {item!r}") from None
    return choices


def search_space(args: argparse.Namespace) -> Any:
    """The :class:`zoo.training.tuning.SearchSpace` of the defaults narrowed by the search-space options."""
    from zoo.training.tuning import SearchSpace

    parsers = {
        "fc_activation": _items,
        "fc_dropout": parse_range,
        "conv_dropout": parse_range,
        "batch_norm": parse_booleans,
        "fc_widths": parse_widths,
        "learning_rate": parse_range,
    }
    changes = {
        name: parse(f"--{name.replace('_', '-')}", getattr(args, name))
        for name, parse in parsers.items()
        if getattr(args, name) is not None
    }
    return SearchSpace().narrowed(**changes)


def run(args: argparse.Namespace) -> int:
    """Validate everything (nothing is trained on a bad argument), then search, tabulate and retrain."""
    from synthetic_spectra.config import get_config
    from zoo.models.registry import list_models
    from zoo.paths import check_output_dir
    from zoo.tfquiet import import_tensorflow_quietly
    from zoo.training.protocol import Protocol
    from zoo.training.runner import check_data_dir

    if args.base not in list_models():
        raise UserError(f"--base: unknown model {args.base!r}; choose one of {', '.join(list_models())}")
    for option, path in (("--project-dir", args.project_dir or "runs/tuning"), ("--out", args.out),
                         ("--saved-models", None if args.no_export else args.saved_models)):  # fmt: skip
        if path is not None:
            check_output_dir(path, option)
    if args.data_dir is not None:
        check_data_dir(args.data_dir)
    protocol = Protocol(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        es_patience=args.es_patience,
        lr_patience=args.lr_patience,
    )
    config = get_config(args.dataset)
    import_tensorflow_quietly()  # the search space and the tuner are Keras objects
    from zoo.training.tuning import run_search

    result = run_search(
        config,
        args.base,
        tuner=args.tuner,
        max_trials=args.max_trials,
        executions_per_trial=args.executions_per_trial,
        space=search_space(args),
        objective=args.objective,
        protocol=protocol,
        project_dir=args.project_dir,
        overwrite=args.overwrite,
        seed=args.seed,
        final_epochs=args.final_epochs,
        out_dir=args.out,
        saved_models_dir=None if args.no_export else args.saved_models,
        data_dir=args.data_dir,
        verbose=0 if args.quiet else 2,
        batch_norm_statistics=args.batch_norm_statistics,
    )
    if result.role == "worker":
        print(f"worker finished: ran trials {', '.join(result.trials_run) or 'none'}")
        return 0
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    return 0
