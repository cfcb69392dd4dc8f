#!/usr/bin/env bash
# The README's example figure, made by tools/enhance.py: a LOL-v1 test image | its estimated
# illumination map | the enhanced output, written to docs/figures/enhance_example.png.
#
#   bash docs/figures/make_enhance_example.sh CHECKPOINT [CONFIG] [IMAGE]
#
# CONFIG defaults to configs/retinexmamba_lol_v1.py (use the config the checkpoint was trained
# with, e.g. configs/demo/retinexmamba_demo.py); IMAGE to LOL-v1 test image 493 (toys and a
# colour chart). Run from the repository root.
set -euo pipefail
checkpoint=${1:?usage: $0 CHECKPOINT [CONFIG] [IMAGE]}
config=${2:-configs/retinexmamba_lol_v1.py}
image=${3:-data/LOLv1/Test/input/493.png}
python=${PYTHON:-.venv/bin/python}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$python" tools/enhance.py "$image" --checkpoint "$checkpoint" --config "$config" --out "$out" \
    --illumination --side-by-side
name=$(basename "${image%.*}")
cp "$out/${name}_side_by_side.png" docs/figures/enhance_example.png
echo "wrote docs/figures/enhance_example.png (input | illumination | output)"
