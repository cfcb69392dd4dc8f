"""Suite-wide set-up that must happen before any test module is imported."""
import os

import torch

# Without a GPU the triton kernels can only run in Triton's interpreter, and triton.jit reads
# TRITON_INTERPRET when a kernel module is first imported, which any test may trigger first.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')
