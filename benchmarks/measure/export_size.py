"""Size of a ``zoo.export`` directory against the size of the model's weights (issue #16: target ≤ 1.2×).

Builds each model (default CNN6, 27 classes, 5000 points), runs one training step so the optimizer has its
state (as after ``spectrazoo benchmark``), exports it to a temporary directory and prints every file's size,
the total and the ratio to the float32 weights; then one Markdown table row per model
(``benchmarks/results/export_size.md``). No data set is needed.

    python benchmarks/measure/export_size.py [--models cnn6 vgg ...] [--classes 27] [--length 5000]
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Sequence

from zoo.checks import OneLineParser, int_argument

MB = 1e6


def measure(name: str, classes: int, length: int) -> dict[str, float]:
    """Export ``name`` after one training step; print its files; return the sizes (bytes) by part."""
    import keras
    import numpy as np

    import zoo

    model = zoo.build(name, num_classes=classes, input_length=length)
    x = np.random.default_rng(0).random((2, length, 1), dtype=np.float32)
    model.train_on_batch(x, np.eye(classes, dtype=np.float32)[[0, 1]])  # the optimizer builds its state
    sizes = {"weights": sum(int(np.prod(v.shape)) * 4 for v in model.weights)}
    with tempfile.TemporaryDirectory() as tmp:
        path = zoo.export(model, pathlib.Path(tmp) / "export", dataset_config="challenge")
        files = sorted(p for p in path.rglob("*") if p.is_file())
        print(f"{name}, {classes} classes, {length} points: weights {sizes['weights'] / MB:.1f} MB")
        for file in files:
            print(f"  {file.relative_to(path)}: {file.stat().st_size / MB:.1f} MB")
        part = {"saved_model.pb": "graph", "variables": "variables", "model.keras": "keras_file"}
        for file in files:
            key = part.get(file.relative_to(path).parts[0], "other")
            sizes[key] = sizes.get(key, 0) + file.stat().st_size
        sizes["total"] = sum(file.stat().st_size for file in files)
    print(f"export total {sizes['total'] / MB:.1f} MB = {sizes['total'] / sizes['weights']:.2f}x the weights")
    keras.backend.clear_session()
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    """Export each model and print the size tables."""
    from zoo.models.registry import list_models

    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn6"])
    parser.add_argument("--classes", type=int_argument(2), default=27)
    parser.add_argument("--length", type=int_argument(16), default=5000)
    args = parser.parse_args(argv)
    unknown = [name for name in args.models if name not in list_models()]
    if unknown:
        parser.error(f"--models: unknown model {unknown[0]!r}")

    rows = [(name, measure(name, args.classes, args.length)) for name in args.models]
    print("\n| model | weights MB | saved_model.pb MB | variables/ MB | model.keras MB | export MB | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, sizes in rows:
        cells = [sizes.get(key, 0) / MB for key in ("weights", "graph", "variables", "keras_file", "total")]
        ratio = sizes["total"] / sizes["weights"]
        print(f"| {name} | " + " | ".join(f"{cell:.2f}" for cell in cells) + f" | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
