"""Training-time augmentation (issue #15, part 2): presets and parsing, rendering, pipeline, runner, CLI."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_realistic import fwhm, peak_positions, two_peaks

from synthetic_spectra import generator
from synthetic_spectra.augment import PRESETS, Augmentation, parse_augmentation
from synthetic_spectra.config import REALISTIC_OPTIONS, get_config
from synthetic_spectra.generator import generate, generate_augmented
from synthetic_spectra.options import Background, Coupling, ExponentialBackground, Noise, PeakShape
from synthetic_spectra.realistic import FWHM_PER_SIGMA
from zoo.errors import UserError
from zoo.training.protocol import Protocol, RunSpec, plan_runs

NOISE = Augmentation(noise=Noise(snr=(20.0, 50.0)))


def augmented(config, augmentation: Augmentation, seed: int = 0, epoch: int = 0) -> np.ndarray:
    return generate_augmented(config, "train", augmentation, seed, epoch)[0]


# --- the Augmentation and its text forms --------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_presets_parse_round_trip_and_keep_their_name(name: str) -> None:
    augmentation = parse_augmentation(name)
    assert augmentation is PRESETS[name] and augmentation.name == name
    assert Augmentation.from_dict(json.loads(augmentation.to_json())) == augmentation
    assert parse_augmentation(augmentation.to_json()).name == name  # the same options spelt out


def test_preset_ranges_are_the_documented_ones() -> None:
    assert PRESETS["noise"].to_dict() == {"noise": {"snr": [50.0, 500.0], "counts": [1000.0, 50000.0]}}
    assert PRESETS["shape"].peak_shape == PeakShape(kind="pseudo_voigt", eta=(0.0, 1.0))
    assert PRESETS["shift"].to_dict() == {"coupling": {"shift": [-30, 30]}}
    assert PRESETS["background"].background == REALISTIC_OPTIONS["background"]
    assert PRESETS["realistic"] == Augmentation(**REALISTIC_OPTIONS)
    merged = {**PRESETS["noise"].sections(), **PRESETS["background"].sections()}
    merged |= {**PRESETS["shape"].sections(), **PRESETS["shift"].sections()}
    assert PRESETS["all"].sections() == merged


def test_json_text_and_files_give_custom_augmentations_with_a_stable_name(tmp_path: Path) -> None:
    text = '{"noise": {"snr": [20, 50]}}'
    assert parse_augmentation(text) == NOISE
    path = tmp_path / "aug.json"
    path.write_text(text)
    assert parse_augmentation(str(path)) == NOISE
    assert NOISE.name.startswith("custom-") and len(NOISE.name) == len("custom-") + 8
    assert Augmentation(noise=Noise(snr=(20, 50))).name == NOISE.name
    assert Augmentation(noise=Noise(snr=(20, 51))).name != NOISE.name


BAD_AUGMENTATIONS = [
    ("nope", "augment: must be one of noise, background, shape, shift, realistic, all"),
    ('{"noise": {"snr": -1}}', "augment.noise.snr: must be > 0, got -1"),
    ('{"peak_shape": {"kind": "voigt"}}', "augment.peak_shape.kind: must be one of"),
    ('{"coupling": {"shift": [5, 1]}}', "augment.coupling.shift[1]: must be >="),
    ('{"mixture": {"n_train": 10}}', "augment.mixture: unknown key (allowed: background, coupling"),
    ('{"noise": {"snr": 5}', "augment: not valid JSON"),
    ("{}", "augment: must switch on at least one of peak_shape, noise, background, coupling"),
    ("missing.json", "augment: no such file 'missing.json'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_AUGMENTATIONS)
def test_bad_augmentations_raise_one_line_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_augmentation(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bad_file_is_named_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "aug.json"
    path.write_text('{"noise": {"counts": 0}}')
    with pytest.raises(ValueError, match=r"aug\.json: augment\.noise\.counts: must be > 0"):
        parse_augmentation(str(path))


# --- rendering ----------------------------------------------------------------------------------------
def test_same_seed_and_epoch_give_the_same_spectra_another_seed_or_epoch_others() -> None:
    first = augmented("mini", PRESETS["all"], seed=3, epoch=2)
    generator._kept_chunks.cache_clear()  # drawn again: the same peaks
    np.testing.assert_array_equal(augmented("mini", PRESETS["all"], seed=3, epoch=2), first)
    for other in (
        augmented("mini", PRESETS["all"], seed=4, epoch=2),
        augmented("mini", PRESETS["all"], 3, 3),
    ):
        assert np.abs(other - first).max(axis=1).min() > 0  # every spectrum changes


@pytest.mark.parametrize("split", ["train", "validation"])
def test_without_options_the_published_split_comes_back_exactly(split: str) -> None:
    x, y = generate("mini", split)
    ax, ay = generate_augmented("mini", split, Augmentation(), seed=5, epoch=7)
    np.testing.assert_array_equal(ax, x)
    np.testing.assert_array_equal(ay, y)


def test_labels_and_the_published_draw_are_untouched() -> None:
    before = generate("mini", "train")
    spectra, labels = generate_augmented("mini", "train", PRESETS["all"], 0, 0)
    np.testing.assert_array_equal(labels, before[1])
    after = generate("mini", "train")
    np.testing.assert_array_equal(after[0], before[0])  # the published stream is left alone
    assert not np.array_equal(spectra, before[0])


def test_float32_output_is_the_float64_render_converted() -> None:
    x64 = augmented("mini", NOISE, 1, 1)
    x32, _ = generate_augmented("mini", "train", NOISE, 1, 1, dtype=np.float32)
    assert x32.dtype == np.float32
    np.testing.assert_array_equal(x32, x64.astype(np.float32))


def test_gaussian_noise_has_std_max_over_snr() -> None:
    config = get_config("mini")
    clean = generate(config, "train")[0]
    noise = augmented(config, Augmentation(noise=Noise(snr=25.0))) - clean
    achieved = clean.max(axis=1) / noise.std(axis=1)
    np.testing.assert_allclose(achieved, 25.0, rtol=0.12)  # std of 1000 normal draws: +-2.2 % (1 sd)
    assert abs(np.median(achieved) / 25.0 - 1) < 0.02


def test_poisson_noise_counts_whole_events_at_the_level_asked_for() -> None:
    clean = generate("mini", "train")[0]
    noisy = augmented("mini", Augmentation(noise=Noise(counts=400.0)))
    per_unit = 400.0 / clean.max(axis=1, keepdims=True)
    events = noisy * per_unit
    np.testing.assert_allclose(events, np.rint(events), atol=1e-6)
    variance_ratio = ((noisy - clean) ** 2 * per_unit).sum(axis=1) / clean.sum(axis=1)
    assert abs(np.median(variance_ratio) - 1) < 0.1  # Poisson: variance = mean
    assert (noisy >= 0).all()


def test_a_background_raises_the_baseline_by_the_documented_amount() -> None:
    config = get_config("mini")
    clean = generate(config, "train")[0]
    decay = ExponentialBackground(amplitude=0.3, decay=0.2)
    added = augmented(config, Augmentation(background=Background(exponential=decay))) - clean
    t = np.linspace(0.0, 1.0, config.datapoints)
    expected = 0.3 * clean.max(axis=1, keepdims=True) * np.exp(-t / 0.2)  # units of the highest peak
    np.testing.assert_allclose(added, expected, rtol=1e-9, atol=1e-12)


def test_a_peak_shape_changes_the_line_but_keeps_fwhm_and_area() -> None:
    config = two_peaks()  # peaks at 150 and 800 (class 0), sigma 3
    clean = generate(config, "train")[0][0]
    lorentz = augmented(config, Augmentation(peak_shape=PeakShape(kind="lorentzian")))[0]
    assert fwhm(lorentz[:400]) == pytest.approx(fwhm(clean[:400]), rel=0.03)
    assert fwhm(lorentz[:400]) == pytest.approx(FWHM_PER_SIGMA * 3.0, rel=0.03)
    assert lorentz.sum() == pytest.approx(clean.sum(), rel=1e-9)  # heights are areas
    assert lorentz[150 + 35] > 100 * clean[150 + 35]  # heavy tails at 5 FWHM


def test_shift_moves_all_peaks_of_a_spectrum_together_within_the_range() -> None:
    config = two_peaks()
    before = peak_positions(generate(config, "train")[0])
    after = peak_positions(augmented(config, Augmentation(coupling=Coupling(shift=(-20, 20)))))
    moves = after - before
    np.testing.assert_array_equal(moves[:, 0], moves[:, 1])
    assert moves.min() >= -20 and moves.max() <= 20 and len(np.unique(moves[:, 0])) > 10


def test_the_augmentation_replaces_the_configs_sections_and_keeps_the_others() -> None:
    clean = generate("mini", "train")[0]
    base = dataclasses.replace(get_config("mini"), name="noisy", noise=Noise(snr=1000.0))
    replaced = augmented(base, Augmentation(noise=Noise(snr=10.0))) - clean
    assert np.median(clean.max(axis=1) / replaced.std(axis=1)) == pytest.approx(10.0, rel=0.05)
    exponential = Background(exponential=ExponentialBackground(amplitude=0.3, decay=0.2))
    baseline = augmented("mini", Augmentation(background=exponential))
    kept = augmented(base, Augmentation(background=exponential)) - baseline  # the config's own noise
    assert np.median(baseline.max(axis=1) / kept.std(axis=1)) == pytest.approx(1000.0, rel=0.05)


def test_mixture_configs_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="augment: only for single-label configs"):
        generate_augmented("challenge_mixtures", "train", NOISE, 0, 0)
    with pytest.raises(ValueError, match="augment: must be an Augmentation"):
        generate_augmented("mini", "train", {"noise": {}}, 0, 0)
    with pytest.raises(ValueError, match="epoch: must be >= 0"):
        generate_augmented("mini", "train", NOISE, 0, -1)


# --- the input pipeline -------------------------------------------------------------------------------
def _batches(**kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    from synthetic_spectra.pipeline import input_pipeline

    return list(input_pipeline("mini", "train", batch_size=64, **kwargs).as_numpy_iterator())


def test_pipeline_without_options_gives_the_plain_pipelines_batches() -> None:
    layout = {"shuffle_seed": 3, "epochs": 2}
    plain, empty = _batches(source="generator", **layout), _batches(augment=Augmentation(), **layout)
    assert len(plain) == len(empty) == 2 * 4
    for (x, y), (ax, ay) in zip(plain, empty, strict=True):
        np.testing.assert_array_equal(ax, x)
        np.testing.assert_array_equal(ay, y)


def test_pipeline_epochs_are_the_normalised_augmented_renders() -> None:
    batches = _batches(augment=NOISE, augment_seed=2, epochs=3, initial_epoch=1, one_hot=False)
    spectra = np.concatenate([x[..., 0] for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    for epoch, rows in ((1, slice(0, 200)), (2, slice(200, 400))):
        x, y = generate_augmented("mini", "train", NOISE, 2, epoch, dtype=np.float32)
        np.testing.assert_array_equal(spectra[rows], x / x.max(axis=1, keepdims=True))
        np.testing.assert_array_equal(labels[rows], y)


def test_pipeline_resumed_at_an_epoch_gives_the_uninterrupted_batches() -> None:
    layout = {"augment": PRESETS["all"], "augment_seed": 1, "shuffle_seed": 0, "epochs": 3}
    full, resumed = _batches(**layout), _batches(initial_epoch=2, **layout)
    steps = 4  # ceil(200 / 64)
    assert len(full) == 3 * steps and len(resumed) == steps
    for (x, y), (rx, ry) in zip(full[2 * steps :], resumed, strict=True):
        np.testing.assert_array_equal(rx, x)
        np.testing.assert_array_equal(ry, y)
    first, second = (np.concatenate([x for x, _ in full[e * steps : (e + 1) * steps]]) for e in (0, 1))
    assert not np.array_equal(first, second)
    labels = [
        sorted(np.argmax(np.concatenate([y for _, y in full[e * steps : (e + 1) * steps]]), -1))
        for e in (0, 1)
    ]
    assert labels[0] == labels[1] == sorted(generate("mini", "train")[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation", "epochs": 2}, "augment: only for the train split"),
        ({"split": "train"}, "epochs: needed with augment"),
        ({"split": "train", "epochs": 2, "initial_epoch": 2}, "initial_epoch"),
    ],
)
def test_pipeline_refuses_augmentation_where_it_does_not_apply(kwargs: dict, message: str) -> None:
    from synthetic_spectra.pipeline import input_pipeline

    with pytest.raises(ValueError, match=message) as error:
        input_pipeline("mini", augment=NOISE, **kwargs)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="mixture config challenge_mixtures"):
        input_pipeline("challenge_mixtures", "train", augment=NOISE, epochs=2)


def test_array_batches_render_each_epoch_and_resume() -> None:
    from zoo.training.array_data import ShuffledArrayBatches

    y = np.arange(10)

    def render(epoch: int) -> np.ndarray:
        return np.full((10, 3), float(epoch)) + np.arange(10)[:, None]

    def epochs(initial: int) -> list[np.ndarray]:
        data = ShuffledArrayBatches(np.zeros((10, 3)), y, 4, seed=1, initial_epoch=initial, render=render)
        seen = []
        for _ in range(initial, 3):
            seen.append(np.concatenate([data[i][0] for i in range(len(data))]))
            data.on_epoch_end()
        return seen

    full = epochs(0)
    for epoch, x in enumerate(full):  # epoch e's render, every row once
        assert sorted(x[:, 0] - epoch) == list(range(10))
    assert not np.array_equal(full[1] - 1, full[2] - 2)  # in a new order
    np.testing.assert_array_equal(epochs(2)[0], full[2])


# --- training and the command line --------------------------------------------------------------------
def test_plan_runs_tags_augmented_runs_and_leaves_others_alone() -> None:
    (plain,) = plan_runs("mini", ["cnn2"], ["relu"], [0])
    (noisy,) = plan_runs("mini", ["cnn2"], ["relu"], [0], augment=PRESETS["noise"])
    (custom,) = plan_runs("mini", ["cnn2"], ["relu"], [0], augment=NOISE)
    assert plain.run_id == "mini/cnn2-relu-seed0" and plain.augment is None
    assert noisy.run_id == "mini/cnn2-relu-aug-noise-seed0" and noisy.augment is PRESETS["noise"]
    assert custom.run_id == f"mini/cnn2-relu-aug-{NOISE.name}-seed0"
    with pytest.raises(ValueError, match="variant: must end in '-aug-noise'"):
        RunSpec(plain.config, "cnn2", 0, "relu", (), PRESETS["noise"])


def test_augmented_run_records_its_augmentation(tfds_data_dir, tmp_path: Path) -> None:
    from zoo.training.runner import run_benchmark

    specs = plan_runs("mini", ["cnn2"], ["relu"], [0], augment=PRESETS["noise"])
    (row,) = run_benchmark(specs, Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0)
    assert row["augment"] == PRESETS["noise"].to_dict() and row["epochs_run"] == 1
    assert row["run_id"] == "mini/cnn2-relu-aug-noise-seed0" and row["variant"] == "relu-aug-noise"
    settings = json.loads((tmp_path / "runs" / "cnn2-relu-aug-noise-seed0" / "settings.json").read_text())
    assert settings["augment"] == PRESETS["noise"].to_dict()


def test_resume_with_another_augmentation_is_refused(tmp_path: Path) -> None:
    from zoo.training.runner import train_run

    (spec,) = plan_runs("mini", ["cnn2"], ["relu"], [0], augment=PRESETS["noise"])
    run_dir = tmp_path / "runs" / spec.name
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
    started = {"precision": "float32", "jit_compile": "auto", "augment": {"noise": {"snr": [1.0, 2.0]}}}
    (run_dir / "settings.json").write_text(json.dumps(started))
    with pytest.raises(UserError, match=r"was started with augment=\{'noise'") as error:
        train_run(spec, Protocol(max_epochs=2), tmp_path, saved_models_dir=None)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--augment", "nope"], "--augment: must be one of noise, background, shape, shift, realistic, all"),
        (["--augment", '{"noise": {"snr": -1}}'], "--augment: noise.snr: must be > 0, got -1"),
        (["--augment", '{"mixture": {}}'], "--augment: mixture: unknown key (allowed: background, coupling"),
        (["--augment", '{"noise": {"snr": 5}'], "--augment: not valid JSON"),
        (["--augment", "{}"], "--augment: must switch on at least one of peak_shape, noise"),
        (["--augment", "missing.json"], "--augment: no such file 'missing.json'"),
        (["--augment", "noise", "--dataset", "challenge_mixtures"], "augment: only for single-label configs"),
    ],
)
def test_bad_augment_values_exit_2_with_one_line_and_write_nothing(args, message, tmp_path, capsys) -> None:
    from zoo.commands.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(["benchmark", "--dataset", "mini", "--models", "cnn2", "--out", str(out), *args]))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1
    assert not out.exists()


def test_resume_with_other_toggles_is_refused(tmp_path: Path) -> None:
    # a tuned run's id ends in "-tuned" whatever its toggles: an interrupted run must not resume with others
    from zoo.training.runner import train_run

    (spec,) = plan_runs("mini", ["cnn2"], seeds=[0], hparams={"fc_dropout": 0.5}, variant_suffix="-tuned")
    run_dir = tmp_path / "runs" / spec.name
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "backup" / "training_metadata.json").write_text('{"epoch": 1}')
    started = {"precision": "float32", "jit_compile": "auto", "augment": None}
    started["toggles"] = {"fc_activation": None, "fc_dropout": 0.2}
    (run_dir / "settings.json").write_text(json.dumps(started))
    with pytest.raises(
        UserError, match=r"was started with toggles=\{'fc_activation': None, 'fc_dropout': 0.2\}"
    ):
        train_run(spec, Protocol(max_epochs=2), tmp_path, saved_models_dir=None)
    assert json.loads((run_dir / "settings.json").read_text()) == started  # nothing overwritten


def test_finished_row_of_another_augmentation_is_refused_and_older_rows_are_not(tmp_path: Path) -> None:
    from zoo.training.runner import check_finished_runs, run_benchmark

    (spec,) = plan_runs("mini", ["cnn2"], ["relu"], [0], augment=NOISE)
    other = {"noise": {"snr": [1.0, 2.0]}}
    row = {"schema": 1, "run_id": spec.run_id, "toggles": {"fc_activation": "relu"}, "augment": other}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(UserError, match=rf"{spec.run_id} finished there with augment=\{{'noise'") as error:
        run_benchmark([spec], Protocol(max_epochs=1), tmp_path, saved_models_dir=None, verbose=0)
    assert "\n" not in str(error.value) and not (tmp_path / "runs").exists()
    del row["augment"]  # a row that predates the key is not compared on it
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    check_finished_runs([spec], tmp_path)
    row["augment"] = NOISE.to_dict()
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    check_finished_runs([spec], tmp_path)
