"""Paths that used to fail or overwrite (issue #16, part 5): each error is one line, exit 2, nothing left."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synthetic_spectra.config import get_config
from synthetic_spectra.generator import generate_mixtures
from zoo.errors import UserError
from zoo.inference.spectra_io import read_spectra

Cli = Callable[..., tuple[int, str, str]]


def _config_file(folder: Path, name: str, **changes: object) -> Path:
    """``mini``'s config renamed to ``name`` with ``changes``, written to ``folder/name.json``."""
    data = {**get_config("mini").to_dict(), "name": name, **changes}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ generate
def test_generate_writes_the_mixture_arrays(tmp_path: Path, cli: Cli) -> None:
    status, out, err = cli(
        "generate", "--config", "challenge_mixtures", "--out", tmp_path, "--splits", "test", "--no-progress"
    )
    assert (status, err) == (0, "") and out.startswith("wrote challenge_mixtures (test 540 spectra")
    expected = generate_mixtures("challenge_mixtures", "test")
    assert {path.name for path in tmp_path.iterdir()} == {
        "x_test.npy", "labels_test.npy", "fractions_test.npy", "config.json"
    }  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "x_test.npy"), expected.spectra)
    np.testing.assert_array_equal(np.load(tmp_path / "labels_test.npy"), expected.labels)
    np.testing.assert_array_equal(np.load(tmp_path / "fractions_test.npy"), expected.fractions)


def test_generate_refuses_arrays_larger_than_the_disk_and_leaves_nothing(tmp_path: Path, cli: Cli) -> None:
    config = _config_file(tmp_path, "huge", n_train=10**9)
    out = tmp_path / "new" / "huge"
    status, stdout, err = cli("generate", "--config", config, "--out", out, "--splits", "train")
    assert status == 2 and stdout == ""
    assert err.count("\n") == 1 and "huge: the arrays need" in err and "GB free" in err
    assert not (tmp_path / "new").exists()


def test_generate_names_an_output_folder_it_cannot_create(cli: Cli) -> None:
    status, stdout, err = cli("generate", "--config", "mini", "--out", "/proc/nope")
    assert (status, stdout) == (2, "")
    assert err.startswith("spectrazoo generate: error: --out /proc/nope: cannot create the output folder")
    assert err.count("\n") == 1


def test_a_config_named_like_a_builtin_is_refused(tmp_path: Path, cli: Cli) -> None:
    config = _config_file(tmp_path, "challenge")
    status, _, err = cli("generate", "--config", config, "--out", tmp_path / "out")
    assert status == 2
    assert "name 'challenge' is a built-in config's" in err
    assert not (tmp_path / "out").exists()


def test_an_exact_copy_of_a_builtin_still_loads(tmp_path: Path, cli: Cli) -> None:
    assert cli("generate", "--config", "mini", "--out", tmp_path / "a", "--splits", "test")[0] == 0
    assert cli("generate", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "b")[0] == 0


# ------------------------------------------------------------------------------------------ predict
def test_npy_header_promising_terabytes_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    with path.open("wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (1_000_000_000, 500)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    with pytest.raises(
        ValueError, match=r"huge\.npy: truncated or corrupted .* promises 4,000,000,000,000 bytes"
    ):
        read_spectra(path)


# ---------------------------------------------------------------------------------------- benchmark
@pytest.mark.parametrize(
    "extra",
    [("--fc-activation", "relux"), ("--hparams", "HPARAMS")],
    ids=["fc-activation relux", "fc_dropout 1.5"],
)
def test_benchmark_rejects_bad_toggles_before_any_output(
    tmp_path: Path, cli: Cli, extra: tuple[str, str]
) -> None:
    hparams = tmp_path / "hparams.json"
    hparams.write_text(json.dumps({"fc_dropout": 1.5}), encoding="utf-8")
    extra = tuple(str(hparams) if value == "HPARAMS" else value for value in extra)
    out = tmp_path / "results"
    status, stdout, err = cli("benchmark", "--dataset", "mini", "--models", "cnn2", "--out", out, *extra)
    assert (status, stdout) == (2, "")
    assert err.count("\n") == 1 and ("relux" in err or "fc_dropout" in err)
    assert not out.exists()


def test_benchmark_with_an_absolute_config_exports_under_out_and_never_overwrites(
    tmp_path: Path, cli: Cli, tfds_data_dir: Path
) -> None:
    config = _config_file(tmp_path, "mymini").resolve()
    out = tmp_path / "results"
    args = ("benchmark", "--dataset", config, "--models", "oviedo", "--max-epochs", "1", "--quiet")
    status, stdout, err = cli(*args, "--out", out)
    assert status == 0, err
    export = out / "saved_models" / "mymini" / "oviedo-default-seed0"
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["export_dir"] == str(export) and (export / "metadata.json").exists()

    # a second study with the same export root: refused before training, as long as --overwrite is absent
    other = tmp_path / "other"
    status, stdout, err = cli(*args, "--out", other, "--saved-models", out / "saved_models")
    assert (status, stdout) == (2, "")
    message = "an export already exists (use --overwrite to replace it)"
    assert err == f"spectrazoo benchmark: error: {export}: {message}\n"
    assert not other.exists()


def test_run_benchmark_refuses_a_taken_export_before_training(tmp_path: Path, tfds_data_dir: Path) -> None:
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.results import read_results
    from zoo.training.runner import ExportTaken, export_target, run_benchmark

    specs = plan_runs("mini", ["oviedo"], seeds=[0, 1])
    taken = export_target(tmp_path / "saved", specs[1])
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("an earlier export")
    out = tmp_path / "results"
    options = {"saved_models_dir": tmp_path / "saved", "verbose": 0, "overwrite_exports": False}
    with pytest.raises(ExportTaken, match="an export already exists") as info:
        run_benchmark(specs, Protocol(max_epochs=1), out, **options)
    assert info.value.target == taken and not out.exists()  # seed 0 was not trained either

    # an export the caller may replace (e.g. made by an earlier retraining of the same search)
    rows = run_benchmark(specs, Protocol(max_epochs=1), out, replaceable_exports=[taken], **options)
    assert [row["export_dir"] for row in rows] == [str(export_target(tmp_path / "saved", s)) for s in specs]
    assert [row["run_id"] for row in read_results(out / "results.jsonl")] == [s.run_id for s in specs]
    assert (taken / "metadata.json").is_file() and not (taken / "keep.txt").exists()


def test_a_failed_export_keeps_the_trained_runs_row(
    tmp_path: Path, tfds_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.training import runner
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.results import read_results
    from zoo.training.runner import export_target, run_benchmark

    specs = plan_runs("mini", ["oviedo"], seeds=[0])
    taken = export_target(tmp_path / "saved", specs[0])
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("an earlier export")
    # as if another process exported there while this run trained (after the check before training)
    monkeypatch.setattr(runner, "check_free_exports", lambda *args, **kwargs: None)
    with pytest.raises(UserError, match="trained and recorded, but not exported"):
        run_benchmark(specs, Protocol(max_epochs=1), tmp_path, saved_models_dir=tmp_path / "saved",
                      verbose=0, overwrite_exports=False)  # fmt: skip
    (row,) = read_results(tmp_path / "results.jsonl")
    assert row["run_id"] == specs[0].run_id and row["export_dir"] is None
    assert row["export_error"].startswith("FileExistsError: ") and "--overwrite" in row["export_error"]
    assert [path.name for path in taken.iterdir()] == ["keep.txt"]
