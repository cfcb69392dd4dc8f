"""Skip mark of the tests that run compiled kernels on the GPU machine (``make gpu-test``)."""
import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA,
    reason='needs a CUDA device for the compiled kernels (make gpu-test runs these there)')
