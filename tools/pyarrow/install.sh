#!/usr/bin/env bash
# Installs the pyarrow wheel (PyPI pyarrow 26.0.1) into a venv of its own outside the
# clone, for the Arrow C++ headers and the libarrow/libparquet shared libraries that it
# ships: Debian bookworm packages neither. CMake's FERRY_WITH_PARQUET asks this venv's
# python for pyarrow.get_include() and the library folder, and ferry links the two
# libraries there with an RPATH to them:
#   $FERRY_CACHE_DIR/pyarrow-26.0.1/venv   (FERRY_CACHE_DIR: /var/cache/ferry,
#                                           or ~/.cache/ferry if that is not writable)
# The wheel is built with the C++11 string ABI and needs GLIBCXX 3.4.22 at most, so
# Debian's GCC 12 (-std=c++20) links against it; batch_test's ParquetInput tests write
# and read files through it.
# Idempotent: when the venv imports pyarrow 26.0.1, this does nothing. Written to a
# temporary folder and renamed, so an interrupted run is redone next time.
#
# Usage: tools/pyarrow/install.sh            (scripts/setup.sh runs it)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION=26.0.1

log() { echo "[setup] pyarrow: $*"; }
die() { echo "[setup] ERROR: pyarrow: $*" >&2; exit 1; }

source "$ROOT/tools/lib/cache_root.sh"
DEST="$CACHE_ROOT/pyarrow-$VERSION"
PY="$DEST/venv/bin/python"

version_ok() { [[ -x "$1" ]] && [[ "$("$1" -c 'import pyarrow; print(pyarrow.__version__)' 2>/dev/null)" == "$VERSION" ]]; }

if version_ok "$PY"; then
  log "$VERSION already installed ($DEST/venv)"
  exit 0
fi

log "installing $VERSION into $DEST/venv"
mkdir -p "$DEST"
rm -rf "$DEST/venv.tmp"
python3 -m venv "$DEST/venv.tmp" || die "python3 -m venv failed (scripts/setup.sh installs python3-venv)"
"$DEST/venv.tmp/bin/python" -m pip install -q --disable-pip-version-check "pyarrow==$VERSION" >"$DEST/pip.log" 2>&1 \
  || { cat "$DEST/pip.log" >&2; die "pip install pyarrow==$VERSION failed"; }
rm -rf "$DEST/venv"
mv "$DEST/venv.tmp" "$DEST/venv"
version_ok "$PY" || die "$PY does not import pyarrow $VERSION"
log "installed $VERSION ($DEST/venv)"
