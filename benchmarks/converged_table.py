"""The README's table of runs at the protocol's end, generated from the committed results rows.

Reads `benchmarks/results/<dataset>_converged/results.jsonl` (the campaign of `benchmarks/campaign.py`, no
epoch cap) and the mixed-precision check of `benchmarks/results/precision_check/`, and renders one line per
run beside the paper's figure where the paper gives one. `--write` replaces the block between the README's
markers; `--check` exits 1 if the README's block differs from what the rows give (a test runs it), so the
table cannot drift from the rows it rests on.

    python benchmarks/converged_table.py --write
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ("challenge", "benchmark")
BLOCK = "converged-table"
#: PRNet v4's runs (campaign group 11, issue #15 part 3): their results root and README block.
V4_RESULTS = RESULTS / "prnet_v4"
V4_BLOCK = "prnet-v4-table"
#: The README's headline: the study's published setups, one median per setup (``render_headline``).
HEADLINE_BLOCK = "headline-table"


def paper_figures() -> dict[tuple[str, str, str], str]:
    """The paper's figure per (dataset, model, variant), where it states one (medians over 5 seeds)."""
    from zoo.study import paper

    figures: dict[tuple[str, str, str], str] = {}
    for pair in paper.ABLATION_PAIRS:
        for model, median in ((pair.original, pair.median_original), (pair.modified, pair.median_modified)):
            variant = paper.ABLATION_VARIANT if model in ("cnn6", "vgg", "cnn_bn") else "default"
            figures[(paper.ABLATION_DATASET, model, variant)] = f"{median:.2f} % (median)"
    best = paper.BENCHMARK_BEST_MEAN_MISCLASSIFIED
    figures[(paper.BENCHMARK_DATASET, paper.BENCHMARK_BEST_MODEL, "relu")] = f"≈ {best:.0f} wrong (mean)"
    return figures


def load_rows(results: pathlib.Path = RESULTS) -> list[dict[str, Any]]:
    """Every converged row, in the study's model order (dataset, model, variant, seed)."""
    from zoo.study import paper
    from zoo.training.results import read_results

    rows = [row for d in DATASETS for row in read_results(results / f"{d}_converged" / "results.jsonl")]
    order = {name: i for i, name in enumerate(paper.MODEL_ORDER)}
    return sorted(
        rows,
        key=lambda r: (DATASETS.index(r["dataset"]), order.get(r["model"], 99), r["variant"], r["seed"]),
    )


def _cpu(hardware: str) -> str:
    """``2-core CPU (AMD EPYC)`` → ``AMD EPYC``; accelerators kept."""
    inside = hardware.split("(", 1)[1].rsplit(")", 1)[0] if "(" in hardware else hardware
    extra = hardware.rsplit(")", 1)[1].strip() if ")" in hardware else ""
    return f"{inside} {extra}".strip()


def _paper_cell(row: Mapping[str, Any], figures: Mapping[tuple[str, str, str], str]) -> str:
    key = (row["dataset"], row["model"], row["variant"])
    if key in figures:
        return figures[key]
    return "≥ 98.9 %" if row["dataset"] == "benchmark" else "–"


def render(rows: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]] = ()) -> str:
    """Markdown: one line per run, then the precision check against its float32 twin."""
    figures = paper_figures()
    lines = [
        "| dataset | model | FC | seed | test accuracy | wrong | paper | val accuracy | epochs (best) | "
        "stop | wall | precision | CPU |",
        "|---|---|---|---:|---:|---:|---|---:|---|---|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['variant']} | {row['seed']} | "
            f"{100 * row['test_accuracy']:.2f} % | {row['misclassified']}/{row['test_size']} | "
            f"{_paper_cell(row, figures)} | {100 * row['val_accuracy']:.2f} % | "
            f"{row['epochs_run']} ({row['best_epoch'] + 1}) | "
            f"{row['stop_reason'].replace('_', ' ')} | {row['wall_time_s'] / 60:.1f} min | "
            f"{row.get('precision', 'float32')} | {_cpu(row['hardware'])} |"
        )
    by_id = {row["run_id"]: row for row in rows}
    for check in checks:
        twin = by_id.get(check["run_id"])
        if twin is None:
            continue
        lines += [
            "",
            f"Precision check, `{check['run_id']}`: {check.get('precision')} "
            f"{100 * check['test_accuracy']:.2f} % ({check['misclassified']} wrong, {check['epochs_run']} "
            f"epochs, {check['wall_time_s'] / 60:.1f} min) against {twin.get('precision', 'float32')} "
            f"{100 * twin['test_accuracy']:.2f} % ({twin['misclassified']} wrong, {twin['epochs_run']} "
            f"epochs, {twin['wall_time_s'] / 60:.1f} min); both {_cpu(check['hardware'])}.",
        ]
    return "\n".join(lines)


Summary = tuple[float, list[int], set[str]]  # median test accuracy (%), seeds, precisions


def _medians(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], Summary]:
    """``(dataset, model, variant)`` → (median test accuracy in %, seeds, precisions) over the rows."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"], row["variant"]), []).append(row)
    return {
        key: (
            100 * statistics.median(r["test_accuracy"] for r in runs),
            sorted(r["seed"] for r in runs),
            {r.get("precision", "float32") for r in runs},
        )
        for key, runs in groups.items()
    }


def _seeds(seeds: Sequence[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"median of seeds {', '.join(map(str, seeds))}"


def claims(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The paper's claims against the converged rows: each holds, fails, or is open (a side is missing)."""
    from zoo.study import paper

    med = _medians(rows)
    lines = ["", "The paper's claims, recomputed from these rows only (open until both sides have run):", ""]
    fc = []
    for model in paper.MODEL_ORDER:
        relu, linear = med.get(("challenge", model, "relu")), med.get(("challenge", model, "linear"))
        if relu and linear:
            ahead = "ReLU ahead" if relu[0] > linear[0] else "linear ahead"
            verdict = "tie" if relu[0] == linear[0] else ahead
            mixed = ""
            if relu[2] != linear[2]:
                mixed = f"; ReLU {'/'.join(relu[2])}, linear {'/'.join(linear[2])}"
            fc.append(f"{model} {relu[0]:.2f} vs {linear[0]:.2f} % ({verdict}; {_seeds(relu[1])}{mixed})")
    wins = sum("ReLU ahead" in item for item in fc)
    lines.append(
        "- **ReLU FC beats linear FC for every model** (`challenge`): "
        + (f"ReLU ahead for {wins} of {len(fc)} models run both ways: {'; '.join(fc)}." if fc else "open.")
    )
    published = (*paper.FC_ACTIVATION_VARIANTS, "default")  # the study's setups, not augmented variants
    challenge = {
        k: v
        for k, v in med.items()
        if k[0] == "challenge" and k[1] in paper.MODEL_ORDER[:8] and k[2] in published
    }
    if ("challenge", "cnn6", "relu") in challenge:
        ranked = sorted(challenge.items(), key=lambda kv: -kv[1][0])
        best, rank = ranked[0], [k for k, _ in ranked].index(("challenge", "cnn6", "relu")) + 1
        cnn6 = challenge[("challenge", "cnn6", "relu")][0]
        lines.append(
            f"- **CNN6 best on `challenge`, near 90 %**: CNN6 ReLU {cnn6:.2f} % ranks {rank} of "
            f"{len(ranked)} published setups run so far (best: {best[0][1]} {best[0][2]} {best[1][0]:.2f} %)."
        )
    else:
        lines.append("- **CNN6 best on `challenge`, near 90 %**: open.")
    pairs = []
    for pair in paper.ABLATION_PAIRS:
        sides = []
        for model in (pair.original, pair.modified):
            variant = paper.ABLATION_VARIANT if ("challenge", model, "relu") in med else "default"
            sides.append(med.get(("challenge", model, variant)))
        if all(sides):
            ours = sides[1][0] - sides[0][0]
            same = (ours > 0) == (pair.median_modified > pair.median_original)
            theirs = pair.median_modified - pair.median_original
            direction = "same direction" if same else "opposite direction"
            change = f"{ours:+.2f} points (paper {theirs:+.2f}; {direction})"
            pairs.append(f"{pair.original} → {pair.modified} {change}")
    lines.append(
        "- **The five ablations' directions** (`challenge`): "
        + (f"{len(pairs)} of 5 pairs run: {'; '.join(pairs)}." if pairs else "open.")
    )
    bench = {k[1]: v for k, v in med.items() if k[0] == "benchmark"}
    lines.append(
        f"- **Every model ≥ {paper.BENCHMARK_MIN_ACCURACY} % on `benchmark`**: "
        + (
            "; ".join(f"{m} {v[0]:.2f} % ({'holds' if v[0] >= paper.BENCHMARK_MIN_ACCURACY else 'fails'})"
                      for m, v in bench.items()) + f" ({len(bench)} of 8 models run)."
            if bench
            else "open (no `benchmark` row yet)."
        )
    )  # fmt: skip
    return lines


def load_v4_rows(results: pathlib.Path = V4_RESULTS) -> list[dict[str, Any]]:
    """PRNet v4's rows (every ``*_converged`` folder under ``results``), by dataset then seed."""
    from zoo.training.results import read_results

    rows = [row for path in sorted(results.glob("*_converged/results.jsonl")) for row in read_results(path)]
    return sorted(rows, key=lambda r: (r["dataset"], r["seed"]))


def render_v4(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: PRNet v4's runs, one line each with its cross-tests, then the median per training set."""
    lines = [
        "| trained on | seed | test accuracy | wrong | val accuracy | cross-tests | epochs (best) | stop | "
        "wall | precision | CPU |",
        "|---|---:|---:|---:|---:|---|---|---|---:|---|---|",
    ]
    for row in rows:
        cross = "; ".join(
            f"{name} {100 * result['test_accuracy']:.2f} %"
            for name, result in sorted((row.get("cross_tests") or {}).items())
        )
        lines.append(
            f"| {row['dataset']} | {row['seed']} | {100 * row['test_accuracy']:.2f} % | "
            f"{row['misclassified']}/{row['test_size']} | {100 * row['val_accuracy']:.2f} % | "
            f"{cross or '–'} | {row['epochs_run']} ({row['best_epoch'] + 1}) | "
            f"{row['stop_reason'].replace('_', ' ')} | {row['wall_time_s'] / 60:.1f} min | "
            f"{row.get('precision', 'float32')} | {_cpu(row['hardware'])} |"
        )
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], []).append(row)
    if by_dataset:
        lines += ["", "Medians over the seeds run:"]
    for dataset, runs in by_dataset.items():
        test = 100 * statistics.median(r["test_accuracy"] for r in runs)
        val = 100 * statistics.median(r["val_accuracy"] for r in runs)
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(f"- `{dataset}` (seeds {seeds}): test {test:.2f} %, validation {val:.2f} %.")
    return "\n".join(lines)


def render_headline(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the median test accuracy of every published setup run (study models, FC linear/ReLU or
    the published default), beside the paper's figure, then where and how the rows were trained."""
    from zoo.study import paper

    setups = (*paper.FC_ACTIVATION_VARIANTS, "default")
    published = [r for r in rows if r["model"] in paper.MODEL_ORDER and r["variant"] in setups]
    paper_cells = paper_figures()
    lines = [
        "| dataset | model | FC | test accuracy (median) | seeds | paper |",
        "|---|---|---|---:|---|---|",
    ]
    for (dataset, model, variant), (accuracy, seeds, _) in _medians(published).items():
        cell = _paper_cell({"dataset": dataset, "model": model, "variant": variant}, paper_cells)
        seed_list = ", ".join(map(str, seeds))
        lines.append(f"| {dataset} | {model} | {variant} | {accuracy:.2f} % | {seed_list} | {cell} |")
    if not published:
        return "\n".join([*lines, "", "No run at the protocol's end yet."])
    hardware = sorted({r["hardware"] for r in published})
    precisions = sorted({r.get("precision", "float32") for r in published})
    lines += [
        "",
        f"Trained with the study's protocol to early stopping (at most {paper.MAX_EPOCHS} epochs); hardware: "
        f"{'; '.join(hardware)}; precision: {', '.join(precisions)}; {len(published)} runs.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale")
    args = parser.parse_args(argv)
    from zoo.training.results import read_results

    checks = read_results(RESULTS / "precision_check" / "challenge" / "results.jsonl")
    rows = load_rows()
    blocks = {
        BLOCK: "\n".join([render(rows, checks), *claims(rows)]),
        V4_BLOCK: render_v4(load_v4_rows()),
        HEADLINE_BLOCK: render_headline(rows),
    }
    if not (args.write or args.check):
        print("\n\n".join(blocks.values()))
        return 0
    from zoo.study.blocks import BLOCKS, block_is_current, write_block

    if args.check:
        stale = [name for name, block in blocks.items() if not block_is_current(name, block)]
        if stale:
            names = ", ".join(f"{name} ({BLOCKS[name]})" for name in stale)
            print(f"stale generated block: {names}; run python benchmarks/converged_table.py --write")
            return 1
        return 0
    for name, block in blocks.items():
        write_block(name, block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
