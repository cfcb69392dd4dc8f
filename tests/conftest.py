"""Suite-wide set-up (before any test module is imported) and shared fixtures."""
import contextlib
import os

import pytest
import torch

# Without a GPU the triton kernels can only run in Triton's interpreter, and triton.jit reads
# TRITON_INTERPRET when a kernel module is first imported, which any test may trigger first.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')


@contextlib.contextmanager
def _one_intra_op_thread():
    """Tiny tensors: one intra-op thread is faster, and it avoids OpenMP barrier stalls that
    make these tests take seconds instead of milliseconds on an oversubscribed CI machine (on a
    busy 2-core machine the scan ran up to 6x slower with two threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def single_thread():
    with _one_intra_op_thread():
        yield


@pytest.fixture(scope='module')
def single_thread_module():
    """``single_thread`` for a whole test module (``pytest.mark.usefixtures``)."""
    with _one_intra_op_thread():
        yield


@pytest.fixture(scope='module')
def true_fp32():
    """GPU comparisons in true fp32: cuDNN convolutions (and, if enabled, matmuls) default to
    TF32 on Ampere and later, a 1e-3 relative error that would swamp the 1e-4 parity bounds."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
