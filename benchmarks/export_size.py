"""Size of a ``zoo.export`` directory against the size of the model's weights (issue #16: target ≤ 1.2×).

Builds a model (default CNN6, 27 classes, 5000 points), runs one training step so the optimizer has its
state (as after ``spectrazoo benchmark``), exports it to a temporary directory and prints every file's size,
the total and the ratio to the float32 weights. No data set is needed.

    python benchmarks/export_size.py [--model cnn6] [--classes 27]
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile


def main() -> None:
    """Export one model and print the size table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn6")
    parser.add_argument("--classes", type=int, default=27)
    parser.add_argument("--length", type=int, default=5000)
    args = parser.parse_args()

    import numpy as np

    import zoo

    model = zoo.build(args.model, num_classes=args.classes, input_length=args.length)
    x = np.random.default_rng(0).random((2, args.length, 1), dtype=np.float32)
    model.train_on_batch(x, np.eye(args.classes, dtype=np.float32)[[0, 1]])  # the optimizer builds its state
    weights = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = zoo.export(model, pathlib.Path(tmp) / "export", dataset_config="challenge")
        files = sorted(p for p in path.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        print(f"{args.model}, {args.classes} classes, {args.length} points: weights {weights / 1e6:.1f} MB")
        for file in files:
            print(f"  {file.relative_to(path)}: {file.stat().st_size / 1e6:.1f} MB")
        print(f"export total {total / 1e6:.1f} MB = {total / weights:.2f}x the weights")


if __name__ == "__main__":
    main()
