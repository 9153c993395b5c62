"""The study's analysis: the markdown report of results files (:mod:`~zoo.study.report` with its rows,
tables, failure-mode section and plots), the failure-mode analysis of misclassified spectra
(:mod:`~zoo.study.failure_modes`), the paper's published figures (:mod:`~zoo.study.paper`) and FLOP counting
(:mod:`~zoo.study.flops`).

May import: the library (:mod:`zoo.models`), :mod:`zoo.errors`, :mod:`zoo.checks` and
:mod:`synthetic_spectra`; it reads the training's results rows as files, so it never imports
:mod:`zoo.training`, nor :mod:`zoo.commands`.
"""
