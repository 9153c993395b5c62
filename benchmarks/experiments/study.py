"""Run the challenge study of Schuetzke et al. (2023) on this machine (resumable, skip-finished).

The plan for `challenge` (and `challenge_realistic`), cheapest first so that partial results are useful early:
  1. the eight published models × {linear, ReLU} FC activation (ResNet has no FC layers: one run),
  2. the five ablation variants (cnn_bn_mod, resnet_mod, cnn6_bn, cnn6_convdo, vgg_mod) at their
     published toggles,
  3. extra seeds for CNN6 and CNN2.
For `benchmark` (500 classes, a GPU job: `KERAS_BACKEND=jax python benchmarks/experiments/study.py
--dataset benchmark --max-epochs 500`) it is the paper's: the eight published models at their published FC
activation, seeds 0-4.
Every model is also tested on `challenge_realistic` (the robustness table of issue #7; `--cross-test`).
Every run uses the study's protocol (see `zoo.training.protocol.Protocol`) with an epoch cap (default 30 on a
2-core CPU; the paper allowed 500). Kill it at any time and rerun the same command: finished runs are
skipped, the interrupted one resumes at its last finished epoch. Then:

    spectrazoo report benchmarks/results/challenge/results.jsonl

Usage:  python benchmarks/experiments/study.py [--max-epochs 30] [--stage 1|2|3|all] [--fc linear,relu]
                                              [--out DIR]
"""

from __future__ import annotations

import argparse

from synthetic_spectra.config import DatasetConfig, get_config
from zoo.checks import OneLineParser
from zoo.errors import UserError
from zoo.study import paper
from zoo.tfquiet import import_tensorflow_quietly
from zoo.training.data import check_cross_tests
from zoo.training.protocol import Protocol, RunSpec, plan_runs
from zoo.training.runner import run_benchmark

#: The published models from the study's plan (``zoo.study.paper``, cheapest first); those without hidden FC
#: layers (ResNet) have no FC activation to vary: one run at their published setup.
PUBLISHED_BY_COST = tuple(model for model, variant in paper.BENCHMARK_PAPER_SETUPS if variant != "default")
NO_FC = tuple(model for model, variant in paper.BENCHMARK_PAPER_SETUPS if variant == "default")
#: The ablation study's variants (the models after the eight published ones in the paper's order).
VARIANTS_BY_COST = paper.MODEL_ORDER[8:]
#: Robustness (issue #7): models trained on one set are also tested on the other.
CROSS_TESTS = {"challenge": ("challenge_realistic",), "challenge_realistic": ("challenge",)}


#: The FC activations the challenge plan compares.
FC_ACTIVATIONS = ("linear", "relu")


def study_plan(
    dataset: str | DatasetConfig = "challenge", stage: str = "all", fc: tuple[str, ...] = FC_ACTIVATIONS
) -> list[RunSpec]:
    """The runs of the study, in the order they are trained.

    ``fc`` keeps only the runs of those FC activations (runs without that choice — ResNet, the ablation
    variants at their published setup — stay). ``benchmark`` (and configs derived from it) get the paper's
    500-class study instead: the eight original models in the paper's setup
    (``paper.BENCHMARK_PAPER_SETUPS``), seeds 0–4 (stage 1 only). ``dataset`` is resolved to its config
    here, once.
    """
    config = get_config(dataset)
    unknown = sorted(set(fc) - set(FC_ACTIVATIONS))
    if unknown or not fc:
        raise ValueError(
            f"--fc: choose from {', '.join(FC_ACTIVATIONS)}, got {', '.join(unknown) or 'nothing'}"
        )
    if config.name.startswith("benchmark"):
        if stage not in ("1", "all"):
            return []
        setups = paper.BENCHMARK_PAPER_SETUPS
        return [
            spec for model, variant in setups for spec in plan_runs(config, (model,), (variant,), paper.SEEDS)
        ]
    stages = {
        "1": plan_runs(config, PUBLISHED_BY_COST, fc, seeds=(0,))
        + plan_runs(config, NO_FC, ("default",), seeds=(0,)),
        "2": plan_runs(config, VARIANTS_BY_COST, ("default",), seeds=(0,)),
        "3": plan_runs(config, ("cnn2", "cnn6"), fc, seeds=(1, 2)),
    }
    return [spec for key in (stages if stage == "all" else [stage]) for spec in stages[key]]


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="challenge")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--stage", default="all", choices=("1", "2", "3", "all"))
    parser.add_argument(
        "--fc",
        default=",".join(FC_ACTIVATIONS),
        help="comma-separated FC activations to train (default both; relu alone: a shorter robustness study)",
    )
    parser.add_argument("--out", default=None, help="default benchmarks/results/<dataset>")
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument(
        "--cross-test",
        default=None,
        help="comma-separated configs whose test splits every model is also evaluated on (default: "
        "challenge_realistic for challenge and challenge for challenge_realistic: the robustness table)",
    )
    args = parser.parse_args()
    import_tensorflow_quietly()  # validation builds Keras objects: TF's C++ start-up lines stay off stderr
    cross_tests = (
        CROSS_TESTS.get(args.dataset, ())
        if args.cross_test is None
        else [name.strip() for name in args.cross_test.split(",") if name.strip()]
    )
    try:  # a bad argument is one line and exit status 2, before anything is trained
        config = get_config(args.dataset)
        cross_configs = [get_config(name) for name in cross_tests]
        fc = tuple(name.strip() for name in args.fc.split(",") if name.strip())
        plan, protocol = study_plan(config, args.stage, fc), Protocol(max_epochs=args.max_epochs)
        check_cross_tests(config, cross_configs)
    except (ValueError, UserError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    run_benchmark(
        plan,
        protocol,
        args.out or f"benchmarks/results/{args.dataset}",
        saved_models_dir=args.saved_models,
        cross_tests=cross_configs,
    )


if __name__ == "__main__":
    main()
