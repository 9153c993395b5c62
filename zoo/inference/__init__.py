"""Serving trained models, part of the library: :mod:`~zoo.inference.export` (SavedModel on raw spectra +
metadata), :mod:`~zoo.inference.predict` (``zoo.load(path).classify(...)``, ``zoo.load_keras_model``) and
:mod:`~zoo.inference.spectra_io` (reading ``.npy``/``.npz``/text spectra files, resampling).

May import: the core (:mod:`zoo.errors`, :mod:`zoo.checks`, ...), :mod:`zoo.models`, :mod:`synthetic_spectra`
(dataset configs, for the metadata), Keras and TensorFlow (on demand). Never :mod:`zoo.training`,
:mod:`zoo.study` or :mod:`zoo.commands`.
"""
