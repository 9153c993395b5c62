"""Serving trained models, part of the library: :mod:`~zoo.inference.export` (SavedModel + ``.keras`` +
metadata on raw spectra), :mod:`~zoo.inference.predict` (``zoo.load(path).classify(...)``) and
:mod:`~zoo.inference.spectra_io` (reading ``.npy``/``.npz``/text spectra files, resampling).

May import: :mod:`zoo.models`, :mod:`zoo.errors`, :mod:`zoo.checks`, :mod:`synthetic_spectra` (dataset
configs, for the metadata), Keras and TensorFlow (on demand). Never :mod:`zoo.training`, :mod:`zoo.study`
or :mod:`zoo.commands`.
"""
