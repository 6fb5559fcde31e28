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
    """A seed of the test's own (from its node id), shifted by ``INITBOOK_TEST_SEED``."""
    return zlib.crc32(request.node.nodeid.encode()) + 1_000_003 * SEED_OFFSET
