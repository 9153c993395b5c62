"""The study report (zoo.study.report, ``spectrazoo report``) on small synthetic results files."""

from __future__ import annotations

import json
import statistics
from itertools import cycle, islice
from pathlib import Path

import pytest

import zoo.commands.cli
from zoo.study.failure_modes import INTENSITY_OVERLAP, MINOR_PEAK, MODES, OTHER, POSITION_OVERLAP
from zoo.study.report import read_results, write_report

CHALLENGE_TEST_SIZE, CHALLENGE_PER_CLASS = 162, 6
BENCHMARK_TEST_SIZE, BENCHMARK_PER_CLASS = 4500, 9
HARDWARE = "2-core test CPU (Example 9000)"
#: Confusions cycled through by the synthetic runs, with their failure modes (see test_analysis).
CONFUSIONS = {(1, 0): MINOR_PEAK, (10, 9): POSITION_OVERLAP, (19, 18): INTENSITY_OVERLAP, (0, 9): OTHER}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def main(monkeypatch):
    """``zoo.commands.cli.main`` with the report command registered (the lead adds it to COMMAND_MODULES)."""
    if "zoo.commands.report" not in zoo.commands.cli.COMMAND_MODULES:
        monkeypatch.setattr(
            zoo.commands.cli, "COMMAND_MODULES", (*zoo.commands.cli.COMMAND_MODULES, "zoo.commands.report")
        )
    return zoo.commands.cli.main


def make_row(model, variant, seed, errors, *, dataset="challenge", confusions=CONFUSIONS, run_id=None):
    """A results row following the runner's contract with ``errors`` misclassified test spectra."""
    per_class, test_size = {
        "challenge": (CHALLENGE_PER_CLASS, CHALLENGE_TEST_SIZE),
        "benchmark": (BENCHMARK_PER_CLASS, BENCHMARK_TEST_SIZE),
    }.get(dataset, (CHALLENGE_PER_CLASS, CHALLENGE_TEST_SIZE))
    pairs = list(islice(cycle(confusions), errors))
    samples = [
        {"index": per_class * t + k % per_class, "true": t, "pred": p} for k, (t, p) in enumerate(pairs)
    ]
    epochs = 10 + seed
    return {
        "schema": 1,
        "run_id": run_id or f"{dataset}/{model}-{variant}-seed{seed}",
        "dataset": dataset,
        "model": model,
        "variant": variant,
        "toggles": {"fc_activation": variant},
        "seed": seed,
        "max_epochs": 60,
        "epochs_run": epochs,
        "stop_reason": "early_stopping",
        "best_epoch": epochs - 3,
        "best_val_loss": 0.5,
        "val_accuracy": 0.9,
        "test_accuracy": (test_size - errors) / test_size,
        "test_size": test_size,
        "misclassified": errors,
        "misclassified_samples": samples,
        "history": {
            "loss": [2.0 / (e + 1) for e in range(epochs)],
            "val_loss": [2.5 / (e + 1) + 0.1 for e in range(epochs)],
            "accuracy": [0.5] * epochs,
            "val_accuracy": [0.5] * epochs,
            "learning_rate": [3e-4] * epochs,
        },
        "lr_factor": 0.5,
        "batch_size": 128,
        "params": 1000,
        "wall_time_s": 12.5,
        "train_spectra_per_s": 100.0,
        "hardware": HARDWARE,
        "versions": {"keras": "3.15.1", "python": "3.11"},
        "backend": "tensorflow",
        "finished": "2025-01-01T00:00:00",
    }


#: (model, variant) -> misclassified test spectra per seed 0, 1, 2, ... of the challenge runs.
CHALLENGE_ERRORS = {
    ("cnn6", "linear"): [30, 28, 35],
    ("cnn6", "relu"): [20, 15, 25],
    ("vgg", "linear"): [40, 44],
    ("vgg", "relu"): [50, 52],
    ("cnn6_bn", "relu"): [55, 49],
    ("resnet", "relu"): [156],
}


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def challenge_report(tmp_path_factory):
    """A challenge results file (with a superseded duplicate row) and its report."""
    folder = tmp_path_factory.mktemp("challenge")
    superseded = make_row("cnn6", "relu", 0, 99)  # the same run_id again below: the later row counts
    rows = [superseded] + [
        make_row(model, variant, seed, errors)
        for (model, variant), per_seed in CHALLENGE_ERRORS.items()
        for seed, errors in enumerate(per_seed)
    ]
    results = write_rows(folder / "results.jsonl", rows)
    report = write_report(results, folder / "out", max_pairs=3)
    return report, report.read_text()


def accuracy_cells(errors, test_size=CHALLENGE_TEST_SIZE):
    accuracies = [100 * (test_size - e) / test_size for e in errors]
    stats = (statistics.mean, statistics.median, min, max)
    return [f"{f(accuracies):.2f} %" for f in stats] + [f"{float(f(errors)):.1f}" for f in stats]


@pytest.mark.parametrize(("model", "variant"), list(CHALLENGE_ERRORS))
def test_table_holds_the_statistics_over_seeds(challenge_report, model, variant):
    _, text = challenge_report
    errors = CHALLENGE_ERRORS[(model, variant)]
    seeds = ", ".join(str(s) for s in range(len(errors)))
    epochs = [10 + s for s in range(len(errors))]
    expected = [model, variant, seeds, *accuracy_cells(errors)]
    expected += [f"{statistics.mean(epochs):.0f} ({min(epochs)}–{max(epochs)})", "60"]
    assert "| " + " | ".join(expected) + " |" in text.splitlines()


def test_models_appear_in_the_studys_order(challenge_report):
    _, text = challenge_report
    order = [text.index(f"| {model} | {variant} |") for model, variant in CHALLENGE_ERRORS]
    # cnn6 (linear, relu), vgg, cnn6_bn, resnet → the study's order: cnn6, vgg, resnet, cnn6_bn
    assert order[0] < order[1] < order[2] < order[3] < order[5] < order[4]


def test_setup_states_seeds_epochs_and_hardware(challenge_report):
    _, text = challenge_report
    runs = sum(len(errors) for errors in CHALLENGE_ERRORS.values())  # the superseded row not counted
    epochs = [10 + seed for errors in CHALLENGE_ERRORS.values() for seed in range(len(errors))]
    assert f"- Runs: {runs} in {len(CHALLENGE_ERRORS)} model/variant groups; seeds: 0, 1, 2." in text
    assert f"- Hardware: {HARDWARE} ({runs} runs)." in text
    assert (
        f"- Epochs: max_epochs 60 ({runs} runs); epochs run 10–12 (mean {statistics.mean(epochs):.0f})."
        in text
    )
    assert f"- Stop reason: early_stopping ({runs} runs)." in text


def median_accuracy(model: str, variant: str) -> float:
    return statistics.median([100 * (162 - e) / 162 for e in CHALLENGE_ERRORS[(model, variant)]])


def test_relu_against_linear(challenge_report):
    _, text = challenge_report
    assert "ReLU is better for 1 of 2 models." in text
    cnn6_gain = median_accuracy("cnn6", "relu") - median_accuracy("cnn6", "linear")
    vgg_gain = median_accuracy("vgg", "relu") - median_accuracy("vgg", "linear")
    assert f"| {cnn6_gain:+.2f} | yes |" in text
    assert f"| {vgg_gain:+.2f} | no |" in text
    assert "| ReLU FC beats linear FC (median test accuracy) | every model | 1 of 2 models | no |" in text


def test_paper_figures_beside_ours(challenge_report):
    _, text = challenge_report
    bn, cnn6, resnet = (median_accuracy(m, "relu") for m in ("cnn6_bn", "cnn6", "resnet"))
    ours = f"{bn:.2f} % (relu, 2 seeds) → {cnn6:.2f} % (relu, 3 seeds)"
    assert (
        f"| cnn6_bn → cnn6 | BN removed | 67.90 % → 85.19 % | {ours} | +17.29 | {cnn6 - bn:+.2f} | " in text
    )
    assert f"| 3.70 % → 80.74 % | {resnet:.2f} % (relu, 1 seed) → — | +77.04 | — | — |" in text
    assert "cnn_bn → cnn_bn_mod" not in text  # neither model was run
    assert f"cnn6 (relu) {cnn6:.2f} %; best cnn6 (relu) {cnn6:.2f} % | yes |" in text
    assert f"| ≈ 3.70 % | resnet (relu) median {resnet:.2f} % |" in text


def test_ablation_direction_is_compared_with_the_papers(challenge_report, tmp_path):
    _, text = challenge_report  # cnn6 relu (20, 15, 25 wrong) beats cnn6_bn (55, 49): the paper's direction
    assert (
        f"| +17.29 | {median_accuracy('cnn6', 'relu') - median_accuracy('cnn6_bn', 'relu'):+.2f} | yes |"
        in text
    )
    assert "in the paper's direction for 1 of 1 pairs run so far (the paper has 5)." in text
    # conv dropout that helps here (10 wrong against 20) goes against the paper (removing it helped, +5.56)
    rows = [make_row("cnn6", "relu", 0, 20), make_row("cnn6_convdo", "default", 0, 10)]
    text = write_report(write_rows(tmp_path / "results.jsonl", rows), tmp_path / "out").read_text()
    assert f"| +5.56 | {100 * (10 - 20) / 162:+.2f} | no |" in text
    assert "in the paper's direction for 0 of 1 pairs run so far (the paper has 5)." in text
    # every pair run: the count says so; only resnet → resnet_mod (60 → 30 wrong) moves as in the paper
    errors = {"cnn_bn": 30, "cnn_bn_mod": 40, "resnet": 60, "resnet_mod": 30, "cnn6_bn": 10, "cnn6": 20}
    errors |= {"cnn6_convdo": 10, "vgg": 20, "vgg_mod": 30}
    with_fc = ("cnn_bn", "cnn6", "vgg")
    rows = [make_row(m, "relu" if m in with_fc else "default", 0, e) for m, e in errors.items()]
    text = write_report(write_rows(tmp_path / "all.jsonl", rows), tmp_path / "all").read_text()
    assert "in the paper's direction for 1 of 5 pairs (all the paper's pairs)." in text


def test_failure_modes_are_counted(challenge_report):
    _, text = challenge_report
    counts = dict.fromkeys(MODES, 0)
    for errors in CHALLENGE_ERRORS.values():
        for e in errors:
            for k in range(e):
                counts[CONFUSIONS[list(CONFUSIONS)[k % len(CONFUSIONS)]]] += 1
    total = sum(counts.values())
    assert "| all |  |  | " + " | ".join(str(counts[m]) for m in MODES) + f" | {total} |" in text
    assert "| 1 | 1 | 0 | minor peak |" in text  # the most frequent pair comes first
    assert f"Not listed: 1 pair with {counts[OTHER]} misclassifications." in text


def test_figures_are_written(challenge_report):
    report, text = challenge_report
    figures = sorted(p.name for p in (report.parent / "figures").iterdir())
    pairs = [name for name in figures if "_confusion_" in name]
    assert len(pairs) == 3  # max_pairs
    assert {"challenge_accuracy.png", "challenge_loss.png"} <= set(figures)
    for name in figures:
        assert (report.parent / "figures" / name).read_bytes().startswith(PNG_SIGNATURE)
        assert f"figures/{name}" in text


def test_robustness_table_has_the_medians_on_each_cross_test_set(tmp_path):
    rows = []
    for seed, (own, cross) in enumerate([(10, 0.2), (20, 0.1), (30, 0.3)]):
        row = make_row("cnn6", "relu", seed, own)
        row["cross_tests"] = {"challenge_realistic": {"test_accuracy": cross}}
        rows.append(row)
    rows.append(make_row("vgg", "relu", 0, 40))  # no cross test: a dash
    text = write_report(write_rows(tmp_path / "r.jsonl", rows), tmp_path / "out").read_text()
    section = text.split("### Robustness: models trained on `challenge`")[1]
    cnn6, vgg = (100 * (CHALLENGE_TEST_SIZE - errors) / CHALLENGE_TEST_SIZE for errors in (20, 40))
    assert f"| cnn6 | relu | {cnn6:.2f} % (3) | 20.00 % (3) |" in section
    assert f"| vgg | relu | {vgg:.2f} % (1) | – |" in section


def test_several_results_files_are_merged_in_order(main, tmp_path, capsys):
    study = write_rows(
        tmp_path / "study.jsonl", [make_row("cnn6", "relu", 0, 30), make_row("vgg", "relu", 0, 40)]
    )
    newer = write_rows(
        tmp_path / "new.jsonl", [make_row("prnet", "default", 0, 10), make_row("vgg", "relu", 0, 4)]
    )
    assert main(["report", str(study), str(newer)]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"Results: `{study}`, `{newer}`, 3 runs on `challenge`" in text
    vgg = f"{100 * (CHALLENGE_TEST_SIZE - 4) / CHALLENGE_TEST_SIZE:.2f} %"
    assert f"| vgg | relu | 0 | {vgg} |" in text and "| prnet | default | 0 |" in text
    # The paper's claims are checked on the study's models; a new model is listed but not compared.
    assert "best vgg (relu)" in text and "best prnet" not in text


def test_a_bad_row_in_the_second_file_is_named_by_its_file_and_line(main, tmp_path, capsys):
    good = write_rows(tmp_path / "a.jsonl", [make_row("cnn6", "relu", 0, 3)])
    bad = tmp_path / "b.jsonl"
    bad.write_text(_bad({"seed": "0"}) + "\n")
    assert main(["report", str(good), str(bad), "--out", str(tmp_path / "out")]) == 2
    assert f"{bad}:1: field 'seed' has the wrong type" in capsys.readouterr().err


def test_no_robustness_section_without_cross_tests(challenge_report):
    assert "Robustness" not in challenge_report[1]


def test_benchmark_findings(tmp_path):
    errors = {("cnn6", "relu"): [7, 9], ("cnn_bn", "linear"): [60, 20], ("cnn2", "linear"): [12, 15]}
    pairs = {(8, 318): POSITION_OVERLAP}
    rows = [
        make_row(model, variant, seed, e, dataset="benchmark", confusions=pairs)
        for (model, variant), per_seed in errors.items()
        for seed, e in enumerate(per_seed)
    ]
    text = write_report(write_rows(tmp_path / "r.jsonl", rows), tmp_path / "out").read_text()
    lowest = 100 * (BENCHMARK_TEST_SIZE - 60) / BENCHMARK_TEST_SIZE
    assert f"| ≥ 98.9 % | lowest run {lowest:.2f} %: cnn_bn (linear), seed 0 | no |" in text
    assert "| ≈ 8 | cnn6 (relu) 8.0; best cnn6 (relu) 8.0 | yes |" in text
    assert "| 10–40 | 3 of 6 runs in 10–40; all runs 7–60 |" in text
    assert "| cnn_bn | cnn_bn (linear): mean 40.0, SD 20.0 | yes |" in text
    assert "| 1 | 8 | 318 | position overlap | 123 |" in text
    assert "| all |  |  | 0 | 123 | 0 | 0 | 0 | 123 |" in text


def test_unknown_dataset_is_reported_without_failure_modes(tmp_path):
    rows = [make_row("mymodel", "relu+bn", 0, 3, dataset="my_data")]
    text = write_report(write_rows(tmp_path / "r.jsonl", rows), tmp_path / "out").read_text()
    assert "| mymodel | relu+bn | 0 |" in text
    assert "No class table is known for dataset 'my_data'" in text
    assert "paper's findings" not in text


def test_read_results_keeps_the_last_row_of_a_run_id(tmp_path):
    rows = [make_row("cnn6", "relu", 0, 5), make_row("vgg", "relu", 0, 3), make_row("cnn6", "relu", 0, 7)]
    runs = read_results(write_rows(tmp_path / "r.jsonl", rows))
    assert {r.run_id: (r.misclassified, r.line) for r in runs} == {
        "challenge/cnn6-relu-seed0": (7, 3),
        "challenge/vgg-relu-seed0": (3, 2),
    }


def test_cli_writes_the_report_beside_the_results(main, tmp_path, capsys):
    results = write_rows(tmp_path / "r.jsonl", [make_row("cnn6", "relu", 0, 2)])
    assert main(["report", str(results), "--max-pairs", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "report" / "report.md")
    assert (tmp_path / "report" / "figures" / "challenge_confusion_1_as_0.png").is_file()


def _bad(row_changes: dict) -> str:
    row = make_row("cnn6", "relu", 0, 2)
    row.update(row_changes)
    return json.dumps(row)


GOOD = json.dumps(make_row("vgg", "relu", 0, 2))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "r.jsonl: results file not found"),
        ("", "r.jsonl: no result rows (empty file)"),
        ("\n  \n", "r.jsonl: no result rows (empty file)"),
        (GOOD + "\n{not json\n", "r.jsonl:2: not valid JSON"),
        (GOOD + "\n\n[1, 2]\n", "r.jsonl:3: expected a JSON object, got list"),
        (_bad({"test_accuracy": None}), "r.jsonl:1: missing field 'test_accuracy'"),
        (_bad({"seed": "0"}), "r.jsonl:1: field 'seed' has the wrong type: '0'"),
        (_bad({"schema": 2}), "r.jsonl:1: field 'schema' must be 1, got 2"),
        (_bad({"test_accuracy": 1.5}), "r.jsonl:1: field 'test_accuracy' must be in [0, 1]"),
        (_bad({"misclassified": 200}), "r.jsonl:1: fields 'misclassified' (200) and 'test_size' (162)"),
        (_bad({"misclassified_samples": [{"index": 1}]}), "r.jsonl:1: misclassified_samples needs integer"),
        (
            _bad({"misclassified_samples": [{"index": 162, "true": 0, "pred": 1}]}),
            "r.jsonl:1: misclassified_samples entry",
        ),
        (_bad({"history": {"loss": [0.1, "x"]}}), "r.jsonl:1: history['loss'] must be a list of numbers"),
        (
            _bad({"cross_tests": {"challenge_realistic": {"test_accuracy": 2}}}),
            "r.jsonl:1: cross_tests['challenge_realistic'] needs a test_accuracy in [0, 1]",
        ),
        (
            GOOD + "\n" + _bad({"misclassified_samples": [{"index": 0, "true": 5, "pred": 1}]}),
            "r.jsonl:2: misclassified sample index 0 is not a test row of class 5",
        ),
    ],
)
def test_bad_results_exit_2_with_one_line(main, tmp_path, capsys, content, message):
    results = tmp_path / "r.jsonl"
    if content is not None:
        results.write_text(content)
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("spectrazoo report: error: ")
    assert message in captured.err


def test_results_path_that_is_a_directory(main, tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a results file" in capsys.readouterr().err


def test_rewriting_a_report_removes_its_stale_figures_only(main, tmp_path):
    out = tmp_path / "out"
    results = write_rows(tmp_path / "r.jsonl", [make_row("cnn6", "relu", 0, 2)])
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert (out / "figures" / "challenge_confusion_10_as_9.png").is_file()
    (out / "figures" / "notes.png").write_bytes(PNG_SIGNATURE)  # not the report's: kept
    write_rows(results, [make_row("cnn6", "relu", 0, 1)])  # only the (1, 0) pair is confused now
    assert main(["report", str(results), "--out", str(out)]) == 0
    names = sorted(path.name for path in (out / "figures").iterdir())
    own = ["challenge_accuracy.png", "challenge_confusion_1_as_0.png", "challenge_loss.png"]
    assert names == [*own, "notes.png"]


def test_max_pairs_zero_draws_no_pair_figures(main, tmp_path):
    results = write_rows(tmp_path / "r.jsonl", [make_row("cnn6", "relu", 0, 2)])
    assert main(["report", str(results), "--out", str(tmp_path / "out"), "--max-pairs", "0"]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Not listed: 2 pairs with 2 misclassifications." in text
    assert not list((tmp_path / "out" / "figures").glob("*_confusion_*"))


def test_capped_and_converged_rows_of_one_run_are_reported_apart(tmp_path):
    capped = [make_row("cnn6", v, 0, e) for v, e in (("linear", 50), ("relu", 61))]  # linear ahead if capped
    converged = [{**make_row("cnn6", v, 0, e), "max_epochs": 500} for v, e in (("linear", 40), ("relu", 20))]
    files = []
    for name, rows in (("capped", capped), ("converged", converged)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        files.append(path)
    text = write_report(files, tmp_path / "report").read_text()
    assert "4 runs" in text  # same run ids, different experiments: nothing merged away
    converged_at, capped_at = text.index("— protocol's end"), text.index("— 60-epoch cap")
    assert converged_at < capped_at  # the protocol's end first
    converged_part, capped_part = text[converged_at:capped_at], text[capped_at:]
    assert "87.65" in converged_part and "87.65" not in capped_part  # CNN6 ReLU: 20 of 162 wrong
    assert "62.35" in capped_part and "62.35" not in converged_part  # CNN6 ReLU capped: 61 wrong
    assert "ReLU is better for 1 of 1" in converged_part and "ReLU is better for 0 of 1" in capped_part
    figures = set(p.name for p in (tmp_path / "report" / "figures").iterdir())
    assert {"challenge_converged_accuracy.png", "challenge_60ep_accuracy.png"} <= figures
