"""Shared fixture of the snnc.nas tests: single-threaded torch.

The search tests run many tiny ops; with several threads on a shared 2-core
machine they spend most of their time waiting for each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run the test with ``torch.set_num_threads(1)``, restoring the previous value."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
