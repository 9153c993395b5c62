"""The study's results as the paper reports them: every setup summarised over its seeds, every claim from
medians, with the seeds paired across the two sides of a comparison.

A *setup* is a (dataset, model, FC variant). Its rows are the study's float32 runs (one per seed); each row
gives up to four figures: the test split (the paper's figure), the validation split, and — where the run's
export was scored on them — fresh in-distribution spectra (the training and validation splits of the same
classes drawn with other seeds) and the generalisation panel's perturbed sets (noise, backgrounds, other
peak shapes, whole-pattern shifts; the mean over the sets, and per group).

A claim compares setups by their medians and counts in how many seeds present on both sides the direction
holds (both sides of seed ``k`` share their data and initial seed).

A claim stays *open* until both sides have :data:`REQUIRED_SEEDS` seeds: one seed cannot confirm or refute
a median of five.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zoo.study import paper
from zoo.study.tables import plural, table

#: Seeds a setup needs before a claim about its median is decided (the paper trained five).
REQUIRED_SEEDS = len(paper.SEEDS)
#: The figures of a row, by name: the row's own (``test``, ``val``) or an export's scores (the others).
METRICS: dict[str, str] = {
    "test": "test split",
    "val": "validation split",
    "fresh": "fresh draws",
    "perturbed": "perturbed sets",
}
#: The perturbed sets' groups (:mod:`zoo.study.panel`), each also a metric of its own (mean over its sets).
PERTURBED_GROUPS: tuple[str, ...] = ("noise", "background", "peak shape", "shift")
#: Row keys of the row's own metrics.
_ROW_KEYS = {"test": "test_accuracy", "val": "val_accuracy"}

SetupKey = tuple[str, str, str]


def _median_range(values: Sequence[float], digits: int) -> str:
    """``median (min–max)`` of ``values`` with ``digits`` decimals; the value alone for one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def costed_runs(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[SetupKey, str], list[Mapping[str, Any]]]:
    """The rows that recorded their CPU time (``cpu_time_s``), by setup and CPU (:func:`cpu_label`)."""
    grouped: dict[tuple[SetupKey, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("cpu_time_s"):
            key = (row["dataset"], row["model"], row["variant"])
            grouped.setdefault((key, cpu_label(row)), []).append(row)
    return grouped


@dataclasses.dataclass(frozen=True)
class Setup:
    """The rows of one setup, by seed, with its exports' scores (metric → seed → accuracy, a fraction)
    where they were measured."""

    dataset: str
    model: str
    variant: str
    rows: tuple[Mapping[str, Any], ...]
    scores: Mapping[str, Mapping[int, float]] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> SetupKey:
        """``(dataset, model, variant)``."""
        return (self.dataset, self.model, self.variant)

    @property
    def seeds(self) -> list[int]:
        """The seeds run, in order."""
        return [row["seed"] for row in self.rows]

    def values(self, metric: str) -> dict[int, float]:
        """Seed → accuracy in % on ``metric`` (``test``, ``val``, or a score such as ``fresh``,
        ``perturbed`` or a perturbed group; seeds without it left out)."""
        if metric in _ROW_KEYS:
            return {row["seed"]: 100 * row[_ROW_KEYS[metric]] for row in self.rows}
        return {seed: 100 * value for seed, value in self.scores.get(metric, {}).items()}

    def median(self, metric: str) -> float | None:
        """Median over the seeds (``None`` where no seed has the figure)."""
        found = list(self.values(metric).values())
        return statistics.median(found) if found else None

    def spread(self, metric: str) -> str:
        """``median (min–max)`` in %, or ``–``."""
        found = list(self.values(metric).values())
        return _median_range(found, 2) if found else "–"

    @property
    def complete(self) -> bool:
        """True once the setup has :data:`REQUIRED_SEEDS` seeds."""
        return len(set(self.seeds)) >= REQUIRED_SEEDS

    @property
    def precisions(self) -> set[str]:
        """The training precisions of its rows."""
        return {row.get("precision", "float32") for row in self.rows}

    @property
    def cpus(self) -> set[str]:
        """The CPUs its rows trained on (model name and kernel-relevant flags where recorded)."""
        return {cpu_label(row) for row in self.rows}


def cpu_label(row: Mapping[str, Any]) -> str:
    """Short CPU label of a row: model name plus the AVX-512/bfloat16/AMX flags ("flags not recorded" when
    the row has none)."""
    cpu = row.get("cpu") or {}
    name = cpu.get("model_name") or row.get("hardware", "?")
    flags = cpu.get("flags")
    if flags is None:
        return f"{name} (flags not recorded)"
    shown = [flag for flag in flags if flag in ("AVX-512F", "AVX512_BF16", "AMX")]
    return f"{name} ({' '.join(shown) or 'AVX2'})"


def group_setups(
    rows: Iterable[Mapping[str, Any]], scores: Mapping[str, Mapping[str, float]] | None = None
) -> dict[SetupKey, Setup]:
    """Rows by setup in the study's model order; ``scores`` maps a metric (``fresh``, ``perturbed``, a
    perturbed group) to run id → accuracy."""
    scores = scores or {}
    grouped: dict[SetupKey, list[Mapping[str, Any]]] = {}
    for row in rows:
        group = grouped.setdefault((row["dataset"], row["model"], row["variant"]), [])
        twin = next((other for other in group if other["seed"] == row["seed"]), None)
        if twin is not None:  # one run per seed: a second would silently replace the first in a median
            raise ValueError(f"{row['run_id']}: seed {row['seed']} recorded twice ({twin['run_id']} too)")
        group.append(row)
    order = {name: i for i, name in enumerate(paper.MODEL_ORDER)}

    def position(key: SetupKey) -> tuple:
        dataset, model, variant = key
        datasets = paper.DATASET_ORDER
        return (datasets.index(dataset) if dataset in datasets else 9, order.get(model, 99), variant)

    setups = {}
    for key in sorted(grouped, key=position):
        runs = tuple(sorted(grouped[key], key=lambda r: r["seed"]))
        by_seed = {
            metric: {r["seed"]: found[r["run_id"]] for r in runs if r["run_id"] in found}
            for metric, found in scores.items()
        }
        setups[key] = Setup(*key, rows=runs, scores={m: v for m, v in by_seed.items() if v})
    return setups


def ablation_variant(model: str) -> str:
    """The FC variant a model of the ablation study is compared in: :data:`paper.ABLATION_VARIANT` for
    the models with a choice of FC activation, the published default for the others."""
    return paper.ABLATION_VARIANT if model in ("cnn6", "vgg", "cnn_bn") else "default"


def paper_figure(key: SetupKey) -> float | None:
    """The paper's median test accuracy (%) for a setup, where it states one (the ablation study)."""
    dataset, model, variant = key
    if dataset != paper.ABLATION_DATASET:
        return None
    for pair in paper.ABLATION_PAIRS:
        for name, median in ((pair.original, pair.median_original), (pair.modified, pair.median_modified)):
            if name == model and variant == ablation_variant(name):
                return median
    return None


def attainable(percent: float, test_size: int) -> bool:
    """Whether ``percent`` (2 decimals) is ``k / test_size`` for some whole ``k``: a median of an odd number
    of runs on that test split must be."""
    return any(abs(100 * k / test_size - percent) < 0.006 for k in range(test_size + 1))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``better`` against ``worse`` as a claim states it (the claim: ``better`` is ahead)."""

    worse: Setup
    better: Setup

    def _shared(self, metric: str) -> tuple[dict[int, float], dict[int, float], list[int]]:
        """Both sides' values of ``metric`` by seed, and the seeds both have."""
        low, high = self.worse.values(metric), self.better.values(metric)
        return low, high, sorted(set(low) & set(high))

    def paired(self, metric: str) -> tuple[int, int]:
        """(seeds where the claimed direction holds, seeds on both sides) for ``metric``."""
        low, high, common = self._shared(metric)
        return sum(high[s] > low[s] for s in common), len(common)

    def difference(self, metric: str) -> float | None:
        """Median of ``better`` minus median of ``worse`` in points over the seeds both sides have for
        ``metric`` (``None`` if they share none): like for like, as :meth:`paired` counts them."""
        low, high, common = self._shared(metric)
        if not common:
            return None
        return statistics.median(high[s] for s in common) - statistics.median(low[s] for s in common)

    @property
    def decided(self) -> bool:
        """Both sides have five seeds in the paper's precision."""
        return all(s.complete and s.precisions == {paper.PAPER_PRECISION} for s in (self.worse, self.better))

    def describe(self, metric: str) -> str:
        """``+3.09 points, 4 of 5 seeds`` (or ``–``)."""
        difference = self.difference(metric)
        if difference is None:
            return "–"
        holds, common = self.paired(metric)
        return f"{difference:+.2f} points, {holds} of {common} seeds"

    def figures(self) -> str:
        """:meth:`describe` for every metric, named: ``test split +3.09 points, 4 of 5 seeds; ...``."""
        return "; ".join(f"{METRICS[m]} {self.describe(m)}" for m in METRICS)

    def verdict(self) -> str:
        """``holds``/``fails`` by the test-split medians once decided, else ``open``."""
        if not self.decided:
            return "open"
        difference = self.difference("test")
        return "holds" if difference is not None and difference > 0 else "fails"


def _provenance(setups: Iterable[Setup]) -> str:
    setups = list(setups)
    precisions = sorted(set().union(*(s.precisions for s in setups)))
    cpus = sorted(set().union(*(s.cpus for s in setups)))
    return f"{'/'.join(precisions)}; {', '.join(cpus)}"


def _sides(setup: Setup) -> str:
    return f"{setup.model} {setup.variant} {setup.spread('test')} % ({plural(len(setup.seeds), 'seed')})"


def _comparison_line(label: str, comparison: Comparison, paper_text: str) -> str:
    provenance = _provenance((comparison.worse, comparison.better))
    return (
        f"- {label}: {_sides(comparison.better)} vs {_sides(comparison.worse)}; {comparison.figures()}; "
        f"paper {paper_text}; **{comparison.verdict()}** ({provenance})."
    )


def _published_original_line(
    setups: Mapping[SetupKey, Setup], pair: paper.AblationPair, modified: Setup | None, theirs: str
) -> list[str]:
    """For an ablation whose original was published with another FC activation than the one compared
    (:data:`paper.ABLATION_VARIANT`, fixed before the rows: it changes only the named component), the same
    comparison with the published original, so that neither reading is chosen after seeing the rows."""
    variant = paper.published_variant(pair.original)
    if variant in (None, "default", paper.ABLATION_VARIANT):  # not a published model, or no FC to differ
        return []
    label = f"with the published original ({pair.original} {variant} FC) instead"
    original = setups.get((paper.CHALLENGE_DATASET, pair.original, variant))
    if original is None or modified is None:
        return [f"  - {label}: open (a side has no row yet)."]
    return ["  " + _comparison_line(label, Comparison(original, modified), theirs)]


def claims(setups: Mapping[SetupKey, Setup]) -> list[str]:
    """The paper's `challenge` and `benchmark` claims from the setups' medians, one line per comparison."""
    lines = [
        f"Each claim compares medians over seeds (a claim is *open* until both sides have {REQUIRED_SEEDS} "
        f"{paper.PAPER_PRECISION} seeds): the difference of medians in points on the test split, the "
        "validation split, fresh draws and the perturbed sets (mean over the sets), each over the seeds both "
        "sides have for that figure, and in how many of those seeds the direction holds (a run trained "
        "where its export was not kept has no fresh-draw or perturbed score). The verdict reads the test "
        "split, as the paper did; the other figures say whether it carries over.",
        "",
        "**ReLU FC beats linear FC for every model** (`challenge`):",
        "",
    ]
    dataset = paper.CHALLENGE_DATASET
    for model in paper.MODEL_ORDER:
        relu, linear = setups.get((dataset, model, "relu")), setups.get((dataset, model, "linear"))
        if relu and linear:
            lines.append(_comparison_line(model, Comparison(linear, relu), "ReLU ahead for every model"))
    if lines[-1] == "":
        lines.append("- open: no model has run both ways yet.")
    lines += ["", "**The five ablations** (`challenge`, original → modified):", ""]
    for pair in paper.ABLATION_PAIRS:
        sides = [
            setups.get((dataset, model, paper.ABLATION_VARIANT)) or setups.get((dataset, model, "default"))
            for model in (pair.original, pair.modified)
        ]
        theirs = f"{pair.median_original:.2f} → {pair.median_modified:.2f} %"
        if all(sides):
            comparison = Comparison(sides[0], sides[1])
            lines.append(_comparison_line(f"{pair.original} → {pair.modified}", comparison, theirs))
        else:
            lines.append(
                f"- {pair.original} → {pair.modified}: open (a side has no row yet); paper {theirs}."
            )
        lines += _published_original_line(setups, pair, sides[1], theirs)
    lines += ["", "**CNN6 best on `challenge`, near 90 %**:", ""]
    published = [
        setups[(dataset, *setup)] for setup in paper.PUBLISHED_CHALLENGE_SETUPS if (dataset, *setup) in setups
    ]
    cnn6 = setups.get((dataset, paper.CHALLENGE_BEST_MODEL, "relu"))
    if cnn6 is None:
        lines.append("- open: no CNN6 ReLU row yet.")
    else:
        ranked = sorted(published, key=lambda s: -(s.median("test") or 0.0))
        complete = sum(s.complete and s.precisions == {paper.PAPER_PRECISION} for s in published)
        expected = len(paper.PUBLISHED_CHALLENGE_SETUPS)
        status = "open" if complete < expected else "decided"
        lines.append(
            f"- CNN6 ReLU {cnn6.spread('test')} % (validation {cnn6.spread('val')} %) ranks "
            f"{ranked.index(cnn6) + 1} of {len(ranked)} published setups run so far by test median "
            f"({complete} of {expected} with five {paper.PAPER_PRECISION} seeds: **{status}**); best "
            f"{ranked[0].model} {ranked[0].variant} {ranked[0].spread('test')} %."
        )
    lines += [
        "",
        f"**Every model ≥ {paper.BENCHMARK_MIN_ACCURACY} % on `benchmark`** (the paper's setup):",
        "",
    ]
    bench = [s for s in setups.values() if s.dataset == paper.BENCHMARK_DATASET]
    for setup in bench:
        verdict = "holds" if (setup.median("test") or 0) >= paper.BENCHMARK_MIN_ACCURACY else "fails"
        wrong = ", ".join(str(r["misclassified"]) for r in setup.rows)
        lines.append(
            f"- {setup.model} {setup.variant}: {setup.spread('test')} % ({wrong} of "
            f"{setup.rows[0]['test_size']} wrong; {len(setup.seeds)} seed(s)): {verdict} for these seeds "
            f"({_provenance([setup])})."
        )
    if not bench:
        lines.append("- open: no `benchmark` row in the paper's setup yet.")
    return lines


#: What the toggle search's best configuration is set against: the published VGG (linear FC), its ReLU
#: variant and the paper's modified VGG.
TUNED_REFERENCES: tuple[tuple[str, str], ...] = (("vgg", "linear"), ("vgg", "relu"), ("vgg_mod", "default"))
#: The figures that say whether a model is better in distribution (the test split is one more row only).
IN_DISTRIBUTION: tuple[str, ...] = ("val", "fresh")
#: A variant name ending so was trained with the toggles of a search's best configuration.
TUNED_SUFFIX = "-tuned"


def _toggles_text(setup: Setup) -> str:
    toggles = setup.rows[0].get("toggles") or {}
    return ", ".join(f"{key} {value}" for key, value in toggles.items()) or "the model's defaults"


def tuned_comparison(setups: Mapping[SetupKey, Setup]) -> list[str]:
    """The toggle search's best configuration (``*-tuned`` setups on `challenge`) against the published
    VGGs: per reference, the difference of medians and the paired seeds on every figure, and whether it is
    ahead in distribution (validation and fresh draws; decided once both sides have five float32 seeds)."""
    dataset = paper.CHALLENGE_DATASET
    tuned = [s for s in setups.values() if s.dataset == dataset and s.variant.endswith(TUNED_SUFFIX)]
    lines = [
        "The search's best configuration, retrained with the study's protocol and seeds, against the "
        "published VGG (linear FC), VGG with ReLU FC and the modified VGG. *Ahead in distribution* needs "
        "both medians in front, on the validation split and on fresh draws, once both sides have five "
        "float32 seeds; each figure compares the seeds both sides have for it (the count is given: a run "
        "whose export was not kept has no fresh-draw score). The test split is one more figure, not the "
        "judge; the perturbed sets say how it generalises.",
        "",
    ]
    if not tuned:
        return [*lines, "- open: its five seeds train once the search's grid is complete."]
    for setup in tuned:
        lines.append(
            f"- {setup.model} {setup.variant} ({_toggles_text(setup)}): validation {setup.spread('val')} %, "
            f"fresh draws {setup.spread('fresh')} %, test {setup.spread('test')} % "
            f"({plural(len(setup.seeds), 'seed')}; {_provenance([setup])})"
        )
        for model, variant in TUNED_REFERENCES:
            reference = setups.get((dataset, model, variant))
            if reference is None:
                lines.append(f"  - against {model} {variant}: no row yet.")
                continue
            comparison = Comparison(reference, setup)
            ahead = all((comparison.difference(m) or 0.0) > 0 for m in IN_DISTRIBUTION)
            verdict = "open" if not comparison.decided else "ahead" if ahead else "not ahead"
            lines.append(
                f"  - against {model} {variant}: {comparison.figures()}; in distribution **{verdict}**."
            )
    return lines


def setups_table(setups: Mapping[SetupKey, Setup]) -> str:
    """Markdown: one line per setup — seeds, medians (min–max) per metric, the paper's median, provenance."""
    header = [
        "dataset", "model", "FC", "seeds", "test % median (min–max)", "validation %", "fresh draws %",
        "perturbed sets %", "paper (median)", "precision", "CPUs",
    ]  # fmt: skip
    rows = []
    for key, setup in setups.items():
        figure = paper_figure(key)
        size = setup.rows[0]["test_size"]
        shown = "–" if figure is None else f"{figure:.2f}" + ("" if attainable(figure, size) else " †")
        rows.append(
            [
                setup.dataset, setup.model, setup.variant, ", ".join(map(str, setup.seeds)),
                setup.spread("test"), setup.spread("val"), setup.spread("fresh"), setup.spread("perturbed"),
                shown,
                "/".join(sorted(setup.precisions)), "; ".join(sorted(setup.cpus)),
            ]
        )  # fmt: skip
    return "\n".join(table(header, rows)).rstrip()


def perturbed_table(setups: Mapping[SetupKey, Setup]) -> str | None:
    """Markdown: per setup with perturbed-set scores, the median (min–max) over seeds of each group's mean
    accuracy; ``None`` when no export was scored on them."""
    scored = [s for s in setups.values() if s.values("perturbed")]
    if not scored:
        return None
    header = [
        "dataset",
        "model",
        "FC",
        "seeds scored",
        "all perturbed sets %",
        *(f"{g} %" for g in PERTURBED_GROUPS),
    ]
    rows = [
        [
            s.dataset, s.model, s.variant, ", ".join(map(str, sorted(s.values("perturbed")))),
            s.spread("perturbed"), *(s.spread(group) for group in PERTURBED_GROUPS),
        ]
        for s in scored
    ]  # fmt: skip
    return "\n".join(table(header, rows)).rstrip()


def cost_table(setups: Mapping[SetupKey, Setup]) -> str | None:
    """Markdown: what a run of each setup cost on each CPU — epochs to the stop, CPU seconds per epoch and
    CPU hours per run (median, min–max), from the rows' ``cpu_time_s`` (summed over every epoch, across
    resumes); ``None`` when no row recorded it. Rows without it are left out of the counts."""
    header = ["dataset", "model", "FC", "CPU", "runs", "epochs", "CPU-s per epoch", "CPU-h per run"]
    lines = []
    for setup in setups.values():
        for (_, cpu), rows in sorted(costed_runs(setup.rows).items()):
            epochs = [row["epochs_run"] for row in rows]
            seconds = [row["cpu_time_s"] for row in rows]
            lines.append(
                [
                    setup.dataset, setup.model, setup.variant, cpu, str(len(rows)), _median_range(epochs, 0),
                    _median_range([s / e for s, e in zip(seconds, epochs, strict=True)], 0),
                    _median_range([s / 3600 for s in seconds], 1),
                ]
            )  # fmt: skip
    return "\n".join(table(header, lines)).rstrip() if lines else None


def unattainable_note(setups: Mapping[SetupKey, Setup]) -> str | None:
    """A note on the paper's figures that no run on a 162-spectrum test split can give (marked †)."""
    marked = sorted(
        {
            f"{paper_figure(key):.2f} % ({key[1]})"
            for key, setup in setups.items()
            if paper_figure(key) is not None and not attainable(paper_figure(key), setup.rows[0]["test_size"])
        }
    )
    if not marked:
        return None
    size = next(iter(setups.values())).rows[0]["test_size"]
    return (
        f"† {', '.join(marked)}: not k/{size} for any whole k, so "
        "not a median of five runs on this test split (a median of an odd number of runs is one of them); "
        "the paper's figure may be a mean, or come from another split size."
    )


def seed_values(setups: Sequence[Setup], metric: str) -> list[list[float]]:
    """Per setup, the seeds' accuracies on ``metric`` (for a strip plot)."""
    return [list(setup.values(metric).values()) for setup in setups]


def ceiling_line(ceilings: Mapping[tuple[str, str], float]) -> str:
    """The Bayes ceilings as one sentence, from ``(dataset, split) → accuracy``."""
    by_dataset: dict[str, list[str]] = {}
    for (dataset, split), value in ceilings.items():
        by_dataset.setdefault(dataset, []).append(f"{split} {100 * value:.2f} %")
    parts = "; ".join(f"`{dataset}` {', '.join(found)}" for dataset, found in by_dataset.items())
    return (
        "Bayes ceiling (the expected accuracy of a classifier that knows the training distribution exactly "
        "and guesses among the classes a spectrum cannot tell apart; a model above it on a split wins ties "
        f"the training data cannot decide): {parts}."
    )


def headline_table(
    setups: Mapping[SetupKey, Setup], ceilings: Mapping[tuple[str, str], float] | None = None
) -> str:
    """A compact table for the front page: per setup the seeds and the medians (min–max) on the test and
    validation splits beside the paper's median, then the precision and the CPUs behind them, and the
    Bayes ceilings of the splits where given."""
    header = ["dataset", "model", "FC", "seeds", "test % (median, min–max)", "validation %", "paper"]
    rows = []
    for key, setup in setups.items():
        figure = paper_figure(key)
        rows.append(
            [
                setup.dataset, setup.model, setup.variant, str(len(setup.seeds)), setup.spread("test"),
                setup.spread("val"), "–" if figure is None else f"{figure:.2f}",
            ]
        )  # fmt: skip
    if not rows:
        return "No run of the study has finished yet."
    provenance = _provenance(setups.values())
    lines = [*table(header, rows)]
    lines.append(
        f"Float32, trained to early stopping (at most {paper.MAX_EPOCHS} epochs), one run per seed; "
        f"{len(list(r for s in setups.values() for r in s.rows))} runs ({provenance})."
    )
    if ceilings:
        lines += ["", ceiling_line(ceilings)]
    return "\n".join(lines)


#: The variant suffix of runs whose batch-norm statistics were re-estimated before every validation (the
#: training protocol's ``PRECISE_BATCH_NORM_TAG``; :mod:`zoo.study` does not import :mod:`zoo.training`).
PRECISE_SUFFIX = "-precisebn"


def precise_batch_norm_lines(study: Mapping[SetupKey, Setup], precise: Mapping[SetupKey, Setup]) -> list[str]:
    """Markdown for setups trained with precise batch-norm statistics (``precise``, variants ending in
    :data:`PRECISE_SUFFIX`) beside the same setups in the study (``study``, moving statistics): a table of
    both and of each ablation's modified side, then per setup "precise against moving" and the ablation
    ("batch norm removed") against each, compared as the claims are (medians over the seeds both sides
    have, seeds where the direction holds, *open* until both sides have five seeds)."""
    if not precise:
        return ["No run with precise statistics has finished yet."]
    modified_of = {pair.original: pair for pair in paper.ABLATION_PAIRS}
    shown: dict[SetupKey, tuple[Setup, str]] = {}
    lines_by_setup: list[str] = []
    for key, with_precise in precise.items():
        dataset, model, variant = key
        moving = study.get((dataset, model, variant.removesuffix(PRECISE_SUFFIX)))
        shown[key] = (with_precise, "precise")
        if moving is not None:
            shown[moving.key] = (moving, "moving (the study's)")
        pair = modified_of.get(model)
        modified = None
        if pair is not None:
            modified = study.get((dataset, pair.modified, ablation_variant(pair.modified)))
            if modified is not None:
                shown[modified.key] = (modified, "no batch norm (the ablation's modified side)")
        lines_by_setup.append(f"**{model} {variant.removesuffix(PRECISE_SUFFIX)}** (`{dataset}`):")
        lines_by_setup.append("")
        if moving is None:
            lines_by_setup.append("- precise against moving: open (the study has no row of this setup yet).")
        else:
            comparison = Comparison(worse=moving, better=with_precise)
            lines_by_setup.append(
                f"- precise ahead of moving: {comparison.figures()}; **{comparison.verdict()}**."
            )
        if pair is not None and modified is not None:
            for label, original in (("moving", moving), ("precise", with_precise)):
                if original is None:
                    continue
                comparison = Comparison(worse=original, better=modified)
                lines_by_setup.append(
                    f"- {pair.change} ({pair.modified}) ahead of {model} with {label} statistics: "
                    f"{comparison.figures()}; **{comparison.verdict()}** "
                    f"(paper: {pair.median_original:.2f} → {pair.median_modified:.2f} %)."
                )
        lines_by_setup.append("")
    header = ["model", "variant", "batch-norm statistics", "seeds", "test %", "validation %", "fresh draws %",
              "perturbed sets %", "epochs (median)", "precision", "CPUs"]  # fmt: skip
    rows = [
        [
            setup.model, setup.variant, label, ", ".join(map(str, setup.seeds)), setup.spread("test"),
            setup.spread("val"), setup.spread("fresh"), setup.spread("perturbed"),
            f"{statistics.median(row['epochs_run'] for row in setup.rows):g}",
            "/".join(sorted(setup.precisions)), "; ".join(sorted(setup.cpus)),
        ]
        for setup, label in shown.values()
    ]  # fmt: skip
    return [*table(header, rows), *lines_by_setup]
