"""The model library: the registry every architecture registers into, the build arguments, the shared
building blocks and layers, one module per family (cnn6, lee, vgg, cnn_bn, resnet, prnet), the study's
compile helper, FLOP counting from layer shapes (:mod:`~zoo.models.flops`) and the trained presets.

What lives here is what a downstream user needs to build a model; nothing here trains, reports or parses a
command line. May import: the core (:mod:`zoo.errors`, :mod:`zoo.checks`, ...), :mod:`synthetic_spectra`
(a preset's test split) and Keras (on demand: importing this package and :mod:`zoo.models.registry` stays
light). Never :mod:`zoo.training`, :mod:`zoo.study` or
:mod:`zoo.commands`.
"""

from zoo.models.build_config import BuildConfig
from zoo.models.registry import TOGGLES, ModelInfo, Paper, build, build_args_of, get_model_info, list_models

__all__ = [
    "TOGGLES",
    "BuildConfig",
    "ModelInfo",
    "Paper",
    "build",
    "build_args_of",
    "get_model_info",
    "list_models",
]
