"""onnxruntime session options shared by every place snnc runs an ONNX graph (stream backend, partitions)."""

from __future__ import annotations

from typing import Any

__all__ = ["session_options", "runtime_threads"]


def runtime_threads(threads: int | None) -> int:
    """The intra-op threads an ONNX runtime gets: ``threads``, or for 0/None as many as torch uses.

    One thread count per process: by default torch, onnxruntime and OpenVINO all use the
    physical cores, and where a caller set torch's count (``--threads``, a test worker's 1) the
    runtimes follow it instead of starting their own pools over every core (two pools that
    spin on the same cores slow each other down many times over).
    """
    if threads:
        return int(threads)
    import torch

    return int(torch.get_num_threads())


def session_options(threads: int | None) -> Any:
    """onnxruntime session options for ``threads`` intra-op threads (0/None: :func:`runtime_threads`).

    With more than one thread the workers' busy-wait spinning is turned off
    (``session.intra_op.allow_spinning = 0``): on a CPU shared with the reader and
    encoder, spinning threads take the cores the pipeline needs (issue 18 measured
    0.86x with spinning and 1.36x without, at 2 threads, against 1 thread).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    n = runtime_threads(threads)
    opts.intra_op_num_threads = n
    if n > 1:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts
