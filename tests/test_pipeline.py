"""TFDS = generate, and the tf.data input pipeline: normalisation, shapes, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import synthetic_spectra
from synthetic_spectra.normalize import normalize_max
from synthetic_spectra.pipeline import from_arrays, input_pipeline, prepare


def _labels_in_order(dataset: tf.data.Dataset) -> list[int]:
    return [int(label) for _, labels in dataset.as_numpy_iterator() for label in np.argmax(labels, -1)]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_tfds_examples_equal_generator_rows(tfds_data_dir, split):
    x, y = synthetic_spectra.generate("mini", split)
    examples = list(tfds.as_numpy(tfds.load("synthetic_spectra/mini", split=split, data_dir=tfds_data_dir)))
    assert len(examples) == len(x)
    indices = sorted(int(e["index"]) for e in examples)
    assert indices == list(range(len(x)))
    for example in examples:
        row = int(example["index"])
        assert example["label"] == y[row]
        np.testing.assert_array_equal(example["spectrum"], x[row].astype(np.float32))


def test_tfds_info_features_and_supervised_keys(tfds_data_dir):
    builder = synthetic_spectra.builder("mini", data_dir=tfds_data_dir)
    config = synthetic_spectra.get_config("mini")
    info = builder.info
    assert info.supervised_keys == ("spectrum", "label")
    assert info.features["spectrum"].shape == (config.datapoints,)
    assert info.features["label"].names == config.class_names()
    assert info.features["label"].names[0] == "class_000"
    assert "Schuetzke" in info.citation


def test_tfds_load_challenge_test_has_162_examples(tmp_path):
    dataset = tfds.load("synthetic_spectra/challenge", split="test", data_dir=tmp_path)
    assert int(dataset.cardinality()) == 162


def test_custom_config_file_builds_through_the_same_builder(tmp_path):
    config = synthetic_spectra.get_config("mini").to_dict()
    config["name"] = "my_spectra"
    path = tmp_path / "my_spectra.json"
    import json

    path.write_text(json.dumps(config))
    builder = synthetic_spectra.builder(path, data_dir=tmp_path / "tfds")
    builder.download_and_prepare()
    assert builder.builder_config.name.startswith("my_spectra-")
    x, _ = synthetic_spectra.generate(synthetic_spectra.get_config(path), "test")
    assert builder.info.splits["test"].num_examples == len(x)


def test_pipeline_normalises_shapes_and_one_hot(tfds_data_dir):
    config = synthetic_spectra.get_config("mini")
    dataset = input_pipeline("mini", "test", batch_size=16)
    x_raw, y_raw = synthetic_spectra.generate("mini", "test")
    spectra, labels = next(iter(dataset.as_numpy_iterator()))
    assert spectra.shape == (16, config.datapoints, 1)
    assert spectra.dtype == np.float32
    assert labels.shape == (16, config.num_classes)
    np.testing.assert_allclose(spectra.max(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(spectra[..., 0], (x_raw[:16] / x_raw[:16].max(1, keepdims=True)), rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(labels, -1), y_raw[:16])


def test_pipeline_without_seed_keeps_canonical_order(tfds_data_dir):
    _, y = synthetic_spectra.generate("mini", "validation")
    assert _labels_in_order(input_pipeline("mini", "val", batch_size=7)) == y.tolist()


def test_pipeline_same_seed_same_batches_other_seed_other_order(tfds_data_dir):
    first = _labels_in_order(input_pipeline("mini", "train", batch_size=32, shuffle_seed=3))
    again = _labels_in_order(input_pipeline("mini", "train", batch_size=32, shuffle_seed=3))
    other = _labels_in_order(input_pipeline("mini", "train", batch_size=32, shuffle_seed=4))
    assert first == again
    assert first != other
    assert sorted(first) == sorted(other)


def test_pipeline_reshuffles_each_epoch_and_resumes_at_an_epoch():
    x = np.random.default_rng(0).uniform(0.1, 1.0, size=(10, 8))
    y = np.arange(10)

    def batches(initial_epoch: int) -> list[list[int]]:
        tf.keras.utils.set_random_seed(0)
        dataset = prepare(
            from_arrays(x, y), num_classes=10, batch_size=4, shuffle_seed=1, one_hot=False,
            epochs=3, initial_epoch=initial_epoch,
        )  # fmt: skip
        return [labels.tolist() for _, labels in dataset.as_numpy_iterator()]

    full, resumed = batches(0), batches(2)
    steps = 3  # ceil(10 / 4)
    assert len(full) == 3 * steps
    assert sorted(label for batch in full[:steps] for label in batch) == list(range(10))
    assert full[:steps] != full[steps : 2 * steps]  # a new order each epoch
    assert resumed == full[2 * steps :]


def test_pipeline_generator_source_matches_tfds_source(tfds_data_dir):
    from_tfds = list(input_pipeline("mini", "test", batch_size=64).as_numpy_iterator())
    from_numpy = list(input_pipeline("mini", "test", batch_size=64, source="generator").as_numpy_iterator())
    for (a, la), (b, lb) in zip(from_tfds, from_numpy, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize(
    "layout",
    [
        {"split": "test"},
        {"split": "train", "shuffle_seed": 3},
        {"split": "train", "shuffle_seed": 5, "epochs": 3},
    ],
)
def test_pipeline_reads_tfds_in_batches_with_the_batches_of_tfds_load(tfds_data_dir, layout):
    """The pipeline reads TFDS with the batched reader; its batches are those of tfds.load's examples."""
    split = layout.pop("split")
    builder = synthetic_spectra.builder("mini", data_dir=tfds_data_dir)
    per_example = prepare(
        builder.as_dataset(split=split, shuffle_files=False), num_classes=10, batch_size=32, **layout
    )
    fast = input_pipeline("mini", split, batch_size=32, **layout)
    for (a, la), (b, lb) in zip(per_example.as_numpy_iterator(), fast.as_numpy_iterator(), strict=True):
        assert a.tobytes() == b.tobytes()
        assert la.tobytes() == lb.tobytes()


def test_pipeline_rejects_all_zero_spectrum_instead_of_nan():
    x = np.ones((3, 5))
    x[1] = 0.0
    dataset = prepare(from_arrays(x, np.zeros(3, dtype=np.int64)), num_classes=2, batch_size=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="positive maximum"):
        list(dataset.as_numpy_iterator())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "tests"}, "split"),
        ({"split": "train", "batch_size": 0}, "batch_size"),
        ({"split": "train", "source": "disk"}, "source"),
    ],
)
def test_pipeline_argument_errors_are_one_line(tfds_data_dir, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        input_pipeline("mini", **kwargs)
    assert "\n" not in str(error.value)


def test_normalize_max_numpy():
    x = np.array([[1.0, 2.0, 4.0], [0.5, 0.25, 0.0]])
    np.testing.assert_allclose(normalize_max(x), [[0.25, 0.5, 1.0], [1.0, 0.5, 0.0]])
    with pytest.raises(ValueError, match="row 1"):
        normalize_max(np.array([[1.0, 2.0], [0.0, 0.0]]))
