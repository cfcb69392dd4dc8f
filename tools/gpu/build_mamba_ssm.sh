#!/usr/bin/env bash
# Build mamba_ssm's CUDA selective scan for Hopper (sm_90 only) on the GPU machine.
# The stock setup.py compiles for 5+ architectures and downloads a prebuilt wheel first; offline we
# force the source build and keep only compute_90, which takes ~2.5 min on 16 cores (shared/notes/gpu.md).
# Usage: tools/gpu/build_mamba_ssm.sh SDIST.tar.gz OUT_DIR   -> OUT_DIR/mamba_ssm-*.whl
set -euo pipefail
sdist=$(realpath "$1"); out=$(realpath -m "$2"); work=$(mktemp -d)
mkdir -p "$out"
tar xzf "$sdist" -C "$work"
cd "$work"/mamba_ssm-*
python3 - <<'PY'
import re
src = open('setup.py').read()
pair = re.compile(r'cc_flag\.append\("-gencode"\)\s*\n\s*cc_flag\.append\("arch=compute_(\d+),code=sm_\d+"\)')
src = pair.sub(lambda m: m.group(0) if m.group(1) == '90' else 'pass', src)
open('setup.py', 'w').write(src)
PY
grep -c 'compute_90' setup.py
MAX_JOBS=16 MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=FALSE \
    python3 -m pip wheel -q --no-build-isolation --no-deps -w "$out" .
ls -la "$out"
