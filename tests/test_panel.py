"""The generalisation panel (issue #15): its sets, the evaluation and the command line (on `mini`)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from synthetic_spectra.config import get_config
from synthetic_spectra.generator import generate
from zoo.study import panel

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "experiments" / "panel.py"


@pytest.fixture(scope="module")
def sets() -> dict[str, panel.PanelSet]:
    return {panel_set.name: panel_set for panel_set in panel.panel_sets("mini")}


def test_the_panel_has_every_group_with_its_seed_and_size(sets):
    groups = {s.group for s in sets.values()}
    assert groups == {"splits", "fresh draws", "test-like", "noise", "background", "peak shape", "shift"}
    mini = get_config("mini")  # no mini_realistic config: that group is left out
    assert sets["mini test"].size == mini.split_size("test") and sets["mini test"].seed is None
    assert sets["fresh draw 1 train"].size == mini.split_size("train")
    assert sets["test-like jitter 20"].size == mini.num_classes * panel.TEST_LIKE_PER_CLASS
    assert sets["gaussian snr 100"].size == panel.PERTURBATION_DRAWS * mini.split_size("test")
    random_seeds = [s.seed for s in sets.values() if s.group not in ("splits", "shift", "fresh draws")]
    assert len(random_seeds) == len(set(random_seeds))  # each random set has a seed of its own


def test_sets_are_deterministic_and_keep_the_labels(sets):
    for name in ("fresh draw 2 validation", "test-like jitter 10", "poisson 1000 counts"):
        first, second = sets[name].generate(), sets[name].generate()
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])
    published, labels = generate("mini", "test")
    noisy, noisy_labels = sets["gaussian snr 30"].generate()
    np.testing.assert_array_equal(noisy_labels, np.tile(labels, panel.PERTURBATION_DRAWS))
    residual = noisy[: len(labels)] - published
    np.testing.assert_allclose(residual.std(axis=1), published.max(axis=1) / 30, rtol=0.15)
    assert not np.allclose(noisy[: len(labels)], noisy[len(labels) : 2 * len(labels)])  # draws differ


def test_fresh_draws_differ_from_the_published_split(sets):
    published, labels = generate("mini", "validation")
    fresh, fresh_labels = sets["fresh draw 1 validation"].generate()
    np.testing.assert_array_equal(fresh_labels, labels)
    assert not np.allclose(fresh, published)


def test_global_shift_moves_the_whole_test_split(sets):
    published, _ = generate("mini", "test")
    shifted, _ = sets["shift +-20"].generate()
    n = len(published)
    apex, left, right = (np.argmax(a, axis=1) for a in (published, shifted[:n], shifted[n:]))
    np.testing.assert_array_equal(left, apex - 20)
    np.testing.assert_array_equal(right, apex + 20)


def test_test_like_spectra_are_test_patterns_shifted_whole(sets):
    mini = get_config("mini")
    test, test_labels = generate("mini", "test")
    unshifted = {
        int(label): test[np.flatnonzero(test_labels == label)[0]] for label in set(test_labels)
    }  # "PH"
    spectra, labels = sets["test-like"].generate()
    window = np.arange(-mini.test.shift, mini.test.shift + 1)
    moves = []
    for spectrum, label in zip(spectra, labels, strict=True):
        reference = unshifted[int(label)]
        scores = [np.corrcoef(np.roll(reference, move), spectrum)[0, 1] for move in window]
        assert max(scores) > 0.99  # the class's pattern, moved whole (heights change by <= 0.04)
        moves.append(window[int(np.argmax(scores))])
    assert len(set(moves)) > 2 * mini.test.shift - 2  # shifts spread over the whole range


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    keras.utils.set_random_seed(0)
    model = zoo.build("prnet", num_classes=10, input_length=1000, compile=False)
    return zoo.export(model, tmp_path_factory.mktemp("panel") / "prnet", dataset_config="mini")


def test_evaluate_scores_each_model_on_each_set_of_its_classes(export, sets):
    model = panel.PanelModel.load("tiny", str(export))
    chosen = [sets["mini test"], sets["shift +-40"]]
    rows = panel.evaluate([model], chosen, hardware="test machine")
    assert [row["set"] for row in rows] == ["mini test", "shift +-40"]
    spectra, labels = chosen[1].generate()
    wrong = int(np.sum(np.argmax(model.predictor.predict(spectra), axis=1) != labels))
    assert rows[1]["misclassified"] == wrong and rows[1]["accuracy"] == pytest.approx(1 - wrong / labels.size)
    assert rows[1]["size"] == labels.size and rows[1]["trained_on"] == "mini"
    assert rows[0]["bayes_ceiling"] == pytest.approx(1.0)  # mini's test shifts stay inside training's
    assert rows[1]["bayes_ceiling"] < 0.5  # shifted by 40 where training moves peaks by 10 at most
    assert sets["gaussian snr 100"].bayes_ceiling() is None  # noise: not bounded by the peaks alone
    other = panel.panel_sets("challenge")[:1]  # other classes: not evaluated
    assert panel.evaluate([model], other) == []


def test_a_model_trained_on_a_fresh_draw_resolves_its_config_from_the_export(tmp_path):
    """A dataset that is not built in (here a fresh draw of mini) travels in the export's metadata."""
    import dataclasses

    fresh = dataclasses.replace(get_config("mini"), name="mini_fresh7", seed=7)
    model = zoo.build("prnet", num_classes=10, input_length=1000, compile=False)
    path = zoo.export(model, tmp_path / "fresh", dataset_config=fresh)
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["dataset"] == "mini_fresh7" and metadata["dataset_config"]["seed"] == 7
    loaded = panel.PanelModel.load("fresh", str(path))
    assert loaded.dataset == fresh and panel.same_classes(loaded.dataset, get_config("mini"))
    builtin = zoo.export(model, tmp_path / "builtin", dataset_config=get_config("mini"))
    assert "dataset_config" not in json.loads((builtin / "metadata.json").read_text())


def test_table_and_figure(tmp_path):
    rows = [
        {"model": m, "set": s, "group": "g", "description": f"about {s}", "seed": seed, "size": 10,
         "accuracy": acc, "misclassified": round(10 * (1 - acc))}
        for m, s, seed, acc in [("A", "one", None, 1.0), ("A", "two", 5, 0.5), ("B", "one", None, 0.9)]
    ]  # fmt: skip
    rows[1]["bayes_ceiling"] = 0.75
    table = panel.markdown_table(rows, {"A": "model a"})
    assert "| g | one | fixed | 10 | – | 100.00% (0) | 90.00% (1) |" in table
    assert "| g | two | 5 | 10 | 75.00% | 50.00% (5) | – |" in table and "- **A**: model a" in table
    panel.plot_panel(rows, tmp_path / "panel.png")
    assert (tmp_path / "panel.png").read_bytes()[:4] == b"\x89PNG"
    panel.write_rows(rows, tmp_path / "rows.jsonl")
    assert panel.read_rows(tmp_path / "rows.jsonl") == [json.loads(json.dumps(r)) for r in rows]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def test_the_command_writes_table_rows_and_figure(export, tmp_path):
    out = tmp_path / "panel"
    args = ("--model", f"tiny={export}", "--dataset", "mini", "--sets", "shift", "--out", str(out))
    result = run_script(*args)
    assert result.returncode == 0, result.stderr
    rows = panel.read_rows(out / panel.ROWS_FILE)
    assert [row["set"] for row in rows] == ["shift +-20", "shift +-40"]
    assert "tiny" in (out / panel.TABLE_FILE).read_text() and (out / panel.FIGURE_FILE).exists()
    again = run_script(*args)
    assert again.returncode == 2 and "--overwrite" in again.stderr  # nothing replaced silently
    other = run_script("--model", f"tiny={export}", "--out", str(tmp_path / "other"))  # challenge's classes
    assert other.returncode == 2 and "not those of --dataset challenge" in other.stderr


def test_refreshing_the_ceilings_keeps_the_models_and_their_notes(sets, tmp_path):
    out = tmp_path / "panel"
    out.mkdir()
    rows = [
        {"model": m, "set": s, "group": sets[s].group, "description": sets[s].description,
         "seed": sets[s].seed, "size": sets[s].size, "bayes_ceiling": 0.5, "accuracy": 0.75,
         "misclassified": 3}
        for m in ("A", "B") for s in ("mini test", "shift +-40", "gaussian snr 30")
    ]  # fmt: skip
    panel.write_rows(rows, out / panel.ROWS_FILE)
    head = "# Generalisation panel\n\nMachine: somewhere.\n\n"
    (out / panel.TABLE_FILE).write_text(head + panel.markdown_table(rows, {"A": "model a", "B": "model b"}))
    result = run_script("--refresh-ceilings", "--dataset", "mini", "--out", str(out))
    assert result.returncode == 0, result.stderr
    refreshed = panel.read_rows(out / panel.ROWS_FILE)
    expected = {name: sets[name].bayes_ceiling() for name in ("mini test", "shift +-40", "gaussian snr 30")}
    assert [row["bayes_ceiling"] for row in refreshed] == [expected[row["set"]] for row in rows]
    assert [{**row, "bayes_ceiling": 0.5} for row in refreshed] == rows  # nothing else changes
    table = (out / panel.TABLE_FILE).read_text()
    assert table == head + panel.markdown_table(refreshed, {"A": "model a", "B": "model b"})
    assert (out / panel.FIGURE_FILE).exists()
    (out / panel.ROWS_FILE).write_text(json.dumps({**rows[0], "set": "no such set"}) + "\n")
    bad = run_script("--refresh-ceilings", "--dataset", "mini", "--out", str(out))
    assert bad.returncode == 2 and "no such set" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert table == (out / panel.TABLE_FILE).read_text()  # nothing rewritten


@pytest.mark.parametrize(
    ("model_args", "message"),
    [
        (["--model", "no-equals-sign"], "expected LABEL=EXPORT_DIR"),
        (["--model", "a=/no/such/export"], "does not exist"),
        (["--model", "a=x", "--model", "a=y"], "given twice"),
        ([], "at least one"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(model_args, message, tmp_path):
    result = run_script(*model_args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


# --- comparing models from the panel's rows (benchmarks/experiments/panel_compare.py) -----------------------

COMPARE_SCRIPT = ROOT / "benchmarks" / "experiments" / "panel_compare.py"


def _row(model: str, set_name: str, group: str, accuracy: float) -> dict:
    wrong = round(100 * (1 - accuracy))
    return {"model": model, "set": set_name, "group": group, "description": "", "seed": 1, "size": 100,
            "bayes_ceiling": None, "accuracy": accuracy, "misclassified": wrong}  # fmt: skip


def _rows() -> list[dict]:
    accuracies = {
        ("gaussian snr 100", "noise"): {"a0": 0.80, "a1": 0.60, "a2": 0.70, "cnn": 0.65, "vgg": 0.72},
        ("linear background", "background"): {"a0": 0.90, "a1": 0.91, "a2": 0.50, "cnn": 0.55, "vgg": 0.40},
        ("shift +-40", "shift"): {"a0": 0.30, "a1": 0.30, "a2": 0.30, "cnn": 0.70, "vgg": 0.20},
    }
    return [_row(m, s, g, a) for (s, g), by_model in accuracies.items() for m, a in by_model.items()]


def test_compare_takes_the_candidates_median_against_the_best_reference():
    comparisons = panel.compare(_rows(), ["a0", "a1", "a2"], ["cnn", "vgg"])
    by_set = {c.set: c for c in comparisons}
    noise = by_set["gaussian snr 100"]
    assert noise.candidate_median == pytest.approx(0.70) and noise.best_reference == "vgg"
    assert noise.margin == pytest.approx(-0.02)
    assert by_set["linear background"].margin == pytest.approx(0.90 - 0.55)
    text = panel.comparison_markdown(comparisons, "A")
    assert "- shift: at or above the best reference on 0 of 1 sets" in text
    summary = "noise, background, peak shape: at or above the best reference on 1 of 2 sets**"
    assert f"{summary} (behind on: gaussian snr 100)" in text
    with pytest.raises(ValueError, match="'nope'"):
        panel.compare(_rows(), ["a0", "nope"], ["cnn"])
    with pytest.raises(ValueError, match="both candidate and reference"):
        panel.compare(_rows(), ["a0"], ["a0", "cnn"])


def test_merging_panels_keeps_one_row_per_model_and_set_and_refuses_conflicts():
    rows = _rows()
    assert len(panel.merge_rows([rows, rows[:3]])) == len(rows)
    changed = [dict(rows[0], accuracy=0.1)]
    with pytest.raises(ValueError, match="two panels disagree"):
        panel.merge_rows([rows, changed])


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(COMPARE_SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_the_compare_command_writes_its_table_and_rejects_bad_input(tmp_path):
    rows_file = tmp_path / "panel.jsonl"
    panel.write_rows(_rows(), rows_file)
    out = tmp_path / "compare.md"
    args = ["--rows", str(rows_file), "--candidate", "a0", "--candidate", "a1", "--candidate", "a2",
            "--reference", "cnn", "--reference", "vgg", "--name", "A", "--out", str(out)]  # fmt: skip
    result = _compare(*args)
    assert result.returncode == 0, result.stderr
    assert (
        "| noise | gaussian snr 100 | 70.00% | 80.00% / 60.00% / 70.00% | vgg | 72.00% | -2.00 |"
        in out.read_text()
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"model": "a0"\n')
    not_rows = tmp_path / "not_rows.jsonl"
    not_rows.write_text('{"x": 1}\n')
    for bad, message in (
        (args, "exists; pass --overwrite"),
        (["--rows", str(tmp_path / "missing.jsonl"), *args[2:-2]], "is not a file"),
        (["--rows", str(broken), *args[2:-2]], "is not JSON lines"),
        (["--rows", str(not_rows), *args[2:-2]], "line 1 is not a panel row"),
        ([*args[:-2], "--reference", "nope"], "no panel rows for model 'nope'"),
    ):
        result = _compare(*bad)
        assert result.returncode == 2 and message in result.stderr, (bad, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
