"""Land what background trainings wrote in other checkouts: their rows, and the converged search's state.

The campaign (``campaign.py``) and the converged toggle search (``tuning_converged.py``) run from their own
git worktrees at a fixed commit, so that edits here cannot break them. This script copies what they have
written since into this checkout and regenerates the pages made from it:

* every ``*.jsonl`` under the source's ``benchmarks/results/`` (results rows, the exports' fresh-draw and
  perturbed scores, calibration rows): lines this checkout's file lacks are appended, in the source's order
  (nothing is removed or rewritten);
* ``benchmarks/results/tuning_converged/`` (KerasTuner's state and the per-execution records, without the
  checkpoints, backups and TensorBoard logs, which are not committed), when it changed beyond the oracle's
  bookkeeping;
* then ``study_table.py --write`` and ``converged_table.py --write`` after new rows, and
  ``tuning_converged.py --analyse`` after new search state; with ``--commit``, one commit of the results and
  the generated pages whose message lists the new rows.

Usage:  python benchmarks/experiments/land_rows.py --from /work/campaign --from /work/tuning [--commit]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = pathlib.Path("benchmarks/results")
TUNING = RESULTS / "tuning_converged"
#: Files of the search's folder that stay on the machine that ran it (see .gitignore).
UNCOMMITTED_PARTS = frozenset({"resume", "tensorboard"})
UNCOMMITTED_SUFFIXES = (".h5", ".keras")
#: Made here from the records by ``tuning_converged.py --analyse`` (the searching checkout's may be stale).
GENERATED = frozenset({"analysis.md"})
#: KerasTuner rewrites it on every start; alone it is no news.
BOOKKEEPING = "oracle.json"
#: What a landing may change (and commits).
LANDED_PATHS = ("README.md", "docs/results.md", "docs/tuning.md", str(RESULTS))


def merge_rows(source: pathlib.Path, target: pathlib.Path) -> dict[pathlib.Path, list[str]]:
    """Append to each ``*.jsonl`` under ``target/benchmarks/results`` the lines of its twin under ``source``
    that it lacks (files only the source has are created); return the appended lines per relative path.
    The search's own records are left to :func:`copy_search_state`; TensorBoard run folders are skipped."""
    appended: dict[pathlib.Path, list[str]] = {}
    for path in sorted((source / RESULTS).rglob("*.jsonl")):
        relative = path.relative_to(source)
        if relative.is_relative_to(TUNING) or "runs" in relative.parts:
            continue
        destination = target / relative
        have = set(destination.read_text(encoding="utf-8").splitlines()) if destination.exists() else set()
        new = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        new = [line for line in dict.fromkeys(new) if line not in have]
        if not new:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("a", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in new)
        appended[relative] = new
    return appended


def _landed(relative: pathlib.Path) -> bool:
    return (
        not UNCOMMITTED_PARTS & set(relative.parts)
        and not relative.name.endswith(UNCOMMITTED_SUFFIXES)
        and relative.as_posix() not in GENERATED
    )


def _search_files(folder: pathlib.Path) -> dict[pathlib.Path, pathlib.Path]:
    if not folder.is_dir():
        return {}
    files = (path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder): path for path in files if _landed(path.relative_to(folder))}


def copy_search_state(source: pathlib.Path, target: pathlib.Path) -> bool:
    """Copy into ``target``'s converged-search folder the committed records of ``source``'s that are new or
    differ, when they differ in more than the oracle's bookkeeping (nothing is deleted); return whether
    anything was copied."""
    theirs, ours = _search_files(source / TUNING), _search_files(target / TUNING)
    changed = {
        relative
        for relative, path in theirs.items()
        if relative not in ours or not filecmp.cmp(path, ours[relative], shallow=False)
    }
    if not {relative for relative in changed if relative.name != BOOKKEEPING}:
        return False
    for relative in changed:
        destination = target / TUNING / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(theirs[relative], destination)
    return True


def describe(row: dict) -> str:
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


def commit_message(rows: Sequence[dict], trials: int | None) -> str:
    """The landing's commit message: its new results rows, else the search's state."""
    if rows:
        return "Rows at the protocol's end: " + "; ".join(describe(row) for row in rows)
    return (
        "Rows at the protocol's end: tuning_converged: KerasTuner state and analysis "
        f"({trials} trial(s) started)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
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
    rows: list[dict] = []
    search_landed = False
    for source in sources:
        for relative, lines in merge_rows(source, ROOT).items():
            if relative.name == "results.jsonl":
                rows += [json.loads(line) for line in lines]
        search_landed |= copy_search_state(source, ROOT)
    if not rows and not search_landed:
        print("nothing new")
        return 0
    regenerate(bool(rows), search_landed)
    trials = len(list((ROOT / TUNING / "project").glob("trial_*")))
    message = commit_message(rows, trials)
    if args.commit:
        status = ["git", "status", "--porcelain", "--", *LANDED_PATHS]
        if not subprocess.run(status, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip():
            print("nothing new to commit (only files git ignores changed)")
            return 0
        subprocess.run(["git", "add", "--", *LANDED_PATHS], cwd=ROOT, check=True)
        subprocess.run(["git", "commit", "-q", "-m", message, "--", *LANDED_PATHS], cwd=ROOT, check=True)
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
