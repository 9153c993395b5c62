"""The ``spectrazoo`` command line: :mod:`~zoo.commands.cli` (the parser and ``main``) and one module per
sub-command (``generate``, ``models``, ``benchmark``, ``report``, ``predict``, ``preset``, ``demo``,
``tune``).

The top room. May import: everything below it (:mod:`zoo.study`, :mod:`zoo.training`, the library
(:mod:`zoo.models`, :mod:`zoo.inference`), the core and :mod:`synthetic_spectra`). Nothing in the package
imports it but ``python -m zoo`` (:mod:`zoo.__main__`), and no benchmark script does. A command resolves
its ``--dataset`` to a config object once and passes the object down.
"""
