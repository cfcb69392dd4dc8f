#!/usr/bin/env bash
# Run ON the GPU machine (no registry), from the repo root: install the OpenMMLab stack from the
# carried wheels (.whl/stack, made by fetch_stack_wheels.sh), mamba_ssm if its wheel was carried
# (.whl/mamba_ssm-*.whl, built by build_mamba_ssm.sh), and this package (editable, no deps).
# The machine is throw-away, so its too-new transformers/huggingface_hub are simply replaced.
set -euo pipefail
cd "$(dirname "$0")/../.."
PIP="python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check"
$PIP .whl/stack/*.whl
if compgen -G ".whl/mamba_ssm-*.whl" > /dev/null; then $PIP .whl/mamba_ssm-*.whl; fi
$PIP --no-build-isolation -e .
python3 - <<'PY'
import torch, retinexmamba_mm, mmagic.models  # noqa: F401  (retinexmamba_mm first: compat)
from retinexmamba_mm.ops import available_backends
print('stack ready: torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      '| scan backends', available_backends())
PY
