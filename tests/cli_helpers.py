"""Run the ``snnc`` CLI in a subprocess the way a user does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]


def run_snnc(*args: str | os.PathLike, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m snnc ARGS`` with the repo on the path; returns the completed process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SNNC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "snnc", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(ROOT))


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The process failed with exit 2 and ONE stderr line containing every fragment, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("snnc: error: "), err
    for frag in fragments:
        assert frag in err, (frag, err)
    return err


def expect_ok(proc: subprocess.CompletedProcess) -> str:
    """The process succeeded; returns its stdout."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


__all__: Sequence[str] = ("run_snnc", "assert_user_error", "expect_ok", "ROOT")
