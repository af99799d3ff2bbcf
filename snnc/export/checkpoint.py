"""Deprecated spelling of :func:`snnc.models.loading.save_network` (snnc 0.1 name).

Checkpoints are written and read in one place: :mod:`snnc.checkpoint` (format)
and :mod:`snnc.models.loading` (networks).
"""
from __future__ import annotations

from snnc.models.loading import save_network as save_checkpoint

__all__ = ["save_checkpoint"]
