"""Import Lava safely: one place for the workarounds its import needs.

Lava's runtime calls ``multiprocessing.set_start_method('fork')`` when it is
imported, which fails once anything in the process has fixed the start method;
lava-dl prints a notice on stdout. Every snnc module that uses Lava calls
:func:`import_lava` first.
"""

from __future__ import annotations

from snnc.errors import SnncError

__all__ = ["import_lava"]


def import_lava() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` on import.

    That call fails once anything in the process has fixed the start method
    (tqdm's lock does). When the method already fixed is ``fork`` — what Lava
    asks for — it is un-fixed first so Lava's own call succeeds unchanged.

    Raises:
        SnncError: another start method is in force, or Lava cannot be imported.
    """
    import multiprocessing as mp
    import sys

    name = "lava.magma.runtime.message_infrastructure.multiprocessing"
    if name not in sys.modules:
        current = mp.get_start_method(allow_none=True)
        if current is not None:
            if current != "fork":
                raise SnncError(f"Lava needs the 'fork' multiprocessing start method, this process uses {current!r}")
            mp.context._default_context._actual_context = None  # type: ignore[attr-defined]
    import contextlib
    import io
    import logging

    # lava-dl prints a notice about an optional dataset toolbox on stdout (it would corrupt --json) and torch
    # logs a CUDA-runtime warning while lava-dl loads its extensions: keep both off the user's streams.
    quiet = io.StringIO()
    torch_log = logging.getLogger("torch.utils.cpp_extension")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(quiet):
            import lava.lib.dl.netx.hdf5  # noqa: F401
    except Exception as err:
        raise SnncError(f"cannot import Lava (lava-nc / lava-dl): {type(err).__name__}: {err}") from None
    finally:
        torch_log.setLevel(level)
