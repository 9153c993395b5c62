"""``tf.train.Example`` records of many examples at once, for features of fixed shape (no TensorFlow).

TFDS serialises one example at a time through Python protobuf objects: about 0.1 ms per example
even when the spectrum is one raw byte string, most of it copying 20 kB several times. The
``Example`` wire format of fixed-shape features is simple enough to lay out with NumPy for a whole
block of examples: only the varint-encoded integers change length from example to example. The
records are the protobuf encoding of the same ``Example`` TFDS's ``ExampleSerializer`` builds (the
tests parse both and compare them), so TFDS reads them like its own.

Supported serialized features (``tfds.features.FeatureConnector.get_serialized_info()``): a scalar
``string`` (raw bytes, e.g. a ``Tensor`` with ``Encoding.BYTES``), ``int64`` and ``float32`` of
fixed shape (``ClassLabel``, scalars, vectors).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_LENGTH_DELIMITED = 2  # protobuf wire type of bytes, strings, messages and packed repeated fields
#: tf.train.Feature's fields: bytes_list = 1, float_list = 2, int64_list = 3.
_FEATURE_FIELD = {"string": 1, "float32": 2, "int64": 3}


def _tag(field: int) -> bytes:
    return bytes([field << 3 | _LENGTH_DELIMITED])


def _varint(value: int) -> bytes:
    """Protobuf varint of a non-negative int."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.lru_cache(maxsize=4096)
def _field(field: int, payload_length: int) -> bytes:
    """Tag and length of a length-delimited field whose payload follows."""
    return _tag(field) + _varint(payload_length)


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of int64 ``values`` (negatives as 10-byte two's complement, as protobuf does).

    Returns the encodings one after the other (uint8) and the length of each (int64, values' shape).
    """
    words = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    groups = (words.reshape(-1, 1) >> (np.arange(10, dtype=np.uint64) * np.uint64(7))) & np.uint64(0x7F)
    lengths = 1 + np.count_nonzero(
        words.reshape(-1, 1) >> (np.arange(1, 10, dtype=np.uint64) * np.uint64(7)), axis=1
    )
    position = np.arange(10)
    groups = groups.astype(np.uint8)
    groups[position < lengths[:, None] - 1] |= 0x80  # continuation bit on all but the last byte
    return groups[position < lengths[:, None]], lengths.reshape(np.shape(values))


class ExampleEncoder:
    """Serialises blocks of examples of the features ``serialized_info`` describes."""

    def __init__(self, serialized_info: Mapping[str, Any]) -> None:
        """``serialized_info``: ``features.get_serialized_info()`` of the dataset (name → TensorInfo)."""
        self._features: list[tuple[str, str, int]] = []  # name, dtype, values per example
        for name, info in serialized_info.items():
            np_dtype = np.dtype(getattr(info, "np_dtype", None))
            dtype = "string" if np_dtype.kind in "OSU" else np_dtype.name
            shape = getattr(info, "shape", None)
            if (
                dtype not in _FEATURE_FIELD
                or shape is None
                or any(d is None for d in shape)
                or (dtype == "string" and tuple(shape) != ())
                or getattr(info, "sequence_rank", 0)
                or getattr(info, "optional", False)
            ):
                raise ValueError(f"feature {name!r}: {info} cannot be encoded in bulk")
            size = int(np.prod(shape, dtype=np.int64))
            if size == 0:
                raise ValueError(f"feature {name!r}: {info} holds no values")
            self._features.append((name, dtype, size))
        self._heads: dict[tuple[str, int], bytes] = {}

    def _head(self, name: str, dtype: str, payload: int) -> bytes:
        """Bytes of a features-map entry up to its values, whose encoding is ``payload`` bytes long.

        The entry is ``{key: name, value: Feature{<dtype>_list: {value: ...}}}``, every list packed
        (bytes: one string), all length-delimited.
        """
        key = (name, payload)
        if key not in self._heads:
            values_list = _field(1, payload)
            feature = _field(_FEATURE_FIELD[dtype], len(values_list) + payload) + values_list
            key_bytes = name.encode()
            entry = _field(1, len(key_bytes)) + key_bytes + _field(2, len(feature) + payload) + feature
            self._heads[key] = _field(1, len(entry) + payload) + entry
        return self._heads[key]

    def _heads_of(self, name: str, dtype: str, lengths: np.ndarray) -> list[bytes]:
        """:meth:`_head` of each example (its values ``lengths`` bytes long): one look-up per distinct
        length, so a fixed-size feature costs one look-up per block instead of one per example."""
        distinct, which = np.unique(lengths, return_inverse=True)
        heads = [self._head(name, dtype, length) for length in distinct.tolist()]
        return heads * len(lengths) if len(heads) == 1 else [heads[i] for i in which.tolist()]

    @staticmethod
    def _lengths(dtype: str, size: int, array: np.ndarray, n: int) -> np.ndarray:
        """Length of each example's encoded values of one feature (no copy of the values)."""
        if dtype == "string" and (array.dtype.kind == "S" or array.dtype == object):
            return np.fromiter((len(bytes(item)) for item in array.reshape(-1)), np.int64, n)
        if dtype == "string":
            return np.full(n, array.reshape(n, -1).shape[1] * array.itemsize, dtype=np.int64)
        if dtype == "float32":
            return np.full(n, 4 * size, dtype=np.int64)
        return varints(array.astype(np.int64, copy=False).reshape(n, size))[1].sum(axis=1)

    def _count(self, columns: Mapping[str, Any]) -> int:
        missing = sorted({name for name, _, _ in self._features} - set(columns))
        if missing:
            raise ValueError(f"columns: missing {missing}")
        name, dtype, size = self._features[0]
        first = np.asarray(columns[name])
        return first.shape[0] if dtype == "string" else first.size // size

    def sizes(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Length in bytes of each example's record (``columns`` as for :meth:`encode`; a ``string``
        feature's values may be a broadcast view: only its shape counts)."""
        n = self._count(columns)
        totals = np.zeros(n, dtype=np.int64)
        for name, dtype, size in self._features:
            lengths = self._lengths(dtype, size, np.asarray(columns[name]), n)
            totals += lengths + np.fromiter(map(len, self._heads_of(name, dtype, lengths)), np.int64, n)
        return totals + np.fromiter((len(_field(1, total)) for total in totals.tolist()), np.int64, n)

    @staticmethod
    def _payloads(name: str, dtype: str, size: int, values: Any, n: int) -> tuple[list[Any], np.ndarray]:
        """Each example's encoded values of one feature (bytes-like objects) and their lengths."""
        array = np.asarray(values)
        if dtype == "string" and (array.dtype.kind == "S" or array.dtype == object):
            payloads: list[Any] = [bytes(item) for item in array.reshape(-1)]
            lengths = np.fromiter(map(len, payloads), np.int64, len(payloads))
        elif dtype in ("string", "float32"):  # string: [n, ...] numeric rows, each row's raw bytes
            rows = np.ascontiguousarray(array if dtype == "string" else array.astype(np.float32, copy=False))
            rows = rows.reshape(n, -1).view(np.uint8)
            payloads, lengths = list(rows), np.full(n, rows.shape[1], dtype=np.int64)
        else:
            encoded, value_lengths = varints(array.astype(np.int64, copy=False).reshape(n, size))
            lengths = value_lengths.sum(axis=1)
            ends = np.cumsum(lengths).tolist()
            data = encoded.tobytes()
            payloads = [data[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        if len(payloads) != n:
            raise ValueError(f"feature {name!r}: expected {n} examples, got {len(payloads)}")
        return payloads, lengths

    def encode(self, columns: Mapping[str, Any]) -> list[bytes]:
        """Serialised ``tf.train.Example`` of each example; ``columns[name]`` holds every example's values.

        A ``string`` feature takes ``n`` byte strings or an array ``[n, ...]`` whose rows' raw bytes
        are the strings; numeric features take values ``[n, *shape]``.
        """
        n = self._count(columns)
        pieces: list[Sequence[Any]] = []
        totals = np.zeros(n, dtype=np.int64)
        for name, dtype, size in self._features:
            payloads, lengths = self._payloads(name, dtype, size, columns[name], n)
            heads = self._heads_of(name, dtype, lengths)
            totals += lengths + np.fromiter(map(len, heads), np.int64, n)
            pieces.extend((heads, payloads))
        example_heads = [_field(1, total) for total in totals.tolist()]
        return [b"".join(parts) for parts in zip(example_heads, *pieces, strict=True)]
