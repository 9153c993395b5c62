# The same steps as `make demo`: Python 3.11, the pinned requirements, the package, then the demo.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TFDS_DATA_DIR=/work/data/tensorflow_datasets

WORKDIR /work
COPY requirements.txt pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install -r requirements.txt
COPY zoo/ zoo/
COPY datasets/ datasets/
COPY benchmarks/ benchmarks/
RUN pip install --no-deps -e .

# `docker run IMAGE` runs the demo; `docker run IMAGE spectrazoo models` (or any sub-command) too.
CMD ["spectrazoo", "demo"]
