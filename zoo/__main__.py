"""``python -m zoo`` is the same as the ``spectrazoo`` command."""

import sys

from zoo.commands.cli import main

sys.exit(main())
