#!/usr/bin/env bash
# Run HERE (a machine with the package registry): download the wheels the GPU machine lacks into
# .whl/stack (ignored by git; carried to the device with `carry: [".whl/stack"]`). The GPU machine
# has Python 3.12 with torch, numpy 2, opencv, scipy, scikit-image... but no OpenMMLab stack, and a
# transformers/huggingface_hub too new for diffusers 0.24 (which mmagic 1.2 imports).
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP=${PIP:-.venv/bin/pip}
PLATFORMS="--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
mkdir -p .whl/stack
# shellcheck disable=SC2086
$PIP download -q --no-deps --only-binary=:all: $PLATFORMS -d .whl/stack \
    mmengine==0.10.7 mmcv-lite==2.1.0 mmagic==1.2.0 addict yapf termcolor platformdirs \
    diffusers==0.24.0 huggingface_hub==0.25.2 transformers==4.48.3 tokenizers==0.21.4 \
    lpips==0.1.4 resize-right albumentations==2.0.8 albucore==0.0.24 simsimd stringzilla einops \
    pydantic==2.14.4 pydantic_core annotated_types typing_inspection
du -sh .whl/stack
