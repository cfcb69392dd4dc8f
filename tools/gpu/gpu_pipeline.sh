#!/usr/bin/env bash
# Run ON the GPU machine after setup_stack.sh: the user workflow on GPUs, end to end.
#   tools/gpu/gpu_pipeline.sh DATA_ROOT OUT_DIR [ITERS]
# DATA_ROOT holds LOL-v1-style pairs (Test/{input,target}); the same pairs serve as train and val
# set (a pipeline check, not a benchmark). Steps: 1-GPU fp32 and AMP training with validation,
# tools/test.py; if 2+ GPUs: torchrun on 2 GPUs with the same global batch (2 x 4), resume of an
# interrupted 2-GPU run, tools/dist_test.sh on the 1-GPU checkpoint. Logs and a summary in OUT_DIR.
set -euo pipefail
DATA=$1; OUT=$2; ITERS=${3:-300}; HALF=$((ITERS / 2))
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
CFG=configs/retinexmamba_lol_v1.py
W=/tmp/gpu_pipeline; rm -rf $W; mkdir -p "$OUT"
COMMON=(train_dataloader.dataset.data_root=$DATA val_dataloader.dataset.data_root=$DATA
        test_dataloader.dataset.data_root=$DATA train_dataloader.dataset.split=test
        train_cfg.val_interval=$HALF default_hooks.checkpoint.interval=$HALF
        default_hooks.logger.interval=25 param_scheduler.0.end=150000)

step() { echo; echo "=== $1"; }
step "1 GPU, fp32, batch 8, $ITERS iterations"
CUDA_VISIBLE_DEVICES=0 python tools/train.py $CFG --work-dir $W/fp32 --cfg-options \
    "${COMMON[@]}" train_cfg.max_iters=$ITERS 2>&1 | tee "$OUT/train_fp32.log" | grep -E "Iter\(|PSNR|scan" || true
step "1 GPU, AMP"
CUDA_VISIBLE_DEVICES=0 python tools/train.py $CFG --amp --work-dir $W/amp --cfg-options \
    "${COMMON[@]}" train_cfg.max_iters=$ITERS 2>&1 | tee "$OUT/train_amp.log" | grep -E "Iter\(|PSNR" || true
step "1 GPU test of the fp32 checkpoint"
CUDA_VISIBLE_DEVICES=0 python tools/test.py $CFG $W/fp32/iter_$ITERS.pth --work-dir $W/test1 \
    --cfg-options "${COMMON[@]}" 2>&1 | tee "$OUT/test_1gpu.log" | tail -3
cp $W/test1/metrics.json "$OUT/metrics_1gpu.json"

if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  step "2 GPUs (torchrun), 2 x 4 = global batch 8, $HALF iterations, then --resume to $ITERS"
  tools/dist_train.sh $CFG 2 --work-dir $W/dist --cfg-options "${COMMON[@]}" \
      train_dataloader.batch_size=4 train_cfg.max_iters=$HALF 2>&1 | tee "$OUT/train_2gpu.log" \
      | grep -E "Iter\(|PSNR|rank|world" || true
  tools/dist_train.sh $CFG 2 --work-dir $W/dist --resume --cfg-options "${COMMON[@]}" \
      train_dataloader.batch_size=4 train_cfg.max_iters=$ITERS 2>&1 | tee "$OUT/train_2gpu_resume.log" \
      | grep -E "Iter\(|PSNR|resum|Advance" || true
  step "files written by the 2-GPU run (rank 0 only)"
  find $W/dist -maxdepth 2 | sort | tee "$OUT/dist_files.txt"
  step "2 GPU test of the 1-GPU checkpoint"
  tools/dist_test.sh $CFG $W/fp32/iter_$ITERS.pth 2 --work-dir $W/test2 --cfg-options "${COMMON[@]}" \
      2>&1 | tee "$OUT/test_2gpu.log" | tail -3
  cp $W/test2/metrics.json "$OUT/metrics_2gpu.json"
fi
step "summary"
python tools/gpu/summarize_pipeline.py $W | tee "$OUT/summary.txt"
