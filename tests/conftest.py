"""Shared test fixtures: paths to the real test data beside the checkout (../shared/data)."""

import functools
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


@functools.lru_cache(maxsize=None)
def measured_complexity(name):
    """``Complexity`` of a freshly built variant, measured once per test session."""
    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import measure
    from goatpose_edge.variants import VARIANTS

    return measure(VARIANTS[name], build_model(name))
