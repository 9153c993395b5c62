"""The runner under ``KERAS_BACKEND=jax`` with TensorFlow made unimportable (as on a JAX-only GPU host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent(
    """
    import importlib.machinery
    import json
    import sys

    # TensorFlow and TFDS are invisible, as if not installed (imports fail, find_spec returns None).
    path_finder = importlib.machinery.PathFinder.find_spec

    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            return None
        return path_finder(name, path, target)

    importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
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
