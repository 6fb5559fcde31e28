"""Shared pytest setup: the names every docstring example may use, and a fixed torch state per test."""

from __future__ import annotations

import math
import os
import zlib

import pytest
import torch

import initbook

# Shifts every seed below; CI leaves it at 0. Re-run with INITBOOK_TEST_SEED=1, 2, ... for fresh draws.
SEED_OFFSET = int(os.environ.get("INITBOOK_TEST_SEED", "0"))


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(math=math, torch=torch, initbook=initbook)


@pytest.fixture(autouse=True)
def _fixed_torch_state():
    """Every test starts from the same global seed and default dtype, and restores them afterwards."""
    torch.manual_seed(SEED_OFFSET)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


@pytest.fixture
def seed(request) -> int:
    """A seed of the test's own (from its node id), shifted by ``INITBOOK_TEST_SEED``.

    Every random draw of a statistical test comes from it (``tests/_stats.py``: ``seeded(seed, stream)``).
    """
    return zlib.crc32(request.node.nodeid.encode()) + 1_000_003 * SEED_OFFSET


@pytest.fixture
def one_thread():
    """Run single-threaded: the tensors in the statistical tests are small, and on a busy 2-core machine
    spinning intra-op threads made them 10-100 times slower (measured), while one thread loses nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """``INITBOOK_SEEDED_ONLY=1`` keeps only the tests that draw from the ``seed`` fixture, i.e. every
    statistical test; the others are exact (their random inputs, if any, come from torch's global
    generator, reseeded above), so a seed sweep need not rerun them."""
    if not os.environ.get("INITBOOK_SEEDED_ONLY"):
        return
    keep = [item for item in items if "seed" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
