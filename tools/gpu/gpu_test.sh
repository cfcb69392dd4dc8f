#!/usr/bin/env bash
# Run ON the GPU machine: every test marked `gpu` (scan kernels and the whole model on CUDA against
# the torch reference). Only the files that hold such tests are collected, so this runs with or
# without the OpenMMLab stack installed (setup_stack.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t files < <(grep -rlE "pytest\.mark\.gpu" tests --include='test_*.py' | sort)
python3 -m pytest -v -s -m gpu -p no:cacheprovider "${files[@]}" "$@"
