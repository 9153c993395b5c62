"""Land what background trainings wrote in other checkouts: their rows, and the converged search's state.

The campaign (``campaign.py``) and the converged toggle search (``tuning_converged.py``) run from their own
git worktrees at a fixed commit, so that edits here cannot break them. This script copies what they have
written since into this checkout and regenerates the pages made from it:

* every ``*.jsonl`` under the source's ``benchmarks/results/`` (results rows, the exports' fresh-draw and
  perturbed scores, calibration rows, the search's per-execution records): finished lines this checkout's
  file lacks are appended, in the source's order; nothing is removed or rewritten, and a results row for a
  run this checkout already has a row of is left out (and named);
* the other files of ``benchmarks/results/tuning_converged/`` (KerasTuner's state, without checkpoints,
  backups and TensorBoard logs, which are not committed, and without ``analysis.md``, made here), when they
  changed beyond the oracle's bookkeeping;
* then ``study_table.py --write`` and ``converged_table.py --write`` after new rows or scores, and
  ``tuning_converged.py --analyse`` after new search state; with ``--commit``, one commit of the results and
  the generated pages whose message lists the new rows. ``--commit`` refuses to start while those paths
  have uncommitted changes of yours.

Usage:  python benchmarks/experiments/land_rows.py --from /work/campaign --from /work/tuning [--commit]
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = pathlib.Path("benchmarks/results")
TUNING = RESULTS / "tuning_converged"
RESULTS_FILE = "results.jsonl"
#: Files of the search's folder that stay on the machine that ran it (see .gitignore).
UNCOMMITTED_PARTS = frozenset({"resume", "tensorboard"})
UNCOMMITTED_SUFFIXES = (".h5", ".keras")
#: Made here from the records by ``tuning_converged.py --analyse`` (the searching checkout's may be stale).
GENERATED = frozenset({TUNING / "analysis.md"})
#: KerasTuner rewrites it on every start; alone it is no news.
BOOKKEEPING = "oracle.json"
#: What a landing may change (and commits).
LANDED_PATHS = ("README.md", "docs/results.md", "docs/tuning.md", str(RESULTS))


@dataclasses.dataclass
class Landing:
    """What a landing writes: lines appended per file and files copied, both by path relative to the
    checkout, and the run ids whose source row was left out because this checkout has a row for them."""

    appends: dict[pathlib.Path, list[str]] = dataclasses.field(default_factory=dict)
    copies: dict[pathlib.Path, pathlib.Path] = dataclasses.field(default_factory=dict)
    kept: list[str] = dataclasses.field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """The new results rows, in landing order."""
        return [
            json.loads(line)
            for relative, lines in self.appends.items()
            if relative.name == RESULTS_FILE and not relative.is_relative_to(TUNING)
            for line in lines
        ]

    @property
    def rows_landed(self) -> bool:
        return any(not relative.is_relative_to(TUNING) for relative in self.appends)

    @property
    def search_landed(self) -> bool:
        return any(relative.is_relative_to(TUNING) for relative in [*self.appends, *self.copies])


def _landed(relative: pathlib.Path) -> bool:
    """Whether a file (its path in the checkout) lands: not a backup, checkpoint, TensorBoard log or a page
    made here."""
    return (
        not UNCOMMITTED_PARTS & set(relative.parts)
        and "runs" not in relative.parts
        and not relative.name.endswith(UNCOMMITTED_SUFFIXES)
        and relative not in GENERATED
    )


def _lines(path: pathlib.Path, *, finished_only: bool = False) -> list[str]:
    """The non-empty lines of a file; with ``finished_only``, without a last line still being written (one
    with no newline yet, in a file another process appends to)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    return [line for line in (lines[:-1] if finished_only else lines) if line.strip()]


def _run_id(line: str, where: pathlib.Path) -> str | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"{where}: a line is not JSON: {line[:60]!r}") from None
    return record.get("run_id") if isinstance(record, dict) else None


def _written(source: pathlib.Path) -> set[pathlib.Path] | None:
    """The files under ``benchmarks/results`` that a git checkout has changed or added since its commit (what
    its trainings wrote; its other files are that commit's and may be older than this checkout's), or
    ``None`` for a folder that is not a git checkout (all of its files count)."""
    top = subprocess.run(["git", "-C", str(source), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if top.returncode != 0 or pathlib.Path(top.stdout.strip()).resolve() != source.resolve():
        return None
    return {pathlib.Path(path) for path in _changed(source, [str(RESULTS)])}


def _changed(checkout: pathlib.Path, paths: Sequence[str]) -> list[str]:
    """The files under ``paths`` that git checkout ``checkout`` has changed, added or left untracked, as paths
    relative to its top (a rename or copy gives its new path)."""
    status = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    entries = iter(status.split("\0"))
    changed = []
    for entry in entries:
        if len(entry) > 3:
            changed.append(entry[3:])
            if entry[0] in "RC":  # -z puts the rename's or copy's old path in the next entry
                next(entries, None)
    return changed


def plan_landing(sources: Sequence[pathlib.Path], target: pathlib.Path) -> Landing:
    """What landing ``sources`` in ``target`` would write, checked before anything is written:

    Only the files a source has written count (for a git checkout: those changed or added since its commit):

    * the lines of every ``*.jsonl`` under a source's ``benchmarks/results`` that ``target``'s twin lacks
      (each once, in the source's order); a results row whose run id ``target`` already has is kept out;
    * the converged search's other committed files that are new or differ, unless only the oracle's
      bookkeeping would change.

    Raises:
        ValueError: one line, for a line that is not JSON.
    """
    landing = Landing()
    have: dict[pathlib.Path, set[str]] = {}
    run_ids: dict[pathlib.Path, set[str | None]] = {}
    for source in sources:
        written = _written(source)
        for path in sorted((source / RESULTS).rglob("*")):
            relative = path.relative_to(source)
            if (
                not path.is_file()
                or not _landed(relative)
                or (written is not None and relative not in written)
            ):
                continue
            if path.suffix == ".jsonl":
                if relative not in have:
                    ours = _lines(target / relative)
                    have[relative] = set(ours)
                    run_ids[relative] = {_run_id(line, target / relative) for line in ours}
                for line in _lines(path, finished_only=True):
                    if line in have[relative]:
                        continue
                    run_id = _run_id(line, path)
                    if relative.name == RESULTS_FILE and run_id is not None and run_id in run_ids[relative]:
                        landing.kept.append(run_id)
                        continue
                    have[relative].add(line)
                    run_ids[relative].add(run_id)
                    landing.appends.setdefault(relative, []).append(line)
            elif relative.is_relative_to(TUNING):
                ours = target / relative
                if not ours.exists() or not filecmp.cmp(path, ours, shallow=False):
                    landing.copies[relative] = path
    search_news = [*landing.copies, *(r for r in landing.appends if r.is_relative_to(TUNING))]
    if all(relative.name == BOOKKEEPING for relative in search_news):
        landing.copies.clear()
    return landing


def apply_landing(landing: Landing, target: pathlib.Path) -> None:
    """Append the landing's lines (after a newline where a file lacks its last one) and copy its files."""
    for relative, lines in landing.appends.items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        old = destination.read_bytes() if destination.exists() else b""
        with destination.open("a", encoding="utf-8") as handle:
            if old and not old.endswith(b"\n"):
                handle.write("\n")
            handle.writelines(line + "\n" for line in lines)
    for relative, path in landing.copies.items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def describe(row: Mapping[str, Any]) -> str:
    """One results row in a commit message: run, test accuracy, errors, validation, epochs, stop, precision,
    time and hardware."""
    return (
        f"{row['run_id']} {row['test_accuracy']:.2%} ({row['misclassified']}/{row['test_size']} wrong, "
        f"val {row['val_accuracy']:.2%}, {row['epochs_run']} epochs, {row['stop_reason']}, "
        f"{row.get('precision', 'float32')}, {row['wall_time_s']:.0f} s, "
        f"{row.get('hardware', 'hardware unknown')})"
    )


def _run(command: Sequence[str]) -> None:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "datasets")]))
    subprocess.run(command, cwd=ROOT, env=environment, check=True, stdout=subprocess.DEVNULL)


def regenerate(rows_landed: bool, search_landed: bool) -> None:
    """Rewrite the pages made from what landed."""
    scripts = ROOT / "benchmarks" / "experiments"
    if rows_landed:
        _run([sys.executable, str(scripts / "study_table.py"), "--write"])
        _run([sys.executable, str(scripts / "converged_table.py"), "--write"])
    if search_landed:
        _run([sys.executable, str(scripts / "tuning_converged.py"), "--analyse"])


def commit_message(landing: Landing, trials: int) -> str:
    """The landing's commit message: its new results rows, else the scores' files, else the search."""
    if rows := landing.rows():
        return "Rows at the protocol's end: " + "; ".join(describe(row) for row in rows)
    if landing.rows_landed:
        scored = {
            relative: lines
            for relative, lines in landing.appends.items()
            if not relative.is_relative_to(TUNING)
        }
        run_ids = dict.fromkeys(
            json.loads(line).get("run_id", "?") for lines in scored.values() for line in lines
        )
        files = ", ".join(sorted(relative.name for relative in scored))
        return f"Scores of finished runs ({files}): " + ", ".join(map(str, run_ids))
    return (
        "Rows at the protocol's end: tuning_converged: KerasTuner state and analysis "
        f"({trials} trial(s) started)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from zoo.checks import OneLineParser  # zoo is imported late here

    parser = OneLineParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--from", dest="sources", action="append", required=True, metavar="CHECKOUT",
        help="a checkout whose benchmarks/results holds new rows or search state (repeatable)",
    )  # fmt: skip
    parser.add_argument("--commit", action="store_true", help="commit the results and regenerated pages")
    args = parser.parse_args(argv)
    sources = [pathlib.Path(source).resolve() for source in args.sources]
    for source in sources:  # every input checked before anything is written
        if not (source / RESULTS).is_dir():
            parser.exit(2, f"{parser.prog}: error: --from: {source} has no {RESULTS} folder\n")
        if source == ROOT.resolve():
            parser.exit(2, f"{parser.prog}: error: --from: {source} is this checkout\n")
    dirty = _dirty(LANDED_PATHS) if args.commit else []
    if dirty:
        named = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        parser.exit(2, f"{parser.prog}: error: --commit: uncommitted changes in {named}; commit or stash "
                       "them first (a landing commits these paths)\n")  # fmt: skip
    try:
        landing = plan_landing(sources, ROOT)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    for run_id in landing.kept:
        print(f"kept this checkout's row of {run_id} (a source has another one for it)")
    if not landing.appends and not landing.copies:
        print("nothing new")
        return 0
    apply_landing(landing, ROOT)
    try:
        regenerate(landing.rows_landed, landing.search_landed)
    except subprocess.CalledProcessError as exc:
        print(f"{parser.prog}: error: {' '.join(map(str, exc.cmd[1:]))} failed (exit {exc.returncode}); "
              "the landed lines are in place: fix it and run it again", file=sys.stderr)  # fmt: skip
        return 1
    message = commit_message(landing, len(list((ROOT / TUNING / "project").glob("trial_*"))))
    if args.commit:
        subprocess.run(["git", "add", "--", *LANDED_PATHS], cwd=ROOT, check=True)
        subprocess.run(["git", "commit", "-q", "-m", message, "--", *LANDED_PATHS], cwd=ROOT, check=True)
    print(message)
    return 0


def _dirty(paths: Sequence[str]) -> list[str]:
    """Which files under ``paths`` have uncommitted changes or are untracked in this checkout."""
    return sorted(set(_changed(ROOT, paths)))


if __name__ == "__main__":
    sys.exit(main())
