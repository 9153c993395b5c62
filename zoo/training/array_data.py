"""In-memory batches for backends without tf.data (JAX, PyTorch): a seeded, resumable PyDataset."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np


class ShuffledArrayBatches(keras.utils.PyDataset):
    """Batches of ``(x, y)`` arrays; with a ``seed``, epoch ``e`` uses a permutation keyed on ``(seed, e)``.

    The order of an epoch depends only on the seed and the epoch number, so a run resumed at epoch
    ``initial_epoch`` sees the batches the uninterrupted run saw. Without a seed the order is fixed.
    With ``render``, epoch ``e``'s inputs are ``render(e)`` (an augmented epoch) instead of ``x``.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        *,
        seed: int | None = None,
        initial_epoch: int = 0,
        render: Callable[[int], np.ndarray] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(x) != len(y):
            raise ValueError(f"x/y: different lengths {len(x)} and {len(y)}")
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.render = render
        self.epoch = initial_epoch
        self._start_epoch()

    def _start_epoch(self) -> None:
        self._order = self._permutation()
        if self.render is not None:
            self.x = self.render(self.epoch)

    def _permutation(self) -> np.ndarray:
        if self.seed is None:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._start_epoch()
