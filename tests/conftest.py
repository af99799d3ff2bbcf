"""Suite-wide pytest set-up (``make test`` runs ``pytest -n 2 --dist loadfile``).

Every test starts with torch on one intra-op thread, in a serial run as in each pytest-xdist
worker (one process on one of CI's two cores: two threads per worker would oversubscribe them,
and the tiny test nets spend most of their time in thread synchronisation with two threads, 10-100x
slower on a shared 2-core machine). A test that sets another count (thread tests, the CLI's
``--threads``) gets one thread back when it ends (:func:`_one_torch_thread`). A file runs whole on
one worker (``--dist loadfile``: its module-scoped fixtures are built once), and the files whose
setup takes longest go first so that no worker is left with one of them at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

#: Test files that take longest in a serial run (measured with ``--durations``), longest first. Only the order of
#: the collected files depends on it: a file missing here, or listed and gone, runs as usual.
LONGEST_FIRST = (
    "test_distributed.py",
    "test_trust_outputs.py",
    "test_demo.py",
    "test_energy_from_spikes.py",
    "test_export_onnx.py",
    "test_nir_interop.py",
    "test_lava_int8.py",
    "test_stream.py",
    "test_nas_search.py",
    "test_openvino_backend.py",
    "test_export_nir.py",
    "test_train_classification.py",
    "test_int8_openvino.py",
    "test_train_stereo.py",
    "test_hybrid_int8.py",
    "test_int8_cli.py",
    "test_malformed_inputs.py",
    "test_int8_export.py",
    "test_stereo_fullres.py",
    "test_matching_rewrite.py",
)


def _worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


def _lava_first() -> None:
    """Import Lava's message infrastructure before any test module imports openvino.

    Lava calls ``multiprocessing.set_start_method('fork')`` (without ``force``) when that module is
    imported; openvino's import fixes the start method first, after which Lava's import raises
    "context has already been set". A worker collects every test file, so the order of imports
    would otherwise depend on which files it collects.
    """
    import importlib.util

    if importlib.util.find_spec("lava") is not None:
        importlib.import_module("lava.magma.runtime.message_infrastructure.multiprocessing")


def pytest_configure(config: pytest.Config) -> None:
    _lava_first()
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Whatever thread count a test sets, the next test (and module fixture) starts on one thread again."""
    import torch

    yield
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In xdist workers, order the files longest first (every worker sorts alike, so collections agree)."""
    if not _worker():
        return
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: tests keep their order in a file
