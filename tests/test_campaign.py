"""benchmarks/experiments/campaign.py: the groups, their order, where rows go, bad arguments."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "campaign.py"
spec = importlib.util.spec_from_file_location("campaign", SCRIPT)
campaign = importlib.util.module_from_spec(spec)
spec.loader.exec_module(campaign)


def _names(group: int) -> list[str]:
    return [f"{s.dataset}/{s.model}-{s.variant}-seed{s.seed}" for s in campaign.campaign_groups()[group]]


def test_both_sides_of_every_ablation_are_in_groups_1_and_2():
    from zoo.study import paper

    first = {(s.config.name, s.model, s.seed) for g in (1, 2) for s in campaign.campaign_groups()[g]}
    for pair in paper.ABLATION_PAIRS:
        for model in (pair.original, pair.modified):
            assert (paper.ABLATION_DATASET, model, 0) in first, model


def test_groups_follow_the_issue():
    assert _names(1) == [
        "challenge/vgg-relu-seed0", "challenge/cnn2-relu-seed0", "challenge/cnn2-linear-seed0",
        "challenge/vgg-linear-seed0", "challenge/cnn3-relu-seed0", "challenge/cnn6-relu-seed0",
        "challenge/cnn6-linear-seed0",
    ]  # fmt: skip
    assert {name.split("/")[1].split("-")[0] for name in _names(2)} == {
        "resnet_mod", "cnn6_convdo", "cnn6_bn", "vgg_mod", "cnn_bn", "cnn_bn_mod", "inc3", "resnet"
    }  # fmt: skip
    assert _names(3) == ["benchmark/vgg-relu-seed0", "benchmark/cnn2-relu-seed0", "benchmark/cnn6-relu-seed0"]
    group4 = campaign.campaign_groups()[4]
    assert len(group4) == 3 * 4 * 2 and {s.seed for s in group4} == {1, 2, 3, 4}
    assert _names(0) == ["challenge/vgg-relu-seed0", "challenge/cnn6-relu-seed0"]
    assert _names(6) == ["challenge/prnet-default-seed0"]
    assert [s.model for s in campaign.campaign_groups()[7]] == [
        "oviedo", "park", "mozaffari", "vecsei", "bhattacharya", "fan", "schuetzke"
    ]  # fmt: skip
    assert _names(8) == ["challenge_realistic/prnet-robust-seed0", "challenge/prnet-robust-seed0"]
    assert all(dict(s.toggles)["noise"] == 1.5 for s in campaign.campaign_groups()[8])
    assert _names(9) == ["challenge/prnet-default-aug-all-seed0", "challenge/prnet-robust-aug-all-seed0"]
    assert _names(10) == ["challenge/cnn6-relu-aug-all-seed0"]
    assert all(spec.augment.name == "all" for g in (9, 10) for spec in campaign.campaign_groups()[g])
    group11 = campaign.campaign_groups()[11]
    assert _names(11)[:5] == [
        "challenge/prnet-v4-seed0", "challenge_fresh3/prnet-v4-seed0", "challenge_fresh4/prnet-v4-seed0",
        "challenge_fresh5/prnet-v4-seed0", "challenge_realistic/prnet-v4-seed0",
    ]  # fmt: skip
    assert sorted(s.seed for s in group11 if s.dataset == "benchmark") == [0, 1, 2]
    assert all(dict(s.toggles)["noise_statistic"] == "mad" for s in group11)
    fresh = [s.config for s in group11 if "fresh" in s.dataset]
    published = campaign.get_config("challenge")
    assert [c.seed for c in fresh] == [3, 4, 5] and all(c.positions == published.positions for c in fresh)
    every = [s.run_id for g in range(1, 12) for s in campaign.campaign_groups()[g]]
    assert len(every) == len(set(every))  # no run twice across groups 1-11


def test_study_groups_are_the_papers_setups_with_five_seeds_in_float32(tmp_path):
    from zoo.study import paper

    group12 = campaign.campaign_groups()[12]
    assert len(group12) == 13 * 5
    assert {(s.model, s.variant) for s in group12} == set(paper.CHALLENGE_CLAIM_SETUPS)
    assert [s.seed for s in group12[:5]] == [0, 1, 2, 3, 4]  # a setup's seeds in a row
    for pair in paper.ABLATION_PAIRS:  # both sides of every ablation pair
        assert {pair.original, pair.modified} <= {s.model for s in group12}
    for model in ("vgg", "cnn2", "cnn6"):  # both FC activations
        assert {s.variant for s in group12 if s.model == model} == {"relu", "linear"}
    benchmark = campaign.campaign_groups()[14]
    assert {s.dataset for s in benchmark} == {"benchmark"} and {s.seed for s in benchmark} == {0}
    assert {s.model: s.variant for s in benchmark}["cnn6"] == "relu"
    assert {s.variant for s in benchmark if s.model not in ("cnn6", "resnet")} == {"linear"}
    every = [s.run_id for g in (12, 13, 14) for s in campaign.campaign_groups()[g]]
    assert len(every) == len(set(every))
    assert campaign.results_dir("challenge", tmp_path, 12) == tmp_path / "study" / "challenge"
    assert campaign.results_dir("benchmark", tmp_path, 14) == tmp_path / "study" / "benchmark"
    assert campaign.DEFAULT_GROUPS.startswith("12,14,15,13")


def test_the_precise_batch_norm_group_trains_the_bn_setups_apart_from_the_study(tmp_path):
    group16 = campaign.campaign_groups()[16]
    assert _names(16)[:2] == [
        "challenge/resnet-default-precisebn-seed0",
        "challenge/cnn6_bn-default-precisebn-seed0",
    ]
    assert sorted((s.model, s.seed) for s in group16) == [
        (m, k) for m in ("cnn6_bn", "resnet") for k in range(5)
    ]
    assert {s.batch_norm_statistics for s in group16} == {"precise"}
    assert campaign.results_dir("challenge", tmp_path, 16) == tmp_path / "precise_bn" / "challenge"
    study = {s.run_id for g in campaign.STUDY_GROUPS for s in campaign.campaign_groups()[g]}
    assert not study & {s.run_id for s in group16}


def test_the_tuned_group_waits_for_the_whole_grid(tmp_path):
    best = {"toggles": {"fc_activation": "relu", "fc_dropout": 0.5, "conv_dropout": 0.0, "batch_norm": False},
            "base": "vgg", "dataset": "challenge", "trials": 31}  # fmt: skip
    (tmp_path / "best_hparams.json").write_text(json.dumps(best))
    assert campaign.tuned_runs(tmp_path) == [] and campaign.tuned_runs(tmp_path / "none") == []
    (tmp_path / "best_hparams.json").write_text(json.dumps({**best, "trials": 32}))
    runs = campaign.tuned_runs(tmp_path)
    assert [s.seed for s in runs] == [0, 1, 2, 3, 4] and {s.variant for s in runs} == {"relu-tuned"}
    assert dict(runs[0].toggles)["fc_dropout"] == 0.5


def test_plan_keeps_the_given_group_order_and_rows_go_apart_from_the_capped_ones(tmp_path):
    plan = campaign.campaign_plan([1, 6, 2, 1])
    assert [g for g, _ in plan][:8] == [1] * 7 + [6] and plan[7][1].model == "prnet"
    assert campaign.results_dir("challenge", tmp_path) == tmp_path / "challenge_converged"
    assert campaign.results_dir("challenge", tmp_path, 0) == tmp_path / "precision_check" / "challenge"


def test_runs_picks_runs_by_pattern_in_the_plans_order():
    plan = campaign.campaign_plan([12, 13])
    chosen = campaign.select_runs(plan, "challenge/cnn_bn-*-seed[34], challenge/cnn3-relu-seed0")
    assert [spec.run_id for _, spec in chosen] == [
        "challenge/cnn_bn-relu-seed3", "challenge/cnn_bn-relu-seed4", "challenge/cnn3-relu-seed0",
        "challenge/cnn_bn-linear-seed3", "challenge/cnn_bn-linear-seed4",
    ]  # fmt: skip
    assert [group for group, _ in chosen] == [12, 12, 13, 13, 13]
    assert campaign.select_runs(plan, None) == plan


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--groups", "99"], "--groups: choose from"), (["--groups", "a"], "expected comma-separated"),
     (["--precision", "fp8"], "invalid choice"),
     (["--groups", "12", "--runs", "challenge/cnn_bn-linear-*"], "--runs: no run of the chosen groups")],
)  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(args, message, tmp_path, script_in_process):
    status, out, err = script_in_process(SCRIPT, "--results-root", tmp_path, *args)
    assert status == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.iterdir())


def test_a_precision_check_trains_in_the_other_precision_than_its_row(tmp_path):
    from zoo.training.results import append_result

    vgg, cnn6 = campaign.campaign_groups()[0]
    folder = campaign.results_dir("challenge", tmp_path)
    folder.mkdir(parents=True)
    append_result(folder / "results.jsonl", {"run_id": vgg.run_id, "precision": "float32"})
    append_result(folder / "results.jsonl", {"run_id": cnn6.run_id, "precision": "mixed_bfloat16"})
    assert campaign.check_precision(vgg, tmp_path, "auto") == "mixed_bfloat16"
    assert campaign.check_precision(cnn6, tmp_path, "auto") == "float32"
    (folder / "results.jsonl").unlink()  # no row yet: the other one than the campaign's own precision
    assert campaign.check_precision(vgg, tmp_path, "float32") == "mixed_bfloat16"


def test_the_plan_says_what_the_rest_cost_on_this_cpu_from_the_setups_finished_runs(tmp_path, capsys):
    from zoo.training.results import append_result

    plan = campaign.select_runs(campaign.campaign_plan([12]), "challenge/cnn_bn-relu-*")
    folder = campaign.results_dir("challenge", tmp_path, 12)
    folder.mkdir(parents=True)
    here, elsewhere = {"model_name": "Here", "flags": ["AVX2"]}, {"model_name": "There", "flags": ["AVX2"]}
    finished = [spec for _, spec in plan][:3]
    for spec, hours, cpu in zip(finished, (1.0, 2.0, 9.0), (here, here, elsewhere), strict=True):
        append_result(folder / "results.jsonl", {
            "run_id": spec.run_id, "dataset": "challenge", "model": "cnn_bn", "variant": "relu",
            "seed": spec.seed, "cpu_time_s": 3600 * hours, "cpu": cpu, "test_accuracy": 0.5,
            "misclassified": 81, "test_size": 162, "epochs_run": 90, "stop_reason": "early_stopping",
        })  # fmt: skip
    campaign.print_plan(plan, tmp_path, "Here (AVX2)")
    lines = capsys.readouterr().out.splitlines()
    assert "50.00% (81/162 wrong), 90 epochs" in lines[0]
    assert lines[3].endswith("to train (about 1.5 CPU-h here, the median of 2 runs on this CPU)")
    campaign.print_plan(plan, tmp_path, "Elsewhere (AVX2)")
    assert capsys.readouterr().out.splitlines()[4].endswith("(no run of this setup has trained on this CPU)")
