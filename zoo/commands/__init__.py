"""The ``spectrazoo`` command line: :mod:`~zoo.commands.cli` (the parser and ``main``) and one module per
sub-command (``generate``, ``models``, ``benchmark``, ``report``, ``predict``, ``demo``, ``tune``).

The top room: it may import everything below it (:mod:`zoo.study`, :mod:`zoo.training`, the library and
:mod:`synthetic_spectra`), and nothing in the package imports it (benchmark scripts may). A command resolves
its ``--dataset`` to a config object once and passes the object down.
"""
