#!/bin/bash
# On a CUDA machine, from the repository root: parity tests of the triton scan backend, then its
# benchmark. Logs go to $OUT (default /tmp/gpu_out). Works without the OpenMMLab stack installed
# (tools/gpu/ops_only.py). Triton compiles each kernel variant once into its disk cache; the
# benchmark's variants are compiled by parallel warm-up processes while the tests run.
#   bash tools/gpu/run_gpu_tests.sh            # tests + full benchmark
#   QUICK=1 bash tools/gpu/run_gpu_tests.sh    # tests + default sizes only
set -o pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
BENCH_ARGS=${QUICK:+--quick}
WARM=${WARM:-6}
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/env.txt"

for i in $(seq 0 $((WARM - 1))); do
  $PY tools/gpu/bench_scan.py $BENCH_ARGS --warm "$i/$WARM" > "/tmp/warm_$i.log" 2>&1 &
done
timeout ${TEST_TIMEOUT:-300} $PY tools/gpu/ops_only.py -m pytest -q -m gpu -p no:cacheprovider \
  --durations=8 tests/test_ops/test_triton_scan.py 2>&1 | tee "$OUT/pytest.log"
status=$?
wait
cat /tmp/warm_*.log > "$OUT/warm.log"
timeout ${BENCH_TIMEOUT:-400} $PY tools/gpu/bench_scan.py $BENCH_ARGS --out "$OUT" 2>&1 \
  | tee "$OUT/bench.log"
exit $status
