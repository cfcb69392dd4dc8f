"""Fixtures for the dataset tests."""
import pytest


@pytest.fixture
def mmagic_scope():
    """Registry lookups by type name resolve in MMagic's scope, as under the Runner."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmagic'):
        yield
