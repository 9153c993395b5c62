"""Importing TensorFlow without its C++ start-up log lines on stderr, for every entry point whose stderr is
for errors (the ``spectrazoo`` commands, the benchmark scripts).

Part of the core (like :mod:`zoo.errors`): it imports nothing of the package, so any room may use it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up log lines kept off stderr (the CLI's stderr is for errors).

    ``TF_CPP_MIN_LOG_LEVEL`` does not silence what TensorFlow's C++ runtime logs while it loads (on some
    CPUs a oneDNN notice, preceded by an absl warning), so file descriptor 2 is pointed at a temporary
    file for the import; if the import fails, what was captured is written out before the error.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
