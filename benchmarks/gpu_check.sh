#!/usr/bin/env bash
# The GPU check (issue 12): smoke suite, timer sanity, fast paths, Inception fp32/bf16 and a slice of the
# standard suite on one device, with a summary table; see benchmarks/gpu_check.py.
#   bash benchmarks/gpu_check.sh                    # on CUDA: writes results/reference/gpu-<device>/
#   bash benchmarks/gpu_check.sh --device cpu --out /tmp/check   # tiny sizes, as make test runs it
# Data and weights: $GMBENCH_DATA_ROOT and $GMBENCH_INCEPTION_WEIGHTS, else ../shared beside the repository.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export GMBENCH_DATA_ROOT="${GMBENCH_DATA_ROOT:-$repo/../shared/datasets}"
export GMBENCH_INCEPTION_WEIGHTS="${GMBENCH_INCEPTION_WEIGHTS:-$repo/../shared/weights/fid-inception-2015-12-05.torchscript.pt}"
python="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
exec "$python" benchmarks/gpu_check.py "$@"
