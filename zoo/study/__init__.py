"""The study's analysis: the markdown report of results files (:mod:`~zoo.study.report` with its rows,
tables, failure-mode section and plots), the failure-mode analysis of misclassified spectra
(:mod:`~zoo.study.failure_modes`), the paper's published figures (:mod:`~zoo.study.paper`), the
generalisation panel of trained exports (:mod:`~zoo.study.panel`), the Bayes ceiling of a split
(:mod:`~zoo.study.ceiling`), calibration and unknown detection of trained models with its report
(:mod:`~zoo.study.confidence`, :mod:`~zoo.study.confidence_report`) and the generated tables of the README
and the docs (:mod:`~zoo.study.blocks`).

May import: the core (:mod:`zoo.errors`, :mod:`zoo.checks`, ...), the library (:mod:`zoo.models`,
:mod:`zoo.inference` to load exports) and :mod:`synthetic_spectra`; it reads the training's results rows as
files, so it never imports :mod:`zoo.training`, nor :mod:`zoo.commands`.
"""
