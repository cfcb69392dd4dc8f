"""Fixtures for the inference API tests."""
import pytest


@pytest.fixture(autouse=True, scope='module')
def _one_thread(single_thread_module):
    """Every module here runs tiny models: one intra-op thread (tests/conftest.py)."""
    yield
