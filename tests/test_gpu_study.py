"""benchmarks/experiments/gpu_study.py on the CPU with the JAX backend and TensorFlow hidden, as on the GPU
machine."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax")

from no_tensorflow import HIDE_TENSORFLOW

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "experiments" / "gpu_study.py"


def _call(tmp_path: pathlib.Path, *args: str, budget: float) -> subprocess.CompletedProcess:
    hide = tmp_path / "no_tensorflow"
    hide.mkdir(exist_ok=True)
    (hide / "sitecustomize.py").write_text(HIDE_TENSORFLOW)
    env = {**os.environ, "PYTHONPATH": str(hide), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
               "--datasets", "mini", "--models", "vgg", "--max-epochs", "2", "--workers", "2",
               "--budget-s", str(budget), *args]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)


def _rows(tmp_path: pathlib.Path) -> list[dict]:
    path = tmp_path / "out" / "mini" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_rows_land_budget_holds_and_a_second_call_skips_finished_runs(tmp_path):
    result = _call(tmp_path, "--seeds", "0", budget=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = _rows(tmp_path)
    assert sorted(row["run_id"] for row in rows) == ["mini/vgg-linear-seed0", "mini/vgg-relu-seed0"]
    for row in rows:  # the CPU runner's schema, trained with JAX, no TensorFlow, nothing exported
        assert row["backend"] == "jax" and row["device"] == "cpu" and row["epochs_run"] == 2
        assert row["export_dir"] is None and row["precision"] == "float32"
    assert not (tmp_path / "out" / "mini" / "runs").exists()  # backups stay in --work

    # Seeds 0-1 with a budget too short for a run: seed 0 is skipped, seed 1 stopped at the budget.
    result = _call(tmp_path, "--seeds", "0-1", budget=20)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 runs to train, 2 finished before" in result.stdout
    assert "budget reached: stopping 2 run(s)" in result.stdout
    assert len(_rows(tmp_path)) == 2


def test_bad_arguments_are_one_line_and_exit_2(tmp_path):
    for args, message in (
        (["--models", "nope"], "--models: unknown model 'nope'"),
        (["--datasets", "nope"], "nope"),
        (["--seeds", "x"], "seeds: expected"),
    ):
        result = _call(tmp_path, *args, budget=60)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_the_plan_is_the_studys_and_merge_adds_only_new_rows(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks" / "experiments"))
    try:
        import gpu_study
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "experiments"))
    from zoo.study import paper

    plan = gpu_study.paper_plan(("challenge", "benchmark"), (0,))
    assert [(p.model, p.variant) for p in plan if p.dataset == "challenge"] == [
        *paper.CHALLENGE_CLAIM_SETUPS, *paper.CHALLENGE_FOLLOW_UP_SETUPS
    ]  # fmt: skip
    assert [(p.model, p.variant) for p in plan if p.dataset == "benchmark"] == list(
        paper.BENCHMARK_PAPER_SETUPS
    )

    returned, study = tmp_path / "returned", tmp_path / "study"
    (returned / "challenge").mkdir(parents=True)
    (study / "challenge").mkdir(parents=True)
    rows = [{"run_id": f"challenge/vgg-relu-seed{k}", "seed": k} for k in (0, 1)]
    (returned / "challenge" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (study / "challenge" / "results.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert gpu_study.merge_rows(returned, study) == ["challenge/vgg-relu-seed1"]
    assert gpu_study.merge_rows(returned, study) == []
    assert len((study / "challenge" / "results.jsonl").read_text().splitlines()) == 2
