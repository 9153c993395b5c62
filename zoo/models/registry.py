"""The model registry: the one table that knows every architecture of the zoo.

Each entry (:class:`ModelInfo`) carries the paper it comes from, its spectroscopy domain, its published
defaults (the arguments :func:`build` uses when a toggle is left at ``None``) and the parameter counts of the
specification. The ablation variants of the challenge study are registered as *their base model with other
arguments* (see :func:`_variant`), so every architecture is written exactly once in :mod:`zoo.models`.

This module imports neither Keras nor TensorFlow at import time; :func:`build` imports Keras on demand, so
``spectrazoo models`` and ``import zoo`` stay fast.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from zoo.checks import check_int
from zoo.errors import import_keras
from zoo.models.build_config import BuildConfig

if TYPE_CHECKING:
    import keras

__all__ = [
    "TOGGLES",
    "BuildConfig",
    "ModelInfo",
    "Paper",
    "build",
    "build_args_of",
    "get_model_info",
    "list_models",
    "resolve_config",
]

#: The architecture-independent keyword arguments of :func:`build` (``None`` = the published default).
TOGGLES: tuple[str, ...] = ("fc_activation", "fc_dropout", "conv_dropout", "batch_norm", "fc_widths")


@dataclasses.dataclass(frozen=True)
class Paper:
    """A publication a model comes from."""

    authors: str
    year: int
    title: str
    venue: str
    doi: str | None = None

    @property
    def short(self) -> str:
        """``"Lee et al. 2020"``: first author's surname and year."""
        return f"{self.authors.split(',')[0]} et al. {self.year}"

    @property
    def citation(self) -> str:
        """One-line citation, with the DOI when known."""
        doi = f" doi:{self.doi}" if self.doi else ""
        return f"{self.authors} ({self.year}). {self.title}. {self.venue}.{doi}"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Everything the zoo knows about one registered model (no Keras objects)."""

    name: str
    display_name: str
    paper: Paper
    domain: str
    builder: str
    defaults: Mapping[str, Any]
    params_500: int
    params_27: int
    description: str
    base: str | None = None
    #: ``module:function`` of the classifier head (:func:`zoo.models.blocks.classifier_head` but for sang).
    head: str = "zoo.models.blocks:classifier_head"

    @property
    def year(self) -> int:
        """Publication year of :attr:`paper`."""
        return self.paper.year

    @property
    def options(self) -> tuple[str, ...]:
        """Architecture-specific keyword arguments (beyond :data:`TOGGLES`) that :func:`build` accepts."""
        return tuple(key for key in self.defaults if key not in TOGGLES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (used by ``spectrazoo models --format json``)."""
        defaults = {key: list(val) if isinstance(val, tuple) else val for key, val in self.defaults.items()}
        return {
            "name": self.name,
            "display_name": self.display_name,
            "domain": self.domain,
            "year": self.year,
            "paper": dataclasses.asdict(self.paper) | {"citation": self.paper.citation},
            "base": self.base,
            "description": self.description,
            "defaults": defaults,
            "params_500": self.params_500,
            "params_27": self.params_27,
        }


# --------------------------------------------------------------------------------------------- papers
LEE_2020 = Paper(
    authors="Lee, J.-W., Park, W. B., Lee, J. H., Singh, S. P. & Sohn, K.-S.",
    year=2020,
    title="A deep-learning technique for phase identification in multiphase inorganic compounds using "
    "synthetic XRD powder patterns",
    venue="Nature Communications 11, 86",
    doi="10.1038/s41467-019-13749-3",
)
SZYMANSKI_2021 = Paper(
    authors="Szymanski, N. J., Bartel, C. J., Zeng, Y., Tu, Q. & Ceder, G.",
    year=2021,
    title="Probabilistic deep learning approach to automate the interpretation of multi-phase diffraction "
    "spectra",
    venue="Chemistry of Materials 33, 4204-4215",
    doi="10.1021/acs.chemmater.1c01071",
)
LIU_2017 = Paper(
    authors="Liu, J., Osadchy, M., Ashton, L., Foster, M., Solomon, C. J. & Gibson, S. J.",
    year=2017,
    title="Deep convolutional neural networks for Raman spectrum recognition: a unified solution",
    venue="Analyst 142, 4067",
    doi="10.1039/C7AN01371J",
)
WANG_2020 = Paper(
    authors="Wang, H., Xie, Y., Li, D., Deng, H., Zhao, Y., Xin, M. & Lin, J.",
    year=2020,
    title="Rapid identification of X-ray diffraction patterns based on very limited data by interpretable "
    "convolutional neural networks",
    venue="Journal of Chemical Information and Modeling",
    doi="10.1021/acs.jcim.0c00020",
)
HO_2019 = Paper(
    authors="Ho, C.-S., Jean, N., Hogan, C. A. et al.",
    year=2019,
    title="Rapid identification of pathogenic bacteria using Raman spectroscopy and deep learning",
    venue="Nature Communications 10, 4927",
    doi="10.1038/s41467-019-12898-9",
)
SCHUETZKE_2023 = Paper(
    authors="Schuetzke, J., Szymanski, N. J. & Reischl, M.",
    year=2023,
    title="Validating neural networks for spectroscopic classification on a universal synthetic dataset",
    venue="npj Computational Materials 9, 100",
    doi="10.1038/s41524-023-01055-y",
)

_REGISTRY: dict[str, ModelInfo] = {}


def _defaults(
    *,
    fc_widths: tuple[int, ...],
    fc_dropout: float,
    fc_activation: str | None,
    conv_dropout: float = 0.0,
    batch_norm: bool = False,
    **options: Any,
) -> Mapping[str, Any]:
    """The published defaults of one architecture, toggles first, then its own options."""
    values = {
        "fc_activation": fc_activation,
        "fc_dropout": fc_dropout,
        "conv_dropout": conv_dropout,
        "batch_norm": batch_norm,
        "fc_widths": fc_widths,
        **options,
    }
    return MappingProxyType(values)


def _register(info: ModelInfo) -> None:
    if info.name in _REGISTRY:
        raise RuntimeError(f"model {info.name!r} registered twice")
    _REGISTRY[info.name] = info


def _variant(
    name: str, *, base: str, display_name: str, description: str, params: tuple[int, int], **overrides: Any
) -> None:
    """Register an ablation variant of the challenge study: ``base`` built with other arguments."""
    parent = _REGISTRY[base]
    unknown = set(overrides) - set(parent.defaults)
    if unknown:
        raise RuntimeError(f"variant {name!r} overrides unknown arguments {sorted(unknown)}")
    _register(
        ModelInfo(
            name=name,
            display_name=display_name,
            paper=SCHUETZKE_2023,
            domain=parent.domain,
            builder=parent.builder,
            defaults=MappingProxyType({**parent.defaults, **overrides}),
            params_500=params[0],
            params_27=params[1],
            description=description,
            base=base,
            head=parent.head,
        )
    )


# ------------------------------------------------------------------------------------ the eight models
_register(ModelInfo(
    name="cnn2", display_name="CNN2", paper=LEE_2020, domain="XRD", builder="zoo.models.lee:cnn2_trunk",
    defaults=_defaults(fc_widths=(2000, 500), fc_dropout=0.3, fc_activation="linear"),
    params_500=19_150_728, params_27=18_913_755,
    description="Two conv/pool stages with strided convolutions and two linear FC layers.",
))  # fmt: skip
_register(ModelInfo(
    name="cnn3", display_name="CNN3", paper=LEE_2020, domain="XRD", builder="zoo.models.lee:cnn3_trunk",
    defaults=_defaults(fc_widths=(2500, 1000), fc_dropout=0.3, fc_activation="linear"),
    params_500=25_347_872, params_27=24_874_399,
    description="Three conv/pool stages and two linear FC layers; the trunk of INC3/INC6.",
))  # fmt: skip
_register(ModelInfo(
    name="inc3", display_name="INC3", paper=LEE_2020, domain="XRD", builder="zoo.models.lee:inception_trunk",
    defaults=_defaults(
        fc_widths=(3700, 740), fc_dropout=0.3, fc_activation="linear", blocks=3
    ),
    params_500=78_870_534, params_27=78_520_041,
    description="CNN3 trunk followed by three inception blocks (A1-A3).",
))  # fmt: skip
_register(ModelInfo(
    name="inc6", display_name="INC6", paper=LEE_2020, domain="XRD", builder="zoo.models.lee:inception_trunk",
    defaults=_defaults(
        fc_widths=(4000, 400), fc_dropout=0.3, fc_activation="linear", blocks=6
    ),
    params_500=186_817_238, params_27=186_627_565,
    description="CNN3 trunk followed by six inception blocks (A1-A6).",
))  # fmt: skip
_register(ModelInfo(
    name="cnn6", display_name="CNN6", paper=SZYMANSKI_2021, domain="XRD", builder="zoo.models.cnn6:trunk",
    defaults=_defaults(fc_widths=(3100, 1200), fc_dropout=0.7, fc_activation="relu"),
    params_500=20_212_224, params_27=19_644_151,
    description="Six conv/pool stages with shrinking kernels (35 to 10) and two ReLU FC layers.",
))  # fmt: skip
_register(ModelInfo(
    name="cnn_bn", display_name="CNN BN", paper=LIU_2017, domain="Raman", builder="zoo.models.cnn_bn:trunk",
    defaults=_defaults(
        fc_widths=(2048,), fc_dropout=0.5, fc_activation="linear", batch_norm=True
    ),
    params_500=82_963_316, params_27=81_994_139,
    description="Three conv/BN/LeakyReLU(0.1) stages and one FC layer.",
))  # fmt: skip
_register(ModelInfo(
    name="vgg", display_name="VGG", paper=WANG_2020, domain="XRD", builder="zoo.models.vgg:trunk",
    defaults=_defaults(
        fc_widths=(120, 84, 186),
        fc_dropout=0.0,
        fc_activation="linear",
        conv_dropout=0.2,
        kernel_size=5,
    ),
    params_500=2_556_174, params_27=2_467_723,
    description="VGG-style stacks of 1, 2, 2, 2 convolutions with dropout after every pooling stage.",
))  # fmt: skip
_register(ModelInfo(
    name="resnet", display_name="ResNet", paper=HO_2019, domain="Raman", builder="zoo.models.resnet:trunk",
    defaults=_defaults(
        fc_widths=(), fc_dropout=0.5, fc_activation=None, batch_norm=True, stem_activation="linear"
    ),
    params_500=5_204_540, params_27=1_467_367,
    description="Six stages of two residual blocks (100 filters, kernel 5); no hidden FC layers.",
))  # fmt: skip

# --------------------------------------------------------------- ablation variants of the challenge study
_variant(
    "cnn_bn_mod", base="cnn_bn", display_name="CNN BN (mod.)", params=(82_962_868, 81_993_691),
    description="CNN BN without batch normalisation, ReLU FC activation.",
    batch_norm=False, fc_activation="relu",
)  # fmt: skip
_variant(
    "resnet_mod", base="resnet", display_name="ResNet (mod.)", params=(30_056_584, 29_488_511),
    description="ResNet without BN, ReLU after the first conv, FC layers 3100-1200 (ReLU, dropout 0.5).",
    batch_norm=False, stem_activation="relu", fc_widths=(3100, 1200), fc_activation="relu",
)  # fmt: skip
_variant(
    "cnn6_bn", base="cnn6", display_name="CNN6 BN", params=(20_213_760, 19_645_687),
    description="CNN6 with batch normalisation between every conv and its ReLU.",
    batch_norm=True,
)  # fmt: skip
_variant(
    "cnn6_convdo", base="cnn6", display_name="CNN6 ConvDO", params=(20_212_224, 19_644_151),
    description="CNN6 with Dropout(0.2) after every pooling layer and no FC dropout.",
    conv_dropout=0.2, fc_dropout=0.0,
)  # fmt: skip
_variant(
    "vgg_mod", base="vgg", display_name="VGG (mod.)", params=(41_349_990, 41_113_017),
    description="VGG with kernel 20, no conv dropout, FC layers 2000-500 (ReLU, dropout 0.3).",
    kernel_size=20, conv_dropout=0.0, fc_widths=(2000, 500), fc_dropout=0.3, fc_activation="relu",
)  # fmt: skip


# ------------------------------------------------- the eight more of the authors' later benchmark (issue #17)
@dataclasses.dataclass(frozen=True)
class BenchmarkCode(Paper):
    """A model known only from the authors' benchmark code (no paper cited there, none confirmed)."""

    @property
    def short(self) -> str:
        """``"as implemented in the authors' benchmark code"``."""
        return "as implemented in the authors' benchmark code"

    @property
    def citation(self) -> str:
        """The short form, then the repository, commit and file."""
        return f"{self.short}: {self.venue} ({self.year}); no paper cited. {self.title}."


#: The authors' second benchmark of 1-D spectroscopy CNNs: where the eight models below are implemented.
BENCHMARK_REPOSITORY = "github.com/jschuetzke/spectra-model-benchmark, commit 9511ce9"


def _benchmark_code(module: str, what: str) -> BenchmarkCode:
    return BenchmarkCode(
        authors="Schuetzke, J.",
        year=2024,
        title=what,
        venue=f"{BENCHMARK_REPOSITORY}, model_implementations/{module}.py",
    )


PARK_2017 = Paper(
    authors="Park, W. B., Chung, J., Jung, J., Sohn, K., Singh, S. P., Pyo, M., Shin, N. & Sohn, K.-S.",
    year=2017,
    title="Classification of crystal structure using a convolutional neural network",
    venue="IUCrJ 4, 486-494",
    doi="10.1107/S205225251700714X",
)
VECSEI_2019 = Paper(
    authors="Vecsei, P. M., Choo, K., Chang, J. & Neupert, T.",
    year=2019,
    title="Neural network based classification of crystal symmetries from x-ray diffraction patterns",
    venue="Physical Review B 99, 245120",
    doi="10.1103/PhysRevB.99.245120",
)
FAN_2019 = Paper(
    authors="Fan, X., Ming, W., Zeng, H., Zhang, Z. & Lu, H.",
    year=2019,
    title="Deep learning-based component identification for the Raman spectra of mixtures",
    venue="Analyst 144, 1789-1798",
    doi="10.1039/C8AN02212G",
)
OVIEDO_2019 = Paper(
    authors="Oviedo, F., Ren, Z., Sun, S., Settens, C., Liu, Z., Hartono, N. T. P., Ramasamy, S., "
    "DeCost, B. L., Tian, S. I. P., Romano, G., Kusne, A. G. & Buonassisi, T.",
    year=2019,
    title="Fast and interpretable classification of small X-ray diffraction datasets using data "
    "augmentation and deep neural networks",
    venue="npj Computational Materials 5, 60",
    doi="10.1038/s41524-019-0196-x",
)
#: Domain of the models whose source the benchmark code does not name.
NOT_STATED = "not stated"
_ATTRIBUTED = "Attributed by the benchmark code's module name; the paper's own network was not compared."

_register(ModelInfo(
    name="park", display_name="Park", paper=PARK_2017, domain="XRD", builder="zoo.models.park:park_trunk",
    defaults=_defaults(fc_widths=(700, 70), fc_dropout=0.3, fc_activation="relu"),
    params_500=3_205_510, params_27=3_171_927,
    description="Three strided convs (80 filters, kernels 100/50/25) with average pools, FC 700-70 (ReLU). "
    + _ATTRIBUTED,
))  # fmt: skip
_register(ModelInfo(
    name="vecsei", display_name="Vecsei", paper=VECSEI_2019, domain="XRD",
    builder="zoo.models.park:vecsei_trunk",
    defaults=_defaults(fc_widths=(2300, 1150), fc_dropout=0.5, fc_activation="relu", conv_dropout=0.3),
    params_500=12_360_190, params_27=11_815_767,
    description="Park's trunk with Dropout(0.3) before each average pool, FC 2300-1150 (ReLU). "
    + _ATTRIBUTED,
))  # fmt: skip
_register(ModelInfo(
    name="fan", display_name="Fan", paper=FAN_2019, domain="Raman", builder="zoo.models.fan:trunk",
    defaults=_defaults(fc_widths=(3584, 1024), fc_dropout=0.3, fc_activation="relu", conv_dropout=0.3),
    params_500=290_917_620, params_27=290_432_795,
    description="Two conv/max-pool stages (32, 64 filters, kernel 5) and a 3584-1024 ReLU head: 290 M "
    "parameters at 5000 points. " + _ATTRIBUTED,
))  # fmt: skip
_register(ModelInfo(
    name="oviedo", display_name="Oviedo", paper=OVIEDO_2019, domain="XRD",
    builder="zoo.models.oviedo:trunk",
    defaults=_defaults(fc_widths=(), fc_dropout=0.0, fc_activation="relu"),
    params_500=25_044, params_27=9_435,
    description="Thin-film XRD: three non-overlapping strided convs (32 filters) and global average pooling; "
    "no hidden FC layers. " + _ATTRIBUTED,
))  # fmt: skip
_register(ModelInfo(
    name="sang", display_name="Sang", domain=NOT_STATED, builder="zoo.models.sang:trunk",
    paper=_benchmark_code("sang", "VGG-19-like CNN with a batch-normalised FC head"),
    head="zoo.models.blocks:bn_classifier_head",
    defaults=_defaults(fc_widths=(512,), fc_dropout=0.5, fc_activation="relu"),
    params_500=47_831_604, params_27=47_588_955,
    description="16 convs (kernel 3, 64-512 filters) in 5 max-pool stages; head Dense 512 -> BN -> ReLU -> "
    "Dropout 0.5. 7.7 GFLOP per spectrum.",
))  # fmt: skip
_register(ModelInfo(
    name="mozaffari", display_name="Mozaffari", domain=NOT_STATED, builder="zoo.models.mozaffari:trunk",
    paper=_benchmark_code(
        "mozaffari", "one-convolution CNN; which Mozaffari & Tay paper it follows, if any, is unknown"
    ),
    defaults=_defaults(fc_widths=(64,), fc_dropout=0.0, fc_activation="relu"),
    params_500=10_272_692, params_27=10_241_947,
    description="One conv (32 filters, kernel 3), no pooling, one ReLU FC layer of 64 on the full-length "
    "map.",
))  # fmt: skip
_register(ModelInfo(
    name="bhattacharya", display_name="Bhattacharya", domain=NOT_STATED,
    builder="zoo.models.bhattacharya:trunk",
    paper=_benchmark_code("bhattacharya", "CNN-LSTM"),
    defaults=_defaults(fc_widths=(500, 500), fc_dropout=0.2, fc_activation="relu", conv_dropout=0.2),
    params_500=555_036, params_27=318_063,
    description="Four conv (kernel 2)/max-pool stages, an LSTM(32) on the remaining sequence, FC 500-500 "
    "(ReLU).",
))  # fmt: skip
_register(ModelInfo(
    name="schuetzke", display_name="Schuetzke", domain=NOT_STATED, builder="zoo.models.schuetzke:trunk",
    paper=_benchmark_code("schuetzke", "configurable plain CNN of the repository's owner"),
    defaults=_defaults(
        fc_widths=(100,), fc_dropout=0.35, fc_activation="relu", num_layers=5, filters=64, kernel=127
    ),
    params_500=1_716_904, params_27=1_669_131,
    description="Five conv/max-pool stages (64 filters, kernels 127 // i: 127, 63, 42, 31, 25), one ReLU FC "
    "layer of 100.",
))  # fmt: skip


# ----------------------------------------------------------------------- this project's own architectures
@dataclasses.dataclass(frozen=True)
class ProjectWork(Paper):
    """A model designed in this project (no publication): cited as "this project, <year>"."""

    @property
    def short(self) -> str:
        """``"this project, 2026"``."""
        return f"this project, {self.year}"


THIS_PROJECT_2026 = ProjectWork(
    authors="spectrazoo contributors",
    year=2026,
    title="PRNet: a peak-resolving network designed against the failure modes of the challenge study",
    venue="this project (zoo/models/prnet.py, GitHub issue #7)",
)

_register(ModelInfo(
    name="prnet", display_name="PRNet", paper=THIS_PROJECT_2026, domain="general 1-D spectra",
    builder="zoo.models.prnet:trunk",
    defaults=_defaults(
        fc_widths=(), fc_dropout=0.0, fc_activation=None,
        levels=11, spacing=25, gain=30.0, compression_epsilon=0.01, smooth=0, background=0, noise=0.0,
        noise_statistic="rms",
        positions="relative",
    ),
    params_500=2_800_500, params_27=151_227,
    description="Peak apexes coded by log height (11 levels), presence and offset from the strongest apex "
    "(triangular cells of 25 points), fixed gain, one linear softmax layer.",
))  # fmt: skip


# ------------------------------------------------------------------------------------------ look-ups
def list_models(*, include_variants: bool = True) -> list[str]:
    """Registered names: the study's eight, its variants, the later benchmark's eight, this project's own."""
    return [name for name, info in _REGISTRY.items() if include_variants or info.base is None]


def get_model_info(name: str) -> ModelInfo:
    """Metadata of one registered model; ``ValueError`` (one line) for an unknown name."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"model: unknown name {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# ------------------------------------------------------------------------------------- configuration
def _rate(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{field} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{field} must be in [0, 1), got {value!r}")
    return float(value)


def _widths(value: Any) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"fc_widths must be a sequence of positive integers, got {value!r}")
    return tuple(check_int(f"fc_widths[{i}]", width) for i, width in enumerate(value))


def resolve_config(
    info: ModelInfo,
    *,
    num_classes: int,
    input_length: int,
    fc_activation: str | None = None,
    fc_dropout: float | None = None,
    conv_dropout: float | None = None,
    batch_norm: bool | None = None,
    fc_widths: Sequence[int] | None = None,
    **options: Any,
) -> BuildConfig:
    """Merge the caller's arguments over ``info.defaults`` and validate them (no Keras needed).

    Raises:
        ValueError: one line naming the bad argument and value, e.g. a dropout rate outside [0, 1),
            ``fc_activation`` for a model without hidden FC layers, or an option the model does not have.
    """
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        known = ", ".join(info.options) or "none"
        raise ValueError(f"{info.name}: unknown argument {unknown[0]!r} (architecture options: {known})")
    defaults = info.defaults
    widths = _widths(defaults["fc_widths"] if fc_widths is None else fc_widths)
    if fc_activation is not None:
        if not isinstance(fc_activation, str) or not fc_activation:
            raise ValueError(f"fc_activation must be a Keras activation name, got {fc_activation!r}")
        if not widths:
            raise ValueError(
                f"fc_activation={fc_activation!r} cannot apply to {info.name}: it has no hidden FC layers "
                "(pass fc_widths to add some)"
            )
    activation = fc_activation or defaults["fc_activation"] or "linear"
    batch_norm = defaults["batch_norm"] if batch_norm is None else batch_norm
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
    return BuildConfig(
        num_classes=check_int("num_classes", num_classes, minimum=2),
        input_length=check_int("input_length", input_length),
        fc_activation=activation if widths else None,
        fc_dropout=_rate("fc_dropout", defaults["fc_dropout"] if fc_dropout is None else fc_dropout),
        conv_dropout=_rate(
            "conv_dropout", defaults["conv_dropout"] if conv_dropout is None else conv_dropout
        ),
        batch_norm=batch_norm,
        fc_widths=widths,
        options=MappingProxyType(
            {key: defaults[key] if options.get(key) is None else options[key] for key in info.options}
        ),
    )


# ---------------------------------------------------------------------------------------------- build
#: Models built by :func:`build` -> (registry name, build arguments); read by :func:`zoo.export`.
_BUILT: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _load_builder(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build(
    name: str,
    num_classes: int = 500,
    input_length: int = 5000,
    *,
    fc_activation: str | None = None,
    fc_dropout: float | None = None,
    conv_dropout: float | None = None,
    batch_norm: bool | None = None,
    fc_widths: Sequence[int] | None = None,
    compile: bool = True,
    **options: Any,
) -> keras.Model:
    """Build a registered model; ``None`` for a toggle means the published default of ``name``.

    Args:
        name: a name from :func:`list_models`.
        num_classes: units of the softmax output layer.
        input_length: data points per spectrum; the model input is ``(input_length, 1)``.
        fc_activation: activation of the hidden FC layers (``"linear"``, ``"relu"`` or any Keras name).
        fc_dropout: dropout rate before every FC layer (0 adds no Dropout layers).
        conv_dropout: dropout rate after every pooling stage (after every residual stage for ResNet; each
            model's module says where, e.g. before the pools for ``vecsei``, after each conv without pools).
        batch_norm: batch normalisation between every convolution and its activation (``sang``'s head has
            its own BN whatever this says: see ``ModelInfo.head``).
        fc_widths: widths of the hidden FC layers (``()`` for none).
        compile: compile with :func:`zoo.compile_model` (the study's optimizer and loss).
        **options: architecture-specific arguments listed in ``get_model_info(name).options``
            (e.g. ``kernel_size`` for ``vgg``, ``stem_activation`` for ``resnet``).

    Raises:
        ValueError: unknown name, invalid or inapplicable argument, or an input too short for the model.
    """
    info = get_model_info(name)
    config = resolve_config(
        info,
        num_classes=num_classes,
        input_length=input_length,
        fc_activation=fc_activation,
        fc_dropout=fc_dropout,
        conv_dropout=conv_dropout,
        batch_norm=batch_norm,
        fc_widths=fc_widths,
        **options,
    )
    import_keras()  # no backend installed: one error saying what to install
    from zoo.models.blocks import spectrum_classifier

    model = spectrum_classifier(name, _load_builder(info.builder), config, head=_load_builder(info.head))
    if compile:
        from zoo.models.compile import compile_model

        compile_model(model)
    _BUILT[model] = (name, config.as_build_args())
    return model


def build_args_of(model: Any) -> tuple[str, dict[str, Any]] | None:
    """``(registry name, build arguments)`` of a model built by :func:`build` in this process, or ``None``."""
    record = _BUILT.get(model)
    return (record[0], dict(record[1])) if record else None
