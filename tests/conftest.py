"""Suite-wide set-up (before any test module is imported) and shared fixtures."""
import os

import pytest
import torch

# Without a GPU the triton kernels can only run in Triton's interpreter, and triton.jit reads
# TRITON_INTERPRET when a kernel module is first imported, which any test may trigger first.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')


@pytest.fixture
def single_thread():
    """Tiny tensors: one intra-op thread is faster, and it avoids OpenMP barrier stalls that
    make these tests take seconds instead of milliseconds on an oversubscribed CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
