"""The study to the protocol's end on this machine: the campaign of issue #14 (resumable, skip-finished).

No epoch cap: every run trains until early stopping (patience 25, min_delta 1e-4, best weights restored)
or 500 epochs, with the study's protocol (`zoo.training.protocol.Protocol`). Rows go to
`benchmarks/results/<dataset>_converged/results.jsonl`, never mixed with the 30-epoch rows of
`benchmarks/results/<dataset>/`.

The study itself, in float32 as the paper trained, five seeds (groups 12-14, run first by default; their rows
go to ``benchmarks/results/study/<dataset>/results.jsonl``, the only rows set beside the paper's figures):

  12. challenge, seeds 0-4 of every setup the paper's claims rest on (``paper.CHALLENGE_CLAIM_SETUPS``):
      VGG and CNN2 with ReLU and linear FC, vgg_mod, cnn_bn_mod, CNN6 both ways, cnn6_convdo, cnn6_bn,
      cnn_bn (ReLU), resnet_mod, resnet — each setup's five seeds in a row, cheapest claims first;
  14. benchmark, seed 0 of the original models in the paper's setup (``paper.BENCHMARK_PAPER_SETUPS``);
  13. challenge, seeds 0-4 of the remaining published setups (CNN3, CNN BN linear, INC3, INC6 last);
  15. challenge, seeds 0-4 of the converged toggle search's best VGG configuration
      (``benchmarks/results/tuning_converged/best_hparams.json``), once all 32 configurations are done.

Beyond the paper, with the study's protocol in float32 except for one change (rows in
``benchmarks/results/precise_bn/<dataset>/``, never in the study's tables):

  16. challenge, seeds 0-4 of the setups with batch norm whose verdicts the moving statistics may decide,
      ResNet and CNN6 BN, with batch-norm statistics re-estimated from the training spectra before every
      validation (``--batch-norm-statistics precise``, variants ``-precisebn``); both seeds 0 first.

Earlier groups (mixed precision where the CPU has native bfloat16, seed 0; labelled extra rows):

  1. challenge, seed 0: vgg relu, cnn2 relu, cnn2 linear, vgg linear, cnn3 relu, cnn6 relu, cnn6 linear
     ("CNN6 best, ~90 %" and "ReLU beats linear");
  2. challenge, seed 0: resnet_mod, cnn6_convdo, cnn6_bn, vgg_mod, cnn_bn relu, cnn_bn_mod, inc3 relu,
     resnet (the ablation pairs; resnet, the original side of resnet -> resnet_mod, moved here from group 5
     on 2026-12-02 so that all five ablations are judged from groups 1-2);
  3. benchmark (500 classes), seed 0: vgg relu, cnn2 relu, cnn6 relu ("every model >= 98.9 %");
  4. challenge, seeds 1-4: vgg, cnn2, cnn6, relu and linear (the paper's five seeds);
  5. challenge, seed 0: cnn3 linear, inc3 linear, inc6 relu, inc6 linear, cnn_bn linear.

Group 7 (issue #17), after groups 1-2: the new architectures whose `challenge` epoch is cheap here
(oviedo, park, mozaffari, vecsei, bhattacharya; then fan and schuetzke, which a quiet run of
`benchmarks/measure/throughput.py` (run 5) measured at 92 and 47 training spectra/s, CNN6's range (87.5);
seed 0, published defaults); sang (15.3 spectra/s, 5.7x CNN6's epoch) is left out at a 500-epoch limit.
Group 6, run after group 1 by default: PRNet (this project's model) on challenge, seed 0, so that a
converged PRNet exists for the presets (issue #19; ~15 min, cheaper than any group-2 run).
Group 8 (issue #15's generalisation panel): PRNet with its robust option, seed 0, trained on
challenge_realistic (rows in `challenge_realistic_converged/`, cross-tested on challenge) and on challenge.
Groups 9 and 10 (issue #15): trained on challenge with the training-time augmentation `all` (noise,
backgrounds, pseudo-Voigt shapes, whole-pattern shifts drawn per epoch): PRNet and robust PRNet (9, cheap),
CNN6 ReLU (10), seed 0, for the generalisation panel.
Group 11 (issue #15, part 3): PRNet v4 (``zoo.models.prnet.V4_OPTION``: absolute positions, a robust front
end with a median-based noise level), seeds 0-2 on challenge, challenge_realistic and benchmark, and seed 0
on three fresh draws of challenge (data seeds 3, 4, 5; none is a panel set). Run it with its own
``--results-root`` (e.g. ``benchmarks/results/prnet_v4``) when it runs beside the main campaign.
Group 0 verifies mixed precision: campaign runs trained again in the *other* precision than their row
(vgg relu seed 0: its row is float32, the twin mixed_bfloat16; cnn6 relu seed 0: its row is
mixed_bfloat16, the twin float32), into `benchmarks/results/precision_check/<dataset>/`. CNN6's twin was
added when its bfloat16 row (78.4 %) fell 6.8 points short of a float32 probe of the same run (85.2 %).

Kill it at any time and rerun the same command: finished runs are skipped, the interrupted one resumes
at its last finished epoch (with the precision it started with). `--list` prints the plan, what is
done and what each run still to train cost its setup on this CPU so far (median CPU hours). Models
trained on `challenge` are also tested on `challenge_realistic` (the robustness table).
With `--skip-busy`, several campaign processes on one `--results-root` share the plan: each leaves a run
another one is training to it and takes the next (on a machine with cores to spare).

Usage:  python benchmarks/experiments/campaign.py [--groups 12,14,15,13,16,0,1,6,8,9,2,10,3,7,4,5]
                                      [--precision float32|mixed_bfloat16|auto]
                                      [--runs PATTERNS] [--jit-compile auto|on|off] [--list] [--skip-busy]
                                      [--results-root DIR] [--saved-models DIR]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
from collections.abc import Sequence
from fnmatch import fnmatchcase

from synthetic_spectra.augment import parse_augmentation
from synthetic_spectra.config import DatasetConfig, fresh_draw, get_config
from zoo.checks import OneLineParser
from zoo.errors import UserError
from zoo.models.prnet import ROBUST_OPTION, V4_OPTION
from zoo.study import paper
from zoo.tfquiet import import_tensorflow_quietly
from zoo.training.precision import PRECISIONS, resolve_precision
from zoo.training.protocol import Protocol, RunSpec, augment_tag, plan_runs
from zoo.training.results import RESULTS_FILE, read_results
from zoo.training.runner import run_benchmark

RESULTS_ROOT = pathlib.Path("benchmarks/results")
#: The suffix of a dataset's results folder for runs at the protocol's end.
CONVERGED_SUFFIX = "_converged"
CROSS_TESTS = {"challenge": ("challenge_realistic",), "challenge_realistic": ("challenge",)}
#: Default order: the study in float32 with five seeds first (12: the claims' setups on challenge; 14:
#: benchmark seed 0 in the paper's setup; 13: the other challenge setups), then the earlier groups.
DEFAULT_GROUPS = "12,14,15,13,16,0,1,6,8,9,2,10,3,7,4,5"
JIT_CHOICES = {"auto": "auto", "on": True, "off": False}
#: Group 0 (the mixed-precision check): its folder under the results root.
PRECISION_CHECK_FOLDER = "precision_check"
#: Group 7's first five: the new architectures cheapest per `challenge` epoch here.
CHEAP_NEW_MODELS = ("oviedo", "park", "mozaffari", "vecsei", "bhattacharya")
#: The training-time augmentation of groups 9 and 10 (issue #15): noise, background, peak shape and shift.
AUGMENTATION = "all"
#: Data seeds of group 11's fresh draws of challenge: none of them is a panel set (the panel's are 1 and 2).
FRESH_DRAW_SEEDS = (3, 4, 5)
#: Groups of the study in the paper's precision (float32), five seeds: their rows go to ``study/<dataset>/``.
STUDY_GROUPS = (12, 13, 14, 15)
#: Group 15: the converged toggle search's best VGG configuration, five seeds (once the grid is complete).
TUNING_RESULTS = pathlib.Path("benchmarks/results/tuning_converged")
STUDY_FOLDER = "study"
#: Group 16: the batch-norm setups with precise statistics, into ``precise_bn/<dataset>/`` (float32).
PRECISE_BN_GROUP = 16
PRECISE_BN_FOLDER = "precise_bn"
PRECISE_BN_MODELS = ("resnet", "cnn6_bn")
#: A precision check trains in the other precision than its campaign row.
OTHER_PRECISION = {"float32": "mixed_bfloat16", "mixed_bfloat16": "float32"}


def campaign_groups() -> dict[int, list[RunSpec]]:
    """The campaign's runs by group (0–16), each group in training order."""
    relu, linear, published = ("relu",), ("linear",), ("default",)
    return {
        0: plan_runs("challenge", ("vgg", "cnn6"), relu),
        1: [
            *plan_runs("challenge", ("vgg",), relu),
            *plan_runs("challenge", ("cnn2",), ("relu", "linear")),
            *plan_runs("challenge", ("vgg",), linear),
            *plan_runs("challenge", ("cnn3", "cnn6"), relu),
            *plan_runs("challenge", ("cnn6",), linear),
        ],
        2: [
            *plan_runs("challenge", ("resnet_mod", "cnn6_convdo", "cnn6_bn", "vgg_mod"), published),
            *plan_runs("challenge", ("cnn_bn",), relu),
            *plan_runs("challenge", ("cnn_bn_mod",), published),
            *plan_runs("challenge", ("inc3",), relu),
            *plan_runs("challenge", ("resnet",), published),
        ],
        3: plan_runs("benchmark", ("vgg", "cnn2", "cnn6"), relu),
        4: [
            spec
            for model in ("vgg", "cnn2", "cnn6")
            for seed in range(1, 5)
            for spec in plan_runs("challenge", (model,), ("relu", "linear"), seeds=(seed,))
        ],
        5: [
            *plan_runs("challenge", ("cnn3", "inc3"), linear),
            *plan_runs("challenge", ("inc6",), ("relu", "linear")),
            *plan_runs("challenge", ("cnn_bn",), linear),
        ],
        6: plan_runs("challenge", ("prnet",), published),
        7: plan_runs("challenge", (*CHEAP_NEW_MODELS, "fan", "schuetzke"), published),
        8: [robust_prnet(dataset) for dataset in ("challenge_realistic", "challenge")],
        9: [
            *plan_runs("challenge", ("prnet",), published, augment=parse_augmentation(AUGMENTATION)),
            robust_prnet("challenge", augment=AUGMENTATION),
        ],
        10: plan_runs("challenge", ("cnn6",), relu, augment=parse_augmentation(AUGMENTATION)),
        12: study_runs("challenge", paper.CHALLENGE_CLAIM_SETUPS, paper.SEEDS),
        13: study_runs("challenge", paper.CHALLENGE_FOLLOW_UP_SETUPS, paper.SEEDS),
        14: study_runs("benchmark", paper.BENCHMARK_PAPER_SETUPS, (0,)),
        15: tuned_runs(),
        16: [
            spec
            for seeds in ((0,), (1, 2, 3, 4))
            for model in PRECISE_BN_MODELS
            for spec in plan_runs("challenge", (model,), ("default",), seeds, batch_norm_statistics="precise")
        ],
        11: [
            prnet_v4("challenge"),
            *(prnet_v4(fresh_draw(get_config("challenge"), seed)) for seed in FRESH_DRAW_SEEDS),
            prnet_v4("challenge_realistic"),
            *(prnet_v4(dataset, seed) for seed in (1, 2) for dataset in ("challenge", "challenge_realistic")),
            *(prnet_v4("benchmark", seed) for seed in range(3)),
        ],
    }


def study_runs(dataset: str, setups: Sequence[tuple[str, str]], seeds: Sequence[int]) -> list[RunSpec]:
    """The study's runs of ``setups`` (``(model, variant)`` from :mod:`zoo.study.paper`), each setup's seeds
    in a row, so that a setup's five seeds (and a claim's both sides) are complete as early as possible."""
    return [
        spec for model, variant in setups for spec in plan_runs(dataset, (model,), (variant,), seeds=seeds)
    ]


def tuned_runs(results: pathlib.Path = TUNING_RESULTS, grid_size: int = 32) -> list[RunSpec]:
    """Seeds 0-4 of the converged search's best configuration (variant ``<activation>-tuned``), or none
    while the search has fewer than ``grid_size`` configurations (its best is not final yet)."""
    path = results / "best_hparams.json"
    if not path.exists():
        return []
    best = json.loads(path.read_text(encoding="utf-8"))
    if best.get("trials", 0) < grid_size:
        return []
    return plan_runs(
        best["dataset"], (best["base"],), seeds=paper.SEEDS, hparams=best["toggles"], variant_suffix="-tuned"
    )


def prnet_v4(dataset: str | DatasetConfig, seed: int = 0) -> RunSpec:
    """PRNet v4 (variant ``v4``: :data:`zoo.models.prnet.V4_OPTION`), issue #15 part 3."""
    return RunSpec(get_config(dataset), "prnet", seed, "v4", prnet_toggles(V4_OPTION))


def prnet_toggles(option: dict[str, object]) -> tuple[tuple[str, object], ...]:
    """A PRNet option set as run toggles (sorted, with its linear read-out's ``fc_activation=None``)."""
    return tuple(sorted({**option, "fc_activation": None}.items()))


def robust_prnet(dataset: str, seed: int = 0, augment: str | None = None) -> RunSpec:
    """PRNet with its robust option (variant ``robust``), for the generalisation panel of issue #15;
    with ``augment`` (a preset name) trained with that augmentation (variant ``robust-aug-<name>``)."""
    toggles = prnet_toggles(ROBUST_OPTION)
    if augment is None:
        return RunSpec(get_config(dataset), "prnet", seed, "robust", toggles)
    augmentation = parse_augmentation(augment)
    return RunSpec(
        get_config(dataset), "prnet", seed, "robust" + augment_tag(augmentation), toggles, augmentation
    )


def results_dir(dataset: str, root: pathlib.Path = RESULTS_ROOT, group: int = 1) -> pathlib.Path:
    """Where a dataset's rows at the protocol's end are written (group 0: the precision check's folder)."""
    if group == 0:
        return root / PRECISION_CHECK_FOLDER / dataset
    if group in STUDY_GROUPS:
        return root / STUDY_FOLDER / dataset
    if group == PRECISE_BN_GROUP:
        return root / PRECISE_BN_FOLDER / dataset
    return root / f"{dataset}{CONVERGED_SUFFIX}"


def campaign_plan(groups: Sequence[int]) -> list[tuple[int, RunSpec]]:
    """``(group, run)`` pairs of the chosen groups, in the order given (each group once)."""
    by_group = campaign_groups()
    unknown = sorted(set(groups) - set(by_group))
    if unknown or not groups:
        raise ValueError(f"--groups: choose from {', '.join(map(str, by_group))}, got {unknown or 'nothing'}")
    return [(group, spec) for group in dict.fromkeys(groups) for spec in by_group[group]]


def select_runs(plan: Sequence[tuple[int, RunSpec]], patterns: str | None) -> list[tuple[int, RunSpec]]:
    """The runs of ``plan`` whose id matches one of the comma-separated shell patterns (``None``: all), in
    the plan's order: lets a machine take the runs that fit the time it has, e.g.
    ``--runs 'challenge/cnn_bn-relu-*'``."""
    if patterns is None:
        return list(plan)
    wanted = [part.strip() for part in patterns.split(",") if part.strip()]
    chosen = [(group, spec) for group, spec in plan if any(fnmatchcase(spec.run_id, p) for p in wanted)]
    if not chosen:
        raise ValueError(f"--runs: no run of the chosen groups matches {patterns!r} (see --list)")
    return chosen


def check_precision(spec: RunSpec, root: pathlib.Path, campaign_precision: str) -> str:
    """The precision of a group-0 twin: the other one than its campaign row's (or than the campaign's)."""
    rows = {row["run_id"]: row for row in read_results(results_dir(spec.dataset, root) / RESULTS_FILE)}
    row = rows.get(spec.run_id)
    own = row.get("precision", "float32") if row else resolve_precision(campaign_precision)
    return OTHER_PRECISION[own]


def parse_groups(text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]`` (one clear error for anything else)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--groups: expected comma-separated group numbers, got {text!r}") from None


def cost_here(rows: Sequence[dict], spec: RunSpec, cpu: str) -> str:
    """What ``spec`` is likely to cost on this CPU (label ``cpu``, :func:`zoo.study.five_seeds.cpu_label`):
    the median CPU hours of the finished runs in ``rows`` (its results folder's) of its setup (same dataset,
    model and variant, any seed) that trained on a CPU of the same label, or that none did."""
    from zoo.study.five_seeds import costed_runs

    setup = (spec.dataset, spec.model, spec.variant)
    hours = [row["cpu_time_s"] / 3600 for row in costed_runs(rows).get((setup, cpu), [])]
    if not hours:
        return "no run of this setup has trained on this CPU"
    return f"about {statistics.median(hours):.1f} CPU-h here, the median of {len(hours)} runs on this CPU"


def print_plan(plan: Sequence[tuple[int, RunSpec]], root: pathlib.Path, cpu: str) -> None:
    """One line per run: done (with accuracy, epochs, stop reason) or still to train, with what its setup's
    finished runs cost on this CPU (label ``cpu``), so that a machine with a few hours can pick runs that fit
    (a 2-core machine gives about 2 CPU-h an hour)."""
    folders = {results_dir(spec.dataset, root, group) for group, spec in plan}
    rows = {folder: read_results(folder / RESULTS_FILE) for folder in folders}
    done = {(folder, row["run_id"]): row for folder, found in rows.items() for row in found}
    for group, spec in plan:
        folder = results_dir(spec.dataset, root, group)
        row = done.get((folder, spec.run_id))
        status = (
            f"{row['test_accuracy']:.2%} ({row['misclassified']}/{row['test_size']} wrong), "
            f"{row['epochs_run']} epochs, {row['stop_reason']}, {row.get('precision', 'float32')}"
            if row
            else f"to train ({cost_here(rows[folder], spec, cpu)})"
        )
        print(f"{group}  {spec.run_id:40s} {status}")


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", default=DEFAULT_GROUPS)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--jit-compile", default="auto", choices=tuple(JIT_CHOICES))
    parser.add_argument("--results-root", default=str(RESULTS_ROOT))
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument(
        "--runs",
        metavar="PATTERNS",
        help="only the runs whose id matches one of these comma-separated shell patterns "
        "(e.g. 'challenge/cnn_bn-relu-*'), in the plan's order",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the plan, what is done and what the rest cost here "
        "(CPU hours, from the rows); train nothing",
    )
    parser.add_argument(
        "--skip-busy",
        action="store_true",
        help="leave a run another campaign process is training to it (run several on one --results-root)",
    )
    args = parser.parse_args()
    import_tensorflow_quietly()  # validation builds Keras objects: TF's C++ start-up lines stay off stderr
    root = pathlib.Path(args.results_root)
    try:  # a bad argument is one line and exit status 2, before anything is trained
        plan = select_runs(campaign_plan(parse_groups(args.groups)), args.runs)
    except (ValueError, UserError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.list:
        from zoo.study.five_seeds import cpu_label
        from zoo.training.environment import cpu_info

        print_plan(plan, root, cpu_label({"cpu": cpu_info()}))
        return
    protocol = Protocol()  # the paper's: no epoch cap beyond its 500
    for group, spec in plan:  # one run at a time, each into its dataset's results folder
        check = group == 0
        if check:
            precision = check_precision(spec, root, args.precision)
        elif group in STUDY_GROUPS or group == PRECISE_BN_GROUP:
            precision = paper.PAPER_PRECISION
        else:
            precision = args.precision
        run_benchmark(
            [spec],
            protocol,
            results_dir(spec.dataset, root, group),
            saved_models_dir=pathlib.Path(args.saved_models, PRECISION_CHECK_FOLDER if check else ""),
            cross_tests=CROSS_TESTS.get(spec.dataset, ()),
            precision=precision,
            jit_compile=JIT_CHOICES[args.jit_compile],
            skip_busy=args.skip_busy,
        )


if __name__ == "__main__":
    main()
