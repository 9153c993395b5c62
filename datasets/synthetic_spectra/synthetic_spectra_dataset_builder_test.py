"""TFDS builder test for ``synthetic_spectra`` on the small ``mini`` config."""

import tensorflow_datasets as tfds

from synthetic_spectra import synthetic_spectra_dataset_builder
from synthetic_spectra.config import get_config

_MINI = get_config("mini")


class SyntheticSpectraTest(tfds.testing.DatasetBuilderTestCase):
    """Prepares ``mini`` through the real builder and checks split sizes and features."""

    DATASET_CLASS = synthetic_spectra_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["mini"]  # noqa: RUF012 (TFDS test-case convention)
    SKIP_CHECKSUMS = True
    SPLITS = {split: _MINI.split_size(split) for split in ("train", "validation", "test")}  # noqa: RUF012


if __name__ == "__main__":
    tfds.testing.test_main()
