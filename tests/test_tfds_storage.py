"""How the TFDS builder stores spectra (bulk-written records = TFDS's own, round trip, versions) and the
batched reader reads them (= tfds.load, bit for bit)."""

from __future__ import annotations

import os
import shutil
from typing import ClassVar

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

import synthetic_spectra
from synthetic_spectra._example_records import ExampleEncoder, varints
from synthetic_spectra.synthetic_spectra_dataset_builder import Builder

# TFDS's own writer (one example at a time) serves requests the bulk writer leaves to it; a cap far
# above every split's size makes TFDS write the whole dataset its way.
_TFDS_OWN_PATH = tfds.download.DownloadConfig(max_examples_per_split=10**9)


def _examples(dataset: tf.data.Dataset) -> list[dict[str, np.ndarray]]:
    return list(tfds.as_numpy(dataset))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**31, 2**63 - 1, -1, -(2**63)])
def test_varints_are_protobufs_own(value):
    encoded, lengths = varints(np.array([value]))
    packed = tf.train.Int64List(value=[value]).SerializeToString()  # tag, length, then the varint
    assert encoded.tobytes() == packed[2:]
    assert lengths.tolist() == [len(packed) - 2]


@pytest.mark.parametrize("config", ["mini", "challenge_mixtures"])
def test_bulk_records_parse_to_the_examples_tfds_serialises(config):
    features = synthetic_spectra.builder(config).info.features
    info = features.get_serialized_info()
    rng = np.random.default_rng(0)
    n, datapoints = 40, synthetic_spectra.get_config(config).datapoints
    columns = {"spectrum": rng.random((n, datapoints), dtype=np.float32), "index": np.arange(n) * 997}
    if "labels" in info:
        columns["labels"] = (rng.random((n, 27)) < 0.1).astype(np.int64)
        columns["fractions"] = rng.random((n, 27), dtype=np.float32)
    else:
        columns["label"] = np.arange(n) % features["label"].num_classes
    encoder = ExampleEncoder(info)
    records = encoder.encode(columns)
    serializer = example_serializer.ExampleSerializer(info)
    for row, record in enumerate(records):
        example = features.encode_example({name: values[row] for name, values in columns.items()})
        expected = serializer.serialize_example(example)
        assert tf.train.Example.FromString(record) == tf.train.Example.FromString(expected)
        assert len(record) == len(expected)
    assert encoder.sizes(columns).tolist() == [len(record) for record in records]


def test_bulk_encoder_refuses_features_it_cannot_lay_out():
    info = {"ragged": tfds.features.Tensor(shape=(None,), dtype=np.float32).get_serialized_info()}
    with pytest.raises(ValueError, match="cannot be encoded in bulk"):
        ExampleEncoder(info)


def test_prepared_data_is_tfds_own_layout_and_equals_the_generator(tfds_data_dir, tmp_path):
    bulk = synthetic_spectra.builder("mini", data_dir=tfds_data_dir)
    own = synthetic_spectra.builder("mini", data_dir=tmp_path)
    own.download_and_prepare(download_config=_TFDS_OWN_PATH)
    assert bulk.info.features.get_serialized_info()["spectrum"].tf_dtype == tf.string  # raw bytes
    for split in ("train", "validation", "test"):
        assert bulk.info.splits[split].shard_lengths == own.info.splits[split].shard_lengths
        assert bulk.info.splits[split].num_bytes == own.info.splits[split].num_bytes
        x, y = synthetic_spectra.generate("mini", split)
        loaded = tfds.builder("synthetic_spectra/mini", data_dir=tfds_data_dir)
        read = _examples(loaded.as_dataset(split=split))
        assert [int(e["index"]) for e in read] == list(range(len(x)))  # canonical order
        for example, reference in zip(read, _examples(own.as_dataset(split=split)), strict=True):
            assert example["spectrum"].dtype == np.float32
            assert np.array_equal(example["spectrum"], x[example["index"]].astype(np.float32))
            assert example["label"] == y[example["index"]]
            assert all(np.array_equal(example[key], reference[key]) for key in reference)


class _Version100(Builder, skip_registration=True):
    """The builder as version 1.0.0 stored spectra: a float list (TFDS's default Tensor encoding)."""

    name = "synthetic_spectra"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.dataset_config
        features = {
            "spectrum": tfds.features.Tensor(shape=(config.datapoints,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=config.class_names()),
            "index": np.int64,
        }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("spectrum", "label"),
            disable_shuffling=True,
        )


def test_data_of_the_old_version_is_rebuilt_or_read_as_itself_never_misread(tmp_path):
    old = _Version100(config="mini", data_dir=tmp_path)
    old.download_and_prepare(download_config=_TFDS_OWN_PATH)
    assert old.info.features.get_serialized_info()["spectrum"].tf_dtype == tf.float32  # a float list
    x, _ = synthetic_spectra.generate("mini", "test")

    current = synthetic_spectra.builder("mini", data_dir=tmp_path)
    assert str(current.version) != "1.0.0"
    assert not current.is_prepared()  # the 1.0.0 folder is not this version's data: it is built anew
    current.download_and_prepare()
    assert current.is_prepared()
    assert sorted(p.name for p in (tmp_path / "synthetic_spectra" / "mini").iterdir()) == [
        "1.0.0",
        str(current.version),
    ]
    for dataset in (
        tfds.load("synthetic_spectra/mini", split="test", data_dir=tmp_path),  # the current version
        tfds.load("synthetic_spectra/mini:1.0.0", split="test", data_dir=tmp_path),  # old files, old spec
    ):
        spectra = np.stack([e["spectrum"] for e in _examples(dataset)])
        assert np.array_equal(spectra, x.astype(np.float32))

    with pytest.raises(AssertionError, match=r"cannot be loaded at version 1\.0\.0"):  # never as its own
        Builder(config="mini", version="1.0.0", data_dir=tmp_path)


def _concatenated(batches: tf.data.Dataset) -> dict[str, np.ndarray]:
    parts = list(tfds.as_numpy(batches))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _assert_same_bits(read: dict[str, np.ndarray], reference: list[dict[str, np.ndarray]]) -> None:
    assert sorted(read) == sorted(reference[0])
    for key, values in read.items():
        expected = np.stack([example[key] for example in reference])
        assert values.dtype == expected.dtype and values.shape == expected.shape, key
        assert values.tobytes() == expected.tobytes(), key  # bit for bit, in the same order


@pytest.mark.parametrize(
    ("split", "batch_size"), [("train", 64), ("validation", 7), ("test", 256), ("train[10:37]", 5)]
)
def test_batched_reader_reads_what_tfds_load_reads_bit_for_bit(tfds_data_dir, split, batch_size):
    reference = _examples(tfds.load("synthetic_spectra/mini", split=split, data_dir=tfds_data_dir))
    batches = synthetic_spectra.read_batches("mini", split, batch_size, data_dir=tfds_data_dir)
    sizes = [int(part["index"].shape[0]) for part in tfds.as_numpy(batches)]
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_size
    assert int(batches.cardinality()) == len(sizes)
    _assert_same_bits(_concatenated(batches), reference)


def test_batched_reader_reads_any_builder_as_tfds_does(tmp_path):
    """A builder of another layout (the 1.0.0 float-list spectra) through the same reader."""
    old = _Version100(config="mini", data_dir=tmp_path)
    old.download_and_prepare(download_config=_TFDS_OWN_PATH)
    reference = _examples(old.as_dataset(split="validation", shuffle_files=False))
    _assert_same_bits(_concatenated(synthetic_spectra.read_batches(old, "val", 16)), reference)


class _Ragged(_Version100, skip_registration=True):
    """A builder whose spectra have no fixed length: TFDS's own reader, not the batched one, reads it."""

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"spectrum": tfds.features.Tensor(shape=(None,), dtype=np.float32), "index": np.int64}
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features))


def test_batched_reader_refuses_features_of_no_fixed_shape(tmp_path):
    ragged = _Ragged(config="mini", data_dir=tmp_path)
    tmp_path.joinpath(ragged.info.full_name).mkdir(parents=True)
    ragged.info.write_to_directory(tmp_path / ragged.info.full_name)  # prepared: an info file, no data
    with pytest.raises(ValueError, match="only flat features of fixed shape") as error:
        synthetic_spectra.read_batches(_Ragged(config="mini", data_dir=tmp_path), "test")
    assert "\n" not in str(error.value)


def test_batched_reader_errors_are_one_line(tfds_data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not prepared in") as error:
        synthetic_spectra.read_batches("mini", "test", data_dir=tmp_path / "empty")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "empty").exists()  # reading never prepares
    with pytest.raises(ValueError, match="split: 'tests'") as error:
        synthetic_spectra.read_batches("mini", "tests", data_dir=tfds_data_dir)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="batch_size"):
        synthetic_spectra.read_batches("mini", "test", 0, data_dir=tfds_data_dir)

    copy = tmp_path / "copy"
    source = synthetic_spectra.builder("mini", data_dir=tfds_data_dir).data_dir
    target = copy / os.path.relpath(source, tfds_data_dir)
    shutil.copytree(source, target)
    next(target.glob("*-test.tfrecord-*")).unlink()
    with pytest.raises(FileNotFoundError, match="file of split 'test' missing") as error:
        synthetic_spectra.read_batches("mini", "test", data_dir=copy)
    assert "\n" not in str(error.value)
