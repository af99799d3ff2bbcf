"""onnxruntime session options shared by every place snnc runs an ONNX graph (stream backend, partitions)."""

from __future__ import annotations

from typing import Any

__all__ = ["session_options"]


def session_options(threads: int | None) -> Any:
    """onnxruntime session options for ``threads`` intra-op threads (0/None: its default).

    With more than one thread the workers' busy-wait spinning is turned off
    (``session.intra_op.allow_spinning = 0``): on a CPU shared with the reader and
    encoder, spinning threads take the cores the pipeline needs (issue 18 measured
    0.86x with spinning and 1.36x without, at 2 threads, against 1 thread).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        if int(threads) > 1:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts
