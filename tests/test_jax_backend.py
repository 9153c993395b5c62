"""The runner and the zoo's models under ``KERAS_BACKEND=jax`` with TensorFlow made unimportable (as on a
JAX-only GPU host)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax")

from no_tensorflow import HIDE_TENSORFLOW

pytestmark = pytest.mark.slow  # minutes of CPU: started first (tests/conftest.py)

SCRIPT = HIDE_TENSORFLOW + textwrap.dedent(
    """
    from zoo.training.protocol import Protocol, plan_runs
    from zoo.training.runner import run_benchmark

    out = sys.argv[1]
    specs = plan_runs("mini", ["cnn2"], ["relu"], [0]) + plan_runs("mini", ["prnet"], seeds=[0])
    rows = run_benchmark(specs, Protocol(max_epochs=2), out, saved_models_dir=out + "/saved",
                         cross_tests=["mini"], verbose=0)
    keys = ("model", "backend", "epochs_run", "test_accuracy", "cross_tests", "tensorboard_dir")
    summary = [{key: row[key] for key in keys} for row in rows]
    print(json.dumps({"rows": summary, "tensorflow_loaded": "tensorflow" in sys.modules}))
    """
)


def test_runner_trains_from_numpy_arrays_without_tensorflow(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert not output["tensorflow_loaded"]
    assert [row["model"] for row in output["rows"]] == ["cnn2", "prnet"]  # PRNet: gather, argmax
    for row, run in zip(output["rows"], ["cnn2-relu-seed0", "prnet-default-seed0"], strict=True):
        assert row["backend"] == "jax" and row["epochs_run"] == 2 and row["tensorboard_dir"] is None
        assert row["cross_tests"]["mini"]["test_accuracy"] == row["test_accuracy"]
        export = tmp_path / "saved" / "mini" / run
        assert (export / "model.keras").exists()
        assert json.loads((export / "metadata.json").read_text())["model"] == row["model"]
        assert (tmp_path / "runs" / run / "history.csv").exists()


#: The eight of the authors' later benchmark: name -> input length of the forward pass.
MORE = {"park": 320, "vecsei": 320, "fan": 64, "oviedo": 120, "sang": 64, "mozaffari": 64,
        "bhattacharya": 64, "schuetzke": 64}  # fmt: skip
MODELS_SCRIPT = HIDE_TENSORFLOW + textwrap.dedent(
    """
    import keras
    import numpy as np
    import zoo

    lengths, trained = json.loads(sys.argv[1]), sys.argv[2].split(",")
    out = {}
    for name, length in lengths.items():
        x = np.random.default_rng(0).random((4, length, 1), dtype=np.float32)
        model = zoo.build(name, num_classes=3, input_length=length)
        record = {"probabilities": model.predict(x, verbose=0).tolist()}
        if name in trained:  # one training step (the LSTM)
            y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
            record["loss"] = float(model.train_on_batch(x, y, return_dict=True)["loss"])
        if name != "fan":  # 290 M parameters at 5000 points: counted under TensorFlow only
            record["params_27"] = zoo.build(name, 27, compile=False).count_params()
        out[name] = record
        keras.backend.clear_session()
    print(json.dumps({"models": out, "backend": keras.backend.backend(),
                      "tensorflow_loaded": "tensorflow" in sys.modules}))
    """
)


def test_more_models_build_predict_and_train_under_jax() -> None:
    """Forward passes at short inputs (park's trunk needs >= 311 points), one training step, exact counts."""
    spec = json.loads((pathlib.Path(__file__).parent / "fixtures" / "zoo_param_counts.json").read_text())
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", MODELS_SCRIPT, json.dumps(MORE), "bhattacharya"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["backend"] == "jax" and not output["tensorflow_loaded"]
    assert list(output["models"]) == list(MORE)
    for name, record in output["models"].items():
        probabilities = np.array(record["probabilities"])
        assert probabilities.shape == (4, 3), name
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        if name != "fan":
            assert record["params_27"] == spec["params"][name]["27"], name
    assert np.isfinite(output["models"]["bhattacharya"]["loss"])


LOAD_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import numpy as np
    import zoo

    model = zoo.load_keras_model(sys.argv[1])
    probabilities = model.predict(np.load(sys.argv[2]), verbose=0)
    print(json.dumps({"backend": keras.backend.backend(), "probabilities": probabilities.tolist()}))
    """
)


def test_an_export_loads_as_a_keras_model_under_jax(tmp_path):
    """Exported under TensorFlow (no model.keras), rebuilt under JAX with the SavedModel's weights."""
    import zoo

    model = zoo.build("cnn_bn", num_classes=3, input_length=320, compile=False)  # BN: non-trainable weights
    path = zoo.export(model, tmp_path / "cnn_bn")
    assert not (path / "model.keras").exists()
    x = np.random.default_rng(0).random((4, 320, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(path), str(tmp_path / "x.npy")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["backend"] == "jax"
    expected = model.predict(x, verbose=0)
    assert not np.allclose(expected, expected[0])  # distinct inputs, distinct answers
    np.testing.assert_allclose(np.array(output["probabilities"]), expected, rtol=1e-5, atol=1e-7)
