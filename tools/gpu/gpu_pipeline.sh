#!/usr/bin/env bash
# Run ON the GPU machine after setup_stack.sh: the user workflow on GPUs, end to end.
#   tools/gpu/gpu_pipeline.sh DATA_ROOT OUT_DIR [ITERS]
# DATA_ROOT is the folder holding LOL-v1-style pairs in Test/{input,target} (e.g. data/LOLv1);
# the same pairs serve as train and val set (a pipeline check, not a benchmark). Steps:
#   1. 1-GPU fp32 and AMP training with validation (on 2+ GPUs the two run at the same time,
#      one per GPU), 2. tools/test.py on the fp32 checkpoint, and on 2+ GPUs:
#   3. torchrun on 2 GPUs with the same global batch (2 x 4) for ITERS/2 iterations, then
#      --resume of that run to ITERS, 4. the files the 2-GPU run wrote (rank 0 only),
#   5. tools/dist_test.sh on the 1-GPU checkpoint; then a summary (summarize_pipeline.py).
# A failed step is reported and the later steps still run; the exit status says whether all
# passed. Every log is written to OUT_DIR as it is produced (nothing is lost if the job is cut).
set -uo pipefail
DATA=$1; OUT=$2; ITERS=${3:-300}; HALF=$((ITERS / 2))
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
[ -d "$DATA/Test" ] || { echo "DATA_ROOT must hold Test/{input,target}: $DATA"; exit 2; }
CFG=configs/retinexmamba_lol_v1.py
W=/tmp/gpu_pipeline; rm -rf $W; mkdir -p "$OUT"
COMMON=(train_dataloader.dataset.data_root=$DATA val_dataloader.dataset.data_root=$DATA
        test_dataloader.dataset.data_root=$DATA train_dataloader.dataset.split=test
        train_cfg.val_interval=$HALF default_hooks.checkpoint.interval=$HALF
        default_hooks.logger.interval=25 log_processor.window_size=25 param_scheduler.0.end=150000)
NGPU=$(python -c 'import torch; print(torch.cuda.device_count())')
FAILED=()

step() { echo; echo "=== $1 ($(date +%T))"; }
# check NAME LOG STATUS: record a failed step and show the end of its log
check() {
  if [ "$3" -ne 0 ]; then
    FAILED+=("$1"); echo "!!! $1 FAILED (exit $3); end of $2:"; tail -25 "$2"
  fi
}
train1() {  # train1 NAME GPU [extra train.py args]: one 1-GPU run, log in OUT
  local name=$1 gpu=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu python tools/train.py $CFG "$@" --work-dir $W/$name --cfg-options \
      "${COMMON[@]}" train_cfg.max_iters=$ITERS > "$OUT/train_$name.log" 2>&1
}

nvidia-smi -L
step "1 GPU, fp32 and AMP, batch 8, $ITERS iterations"
if [ "$NGPU" -ge 2 ]; then
  echo "(concurrently: fp32 on GPU 0, AMP on GPU 1)"
  train1 fp32 0 & P1=$!
  train1 amp 1 --amp & P2=$!
  wait $P1; S1=$?; wait $P2; S2=$?
else
  train1 fp32 0; S1=$?
  train1 amp 0 --amp; S2=$?
fi
check "train fp32" "$OUT/train_fp32.log" $S1
check "train amp" "$OUT/train_amp.log" $S2
grep -hE "scan backend|Iter\(val\)|Saving checkpoint" "$OUT/train_fp32.log" "$OUT/train_amp.log"

step "1 GPU test of the fp32 checkpoint"
CUDA_VISIBLE_DEVICES=0 python tools/test.py $CFG $W/fp32/iter_$ITERS.pth --work-dir $W/test1 \
    --cfg-options "${COMMON[@]}" > "$OUT/test_1gpu.log" 2>&1
check "test 1 GPU" "$OUT/test_1gpu.log" $?
grep -E "Iter\(test\)" "$OUT/test_1gpu.log"
cp $W/test1/metrics.json "$OUT/metrics_1gpu.json" 2>/dev/null

if [ "$NGPU" -ge 2 ]; then
  step "2 GPUs (torchrun), 2 x 4 = global batch 8, $HALF iterations"
  tools/dist_train.sh $CFG 2 --work-dir $W/dist --cfg-options "${COMMON[@]}" \
      train_dataloader.batch_size=4 train_cfg.max_iters=$HALF > "$OUT/train_2gpu.log" 2>&1
  check "train 2 GPUs" "$OUT/train_2gpu.log" $?
  grep -E "Distributed|GPU number|world_size|Iter\(val\)|Saving checkpoint" "$OUT/train_2gpu.log"

  step "2 GPUs, --resume (latest checkpoint in the work dir) to $ITERS iterations"
  tools/dist_train.sh $CFG 2 --work-dir $W/dist --resume --cfg-options "${COMMON[@]}" \
      train_dataloader.batch_size=4 train_cfg.max_iters=$ITERS > "$OUT/train_2gpu_resume.log" 2>&1
  check "resume 2 GPUs" "$OUT/train_2gpu_resume.log" $?
  grep -iE "resum|Advance|Load checkpoint|Iter\(train\) \[ *$((HALF + 25))/|Iter\(val\)" \
      "$OUT/train_2gpu_resume.log"

  # Checkpoints, logs, scalars and the config dump come from rank 0 only; the validation images
  # (vis_image) are drawn by every rank, each for its share of the val set.
  step "files written by the 2-GPU runs (one log per run, no *rank1* files)"
  (cd $W/dist && find . -maxdepth 3 -not -path '*/vis_image/*' | sort) | tee "$OUT/dist_files.txt"
  echo "files with 'rank' in the name: $(find $W/dist -name '*rank*' | wc -l)" | tee -a "$OUT/dist_files.txt"
  for d in $W/dist/*/vis_data/vis_image; do
    echo "$d: $(ls $d | wc -l) images"; done | tee -a "$OUT/dist_files.txt"

  step "2 GPU test of the 1-GPU checkpoint"
  tools/dist_test.sh $CFG $W/fp32/iter_$ITERS.pth 2 --work-dir $W/test2 --cfg-options "${COMMON[@]}" \
      > "$OUT/test_2gpu.log" 2>&1
  check "test 2 GPUs" "$OUT/test_2gpu.log" $?
  grep -E "Iter\(test\)" "$OUT/test_2gpu.log"
  cp $W/test2/metrics.json "$OUT/metrics_2gpu.json" 2>/dev/null
fi
step "summary"
python tools/gpu/summarize_pipeline.py $W | tee "$OUT/summary.txt"
if [ ${#FAILED[@]} -ne 0 ]; then echo "FAILED steps: ${FAILED[*]}"; exit 1; fi
echo "all steps passed"
