#!/usr/bin/env bash
# On the GPU machine, from the repository root: one round of the speed work in one call --
# GPU parity tests, a profile by layer and kernel, then the benchmark table. Logs go to $OUT.
# Needs no OpenMMLab stack; installs a carried mamba_ssm wheel (.whl/mamba_ssm-*.whl) if present.
#   bash tools/gpu/perf_round.sh                 # tests + profiles + benchmark
#   SKIP_TESTS=1 BENCH_ARGS="--sections infer" bash tools/gpu/perf_round.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for wheel in .whl/mamba_ssm-*.whl; do
  [ -e "$wheel" ] && python3 -m pip install -q --no-index --no-deps "$wheel"
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.txt"
[ -n "${SKIP_TESTS:-}" ] || bash tools/gpu/gpu_test.sh -q 2>&1 | tail -25 | tee "$OUT/tests.txt"
profile="python3 tools/analysis/profile_model.py --device cuda --backend triton --top 25"
{ $profile --size 400x600
  $profile --train --batch 8 --size 128x128
} 2>&1 | grep -v "^USDT\|UserWarning\|_warn_once" > "$OUT/profile.txt"
python3 tools/analysis/benchmark.py --device cuda ${BENCH_ARGS:---backends mamba_ssm,triton \
  --dtypes fp32,bf16 --sections scan,infer,train} 2>&1 | grep -v "^USDT" | tee "$OUT/bench.txt"
