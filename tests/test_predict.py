"""Inference on files: ``zoo.load`` and ``spectrazoo predict`` on a model trained on ``mini``.

One tiny VGG is trained for an epoch and exported once per module; every test reuses it. The CLI is run
in-process (``zoo.commands.cli.main``) except for one subprocess check of the real stderr stream.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import zoo  # noqa: E402
from zoo.commands.cli import main  # noqa: E402
from zoo.errors import UserError  # noqa: E402
from zoo.inference.predict import load  # noqa: E402
from zoo.inference.spectra_io import resample  # noqa: E402

DATAPOINTS = 1000
NUM_CLASSES = 10


@dataclass(frozen=True)
class Exported:
    """The module's exported model and what the in-memory model said about the test spectra."""

    path: Path
    class_names: list[str]
    spectra: np.ndarray  # raw test spectra [n, DATAPOINTS]
    probabilities: np.ndarray  # in-memory model on the max-normalised spectra
    keras_file: Path  # the same model as a .keras file, the export's metadata.json beside it

    def expected_classes(self, rows: slice | list[int] = slice(None)) -> list[str]:
        return [self.class_names[i] for i in np.argmax(self.probabilities[rows], axis=1)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    from synthetic_spectra.config import get_config
    from synthetic_spectra.generator import generate

    keras.utils.set_random_seed(0)
    x_train, y_train = generate("mini", "train")
    x_test, y_test = generate("mini", "test")
    class_names = get_config("mini").class_names()
    assert x_train.shape[1] == DATAPOINTS and len(class_names) == NUM_CLASSES

    def normalise(x: np.ndarray) -> np.ndarray:
        return (x / x.max(axis=1, keepdims=True))[..., np.newaxis]

    model = zoo.build("vgg", num_classes=NUM_CLASSES, input_length=DATAPOINTS)
    model.fit(
        normalise(x_train),
        keras.utils.to_categorical(y_train, NUM_CLASSES),
        epochs=1,
        batch_size=32,
        verbose=0,
    )
    # Two test spectra per class; scaled by arbitrary factors (raw intensities are not normalised).
    rows = np.concatenate([np.flatnonzero(y_test == c)[:2] for c in range(NUM_CLASSES)])
    spectra = x_test[rows] * np.linspace(0.5, 300.0, len(rows))[:, np.newaxis]
    probabilities = model.predict(normalise(spectra), verbose=0)
    path = zoo.export(
        model,
        tmp_path_factory.mktemp("model") / "export",
        dataset_config="mini",
        class_names=class_names,
        model_name="vgg",
    )
    keras_file = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(keras_file)
    shutil.copy(path / "metadata.json", keras_file.parent)
    return Exported(Path(path), class_names, spectra, probabilities, keras_file)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | os.PathLike[str]) -> tuple[int, str, str]:
    """Run ``spectrazoo`` in-process; return (exit status, stdout, stderr)."""
    try:
        status = main([os.fspath(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def predict_json(capsys: pytest.CaptureFixture[str], model: Path, *argv: str | os.PathLike[str]) -> dict:
    status, out, err = run_cli(capsys, "predict", "--model", model, "--format", "json", *argv)
    assert status == 0, err
    return json.loads(out)


def top1(document: dict) -> list[str]:
    return [p["top_k"][0]["class"] for p in document["predictions"]]


# --- the round trip: every file format gives the in-memory model's classes ---------------------------------


def write_rows(delimiter: str, header: str) -> Callable[[Path, np.ndarray], None]:
    def write(path: Path, spectra: np.ndarray) -> None:
        lines = [delimiter.join(repr(float(v)) for v in row) for row in spectra]
        path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")

    return write


def write_xy(path: Path, spectra: np.ndarray) -> None:
    axis = np.linspace(5.0, 90.0, spectra.shape[1])
    body = "".join(f"{float(a)!r}\t{float(v)!r}\n" for a, v in zip(axis, spectra[0], strict=True))
    path.write_text("# 2theta intensity\n" + body, encoding="utf-8")


WRITERS: dict[str, tuple[Callable[[Path, np.ndarray], None], bool]] = {
    # name: (writer, holds several spectra)
    "s.npy": (np.save, True),
    "one.npy": (lambda path, spectra: np.save(path, spectra[0]), False),
    "s.npz": (lambda path, spectra: np.savez(path, spectra=spectra, labels=np.arange(len(spectra))), True),
    "s.csv": (write_rows(",", "# measured\n" + ",".join(f"ch{i}" for i in range(DATAPOINTS)) + "\n"), True),
    "s.txt": (write_rows(" ", ""), True),
    "s.xy": (write_xy, False),
}


@pytest.mark.parametrize("name", WRITERS)
def test_round_trip_each_file_format(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    write, several = WRITERS[name]
    write(tmp_path / name, exported.spectra)
    document = predict_json(capsys, exported.path, tmp_path / name, "--top-k", "3")
    rows = slice(None) if several else [0]
    assert top1(document) == exported.expected_classes(rows)
    got = [[c["probability"] for c in p["top_k"]] for p in document["predictions"]]
    expected = -np.sort(-exported.probabilities[rows], axis=1)[:, :3]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    records = document["predictions"]
    assert all(r["file"] == str(tmp_path / name) and r["resampled_from"] is None for r in records)
    assert [r["row"] for r in records] == (list(range(len(exported.spectra))) if several else [None])


def test_several_files_and_globs_in_order(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "a.npy", exported.spectra[:3])
    np.save(tmp_path / "b.npy", exported.spectra[3:5])
    write_rows(",", "")(tmp_path / "c.csv", exported.spectra[5:])
    document = predict_json(capsys, exported.path, tmp_path / "*.npy", tmp_path / "c.csv")
    assert top1(document) == exported.expected_classes()
    assert [p["input"] for p in document["predictions"]][2:4] == [
        f"{tmp_path / 'a.npy'} row 2",
        f"{tmp_path / 'b.npy'} row 0",
    ]


def test_python_api_matches_in_memory_model(exported: Exported) -> None:
    predictor = load(exported.path)
    assert predictor.class_names == exported.class_names and predictor.datapoints == DATAPOINTS
    assert predictor.metadata["model"] == "vgg" and predictor.note is None
    np.testing.assert_allclose(predictor.predict(exported.spectra), exported.probabilities, atol=1e-5)
    np.testing.assert_allclose(
        predictor.predict(exported.spectra, batch_size=3), predictor.predict(exported.spectra), atol=1e-6
    )
    single = predictor.predict(exported.spectra[4])
    assert single.shape == (1, NUM_CLASSES)
    top = predictor.classify(exported.spectra, top_k=2)
    assert [t[0][0] for t in top] == exported.expected_classes()
    assert all(len(t) == 2 and t[0][1] >= t[1][1] for t in top)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("keras_file", [False, True], ids=["export-dir", "keras-file"])
def test_export_dir_and_keras_file_with_or_without_xla_agree(
    exported: Exported, keras_file: bool, jit_compile: bool
) -> None:
    predictor = load(exported.keras_file if keras_file else exported.path, jit_compile=jit_compile)
    assert predictor.class_names == exported.class_names and predictor.note is None
    np.testing.assert_allclose(predictor.predict(exported.spectra), exported.probabilities, atol=1e-5)


@pytest.mark.parametrize("beside", [None, '{"model": "cnn2", "metrics": {}}'], ids=["none", "foreign"])
def test_keras_file_without_export_metadata_names_classes_by_index(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], beside: str | None
) -> None:
    shutil.copy(exported.keras_file, tmp_path / "bare.keras")
    if beside is not None:
        (tmp_path / "metadata.json").write_text(beside, encoding="utf-8")
    np.save(tmp_path / "s.npy", exported.spectra)
    status, out, err = run_cli(
        capsys, "predict", "--model", tmp_path / "bare.keras", tmp_path / "s.npy", "--format", "csv"
    )
    assert status == 0
    assert err.startswith("note: ") and "class_000" in err
    table = list(csv.DictReader(io.StringIO(out)))
    by_index = [f"class_{np.argmax(p):03d}" for p in exported.probabilities]
    assert [r["class"] for r in table if r["rank"] == "1"] == by_index


def test_resample_interpolates_and_says_so(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fine = resample(exported.spectra[:4], 1500)
    np.save(tmp_path / "fine.npy", fine)
    expected = load(exported.path).predict(resample(fine, DATAPOINTS))
    document = predict_json(capsys, exported.path, tmp_path / "fine.npy", "--resample", "--top-k", "1")
    assert all(p["resampled_from"] == 1500 for p in document["predictions"])
    assert top1(document) == [exported.class_names[i] for i in expected.argmax(axis=1)]
    status, out, _ = run_cli(capsys, "predict", "--model", exported.path, tmp_path / "fine.npy", "--resample")
    assert status == 0 and out.splitlines()[0].split()[-1] == "note" and "resampled from 1500 points" in out


def test_x_range_crops_a_wider_scan_onto_the_models_grid(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a scan from 5 to 90 of which the model's grid is 10..80 (in the file's x units)
    wide = np.linspace(5.0, 90.0, 1701)
    grid = np.linspace(10.0, 80.0, DATAPOINTS)
    spectrum = np.interp(wide, grid, exported.spectra[0], left=0.01, right=0.01)
    body = "".join(f"{float(a)!r}\t{float(v)!r}\n" for a, v in zip(wide, spectrum, strict=True))
    (tmp_path / "scan.xy").write_text("2theta intensity\n" + body, encoding="utf-8")
    expected = load(exported.path).predict(spectrum, axis=wide, x_range=(10, 80))
    on_grid = load(exported.path).predict(np.interp(grid, wide, spectrum))
    np.testing.assert_allclose(expected, on_grid, atol=1e-6)
    document = predict_json(capsys, exported.path, tmp_path / "scan.xy", "--x-range", "10", "80")
    assert document["predictions"][0]["resampled_from"] == 1701
    assert top1(document) == [exported.class_names[int(expected.argmax())]]
    assert_one_line_error(
        capsys,
        ["--model", exported.path, tmp_path / "scan.xy", "--x-range", "10", "95"],
        f"{tmp_path / 'scan.xy'}: x range 10-95 is not covered: the spectrum's x values run from 5 to 90",
    )
    np.save(tmp_path / "s.npy", exported.spectra[:2])
    assert_one_line_error(
        capsys,
        ["--model", exported.path, tmp_path / "s.npy", "--x-range", "10", "80"],
        f"{tmp_path / 's.npy'}: x range: needs the spectra's x values (a two-column x,y file",
    )
    status, out, err = run_cli(
        capsys, "predict", "--model", exported.path, tmp_path / "s.npy", "--x-range", "80", "10"
    )
    assert (status, out) == (2, "")  # a bad range is named as such, not as the first file's fault
    assert err == "spectrazoo predict: error: x range: needs LOW < HIGH, both finite, got 80 10\n"


def test_table_and_csv_outputs(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "s.npy", exported.spectra[:3])
    status, out, _ = run_cli(capsys, "predict", "--model", exported.path, tmp_path / "s.npy", "--top-k", "2")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["input", "class1", "p1", "class2", "p2"] and len(lines) == 4
    for line, expected in zip(lines[1:], exported.expected_classes(slice(0, 3)), strict=True):
        assert line.startswith(f"{tmp_path / 's.npy'} row ") and line.split()[3] == expected
    status, out, _ = run_cli(
        capsys, "predict", "--model", exported.path, tmp_path / "s.npy", "--format", "csv"
    )
    table = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and len(table) == 9 and [r["rank"] for r in table[:3]] == ["1", "2", "3"]
    assert [r["class"] for r in table if r["rank"] == "1"] == exported.expected_classes(slice(0, 3))
    assert all(r["file"] == str(tmp_path / "s.npy") and r["resampled_from"] == "" for r in table)


# --- bad input: one stderr line naming the problem, exit status 2, nothing on stdout ------------------

BAD_VALUES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "nan": (lambda x: np.where(np.arange(x.shape[1]) == 7, np.nan, x), "row 1: NaN value at index 7"),
    "inf": (lambda x: np.where(np.arange(x.shape[1]) == 9, np.inf, x), "row 1: infinite value at index 9"),
    "all-zero": (lambda x: np.zeros_like(x), "row 1: all values are zero"),
    "constant": (lambda x: np.full_like(x, 0.25), "row 1: constant spectrum (every value is 0.25)"),
    "negative-only": (lambda x: -x - 1.0, "row 1: no positive value"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_in_a_row(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    spoil, expected = BAD_VALUES[case]
    spectra = exported.spectra[:3].copy()
    spectra[1] = spoil(spectra[1:2])[0]
    write_rows(",", "")(tmp_path / "s.csv", spectra)
    assert_one_line_error(
        capsys, ["--model", exported.path, tmp_path / "s.csv"], f"{tmp_path / 's.csv'} {expected}"
    )


def write_text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content, encoding="utf-8")


BAD_FILES: dict[str, tuple[str, Callable[[Path], None] | None, str]] = {
    # name: (file name, writer or None for a missing file, expected text after the path)
    "missing": ("gone.csv", None, ": no such file"),
    "empty": ("s.csv", write_text(""), ": empty file"),
    "non-numeric": (
        "s.csv",
        write_text("1,2,3\n4,five,6\n"),
        " line 2: non-numeric value 'five' in column 2",
    ),
    "ragged": ("s.txt", write_text("1 2 3\n4 5 6 7\n"), " line 2: 4 values, but line 1 has 3 (ragged rows)"),
    "3-d": (
        "s.npy",
        lambda path: np.save(path, np.ones((2, 2, DATAPOINTS))),
        ": 3-D array of shape (2, 2, 1000)",
    ),
    "wrong-length": (
        "s.npy",
        lambda path: np.save(path, np.ones((2, 999)) + np.arange(999)),
        " row 0: 999 points",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files(exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    name, write, expected = BAD_FILES[case]
    if write is not None:
        write(tmp_path / name)
    assert_one_line_error(capsys, ["--model", exported.path, tmp_path / name], f"{tmp_path / name}{expected}")


def test_wrong_length_error_suggests_resample(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "s.npy", exported.spectra[0, :-10])
    assert_one_line_error(
        capsys, ["--model", exported.path, tmp_path / "s.npy"], "the model expects 1000 (resample"
    )


def test_one_bad_file_stops_everything(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented policy: every file is validated first; a bad one means no output at all."""
    np.save(tmp_path / "good.npy", exported.spectra)
    np.save(tmp_path / "bad.npy", np.zeros((1, DATAPOINTS)))
    for output in ("table", "json", "csv"):
        argv = ["--model", exported.path, tmp_path / "good.npy", tmp_path / "bad.npy", "--format", output]
        assert_one_line_error(capsys, argv, "bad.npy row 0: all values are zero")


def corrupt_pb(path: Path) -> None:
    (path / "saved_model.pb").write_bytes(b"\x08\x96\x01 definitely not a protobuf of a SavedModel")


def corrupt_variables(path: Path) -> None:
    for variables in (path / "variables").glob("variables.data-*"):
        variables.write_bytes(variables.read_bytes()[:64])


def corrupt_metadata(path: Path) -> None:
    (path / "metadata.json").write_text('{"format": "spectrazoo-export", "format_', encoding="utf-8")


def foreign_metadata(path: Path) -> None:
    (path / "metadata.json").write_text('{"format": "something-else"}', encoding="utf-8")


def drop_a_class_name(path: Path) -> None:
    metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    metadata["class_names"].pop()
    metadata["num_classes"] -= 1
    (path / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")


def remove_metadata(path: Path) -> None:
    (path / "metadata.json").unlink()


def remove_variables(path: Path) -> None:
    shutil.rmtree(path / "variables")


BROKEN_EXPORTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupted-saved_model.pb": (corrupt_pb, ": corrupted SavedModel"),
    "corrupted-variables": (corrupt_variables, ": corrupted SavedModel"),
    "corrupted-metadata": (corrupt_metadata, "/metadata.json: corrupted metadata"),
    "foreign-metadata": (foreign_metadata, "/metadata.json: not spectrazoo export metadata"),
    "no-metadata": (remove_metadata, ": not a spectrazoo export (no metadata.json)"),
    "no-variables": (
        remove_variables,
        ": incomplete export: no variables/variables.index (the model's weights)",
    ),
    "metadata-mismatch": (drop_a_class_name, ": the SavedModel gives 10 classes but metadata.json names 9"),
}


@pytest.mark.parametrize("case", BROKEN_EXPORTS)
def test_broken_exports(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    spoil, expected = BROKEN_EXPORTS[case]
    broken = shutil.copytree(exported.path, tmp_path / "broken")
    spoil(broken)
    np.save(tmp_path / "s.npy", exported.spectra)
    assert_one_line_error(capsys, ["--model", broken, tmp_path / "s.npy"], f"{broken}{expected}")


def test_model_paths_that_are_not_models(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "s.npy", exported.spectra)
    (tmp_path / "empty_dir").mkdir()
    cases = {
        tmp_path / "nowhere": "model path '{}' does not exist",
        tmp_path / "empty_dir": "{}: not a spectrazoo export (no metadata.json)",
        tmp_path / "s.npy": "{}: not a model; expected an export directory",
        tmp_path / "junk.keras": "{}: not a .keras archive (not a zip file)",
    }
    (tmp_path / "junk.keras").write_bytes(b"not a zip archive")
    for model, expected in cases.items():
        assert_one_line_error(capsys, ["--model", model, tmp_path / "s.npy"], expected.format(model))


def test_keras_file_needing_unsafe_deserialisation_is_refused(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = keras.Input((DATAPOINTS, 1))
    scaled = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(scaled)))
    model.save(tmp_path / "lambda.keras")
    np.save(tmp_path / "s.npy", exported.spectra)
    assert_one_line_error(
        capsys, ["--model", tmp_path / "lambda.keras", tmp_path / "s.npy"], "needs unsafe deserialisation"
    )
    with pytest.raises(UserError, match="only safe_mode=True"):
        load(tmp_path / "lambda.keras")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--top-k", "0"], "argument --top-k: expected an integer >= 1, got 0"),
        (["--top-k", "11"], "top_k must be between 1 and 10"),
        (["--batch-size", "-4"], "argument --batch-size: expected an integer >= 1, got -4"),
    ],
)
def test_bad_options(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    np.save(tmp_path / "s.npy", exported.spectra)
    assert_one_line_error(capsys, ["--model", exported.path, tmp_path / "s.npy", *options], expected)


def assert_one_line_error(capsys: pytest.CaptureFixture[str], argv: list, expected: str) -> None:
    status, out, err = run_cli(capsys, "predict", *argv)
    assert status == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert expected in err and err.startswith("spectrazoo predict: error: "), err


def test_real_process_stderr_is_one_line(exported: Exported, tmp_path: Path) -> None:
    """In a real process nothing else (TensorFlow logs, tracebacks) reaches stderr for a corrupted model."""
    broken = shutil.copytree(exported.path, tmp_path / "broken")
    corrupt_variables(broken)
    np.save(tmp_path / "s.npy", exported.spectra)
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "predict", "--model", str(broken), str(tmp_path / "s.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "corrupted SavedModel" in result.stderr, result.stderr


# --- the Python API's own checks ---------------------------------------------------------------------


def test_api_errors_name_the_spectrum(exported: Exported) -> None:
    predictor = load(exported.path)
    spectra = exported.spectra[:3].copy()
    spectra[2] = 0.0
    with pytest.raises(ValueError, match=r"^spectra\[2\]: all values are zero"):
        predictor.predict(spectra)
    with pytest.raises(ValueError, match=r"^mine: constant spectrum"):
        predictor.predict(np.ones(DATAPOINTS), names=["mine"])
    with pytest.raises(ValueError, match=r"expected a non-empty 1-D or 2-D array, got shape \(1, 2, 1000\)"):
        predictor.predict(np.ones((1, 2, DATAPOINTS)))
    with pytest.raises(ValueError, match="top_k must be between 1 and 10"):
        predictor.classify(exported.spectra, top_k=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predictor.predict(exported.spectra, batch_size=0)
