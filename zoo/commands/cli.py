"""The ``spectrazoo`` command line.

Each sub-command lives in its own module under :mod:`zoo.commands` and exposes
``register(subparsers)``; the module adds its parser and sets ``handler`` to a
function ``handler(args) -> int``. Heavy imports (TensorFlow, Keras) happen inside
the handlers so that ``spectrazoo --help`` stays fast. A command that neither trains nor loads a model
sets ``needs_tensorflow=False`` as a parser default; for the others :func:`main` imports TensorFlow
first, with its start-up log lines kept off stderr.

Errors meant for people raise :class:`zoo.errors.UserError` (or ``ValueError`` /
``FileNotFoundError`` from validation code); :func:`main` prints them as one line on
stderr and exits with status 2 — no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from zoo.checks import OneLineParser
from zoo.errors import UserError
from zoo.tfquiet import import_tensorflow_quietly

#: Sub-command name -> module implementing it (imported on demand, in this order in --help).
COMMAND_MODULES: tuple[str, ...] = (
    "zoo.commands.generate",
    "zoo.commands.models",
    "zoo.commands.benchmark",
    "zoo.commands.report",
    "zoo.commands.predict",
    "zoo.commands.preset",
    "zoo.commands.demo",
    "zoo.commands.tune",
)


#: The longest error message printed (a message never echoes an unbounded value).
MAX_MESSAGE = 400
#: Modules of the ``[tf]`` extra: a command missing one says what to install.
TENSORFLOW_MODULES = frozenset({"tensorflow", "tensorflow_datasets", "keras_tuner", "tensorboard", "sklearn"})


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (``importlib.metadata`` costs start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        sys.stdout.write(f"{parser.prog} {package_version()}\n")
        parser.exit()


def package_version() -> str:
    """The installed ``spectrazoo`` distribution's version ("unknown" when run from an uninstalled tree)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("spectrazoo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = OneLineParser(
        prog="spectrazoo",
        description="Synthetic spectra datasets and a Keras model zoo for 1-D spectroscopy.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not installed yet
            if exc.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # no command: the usage with the command list, as a usage error
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "needs_tensorflow", True):
        import_tensorflow_quietly()
    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "…"
        sys.stderr.write(f"spectrazoo {args.command}: error: {message}\n")
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TENSORFLOW_MODULES:
            raise
        sys.stderr.write(
            f"spectrazoo {args.command}: error: this command needs {exc.name.split('.')[0]}, which is not "
            "installed: pip install 'spectrazoo[tf]'\n"
        )
        return 2
    except BrokenPipeError:  # `spectrazoo models | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process ended by a closed pipe
    except KeyboardInterrupt:
        sys.stderr.write("spectrazoo: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
