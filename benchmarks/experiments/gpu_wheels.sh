#!/usr/bin/env bash
# Download what benchmarks/experiments/gpu_study.py needs on the GPU machine and that its image lacks (Python 3.12,
# x86-64, no network there): Keras and the two packages Keras needs beyond the image's. Into .whl/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "keras==3.15.1" "namex==0.1.0" "optree==0.20.0"
ls -l .whl
