import pytest
import torch


@pytest.fixture
def single_thread():
    """Tiny tensors: one intra-op thread is faster, and it avoids OpenMP barrier stalls that
    make these tests take seconds instead of milliseconds on an oversubscribed CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
