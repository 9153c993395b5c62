"""``python -m zoo`` is the same as the ``spectrazoo`` command."""

import sys

from zoo.cli import main

sys.exit(main())
