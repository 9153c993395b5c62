"""Mixed precision in the runner: the per-machine choice, the verification on `mini`, the resume guard."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest

from zoo.errors import UserError
from zoo.training.precision import cpu_bf16_flags, resolve_precision
from zoo.training.protocol import Protocol, plan_runs
from zoo.training.runner import run_benchmark

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

EPOCHS = 6
SEEDS = (0, 1, 2)
CPUINFO_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n"


def test_auto_picks_bfloat16_only_where_the_hardware_has_it():
    assert cpu_bf16_flags(CPUINFO_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(CPUINFO_PLAIN) == []
    assert resolve_precision("auto", cpuinfo=CPUINFO_BF16) == "mixed_bfloat16"
    assert resolve_precision("auto", cpuinfo=CPUINFO_PLAIN) == "float32"
    assert resolve_precision("auto", accelerator=True, cpuinfo=CPUINFO_PLAIN) == "mixed_bfloat16"
    assert resolve_precision("float32", cpuinfo=CPUINFO_BF16) == "float32"
    with pytest.raises(ValueError, match="precision: expected one of"):
        resolve_precision("float16")


@pytest.fixture(scope="module")
def rows_by_precision(tfds_data_dir, tmp_path_factory) -> dict[str, list[dict]]:
    """VGG (ReLU FC) on mini, seeds 0-2, trained in float32 and in mixed_bfloat16.

    Only the first mixed_bfloat16 run is exported (the one test that loads an export reads it): an export
    costs about as much as two or three epochs here.
    """
    rows: dict[str, list[dict]] = {"float32": [], "mixed_bfloat16": []}
    for precision, seed in itertools.product(rows, SEEDS):
        out = tmp_path_factory.mktemp(f"{precision}-seed{seed}")
        exported = precision == "mixed_bfloat16" and seed == SEEDS[0]
        rows[precision] += run_benchmark(
            plan_runs("mini", ["vgg"], ["relu"], [seed]),
            Protocol(max_epochs=EPOCHS),
            out,
            saved_models_dir=out / "saved" if exported else None,
            precision=precision,
            verbose=0,
        )
    return rows


def test_mixed_precision_reaches_float32_accuracy_within_the_seed_spread(rows_by_precision):
    accuracy = {p: [row["test_accuracy"] for row in rows] for p, rows in rows_by_precision.items()}
    full, mixed = accuracy["float32"], accuracy["mixed_bfloat16"]
    one_spectrum = 1 / rows_by_precision["float32"][0]["test_size"]
    spread = max(full) - min(full) + one_spectrum
    assert abs(statistics.median(mixed) - statistics.median(full)) <= spread, accuracy
    # training works in bfloat16: the median seed far above chance (1/3); one seed of 6 epochs may dip to 0.53
    assert statistics.median(mixed) > 0.5, accuracy


def test_rows_record_the_precision_and_the_float32_export_reproduces_the_row(rows_by_precision):
    import numpy as np

    import zoo
    from synthetic_spectra.generator import generate

    row = rows_by_precision["mixed_bfloat16"][0]
    assert row["precision"] == "mixed_bfloat16" and row["jit_compile"] == "auto"
    assert rows_by_precision["float32"][0]["precision"] == "float32"
    x, y = generate("mini", "test")
    probabilities = zoo.load(row["export_dir"]).predict(x.astype(np.float32))
    assert probabilities.dtype == np.float32
    assert np.mean(np.argmax(probabilities, axis=-1) == y) == pytest.approx(row["test_accuracy"])


def test_wall_and_cpu_time_are_the_sums_of_the_logged_epochs(rows_by_precision):
    row = rows_by_precision["float32"][0]
    seconds, cpu_seconds = row["history"]["epoch_seconds"], row["history"]["epoch_cpu_seconds"]
    assert len(seconds) == len(cpu_seconds) == EPOCHS and all(s > 0 for s in seconds + cpu_seconds)
    assert row["wall_time_s"] == pytest.approx(sum(seconds), abs=0.01)
    assert row["cpu_time_s"] == pytest.approx(sum(cpu_seconds), abs=0.01)


def test_a_run_cannot_resume_in_another_precision(tfds_data_dir, tmp_path):
    spec = plan_runs("mini", ["vgg"], ["relu"], [0])
    run_dir = tmp_path / "runs" / spec[0].name
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    (run_dir / "settings.json").write_text(json.dumps({"precision": "float32", "jit_compile": "auto"}))
    with pytest.raises(UserError, match="started with precision='float32', not 'mixed_bfloat16'"):
        run_benchmark(spec, Protocol(max_epochs=3), tmp_path, saved_models_dir=None,
                      precision="mixed_bfloat16", verbose=0)  # fmt: skip


def test_prnet_trains_under_mixed_precision_with_a_float32_front_end():
    import keras
    import numpy as np

    import zoo
    from zoo.training.precision import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        model = zoo.build("prnet", 3, 200)
    assert model.get_layer("peak_coding").compute_dtype == "float32"
    assert model.get_layer("output").compute_dtype == "float32"
    x = np.random.default_rng(0).random((8, 200, 1)).astype("float32")
    loss = model.train_on_batch(x, keras.utils.to_categorical(np.arange(8) % 3, 3))
    assert np.isfinite(np.ravel(loss)[0])
