#!/usr/bin/env bash
# The wheels benchmarks/gpu.py needs on the GPU image (Python 3.12, x86-64, JAX and PyTorch on
# CUDA, no TensorFlow) that the image does not hold: Keras, at this checkout's version, and the
# two of its requirements missing there (namex, optree). Everything else benchmarks/gpu.py
# imports is there (numpy, scipy, pandas, h5py, absl-py, rich, ml-dtypes; tf_ecg itself
# travels as the working tree). Writes .whl/ (ignored by git), about 2 MB. On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
#   python3 benchmarks/gpu.py --device gpu --minutes 7
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
version() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))"; }
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "keras==$(version keras)" "namex==$(version namex)" "optree==$(version optree)"
ls -l .whl
