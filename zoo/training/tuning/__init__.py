"""Hyper-parameter search over the zoo's toggles with KerasTuner, local or distributed.

:class:`SpectraHyperModel` turns any registered architecture into a ``keras_tuner.HyperModel`` whose search
space (:class:`SearchSpace`) covers the toggles of the study — FC activation, FC dropout, conv dropout,
batch norm — and optionally the FC widths and the learning rate; every dimension can be fixed or narrowed.
Models are built with :func:`zoo.build`, so every architecture of the zoo is tunable.

:func:`run_search` runs a search with the benchmark runner's pieces: the same tf.data pipeline
(:func:`zoo.training.data.load_data`, train and validation splits only), the protocol's ReduceLROnPlateau
and EarlyStopping (:func:`zoo.training.callbacks.protocol_callbacks`), its seeding
(:func:`zoo.training.environment.set_seed`), plus TensorBoard logs with the HParams dashboard. It writes a
trials table (CSV and markdown) and the best hyperparameters as JSON (``spectrazoo benchmark --hparams``
reads it back), then retrains the best configuration with the full protocol through
:func:`zoo.training.runner.run_benchmark`, which evaluates it on the test split — the only place the test
split is used — and exports it with :func:`zoo.export`.

A search is resumable: KerasTuner keeps its state in the project directory, so the same call continues
where it stopped (``overwrite=True`` starts over); an interrupted trial resumes after the last finished
epoch of the training it was in, from per-epoch backups under ``<project>/resume/``. Distributed tuning
uses KerasTuner's chief/worker mode, configured by ``KERASTUNER_TUNER_ID`` (``chief`` for the oracle, any
other id for a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.

The package, by seam: :mod:`~zoo.training.tuning.space` (the search space),
:mod:`~zoo.training.tuning.hypermodel` (the hypermodel and the seeded tuners),
:mod:`~zoo.training.tuning.search` (the search run) and :mod:`~zoo.training.tuning.tables` (the trials
table). Importing it imports Keras and KerasTuner.
"""

from __future__ import annotations

from zoo.training.tuning.hypermodel import TUNERS, SpectraHyperModel, distributed_role
from zoo.training.tuning.search import OBJECTIVES, SearchResult, run_search
from zoo.training.tuning.space import DEFAULT_ACTIVATIONS, Choice, Range, SearchSpace
from zoo.training.tuning.tables import trial_rows, write_trials_table

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "OBJECTIVES",
    "TUNERS",
    "Choice",
    "Range",
    "SearchResult",
    "SearchSpace",
    "SpectraHyperModel",
    "distributed_role",
    "run_search",
    "trial_rows",
    "write_trials_table",
]
