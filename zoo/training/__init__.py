"""The study's training protocol: the run plan and protocol (:mod:`~zoo.training.protocol`), the data of a
run (:mod:`~zoo.training.data`, TFDS + tf.data or the NumPy generator through
:mod:`~zoo.training.array_data`), the machine and strategies (:mod:`~zoo.training.environment`), the
callbacks with backup/resume (:mod:`~zoo.training.callbacks`), the multi-worker loop
(:mod:`~zoo.training.distributed`), mixed precision (:mod:`~zoo.training.precision`), the results file
(:mod:`~zoo.training.results`), the runner that ties them together (:mod:`~zoo.training.runner`) and the
KerasTuner search (:mod:`zoo.training.tuning`).

May import: the core (:mod:`zoo.errors`, :mod:`zoo.paths`, :mod:`zoo.locks`, ...), the library
(:mod:`zoo.models`, :mod:`zoo.inference`) and :mod:`synthetic_spectra`. Never :mod:`zoo.study` or
:mod:`zoo.commands`. Dataset names are resolved to :class:`synthetic_spectra.DatasetConfig` objects at the
public entry points (:func:`plan_runs`, :func:`run_benchmark`, :func:`run_search`); the functions below them
take the object.
"""
