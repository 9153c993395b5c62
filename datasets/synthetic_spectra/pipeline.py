"""The tf.data input pipeline: TFDS (or in-memory arrays) → normalised, cached, shuffled batches.

A prepared TFDS split is read by :func:`read_batches`: the examples ``tfds.load`` gives, parsed a batch
of records at a time.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from synthetic_spectra.augment import Augmentation
from synthetic_spectra.config import SPLIT_ALIASES, DatasetConfig, canonical_split, get_config

#: Examples normalised per map call: whole batches cost one op each instead of one op per spectrum.
_MAP_BATCH = 256


def _normalize_max(spectra: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Divide each spectrum (row) by its maximum; fail loudly (not with NaN) when one has none."""
    maximum = tf.reduce_max(spectra, axis=-1, keepdims=True)
    without = tf.boolean_mask(index, tf.logical_not(maximum[:, 0] > 0))
    check = tf.debugging.Assert(
        tf.size(without) == 0,
        ["max normalisation needs a positive maximum; spectrum has none (all zero?): row", without[:1]],
    )
    with tf.control_dependencies([check]):
        return spectra / maximum


def _check_batching(batch_size: int, epochs: int | None, initial_epoch: int) -> None:
    """One-line ValueError for a batch size below 1 or a first epoch outside ``[0, epochs)``."""
    if batch_size <= 0:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    if epochs is not None and not 0 <= initial_epoch < epochs:
        raise ValueError(f"initial_epoch: must be in [0, epochs={epochs}), got {initial_epoch}")


def prepare(
    dataset: tf.data.Dataset,
    *,
    num_classes: int,
    batch_size: int = 128,
    shuffle_seed: int | None = None,
    normalize: bool = True,
    one_hot: bool = True,
    cache: bool = True,
    epochs: int | None = None,
    initial_epoch: int = 0,
) -> tf.data.Dataset:
    """Turn a dataset of ``{"spectrum", "label", "index"}`` dicts into model-ready batches.

    Steps: per-spectrum max normalisation (a few hundred spectra per op) → ``[datapoints, 1]`` → cache →
    seeded shuffle → batch → one-hot → prefetch. Without ``shuffle_seed`` the canonical order is kept.

    With ``shuffle_seed`` the dataset reshuffles on each iteration in a sequence fixed by the seed.
    With ``epochs`` too, the result holds the batches of epochs ``initial_epoch … epochs-1`` back to
    back, exactly as an uninterrupted iteration from epoch 0 would give them, so a resumed run sees
    the batches the killed one would have seen (pass ``steps_per_epoch`` to ``fit``).
    """
    _check_batching(batch_size, epochs, initial_epoch)
    return _prepare_blocks(
        dataset.batch(_MAP_BATCH), int(dataset.cardinality()), num_classes=num_classes,
        batch_size=batch_size, shuffle_seed=shuffle_seed, normalize=normalize, one_hot=one_hot,
        cache=cache, epochs=epochs, initial_epoch=initial_epoch,
    )  # fmt: skip


def _prepare_blocks(
    blocks: tf.data.Dataset,
    size: int,
    *,
    num_classes: int,
    batch_size: int,
    shuffle_seed: int | None,
    normalize: bool,
    one_hot: bool,
    cache: bool,
    epochs: int | None,
    initial_epoch: int,
) -> tf.data.Dataset:
    """:func:`prepare` of ``size`` examples that come in blocks (dicts of ``[n, ...]`` tensors)."""

    def to_examples(features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:  # a block of them
        spectra = tf.cast(features["spectrum"], tf.float32)
        if normalize:
            spectra = _normalize_max(spectra, features["index"])
        return spectra[:, :, tf.newaxis], features["label"]

    blocks = blocks.map(to_examples, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle_seed is not None and epochs is not None:  # the whole split in memory (no cache needed)
        batches = _epoch_keyed_batches(blocks, batch_size, shuffle_seed, initial_epoch, epochs)
        return _finish(batches, num_classes, one_hot)
    examples = blocks.unbatch()
    if size >= 0:  # unbatch forgets the count; the shuffle buffer and `fit` want it
        examples = examples.apply(tf.data.experimental.assert_cardinality(size))
    if cache:
        examples = examples.cache()
    buffer = size if size > 0 else 100_000

    if shuffle_seed is None:
        batches = examples.batch(batch_size)
    else:
        batches = examples.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True).batch(batch_size)
    return _finish(batches, num_classes, one_hot)


def _finish(batches: tf.data.Dataset, num_classes: int, one_hot: bool) -> tf.data.Dataset:
    """One-hot labels (optional), sharding by example, prefetch."""

    def to_one_hot(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return x, tf.one_hot(y, num_classes, dtype=tf.float32)

    if one_hot:
        batches = batches.map(to_one_hot, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    # Each split is one TFDS file: multi-worker training shards by example, not by file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def _epoch_keyed_batches(
    blocks: tf.data.Dataset, batch_size: int, seed: int, initial_epoch: int, epochs: int
) -> tf.data.Dataset:
    """Batches of epochs ``initial_epoch … epochs-1``; epoch ``e``'s order is a function of ``(seed, e)``.

    The examples (``blocks`` of ``(spectra, labels)``) are joined in memory once (the datasets here are
    at most a few hundred MB) and each epoch draws a stateless permutation, so the order does not
    depend on how many iterators were created before: a resumed run sees the batches the uninterrupted
    run saw.
    """
    parts = list(blocks)
    spectra, labels = (tf.concat([part[i] for part in parts], axis=0) for i in (0, 1))
    del parts
    size = int(tf.shape(labels)[0])

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(_epoch_order(size, seed, epoch)).batch(batch_size)

    def gather(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(spectra, rows), tf.gather(labels, rows)

    # tf.data's static graph rewrites, with the whole split captured in `gather`, cost about a cached
    # epoch of CPU each time an iterator starts; this pipeline has nothing for them to rewrite.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return (
        tf.data.Dataset.range(initial_epoch, epochs)
        .flat_map(epoch_batches)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .with_options(options)
    )


def _epoch_order(size: int, seed: int | None, epoch: tf.Tensor) -> tf.Tensor:
    """Epoch ``epoch``'s order of ``size`` rows: a stateless permutation keyed on ``(seed, epoch)``."""
    if seed is None:
        return tf.range(size)
    keys = tf.random.stateless_uniform([size], seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
    return tf.argsort(keys)


def augmented_batches(
    config: DatasetConfig,
    augment: Augmentation,
    augment_seed: int,
    *,
    batch_size: int,
    shuffle_seed: int | None,
    normalize: bool,
    epochs: int,
    initial_epoch: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(spectrum[datapoints, 1], label)`` of the training split, re-rendered every epoch.

    Epoch ``e`` holds :func:`~synthetic_spectra.generator.generate_augmented` ``(config, "train",
    augment, augment_seed, e)``, max-normalised in float32 (as :func:`prepare` does), in the order of
    :func:`prepare`'s epoch-keyed layout: epochs ``initial_epoch … epochs-1`` back to back, each a
    function of the seeds and its number, so a resumed run sees the batches of the uninterrupted one.
    The next epoch renders while the current one is consumed.
    """
    from synthetic_spectra.generator import check_augmentation, generate_augmented

    check_augmentation(config, augment, augment_seed)
    _check_batching(batch_size, epochs, initial_epoch)
    size, datapoints = config.split_size("train"), config.datapoints
    labels = tf.constant(np.repeat(np.arange(config.num_classes), config.samples_per_class("train")))

    def render(epoch: np.int64) -> np.ndarray:
        spectra, _ = generate_augmented(config, "train", augment, augment_seed, int(epoch), dtype=np.float32)
        if normalize:
            maxima = spectra.max(axis=1, keepdims=True)
            if not np.all(maxima > 0):
                row = int(np.argmin(maxima))
                raise ValueError(f"max normalisation needs a positive maximum; row {row} has none")
            spectra /= maxima
        return spectra[:, :, np.newaxis]

    def epoch_spectra(epoch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        spectra = tf.numpy_function(render, [epoch], tf.float32, stateful=False)
        return tf.ensure_shape(spectra, [size, datapoints, 1]), epoch

    def epoch_batches(spectra: tf.Tensor, epoch: tf.Tensor) -> tf.data.Dataset:
        rows = tf.data.Dataset.from_tensor_slices(_epoch_order(size, shuffle_seed, epoch)).batch(batch_size)
        return rows.map(lambda batch: (tf.gather(spectra, batch), tf.gather(labels, batch)))

    epochs_rendered = tf.data.Dataset.range(initial_epoch, epochs).map(epoch_spectra).prefetch(1)
    return epochs_rendered.flat_map(epoch_batches)


def from_arrays(spectra: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    """A dataset of ``{"spectrum", "label", "index"}`` from in-memory arrays (rows keep their index)."""
    spectra = np.asarray(spectra)
    labels = np.asarray(labels, dtype=np.int64)
    if spectra.ndim != 2 or labels.shape != (spectra.shape[0],):
        raise ValueError(
            f"spectra/labels: expected shapes [n, datapoints] and [n], got {spectra.shape} and {labels.shape}"
        )
    index = np.arange(spectra.shape[0], dtype=np.int64)
    return tf.data.Dataset.from_tensor_slices({"spectrum": spectra, "label": labels, "index": index})


def read_batches(
    dataset: str | os.PathLike | DatasetConfig | Any,
    split: str,
    batch_size: int = _MAP_BATCH,
    *,
    data_dir: str | os.PathLike | None = None,
) -> tf.data.Dataset:
    """The examples ``tfds.load`` reads from a prepared split, ``batch_size`` at a time.

    ``dataset``: a TFDS builder (any whose features are flat and of fixed shape), or a config (built-in
    name, config file, ``DatasetConfig``) whose ``synthetic_spectra`` builder is taken from
    ``data_dir``. ``split``: a split name (``val`` for ``validation``) or any TFDS split expression
    (``"train[:10%]"``).

    Each element is a dict of ``[n, ...]`` tensors (``n = batch_size``, the last one possibly fewer):
    the same examples in the same order as ``tfds.load(..., split=split)`` unshuffled, with the same
    values bit for bit. The files and ranges read are the builder's own (the split's file
    instructions, each file opened by TFDS's adapter of its file format, as TFDS's reader does), but
    the records are batched first and then parsed with one ``tf.io.parse_example`` per batch (the
    builder's serialized feature spec), a raw-bytes tensor feature decoded with one
    ``tf.io.decode_raw`` per batch, instead of TFDS's parse and decode of one example at a time.
    Other features are decoded by their own ``decode_batch_example``.

    Raises FileNotFoundError (one line) where the split is not prepared or a file of it is missing.
    """
    import tensorflow_datasets as tfds

    if batch_size <= 0:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    tfds_builder = dataset
    if not isinstance(dataset, tfds.core.DatasetBuilder):
        from synthetic_spectra.synthetic_spectra_dataset_builder import builder

        tfds_builder = builder(dataset, data_dir=data_dir)
    where = tfds_builder.info.full_name
    if not tfds_builder.is_prepared():
        raise FileNotFoundError(
            f"{where}: not prepared in {tfds_builder.data_dir_root} "
            "(prepare it first: builder.download_and_prepare() or tfds build)"
        )
    features = tfds_builder.info.features
    serialized = features.get_serialized_info()
    specs = tfds.core.example_parser.ExampleParser(serialized).flat_feature_specs
    if set(specs) != set(features) or any(  # nested or variable-sized features are TFDS's own to read
        None in info.shape or info.sequence_rank for info in serialized.values()
    ):
        raise ValueError(f"{where}: only flat features of fixed shape are read in batches; use tfds.load")
    name = SPLIT_ALIASES.get(split, split)
    try:
        instructions = tfds_builder.info.splits[name].file_instructions
    except (KeyError, ValueError, AssertionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown split"
        raise ValueError(f"split: {split!r} of {where}: {reason}") from None
    paths = [os.fspath(instruction.filename) for instruction in instructions]
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{where}: file of split {name!r} missing: {path} (prepare it again)")
    files = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(paths, tf.string),
            tf.constant([instruction.skip for instruction in instructions], tf.int64),
            tf.constant([instruction.take for instruction in instructions], tf.int64),
        )
    )

    adapter = tfds.core.file_adapters.ADAPTER_FOR_FORMAT[tfds_builder.info.file_format]

    def records_of(path: tf.Tensor, skip: tf.Tensor, take: tf.Tensor) -> tf.data.Dataset:
        return adapter.make_tf_data(path).skip(skip).take(take)  # as TFDS's reader opens each file

    count = sum(instruction.take for instruction in instructions)
    records = files.flat_map(records_of).apply(tf.data.experimental.assert_cardinality(count))

    def decode(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, specs)
        return {key: _decode_batch(features[key], parsed[key]) for key in features}

    return records.batch(batch_size).map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _decode_batch(feature: Any, values: tf.Tensor) -> tf.Tensor:
    """A batch of one feature's parsed values, decoded as TFDS decodes each example of it."""
    import tensorflow_datasets as tfds

    info = feature.get_serialized_info()
    if values.dtype != info.tf_dtype:  # tf.train.Example holds int64/float32/bytes; TFDS casts back
        values = tf.cast(values, info.tf_dtype)
    raw_bytes = (
        isinstance(feature, tfds.features.Tensor)
        and info.tf_dtype == tf.string
        and feature.tf_dtype not in (tf.string, tf.uint64)
        and None not in feature.shape
        and getattr(feature.to_json_content(), "encoding", "") == "bytes"
    )
    if raw_bytes:  # Tensor(..., encoding=Encoding.BYTES): each record's bytes are one fixed-size array
        return tf.reshape(tf.io.decode_raw(values, feature.tf_dtype), [-1, *feature.shape])
    return feature.decode_batch_example(values)


def input_pipeline(
    config: str | os.PathLike | DatasetConfig,
    split: str,
    batch_size: int = 128,
    shuffle_seed: int | None = None,
    normalize: bool = True,
    one_hot: bool = True,
    *,
    data_dir: str | os.PathLike | None = None,
    source: str = "tfds",
    cache: bool = True,
    epochs: int | None = None,
    initial_epoch: int = 0,
    augment: Augmentation | None = None,
    augment_seed: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(spectrum[datapoints, 1], label)`` for one split of a dataset config.

    Args:
        config: a built-in name (``benchmark``, ``challenge``, ``mini``), a config file or a
            ``DatasetConfig``.
        split: ``train``, ``validation`` (or ``val``) or ``test``.
        batch_size: examples per batch (the study uses 128).
        shuffle_seed: seed of a deterministic reshuffle each epoch; ``None`` keeps canonical order.
        normalize: divide each spectrum by its own maximum (an all-zero spectrum raises an error).
        one_hot: one-hot float labels (for categorical cross-entropy) instead of integer labels.
        data_dir: TFDS data directory (default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        source: ``"tfds"`` reads the TFDS dataset (prepared first if needed) with :func:`read_batches`;
            ``"generator"`` renders in memory.
        cache: cache the normalised examples in memory after the first epoch.
        epochs, initial_epoch: with ``shuffle_seed``, lay out epochs ``initial_epoch … epochs-1`` with
            per-epoch seeds (resumable training; see :func:`prepare`).
        augment, augment_seed: training-time augmentation (:mod:`synthetic_spectra.augment`), train
            split of a single-label config only, ``epochs`` required: every epoch re-renders the
            published samples with the augmentation's options drawn for ``(augment_seed, epoch)``
            (:func:`augmented_batches`; the spectra come from the generator, not TFDS, and are not cached).
    """
    dataset_config = get_config(config)
    if augment is not None:
        if canonical_split(split) != "train":
            raise ValueError(f"augment: only for the train split, got split {split!r}")
        if epochs is None:
            raise ValueError("epochs: needed with augment (each epoch is rendered for its number)")
        batches = augmented_batches(
            dataset_config, augment, augment_seed, batch_size=batch_size, shuffle_seed=shuffle_seed,
            normalize=normalize, epochs=epochs, initial_epoch=initial_epoch,
        )  # fmt: skip
        return _finish(batches, dataset_config.num_classes, one_hot)
    layout = {
        "num_classes": dataset_config.num_classes, "batch_size": batch_size, "shuffle_seed": shuffle_seed,
        "normalize": normalize, "one_hot": one_hot, "cache": cache, "epochs": epochs,
        "initial_epoch": initial_epoch,
    }  # fmt: skip
    if source == "tfds":
        _check_batching(batch_size, epochs, initial_epoch)
        name = canonical_split(split)
        from synthetic_spectra.synthetic_spectra_dataset_builder import builder

        tfds_builder = builder(config, data_dir=data_dir)
        tfds_builder.download_and_prepare()
        # Read in the stored (canonical) order; any shuffling happens in `prepare` with an explicit seed.
        blocks = read_batches(tfds_builder, name, _MAP_BATCH)
        return _prepare_blocks(blocks, tfds_builder.info.splits[name].num_examples, **layout)
    if source == "generator":
        from synthetic_spectra.generator import generate

        return prepare(from_arrays(*generate(dataset_config, canonical_split(split))), **layout)
    raise ValueError(f"source: expected 'tfds' or 'generator', got {source!r}")
