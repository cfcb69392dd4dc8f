"""Fixtures for the inference API tests."""
import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine the thread
    barriers made the scan up to 6x slower (measured); the setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
