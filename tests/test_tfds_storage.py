"""How the TFDS builder stores spectra: bulk-written records = TFDS's own, round trip, versions."""

from __future__ import annotations

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
