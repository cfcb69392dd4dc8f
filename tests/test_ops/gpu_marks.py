"""Skip marks: compiled kernels run on the GPU machine (``make gpu-test``); Triton's CPU
interpreter runs the same kernels where there is no CUDA."""
import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA,
    reason='needs a CUDA device for the compiled kernels (make gpu-test runs these there)')
needs_interpreter = pytest.mark.skipif(
    HAS_CUDA, reason='CUDA present: the gpu tests cover the compiled kernels')
