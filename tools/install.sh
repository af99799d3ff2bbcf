#!/usr/bin/env bash
# Create .venv and install everything snnc needs, lava included. Idempotent:
# re-running it only checks what is already there.
#   - every pip step with `-c constraints.txt`, the exact tested set (pyproject.toml
#     only declares ranges), so no step can pull another torch (the torch guard);
#   - torch first, the build constraints.txt names;
#   - snnc itself (editable) with the test tools (pytest, pytest-xdist for `make test`'s
#     two workers, ...) and its lava / interop / openvino extras
#     (openvino: `snnc stream --backend openvino`, ~60 MB, no torch);
#   - lava-nc / lava-dl with --no-deps --ignore-requires-python (they declare
#     Python < 3.11) and the one Python 3.11 source fix (tools/patch_lava.py).
#   - the NIR consumers the interop tests run (spikingjelly, snntorch, norse,
#     nirtorch, sinabs, rockpool) with --no-deps so torch stays the pinned build.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "install: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

STAMP=.venv/.snnc-installed
HASH=$(cat pyproject.toml constraints.txt tools/install.sh tools/patch_lava.py | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && .venv/bin/python -c 'import snnc, torch, lava.magma.compiler.var_model, lava.lib.dl.netx, openvino, spikingjelly, snntorch, norse, nirtorch, sinabs, rockpool, xdist' 2>/dev/null; then
  echo "install: .venv is up to date"
  exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q -c constraints.txt)
# pip with its noise line filtered out; a failing pip still fails this script.
pip_quiet() { "${PIP[@]}" "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
TORCH=$(sed -n 's/^torch==//p' constraints.txt)
echo "install: torch $TORCH / torchvision $(sed -n 's/^torchvision==//p' constraints.txt) (constraints.txt)"
pip_quiet torch torchvision
echo "install: snnc with its test tools and lava / interop / openvino extras (constraints.txt)"
pip_quiet -e ".[test,lava,interop,openvino]"
echo "install: lava-nc 0.10.0 / lava-dl 0.6.0 (--no-deps --ignore-requires-python)"
pip_quiet --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
.venv/bin/python tools/patch_lava.py
# ---- interop consumers (tests/test_nir_interop.py, benchmarks/interop_matrix.py) ----
# snntorch, norse, nirtorch, rockpool and the small runtime needs (loguru, requests, pbr)
# come with the [interop] extra above. spikingjelly 2.0.0 (would pull torchaudio, so
# another torch) and sinabs 3.1.3 (pins nir<=1.0.4 and the samna chip toolchain, which
# sinabs.from_nir does not need) install --no-deps; pip's resolver then reports their
# unmet declared requirements, which is expected and filtered here.
echo "install: NIR consumers spikingjelly 2.0.0 / sinabs 3.1.3 (--no-deps)"
"${PIP[@]}" --no-deps spikingjelly==2.0.0 sinabs==3.1.3 2>&1 | { grep -v -e "is ignored: it is neither" \
  -e "dependency resolver does not currently" -e "^spikingjelly 2.0.0 requires" -e "^sinabs 3.1.3 requires" || true; }
# ---- end interop consumers ----
# Check the result: the torch build must be the pinned one, numpy < 2, lava importable.
.venv/bin/python - "$TORCH" <<'PY'
import sys
import numpy, torch
# lava first: it calls multiprocessing.set_start_method('fork'), which fails once an import (openvino's
# telemetry can) has fixed the start method; snnc never imports both at start-up.
import lava.magma.compiler.var_model  # noqa: F401  (fails without the source fix)
import lava.lib.dl.netx  # noqa: F401
import openvino  # noqa: F401  (snnc stream --backend openvino)
import xdist  # noqa: F401  (pytest-xdist: make test runs two workers)
# interop consumers: their stock NIR importers must import
from spikingjelly.activation_based.nir_exchange import import_from_nir  # noqa: F401
from snntorch.import_nir import import_from_nir as _snntorch_import  # noqa: F401
import norse.torch, nirtorch, sinabs  # noqa: F401,E401
from rockpool.nn.modules import from_nir  # noqa: F401
assert torch.__version__.split("+")[0] == sys.argv[1], (torch.__version__, "constraints.txt:", sys.argv[1])
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
print(f"install: ok (torch {torch.__version__}, numpy {numpy.__version__})")
PY
echo "$HASH" > "$STAMP"
