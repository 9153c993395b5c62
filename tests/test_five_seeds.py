"""The study's five-seed summaries and claims: medians, paired seeds, open until five float32 seeds."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from zoo.study.five_seeds import (
    Comparison,
    attainable,
    claims,
    cost_table,
    group_setups,
    perturbed_table,
    precise_batch_norm_lines,
    setups_table,
    tuned_comparison,
)
from zoo.study.paper import PUBLISHED_CHALLENGE_SETUPS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _row(model: str, variant: str, seed: int, test: float, val: float, precision: str = "float32") -> dict:
    return {
        "run_id": f"challenge/{model}-{variant}-seed{seed}", "dataset": "challenge", "model": model,
        "variant": variant, "seed": seed, "test_accuracy": test, "val_accuracy": val, "test_size": 162,
        "misclassified": round((1 - test) * 162), "precision": precision, "hardware": "2-core CPU (X)",
        "cpu": {"model_name": "X", "flags": ["AVX2", "AVX-512F"]},
    }  # fmt: skip


def _setups(relu_test, linear_test, precision="float32", scores=None):
    rows = [_row("vgg", "relu", s, t, 0.7) for s, t in enumerate(relu_test)]
    rows += [_row("vgg", "linear", s, t, 0.6, precision) for s, t in enumerate(linear_test)]
    return group_setups(rows, scores)


def test_medians_spread_and_paired_seeds():
    setups = _setups([0.70, 0.72, 0.68, 0.71, 0.69], [0.65, 0.73, 0.60, 0.66, 0.64])
    relu, linear = setups[("challenge", "vgg", "relu")], setups[("challenge", "vgg", "linear")]
    assert relu.spread("test") == "70.00 (68.00–72.00)" and relu.complete
    comparison = Comparison(linear, relu)
    assert comparison.paired("test") == (4, 5)  # seed 1: linear 73 > ReLU 72
    assert comparison.difference("test") == pytest.approx(70.0 - 65.0)
    assert comparison.verdict() == "holds"


def test_a_claim_is_open_until_five_float32_seeds_on_both_sides():
    assert Comparison(*_sides(_setups([0.7] * 4, [0.6] * 5))).verdict() == "open"
    assert Comparison(*_sides(_setups([0.7] * 5, [0.6] * 5, "mixed_bfloat16"))).verdict() == "open"
    assert Comparison(*_sides(_setups([0.6] * 5, [0.7] * 5))).verdict() == "fails"


def _sides(setups):
    return setups[("challenge", "vgg", "linear")], setups[("challenge", "vgg", "relu")]


def test_export_scores_join_by_run_id_and_claims_name_every_metric():
    fresh = {"challenge/vgg-relu-seed0": 0.8, "challenge/vgg-linear-seed0": 0.75}
    perturbed = {"challenge/vgg-relu-seed0": 0.4, "challenge/vgg-linear-seed1": 0.5}
    noise = {"challenge/vgg-relu-seed0": 0.3}
    setups = _setups([0.7] * 5, [0.6] * 5, scores={"fresh": fresh, "perturbed": perturbed, "noise": noise})
    relu = setups[("challenge", "vgg", "relu")]
    assert relu.values("fresh") == {0: pytest.approx(80.0)} and relu.values("noise") == {
        0: pytest.approx(30.0)
    }
    assert relu.values("background") == {}
    text = "\n".join(claims(setups))
    assert "test split +10.00 points, 5 of 5 seeds" in text
    assert "fresh draws +5.00 points, 1 of 1 seeds" in text and "**holds**" in text
    assert "perturbed sets –;" in text  # no seed has both sides scored: nothing to compare
    assert "| 80.00 | 40.00 | 68.52 |" in setups_table(
        setups
    )  # fresh, perturbed, the paper's VGG ReLU median
    by_group = perturbed_table(setups)
    assert "| challenge | vgg | relu | 0 | 40.00 | 30.00 | – | – | – |" in by_group
    assert "| challenge | vgg | linear | 1 | 50.00 | – | – | – | – |" in by_group
    assert perturbed_table(_setups([0.7] * 5, [0.6] * 5)) is None


def test_an_ablation_is_also_given_with_the_published_original():
    rows = [_row("vgg", "relu", s, 0.70, 0.7) for s in range(5)]
    rows += [_row("vgg", "linear", s, 0.60, 0.6) for s in range(5)]
    rows += [_row("vgg_mod", "default", s, 0.65, 0.65) for s in range(5)]
    lines = claims(group_setups(rows))
    main = next(line for line in lines if line.startswith("- vgg → vgg_mod:"))
    beside = lines[lines.index(main) + 1]
    assert "**fails**" in main  # ReLU original (the compared side) 70 % against 65 %
    assert beside.startswith("  - with the published original (vgg linear FC) instead: vgg_mod default 65.00")
    assert "**holds**" in beside  # the published linear original 60 % against 65 %
    assert (
        "  - with the published original (cnn_bn linear FC) instead: open (a side has no row yet)." in lines
    )
    assert not any("(cnn6" in line and "published original" in line for line in lines)  # CNN6 is ReLU


def test_cnn6_rank_and_the_benchmark_claim():
    rows = [_row("cnn6", "relu", s, 0.85, 0.8) for s in range(5)] + [_row("vgg", "relu", 0, 0.9, 0.8)]
    bench = {**_row("vgg", "linear", 0, 0.985, 0.99), "dataset": "benchmark", "test_size": 4500,
             "misclassified": 68, "run_id": "benchmark/vgg-linear-seed0"}  # fmt: skip
    text = "\n".join(claims(group_setups([*rows, bench])))
    assert "CNN6 ReLU 85.00 (85.00–85.00) % (validation 80.00 (80.00–80.00) %) ranks 2 of 2" in text
    assert "(1 of 15 with five float32 seeds: **open**)" in text  # ResNet has one setup: 7 x 2 + 1
    assert "- vgg linear: 98.50 % (68 of 4500 wrong; 1 seed(s)): fails for these seeds" in text

    every = [
        _row(m, v, s, 0.9 if m == "cnn6" else 0.7, 0.8)
        for m, v in PUBLISHED_CHALLENGE_SETUPS
        for s in range(5)
    ]
    text = "\n".join(claims(group_setups(every)))
    assert "ranks 1 of 15 published setups run so far by test median (15 of 15 with five float32" in text
    assert "float32 seeds: **decided**)" in text
    bfloat16 = [{**row, "precision": "mixed_bfloat16"} if row["model"] == "cnn2" else row for row in every]
    assert "(13 of 15 with five float32 seeds: **open**)" in "\n".join(claims(group_setups(bfloat16)))


def test_a_difference_of_medians_compares_the_seeds_both_sides_have():
    # seed 0 of the ReLU side has no fresh-draw score (its export was not kept): both medians over 1-4
    fresh = {
        f"challenge/vgg-relu-seed{s}": v for s, v in zip(range(1, 5), (0.80, 0.81, 0.82, 0.83), strict=True)
    }
    fresh |= {f"challenge/vgg-linear-seed{s}": v for s, v in enumerate((0.50, 0.79, 0.80, 0.81, 0.82))}
    comparison = Comparison(*_sides(_setups([0.7] * 5, [0.6] * 5, scores={"fresh": fresh})))
    assert comparison.difference("fresh") == pytest.approx(81.5 - 80.5)  # not 81.5 - 80.0 (all five)
    assert comparison.describe("fresh") == "+1.00 points, 4 of 4 seeds"


def test_the_cost_table_splits_setups_by_cpu_and_leaves_out_rows_without_cpu_time():
    rows = [_row("vgg", "relu", seed, 0.7, 0.7) for seed in range(4)]
    for row, epochs, seconds in zip(rows, (80, 100, 90, 70), (800.0, 1200.0, 7200.0, None), strict=True):
        row.update(epochs_run=epochs, cpu_time_s=seconds)
    rows[2]["cpu"] = {"model_name": "Y", "flags": ["AVX2"]}
    lines = cost_table(group_setups(rows)).splitlines()
    assert lines[0].startswith("| dataset | model | FC | CPU | runs | epochs | CPU-s per epoch |")
    assert lines[2:] == [
        "| challenge | vgg | relu | X (AVX-512F) | 2 | 90 (80–100) | 11 (10–12) | 0.3 (0.2–0.3) |",
        "| challenge | vgg | relu | Y (AVX2) | 1 | 90 | 80 | 2.0 |",
    ]
    assert cost_table(group_setups([_row("vgg", "relu", 0, 0.7, 0.7)])) is None


def test_a_seed_recorded_twice_is_refused():
    rows = [_row("vgg", "relu", 0, 0.7, 0.8), _row("vgg", "relu", 0, 0.6, 0.8)]
    with pytest.raises(ValueError, match="challenge/vgg-relu-seed0: seed 0 recorded twice"):
        group_setups(rows)


def test_paper_figures_a_162_spectrum_median_cannot_be():
    assert attainable(68.52, 162) and attainable(85.19, 162)
    assert not attainable(80.74, 162)


def test_the_tuned_configuration_is_judged_in_distribution_against_each_published_vgg():
    assert tuned_comparison({})[-1] == "- open: its five seeds train once the search's grid is complete."
    rows = [_row("vgg", "linear", s, 0.70, 0.80) for s in range(5)]
    rows += [_row("vgg", "relu", s, 0.70, 0.77) for s in range(5)]
    rows += [{**_row("vgg", "relu-tuned", s, 0.69, 0.82), "toggles": {"fc_dropout": 0.5}} for s in range(5)]
    fresh = {f"challenge/vgg-{variant}-seed{s}": value for s in range(5)
             for variant, value in (("linear", 0.80), ("relu", 0.78), ("relu-tuned", 0.81))}  # fmt: skip
    lines = tuned_comparison(group_setups(rows, {"fresh": fresh}))
    tuned = next(line for line in lines if line.startswith("- vgg relu-tuned"))
    assert "(fc_dropout 0.5)" in tuned and "validation 82.00 (82.00–82.00) %" in tuned and "5 seeds" in tuned
    against = {line.split(":")[0].strip(): line for line in lines if line.startswith("  - against")}
    assert "validation split +2.00 points, 5 of 5 seeds" in against["- against vgg linear"]
    assert "fresh draws +1.00 points, 5 of 5 seeds" in against["- against vgg linear"]
    assert "test split -1.00 points, 0 of 5 seeds" in against["- against vgg linear"]  # not the judge
    assert against["- against vgg linear"].endswith("in distribution **ahead**.")
    assert against["- against vgg_mod default"] == "  - against vgg_mod default: no row yet."

    behind = {**fresh, "challenge/vgg-relu-tuned-seed0": 0.70, "challenge/vgg-relu-tuned-seed1": 0.70,
              "challenge/vgg-relu-tuned-seed2": 0.70}  # fmt: skip
    lines = tuned_comparison(group_setups(rows, {"fresh": behind}))
    (relu,) = [line for line in lines if line.startswith("  - against vgg relu:")]
    assert relu.endswith("in distribution **not ahead**.")  # ahead on validation, behind on fresh draws
    lines = tuned_comparison(group_setups(rows[:-1], {"fresh": fresh}))  # four seeds of the tuned side
    judged = [line for line in lines if line.startswith("  - against") and "in distribution" in line]
    assert len(judged) == 2 and all(line.endswith("**open**.") for line in judged)


def test_the_committed_study_page_is_current():
    path = ROOT / "benchmarks" / "experiments" / "study_table.py"
    spec = importlib.util.spec_from_file_location("study_table", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check"]) == 0, "stale: run python benchmarks/experiments/study_table.py --write"


def _with_epochs(row: dict, epochs: int) -> dict:
    return {**row, "epochs_run": epochs}


def test_precise_batch_norm_rows_are_set_beside_the_study_and_the_ablation():
    study = group_setups(
        [_with_epochs(_row("resnet", "default", s, 0.037, 0.037), 26) for s in range(5)]
        + [_with_epochs(_row("resnet_mod", "default", s, 0.75 + s / 100, 0.8), 60) for s in range(5)]
    )
    assert precise_batch_norm_lines(study, {}) == ["No run with precise statistics has finished yet."]
    precise = group_setups(
        [_with_epochs(_row("resnet", "default-precisebn", s, 0.70 + s / 50, 0.75), 70) for s in range(3)]
    )
    text = "\n".join(precise_batch_norm_lines(study, precise))
    table_rows = [line for line in text.splitlines() if line.startswith("| resnet")]
    assert [line.split(" | ")[2] for line in table_rows] == [
        "precise", "moving (the study's)", "no batch norm (the ablation's modified side)"
    ]  # fmt: skip
    assert "| 70 |" in table_rows[0] and "| 26 |" in table_rows[1]  # median epochs
    # precise against moving: seeds 0-2 on both sides, every one ahead, open until five seeds
    assert "precise ahead of moving: test split +68.30 points, 3 of 3 seeds" in text
    assert "**open**" in text and "**holds**" in text  # the study's own ablation has five seeds a side
    assert "ahead of resnet with moving statistics: test split +73.30 points, 5 of 5 seeds" in text
    assert "ahead of resnet with precise statistics: test split +4.00 points, 3 of 3 seeds" in text
    assert "(paper: 3.70 → 80.74 %)" in text
