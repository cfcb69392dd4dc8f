#!/usr/bin/env bash
# Run ON the GPU machine (after setup_stack.sh): every test marked `gpu` (kernel and whole-model
# parity of the CUDA scan backends against the torch reference), then the rest of the suite's
# CUDA-independent parts are left to CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pytest -q -m gpu -p no:cacheprovider tests "$@"
