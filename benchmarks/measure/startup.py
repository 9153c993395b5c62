"""Start-up time of the command line and of ``import synthetic_spectra``, as process wall time.

Each command runs ``--repeat`` times in a fresh process (interleaved, so a load change on a shared machine
hits every command alike); the table gives the median and the fastest wall time and the median's ratio to
``python -c pass`` measured in the same run. It also records which heavy modules each process imported.

    nice -n 0 .venv/bin/python benchmarks/measure/startup.py --output benchmarks/results/startup.md
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zoo.checks import OneLineParser, int_argument
from zoo.training.environment import cpu_model

#: Modules whose presence in a process is worth a column (TensorFlow, TFDS and SciPy cost most of a second).
HEAVY_MODULES: tuple[str, ...] = ("tensorflow", "tensorflow_datasets", "keras", "scipy")

#: The check appended to every measured program: prints the heavy modules it ended up importing.
_REPORT = "import sys; print('MODULES', *[m for m in {modules!r} if m in sys.modules])"


def _command(argv: list[str], quiet: bool = False) -> str:
    """A program running ``python -m zoo ARGV`` (the console script's ``main``) in this process."""
    run = f"sys.argv = ['spectrazoo', *{argv!r}]\ntry:\n    runpy.run_module('zoo', run_name='__main__')\n"
    run += "except SystemExit:\n    pass"
    if quiet:
        run = "with contextlib.redirect_stdout(io.StringIO()):\n" + "".join(
            f"    {line}\n" for line in run.split("\n")
        )
    return "import contextlib, io, runpy, sys\n" + run


def cases(out_dir: Path) -> dict[str, str]:
    """Name -> Python program (the ``spectrazoo`` cases run ``python -m zoo`` in-process)."""
    return {
        "python -c pass": "pass",
        "import synthetic_spectra": "import synthetic_spectra",
        "import zoo": "import zoo",
        "spectrazoo --help": _command(["--help"], quiet=True),
        "spectrazoo models": _command(["models"]),
        "spectrazoo generate --config mini": _command(
            ["generate", "--config", "mini", "--out", str(out_dir), "--force", "--no-progress"]
        ),
        # a bad name is reported before TensorFlow is imported; a bad Keras activation only after it
        "spectrazoo benchmark --models nope (error)": _command(
            ["benchmark", "--dataset", "mini", "--models", "nope", "--out", str(out_dir / "b")]
        ),
        "spectrazoo benchmark --fc-activation nope (error)": _command(
            [
                "benchmark",
                "--dataset",
                "mini",
                "--models",
                "cnn2",
                "--fc-activation",
                "nope",
                "--out",
                str(out_dir / "b"),
            ]
        ),
    }


def _time_once(program: str) -> tuple[float, list[str]]:
    code = f"{program}\n{_REPORT.format(modules=HEAVY_MODULES)}"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    elapsed = time.perf_counter() - start
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES"))
    return elapsed, line.split()[1:]


def measure(repeat: int) -> list[tuple[str, float, float, list[str]]]:
    """``(name, median s, fastest s, heavy modules)`` per case, runs interleaved across cases."""
    with tempfile.TemporaryDirectory() as tmp:
        programs = cases(Path(tmp) / "mini")
        times: dict[str, list[float]] = {name: [] for name in programs}
        modules: dict[str, list[str]] = {}
        for program in programs.values():  # one untimed warm-up each: file-system caches
            _time_once(program)
        for _ in range(repeat):
            for name, program in programs.items():
                elapsed, modules[name] = _time_once(program)
                times[name].append(elapsed)
    return [(name, statistics.median(t), min(t), modules[name]) for name, t in times.items()]


def format_markdown(rows: list[tuple[str, float, float, list[str]]], repeat: int, note: str) -> str:
    """The results as a Markdown section (machine, load, table)."""
    baseline = rows[0][1]
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        "# Start-up time of `spectrazoo` and `import synthetic_spectra`",
        "",
        f"- machine: {os.cpu_count()}-core CPU ({cpu_model()}); Python {platform.python_version()}",
        f"- {repeat} runs per command in fresh processes, interleaved; wall time of the whole process",
        f"- load average (1/5/15 min) at the end: {load}",
    ]
    if note:
        lines.append(f"- {note}")
    lines += [
        "",
        "| command | median wall s | fastest s | median / `python -c pass` | heavy modules imported |",
        "|---|---:|---:|---:|---|",
    ]
    for name, median, fastest, modules in rows:
        heavy = ", ".join(modules) or "-"
        lines.append(f"| `{name}` | {median:.3f} | {fastest:.3f} | {median / baseline:.1f}× | {heavy} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and optionally write it to ``--output``."""
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int_argument(1), default=7, help="timed runs per command (default 7)"
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--note", default="", help="a line about the machine's state (e.g. other jobs)")
    args = parser.parse_args(argv)
    if args.output is not None and not args.output.parent.is_dir():
        parser.error(f"--output: the folder {args.output.parent} does not exist")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    text = format_markdown(measure(args.repeat), args.repeat, args.note)
    print(text, end="")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
