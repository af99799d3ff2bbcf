"""Apply the one Python 3.11 source fix lava-nc 0.10.0 needs (idempotent).

``lava/magma/compiler/var_model.py`` declares dataclass fields with instance
defaults (``x: ByteEncoder = ByteEncoder()``), which Python 3.11 rejects as
mutable defaults.  This rewrites each to ``field(default_factory=...)``.
Run with the virtual environment's interpreter; prints what it did and exits
non-zero if lava still cannot be imported afterwards.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

PATTERN = re.compile(r"^(\s+\w+\s*:\s*)(\w+)(\s*=\s*)\2\(\)\s*$", re.MULTILINE)


def var_model_path() -> Path:
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("patch_lava: lava-nc is not installed in this interpreter")
    return Path(next(iter(spec.submodule_search_locations))) / "magma" / "compiler" / "var_model.py"


def patch_source(text: str) -> tuple[str, int]:
    new, count = PATTERN.subn(r"\1\2\3field(default_factory=\2)", text)
    if count and not re.search(r"^from dataclasses import .*\bfield\b", new, re.MULTILINE):
        new = new.replace("from dataclasses import dataclass", "from dataclasses import dataclass, field", 1)
    return new, count


def main() -> int:
    path = var_model_path()
    text = path.read_text()
    new, count = patch_source(text)
    if count:
        path.write_text(new)
        print(f"patch_lava: rewrote {count} dataclass defaults in {path}")
    else:
        print(f"patch_lava: {path} already patched")
    check = subprocess.run(
        [sys.executable, "-c", "import lava.magma.compiler.var_model"], capture_output=True, text=True
    )
    if check.returncode != 0:
        print("patch_lava: lava still fails to import:", check.stderr.strip().splitlines()[-1], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
