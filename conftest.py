"""Shared pytest setup: the names every docstring example may use, and a fixed torch state per test."""

from __future__ import annotations

import math

import pytest
import torch

import initbook


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(math=math, torch=torch, initbook=initbook)


@pytest.fixture(autouse=True)
def _fixed_torch_state():
    """Every test starts from the same global seed and default dtype, and restores them afterwards."""
    torch.manual_seed(0)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
