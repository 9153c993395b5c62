"""The study's training protocol and the plan of runs.

:class:`Protocol` holds the protocol's hyper-parameters (the paper's by default); a :class:`RunSpec` is one
(dataset config, model, variant, seed) run, and :func:`plan_runs` lays out every combination, resolving the
dataset once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from synthetic_spectra.augment import Augmentation
from synthetic_spectra.config import DatasetConfig, get_config
from zoo.models.registry import TOGGLES, ModelInfo, get_model_info, resolve_config


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Hyper-parameters of the study's training protocol (the paper's values by default)."""

    max_epochs: int = 500
    batch_size: int = 128
    learning_rate: float = 3e-4
    lr_factor: float = 0.5  # the paper; the authors' script used the Keras default 0.1
    lr_patience: int = 10
    es_patience: int = 25
    es_min_delta: float = 1e-4

    def __post_init__(self) -> None:
        for field in ("max_epochs", "batch_size", "lr_patience", "es_patience"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ValueError(f"lr_factor: must be in (0, 1), got {self.lr_factor!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: must be positive, got {self.learning_rate!r}")
        if self.es_min_delta < 0:
            raise ValueError(f"es_min_delta: must be >= 0, got {self.es_min_delta!r}")


#: How a run's batch-norm layers get the statistics they use in inference (validation, test, export):
#: ``moving``, Keras's moving averages (the paper's protocol); ``precise``, re-estimated from the training
#: spectra before every validation (:func:`zoo.models.batch_norm.reestimate_batch_norm`).
BATCH_NORM_STATISTICS = ("moving", "precise")
#: The variant suffix of runs whose batch-norm statistics are re-estimated before every validation.
PRECISE_BATCH_NORM_TAG = "-precisebn"


def check_batch_norm_statistics(batch_norm_statistics: str) -> None:
    """One-line ValueError unless ``batch_norm_statistics`` is one of :data:`BATCH_NORM_STATISTICS`."""
    if batch_norm_statistics not in BATCH_NORM_STATISTICS:
        raise ValueError(
            f"batch_norm_statistics: expected one of {', '.join(BATCH_NORM_STATISTICS)}, "
            f"got {batch_norm_statistics!r}"
        )


def augment_tag(augment: Augmentation) -> str:
    """The variant suffix of runs trained with ``augment``: ``-aug-<name>`` (e.g. ``-aug-noise``)."""
    return f"-aug-{augment.name}"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: which data (a resolved config), which model with which toggles, which seed.

    With a training-time ``augment`` the variant ends in :func:`augment_tag` (as :func:`plan_runs` makes
    it), so augmented runs get run ids, backups and exports of their own; so does a run whose
    ``batch_norm_statistics`` are ``"precise"`` (variant ending in :data:`PRECISE_BATCH_NORM_TAG`).
    """

    config: DatasetConfig
    model: str
    seed: int
    variant: str
    toggles: tuple[tuple[str, Any], ...] = ()
    augment: Augmentation | None = None
    batch_norm_statistics: str = "moving"

    def __post_init__(self) -> None:
        check_batch_norm_statistics(self.batch_norm_statistics)
        if (self.batch_norm_statistics == "precise") != (PRECISE_BATCH_NORM_TAG in self.variant):
            raise ValueError(
                f"variant: {self.variant!r} must contain {PRECISE_BATCH_NORM_TAG!r} exactly when "
                "batch_norm_statistics is 'precise'"
            )
        if self.augment is not None and not self.variant.endswith(augment_tag(self.augment)):
            raise ValueError(
                f"variant: must end in {augment_tag(self.augment)!r} with augment, got {self.variant!r}"
            )

    @property
    def dataset(self) -> str:
        """The dataset config's name (the row's ``dataset`` and the export folder)."""
        return self.config.name

    @property
    def name(self) -> str:
        """Folder-safe name, e.g. ``cnn6-relu-seed0``."""
        return f"{self.model}-{self.variant}-seed{self.seed}"

    @property
    def run_id(self) -> str:
        """Unique key of the run in ``results.jsonl``."""
        return f"{self.dataset}/{self.name}"

    @property
    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`zoo.build` (toggles left at ``None`` are omitted)."""
        return {key: value for key, value in self.toggles if value is not None}


# ---------------------------------------------------------------------------------------- planning
#: Bounds of ``--seeds``: a seed is a 32-bit integer; one command plans at most this many seeds.
MAX_SEED = 2**31 - 1
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` → ``[0, 3, 7]``; ranges and lists combine."""
    seeds: list[int] = []
    shown = repr(text) if len(str(text)) <= 60 else repr(str(text)[:60]) + "…"
    for part in (p.strip() for p in str(text).split(",")):
        match = re.fullmatch(r"(\d{1,12})(?:-(\d{1,12}))?", part)
        if not match:
            raise ValueError(f"seeds: expected e.g. '0-4' or '0,2,5', got {shown}")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise ValueError(f"seeds: range {part!r} is empty")
        if high > MAX_SEED:
            raise ValueError(f"seeds: at most {MAX_SEED} (a 32-bit seed), got {high}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise ValueError(f"seeds: at most {MAX_SEEDS:,} seeds in one command")
        seeds.extend(range(low, high + 1))
    return list(dict.fromkeys(seeds))


def plan_runs(
    dataset: str | os.PathLike[str] | DatasetConfig,
    models: Sequence[str],
    fc_activations: Sequence[str | None] = (None,),
    seeds: Sequence[int] = (0,),
    *,
    hparams: Mapping[str, Any] | None = None,
    variant_suffix: str = "",
    augment: Augmentation | None = None,
    batch_norm_statistics: str = "moving",
) -> list[RunSpec]:
    """Every (model, FC activation, seed) combination as a :class:`RunSpec`.

    ``dataset`` (a built-in name, a config file or a config) is resolved here, once, for every run.

    ``None`` or ``"default"`` as activation means the model's published default. An explicit FC
    activation for a model without hidden FC layers (ResNet) is an error, as in :func:`zoo.build`.
    ``hparams`` (e.g. a tuner's best toggles, or a model's own options such as PRNet's ``smooth``) are
    applied to every run; each must be a toggle or an option of every planned model. Every run's build
    arguments are validated here (values, Keras activation names), so a bad one fails before any output.
    ``augment`` trains every run with that training-time augmentation (variants end in :func:`augment_tag`).
    ``batch_norm_statistics="precise"`` re-estimates every run's batch-norm statistics from the training
    spectra before each validation (variants gain :data:`PRECISE_BATCH_NORM_TAG`); every planned model must
    then have batch norm, and training-time augmentation is refused (its spectra change every epoch).
    """
    config = get_config(dataset)
    check_batch_norm_statistics(batch_norm_statistics)
    precise = batch_norm_statistics == "precise"
    if precise:
        if augment is not None:
            raise ValueError("batch_norm_statistics 'precise' cannot be combined with augmentation")
        variant_suffix += PRECISE_BATCH_NORM_TAG
    if augment is not None:
        from synthetic_spectra.generator import check_augmentation

        check_augmentation(config, augment, 0)
        variant_suffix += augment_tag(augment)
    extra = dict(hparams or {})
    activations = list(dict.fromkeys(None if a in (None, "default") else a for a in fc_activations))
    specs: list[RunSpec] = []
    for model in models:
        info = get_model_info(model)
        known = {*TOGGLES, *info.defaults}
        unknown = sorted(set(extra) - known)
        if unknown:
            raise ValueError(
                f"hparams: {model} has no option {unknown[0]!r}; expected some of {', '.join(sorted(known))}"
            )
        if not extra.get("fc_widths", info.defaults["fc_widths"]) and any(activations):
            raise ValueError(
                f"fc_activation cannot apply to {model}: it has no hidden FC layers "
                "(use 'default', or add FC layers with fc_widths)"
            )
        for activation in activations:
            toggles = {**extra, "fc_activation": activation or extra.get("fc_activation")}
            _check_build(config, info, toggles, needs_batch_norm=precise)
            variant = (toggles["fc_activation"] or "default") + variant_suffix
            items = tuple(sorted((k, _jsonable(v)) for k, v in toggles.items()))
            specs.extend(
                RunSpec(config, model, int(seed), variant, items, augment, batch_norm_statistics)
                for seed in seeds
            )
    return specs


def _check_build(
    config: DatasetConfig, info: ModelInfo, toggles: Mapping[str, Any], *, needs_batch_norm: bool = False
) -> None:
    """One-line ValueError if ``toggles`` cannot build ``info``'s model (checked before any training), or,
    with ``needs_batch_norm``, build it without batch norm."""
    from zoo.models.blocks import check_activation  # Keras: planning happens only where training follows

    resolved = _resolved(config, info, toggles)
    if resolved.fc_activation is not None:
        check_activation("fc_activation", resolved.fc_activation)
    if needs_batch_norm and not resolved.batch_norm:
        raise ValueError(
            f"batch_norm_statistics 'precise': {info.name} has no batch norm with these toggles "
            "(set batch_norm=True, or train it with 'moving')"
        )


def _resolved(config: DatasetConfig, info: ModelInfo, toggles: Mapping[str, Any]) -> Any:
    build = {key: value for key, value in toggles.items() if value is not None}
    return resolve_config(info, num_classes=config.num_classes, input_length=config.datapoints, **build)


def has_batch_norm(config: DatasetConfig, model: str, toggles: Mapping[str, Any]) -> bool:
    """Whether ``model`` built with ``toggles`` (``None`` values: its defaults) has batch norm."""
    return bool(_resolved(config, get_model_info(model), toggles).batch_norm)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
