"""The plans of benchmarks/experiments/study.py: the challenge study (with ablations) and the paper's
500-class study."""

from __future__ import annotations

import importlib.util
import pathlib
from collections import Counter

STUDY = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "study.py"
spec = importlib.util.spec_from_file_location("study", STUDY)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def test_challenge_plan_has_every_published_model_both_activations_the_ablations_and_extra_seeds():
    plan = study.study_plan("challenge")
    first = study.study_plan("challenge", "1")
    assert len(first) == 7 * 2 + 1  # ResNet has no FC layers: one run
    expected = {("cnn6", "linear"), ("cnn6", "relu"), ("resnet", "default")}
    assert {(s.model, s.variant) for s in first} >= expected
    assert [s.model for s in study.study_plan("challenge", "2")] == list(study.VARIANTS_BY_COST)
    assert Counter(s.seed for s in study.study_plan("challenge", "3")) == {1: 4, 2: 4}
    assert len({s.run_id for s in plan}) == len(plan) == 28


def test_benchmark_plan_is_the_papers_five_seeds_of_the_published_models():
    plan = study.study_plan("benchmark")
    assert len(plan) == 8 * 5  # the paper's setup: linear FC, CNN6 ReLU, ResNet its own
    assert {(s.model, s.variant) for s in plan} == set(study.paper.BENCHMARK_PAPER_SETUPS)
    assert Counter(s.model for s in plan) == dict.fromkeys((*study.PUBLISHED_BY_COST, "resnet"), 5)
    assert study.study_plan("benchmark", "2") == []


def test_robustness_cross_tests_pair_challenge_with_challenge_realistic():
    assert study.CROSS_TESTS["challenge"] == ("challenge_realistic",)
    assert study.CROSS_TESTS["challenge_realistic"] == ("challenge",)


def test_fc_keeps_one_activation_and_the_runs_without_that_choice():
    plan = study.study_plan("challenge_realistic", "1", ("relu",))
    assert [(s.model, s.variant) for s in plan] == [
        *((m, "relu") for m in study.PUBLISHED_BY_COST),
        ("resnet", "default"),
    ]
    assert study.study_plan("challenge", "2", ("relu",)) == study.study_plan("challenge", "2")
    assert Counter(s.variant for s in study.study_plan("challenge", "3", ("linear",))) == {"linear": 4}
