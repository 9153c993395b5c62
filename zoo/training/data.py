"""The data of one run: train, validation and test inputs of a resolved dataset config.

With the TensorFlow backend they come from TFDS through :func:`synthetic_spectra.input_pipeline` (tf.data:
per-spectrum max normalisation, seeded resumable shuffles); with JAX or PyTorch from the NumPy generator's
arrays through :class:`zoo.training.array_data.ShuffledArrayBatches`, without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthetic_spectra.augment import Augmentation
from synthetic_spectra.config import DatasetConfig
from zoo.errors import UserError
from zoo.training.environment import backend
from zoo.training.protocol import Protocol


def prepare_dataset(
    config: str | os.PathLike | DatasetConfig, data_dir: str | os.PathLike | None = None
) -> Any:
    """The TFDS builder of ``config`` after preparing it once, one process at a time.

    Processes sharing a data folder take turns (a lock file in it, released by the kernel when its holder
    ends): the second waits, then finds the dataset prepared. A prepared dataset is read without the lock,
    so a read-only shared folder works. A folder that cannot be written is one clear error.
    """
    from synthetic_spectra.synthetic_spectra_dataset_builder import builder
    from zoo.locks import exclusive
    from zoo.paths import check_output_dir

    tfds_builder = builder(config, data_dir=data_dir)
    root = pathlib.Path(tfds_builder.data_dir_root)
    if not pathlib.Path(tfds_builder.data_dir).is_dir():
        check_output_dir(root, "--data-dir")
        root.mkdir(parents=True, exist_ok=True)
        with exclusive(root / f".{tfds_builder.name}-{tfds_builder.builder_config.name}.lock",
                       f"data folder {root}", wait=True):  # fmt: skip
            tfds_builder = builder(config, data_dir=data_dir)  # sees what another process prepared
            tfds_builder.download_and_prepare()
    return tfds_builder


@dataclasses.dataclass
class RunData:
    """Model-ready training/validation/test inputs for one run."""

    train: Any
    validation: Any
    test: Any
    test_labels: np.ndarray
    steps_per_epoch: int
    num_classes: int
    datapoints: int
    n_train: int


def _numpy_batches(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, **kwargs: Any) -> Any:
    import keras

    from zoo.training.array_data import ShuffledArrayBatches

    return ShuffledArrayBatches(x, keras.utils.to_categorical(y, num_classes), batch_size, **kwargs)


def train_input(
    config: DatasetConfig,
    protocol: Protocol,
    seed: int,
    initial_epoch: int,
    *,
    data_dir: str | None = None,
    augment: Augmentation | None = None,
) -> Any:
    """The training input from epoch ``initial_epoch`` on: batches shuffled per epoch (keyed on ``seed`` and
    the epoch, so a run resumed at that epoch sees the batches the uninterrupted run saw), rendered anew
    each epoch with ``augment`` when given. The TFDS data must be prepared (:func:`load_data` does it)."""
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        return input_pipeline(
            config, "train", protocol.batch_size, data_dir=data_dir, shuffle_seed=seed,
            epochs=protocol.max_epochs, initial_epoch=initial_epoch, augment=augment, augment_seed=seed,
        )  # fmt: skip
    augmented = functools.partial(_augmented_arrays, config, augment, seed)
    return _numpy_batches(
        *_normalized_arrays(config, "train"), config.num_classes, protocol.batch_size,
        seed=seed, initial_epoch=initial_epoch, render=None if augment is None else augmented,
    )  # fmt: skip


def load_data(
    config: DatasetConfig,
    protocol: Protocol,
    seed: int,
    initial_epoch: int,
    *,
    data_dir: str | None = None,
    augment: Augmentation | None = None,
) -> RunData:
    """Train (:func:`train_input`), validation and test inputs.

    With ``augment`` every training epoch is rendered anew with it (:mod:`synthetic_spectra.augment`),
    its draws seeded by ``seed`` and the epoch; validation and test stay the published splits.
    """
    n_train = config.split_size("train")
    num_classes = config.num_classes
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        prepare_dataset(config, data_dir)
        validation = input_pipeline(config, "validation", protocol.batch_size, data_dir=data_dir)
    else:
        validation = _numpy_batches(
            *_normalized_arrays(config, "validation"), num_classes, protocol.batch_size
        )
    train = train_input(config, protocol, seed, initial_epoch, data_dir=data_dir, augment=augment)
    test, test_labels = load_test(config, protocol.batch_size, data_dir=data_dir)
    return RunData(
        train=train,
        validation=validation,
        test=test,
        test_labels=np.asarray(test_labels),
        steps_per_epoch=math.ceil(n_train / protocol.batch_size),
        num_classes=num_classes,
        datapoints=config.datapoints,
        n_train=n_train,
    )


def load_train_spectra(config: DatasetConfig, protocol: Protocol, *, data_dir: str | None = None) -> Any:
    """The training split once, in its published order, batched as the protocol batches (labels beside
    the spectra): what batch-norm statistics are re-estimated from. The TFDS data must be prepared."""
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        return input_pipeline(config, "train", protocol.batch_size, data_dir=data_dir)
    return _normalized_arrays(config, "train")[0]


def _normalized_arrays(dataset_config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split from the NumPy generator, max-normalised, shaped ``(n, datapoints, 1)``."""
    from synthetic_spectra.generator import generate
    from synthetic_spectra.normalize import normalize_max

    x, y = generate(dataset_config, split)
    return normalize_max(x)[..., np.newaxis], y


def _augmented_arrays(config: DatasetConfig, augment: Augmentation, seed: int, epoch: int) -> np.ndarray:
    """One augmented training epoch, max-normalised, shaped ``(n, datapoints, 1)``."""
    from synthetic_spectra.generator import generate_augmented
    from synthetic_spectra.normalize import normalize_max

    return normalize_max(generate_augmented(config, "train", augment, seed, epoch)[0])[..., np.newaxis]


def load_test(
    config: DatasetConfig, batch_size: int, *, data_dir: str | None = None
) -> tuple[Any, np.ndarray]:
    """The test split of a dataset config as model inputs (canonical order) and its integer labels."""
    dataset_config = config
    if backend() == "tensorflow":
        from synthetic_spectra.pipeline import input_pipeline

        prepare_dataset(config, data_dir)
        test = input_pipeline(config, "test", batch_size, data_dir=data_dir)
        labels = np.concatenate([np.argmax(y, axis=-1) for _, y in test.as_numpy_iterator()])
        return test, labels
    x_test, labels = _normalized_arrays(dataset_config, "test")
    return _numpy_batches(x_test, labels, dataset_config.num_classes, batch_size), np.asarray(labels)


def check_cross_tests(trained_on: DatasetConfig, cross_tests: Sequence[DatasetConfig]) -> None:
    """Validate the extra test sets of a run: same classes and input length as the training dataset."""
    for other in cross_tests:
        if (other.num_classes, other.datapoints) != (trained_on.num_classes, trained_on.datapoints):
            raise UserError(
                f"--cross-test {other.name}: {other.num_classes} classes x {other.datapoints} points "
                f"does not match {trained_on.name} ({trained_on.num_classes} x {trained_on.datapoints})"
            )


def evaluate_test(model: Any, test: Any, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy and misclassified samples of a model on one test set."""
    predictions = np.argmax(model.predict(test, verbose=0), axis=-1)
    wrong = np.flatnonzero(predictions != labels)
    return {
        "test_accuracy": float(1.0 - wrong.size / len(labels)),
        "test_size": len(labels),
        "misclassified": int(wrong.size),
        "misclassified_samples": [
            {"index": int(i), "true": int(labels[i]), "pred": int(predictions[i])} for i in wrong
        ],
    }
