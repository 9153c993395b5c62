"""Reading spectra files (.npy/.npz/text), globs and resampling: :mod:`zoo.inference.spectra_io`
(pure NumPy)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from zoo.inference.spectra_io import SpectraFile, expand_paths, read_many, read_spectra, resample

SPECTRA = np.array([[0.0, 1.5, 3.0, 0.25], [2.0, 0.5, 0.0, 1.0], [1e-3, 2e3, -1.0, 4.0]])


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows_text(spectra: np.ndarray, delimiter: str) -> str:
    return "\n".join(delimiter.join(repr(float(v)) for v in row) for row in spectra) + "\n"


# --- reading every format --------------------------------------------------------------------------


def test_npy_2d_is_one_spectrum_per_row(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", SPECTRA.astype(np.float32))
    read = read_spectra(tmp_path / "s.npy")
    np.testing.assert_array_equal(read.spectra, SPECTRA.astype(np.float32))
    assert read.spectra.dtype == np.float64 and read.axis is None and not read.single
    assert read.row_names() == [f"{tmp_path / 's.npy'} row {i}" for i in range(3)]


def test_npy_1d_is_a_single_spectrum(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.arange(1, 6, dtype=np.int16))
    read = read_spectra(tmp_path / "one.npy")
    assert read.spectra.shape == (1, 5) and read.single
    assert read.row_names() == [str(tmp_path / "one.npy")]


@pytest.mark.parametrize("key", ["spectra", "x", "anything"])
def test_npz_picks_the_spectra_array(tmp_path: Path, key: str) -> None:
    extra = {"y": np.arange(3)} if key != "anything" else {}
    np.savez(tmp_path / "s.npz", **{key: SPECTRA}, **extra)
    np.testing.assert_array_equal(read_spectra(tmp_path / "s.npz").spectra, SPECTRA)


@pytest.mark.parametrize(
    ("suffix", "delimiter"), [(".csv", ","), (".csv", ";"), (".tsv", "\t"), (".txt", " "), (".dat", "  ")]
)
def test_text_rows_with_any_delimiter(tmp_path: Path, suffix: str, delimiter: str) -> None:
    path = write_text(tmp_path / f"s{suffix}", rows_text(SPECTRA, delimiter))
    read = read_spectra(path)
    np.testing.assert_array_equal(read.spectra, SPECTRA)
    assert not read.single and read.axis is None


def test_text_header_comments_blank_lines_and_trailing_delimiters(tmp_path: Path) -> None:
    body = "".join(f"{','.join(map(str, row))},  # sample {i}\n\n" for i, row in enumerate(SPECTRA))
    header = "\ufeff# exported by some instrument\nchannel_a,channel_b,channel_c,channel_d\n% units: counts\n"
    text = header + body
    np.testing.assert_array_equal(read_spectra(write_text(tmp_path / "s.csv", text)).spectra, SPECTRA)


def test_two_columns_are_x_and_y_of_one_spectrum(tmp_path: Path) -> None:
    x = np.array([400.0, 410.0, 425.0, 450.0, 500.0])
    y = np.array([0.1, 0.9, 0.4, 0.3, 0.2])
    text = "2theta intensity\n" + "".join(f"{a} {b}\n" for a, b in zip(x[::-1], y[::-1], strict=True))
    read = read_spectra(write_text(tmp_path / "s.xy", text))  # descending x is made ascending
    assert read.single
    np.testing.assert_array_equal(read.axis, x)
    np.testing.assert_array_equal(read.spectra, y[np.newaxis])


def test_one_column_is_one_spectrum(tmp_path: Path) -> None:
    read = read_spectra(write_text(tmp_path / "s.dat", "intensity\n1\n2\n3\n"))
    assert read.single and read.spectra.tolist() == [[1.0, 2.0, 3.0]]


def test_nan_and_inf_cells_are_read_as_numbers(tmp_path: Path) -> None:
    """Non-finite values are parsed; rejecting them is the predictor's validation (tested there)."""
    read = read_spectra(write_text(tmp_path / "s.csv", "1,nan,3\n4,5,inf\n"))
    assert np.isnan(read.spectra[0, 1]) and np.isinf(read.spectra[1, 2])


# --- bad files: one line naming the file ----------------------------------------------------------


def npy_3d(path: Path) -> None:
    np.save(path, np.zeros((2, 3, 4)))


def npy_objects(path: Path) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


def npy_strings(path: Path) -> None:
    np.save(path, np.array(["a", "b"]))


def npy_empty_array(path: Path) -> None:
    np.save(path, np.zeros((0, 5)))


def npy_truncated(path: Path) -> None:
    np.save(path, SPECTRA)
    path.write_bytes(path.read_bytes()[:100])


def npz_ambiguous(path: Path) -> None:
    np.savez(path, a=SPECTRA, b=SPECTRA)


def npz_objects(path: Path) -> None:
    np.savez(path, spectra=np.array([{"a": 1}], dtype=object))


def npz_broken(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "no arrays")
    path.write_bytes(path.read_bytes()[:20])


def text(content: str | bytes):
    def write(path: Path) -> None:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return write


BAD_FILES = {
    "empty": ("s.csv", text(""), "empty file"),
    "only-comments": ("s.txt", text("# nothing\n\n% here\n"), "empty file (no numeric data)"),
    "only-header": ("s.csv", text("a,b,c\n"), "empty file (no numeric data)"),
    "non-numeric": ("s.csv", text("1,2,3\n4,abc,6\n"), "line 2: non-numeric value 'abc' in column 2"),
    "mixed-header": ("s.csv", text("name,2,3\n1,2,3\n"), "line 1: non-numeric value 'name' in column 1"),
    "empty-cell": ("s.csv", text("1,,3\n"), "line 1: non-numeric value '' in column 2"),
    "decimal-comma": ("s.csv", text("1,5;2,5;3,5\n"), "line 1: non-numeric value '1,5' in column 1"),
    "npz-objects": ("s.npz", npz_objects, "never unpickled"),
    "ragged": ("s.txt", text("1 2 3\n4 5 6\n7 8\n"), "line 3: 2 values, but line 1 has 3 (ragged rows)"),
    "binary": ("s.txt", text(b"\xff\xfe\x00\x81garbage"), "not a UTF-8 text file"),
    "x-not-monotonic": ("s.xy", text("1 5\n3 6\n2 7\n"), "x is not strictly monotonic"),
    "x-nan": ("s.xy", text("1 5\nnan 6\n3 7\n"), "the x column holds NaN"),
    "npy-3d": ("s.npy", npy_3d, "3-D array of shape (2, 3, 4)"),
    "npy-objects": ("s.npy", npy_objects, "never unpickled"),
    "npy-strings": ("s.npy", npy_strings, "non-numeric array of dtype <U1"),
    "npy-empty-array": ("s.npy", npy_empty_array, "empty array of shape (0, 5)"),
    "npy-not-npy": ("s.npy", text("1,2,3\n"), "not a NumPy .npy file"),
    "npy-truncated": ("s.npy", npy_truncated, "truncated or corrupted .npy file"),
    "npz-ambiguous": ("s.npz", npz_ambiguous, "cannot tell which array holds the spectra (arrays: a, b)"),
    "npz-broken": ("s.npz", npz_broken, "not a valid .npz archive"),
    "unsupported-suffix": ("s.spc", text("1 2 3\n"), "unsupported file type '.spc'"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_is_a_one_line_error_naming_it(tmp_path: Path, case: str) -> None:
    name, write, expected = BAD_FILES[case]
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError) as error:
        read_spectra(path)
    message = str(error.value)
    assert expected in message and str(path) in message and "\n" not in message


# --- paths and globs --------------------------------------------------------------------------------


def test_globs_expand_sorted_and_each_file_once(tmp_path: Path) -> None:
    for name in ("b.npy", "a.npy", "c.csv"):
        np.save(tmp_path / name, SPECTRA) if name.endswith(".npy") else write_text(tmp_path / name, "1,2\n")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "d.npy", SPECTRA)
    paths = expand_paths([str(tmp_path / "*.npy"), tmp_path / "a.npy", str(tmp_path / "**" / "d.npy")])
    assert paths == [tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "sub" / "d.npy"]
    read = read_many([str(tmp_path / "*.csv")])
    assert [f.path for f in read] == [tmp_path / "c.csv"] and isinstance(read[0], SpectraFile)


@pytest.mark.parametrize(
    ("argument", "error", "expected"),
    [
        ("missing.csv", FileNotFoundError, "missing.csv: no such file"),
        ("*.nothing", FileNotFoundError, "no file matches"),
        (".", ValueError, "is a directory"),
    ],
)
def test_path_errors(tmp_path: Path, argument: str, error: type[Exception], expected: str) -> None:
    with pytest.raises(error, match=expected.replace("*", r"\*")):
        expand_paths([str(tmp_path / argument)])


def test_read_many_stops_at_the_first_bad_file(tmp_path: Path) -> None:
    np.save(tmp_path / "good.npy", SPECTRA)
    write_text(tmp_path / "bad.csv", "1,x\n")
    with pytest.raises(ValueError, match=r"bad\.csv line 1"):
        read_many([tmp_path / "good.npy", tmp_path / "bad.csv"])


# --- resampling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("datapoints", [7, 50, 1000])
def test_resample_matches_np_interp_row_by_row(datapoints: int) -> None:
    rng = np.random.default_rng(0)
    spectra = rng.random((4, 37))
    grid = np.linspace(0, 36, datapoints)
    expected = np.stack([np.interp(grid, np.arange(37), row) for row in spectra])
    np.testing.assert_allclose(resample(spectra, datapoints), expected, rtol=0, atol=1e-12)


def test_resample_on_an_uneven_axis() -> None:
    rng = np.random.default_rng(1)
    axis = np.cumsum(rng.uniform(0.1, 2.0, 60))
    spectra = rng.random((2, 60))
    grid = np.linspace(axis[0], axis[-1], 25)
    expected = np.stack([np.interp(grid, axis, row) for row in spectra])
    np.testing.assert_allclose(resample(spectra, 25, axis), expected, rtol=0, atol=1e-12)


def test_resample_keeps_the_ends_and_a_same_length_grid_is_identity() -> None:
    spectra = np.array([[1.0, 4.0, 2.0, 8.0, 3.0]])
    np.testing.assert_allclose(resample(spectra, 5), spectra, rtol=0, atol=1e-15)
    out = resample(spectra, 9)
    assert out[0, 0] == 1.0 and out[0, -1] == 3.0 and out[0, 1] == 2.5


def test_resample_needs_two_points() -> None:
    with pytest.raises(ValueError, match="need at least 2"):
        resample(np.ones((1, 1)), 10)


def test_resample_onto_an_x_range_crops_and_matches_np_interp() -> None:
    rng = np.random.default_rng(2)
    axis = np.linspace(5.0, 90.0, 851)  # e.g. a 2θ scan wider than the model's grid
    spectra = rng.random((3, 851))
    grid = np.linspace(10.0, 80.0, 300)
    expected = np.stack([np.interp(grid, axis, row) for row in spectra])
    np.testing.assert_allclose(resample(spectra, 300, axis, (10, 80)), expected, rtol=0, atol=1e-12)
    # half a step of slack at each end; the end value is then held
    edge = resample(spectra, 11, axis, (5.0 - 0.04, 90.0))
    assert edge[0, 0] == spectra[0, 0] and edge[0, -1] == spectra[0, -1]


def test_a_descending_axis_is_read_from_low_to_high_x() -> None:
    rng = np.random.default_rng(3)
    axis = np.linspace(5.0, 90.0, 851)
    spectra = rng.random((2, 851))
    ascending = resample(spectra, 300, axis, (10, 80))
    np.testing.assert_array_equal(resample(spectra[:, ::-1], 300, axis[::-1], (10, 80)), ascending)
    np.testing.assert_array_equal(resample(spectra[:, ::-1], 300, axis[::-1]), resample(spectra, 300, axis))


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        (np.linspace(5, 90, 49), "axis: 50 x values needed (one per point), got shape (49,)"),
        (np.r_[np.linspace(5, 90, 49), 50.0], "axis: the x values are not strictly increasing or decreasing"),
        (np.r_[np.linspace(5, 90, 49), np.nan], "axis: holds NaN or infinite values"),
    ],
)
def test_a_bad_axis_is_one_line(axis, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        resample(np.ones((1, 50)), 20, axis, (10, 40))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("x_range", "axis", "message"),
    [
        ((10, 80), None, "x range: needs the spectra's x values"),
        ((80, 10), np.linspace(5, 90, 50), "x range: needs LOW < HIGH, both finite, got 80 10"),
        ((10, float("nan")), np.linspace(5, 90, 50), "x range: needs LOW < HIGH"),
        ((10, 95), np.linspace(5, 90, 50), "x range 10-95 is not covered: the spectrum's x values run from"),
        ((2, 80), np.linspace(5, 90, 50), "x range 2-80 is not covered"),
    ],
)
def test_x_range_errors_are_one_line(x_range, axis, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        resample(np.ones((1, 50)), 20, axis, x_range)
    assert "\n" not in str(error.value)
