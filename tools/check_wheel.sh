#!/usr/bin/env bash
# Build snnc's wheel and prove it works on its own (CI step, after tools/install.sh):
#   1. `pip wheel . --no-deps -w dist/`;
#   2. the wheel holds every package data file that pyproject.toml's package-data
#      patterns match in the source tree (presets, shipped models), byte for byte;
#   3. a clean virtual environment (no system site-packages, not .venv) gets the
#      wheel with `-c constraints.txt` only: torch and the rest come from the package
#      index / pip's cache, no lava, no test tools;
#   4. from a folder outside the checkout (so the source tree cannot be imported),
#      `snnc --version` and `snnc info spikedhs-stereo` must work, and snnc must be the
#      installed copy.
# The clean environment is removed afterwards. Prints the time each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-.venv/bin/python}
t0=$(date +%s)

rm -rf build dist   # setuptools reuses build/lib: a stale copy could hide a missing file
"$PY" -m pip wheel . --no-deps -q --disable-pip-version-check -w dist/ 2>&1 | { grep -v "is ignored: it is neither" || true; }
WHEEL=$(ls dist/snnc-*.whl)
echo "wheel: built $WHEEL ($(( $(date +%s) - t0 )) s)"

"$PY" - "$WHEEL" <<'PY'
import sys, tomllib, zipfile
from pathlib import Path

patterns = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["snnc"]
wanted = sorted({p for pat in patterns for p in Path("snnc").glob(pat) if p.is_file()})
with zipfile.ZipFile(sys.argv[1]) as whl:
    names = set(whl.namelist())
    missing = [str(p) for p in wanted if p.as_posix() not in names]
    differ = [str(p) for p in wanted if p.as_posix() in names and whl.read(p.as_posix()) != p.read_bytes()]
if missing or differ:
    sys.exit(f"wheel: data files missing {missing}, differing {differ}")
print(f"wheel: holds all {len(wanted)} package data files ({', '.join(patterns)})")
PY

VENV=$(mktemp -d /tmp/snnc-wheel-venv.XXXXXX)
WORK=$(mktemp -d /tmp/snnc-wheel-run.XXXXXX)
trap 'rm -rf "$VENV" "$WORK"' EXIT
t1=$(date +%s)
"$("$PY" -c 'import sys; print(sys._base_executable)')" -m venv "$VENV"
# --no-compile: a throw-away environment needs no .pyc files (saves compiling torch's).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-compile -c constraints.txt "$WHEEL" 2>&1 \
  | { grep -v "is ignored: it is neither" || true; }
echo "wheel: installed into a clean venv with constraints.txt ($(( $(date +%s) - t1 )) s)"

cd "$WORK"
where=$("$VENV/bin/python" -c 'import snnc; print(snnc.__file__)')
case "$where" in
  "$VENV"/*) ;;
  *) echo "wheel: snnc imported from $where, not from the clean venv" >&2; exit 1 ;;
esac
version=$("$VENV/bin/snnc" --version)
expected=$("$VENV/bin/python" -c 'import snnc; print("snnc", snnc.__version__)')
[ "$version" = "$expected" ] || { echo "wheel: --version said '$version', expected '$expected'" >&2; exit 1; }
"$VENV/bin/snnc" info spikedhs-stereo > info.txt
grep -q "spikedhs-stereo" info.txt || { echo "wheel: snnc info printed no summary:" >&2; cat info.txt >&2; exit 1; }
cd "$ROOT"
echo "wheel: '$version' and 'snnc info spikedhs-stereo' work from the clean venv (total $(( $(date +%s) - t0 )) s)"
