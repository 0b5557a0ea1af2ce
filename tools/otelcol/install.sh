#!/usr/bin/env bash
# Builds ferry's test OpenTelemetry Collector (main.go and components.go here: otlp
# receiver, file and debug exporters, batch processor; core v0.161.0, stable modules
# v1.67.0, contrib fileexporter v0.161.0, all pinned by go.mod/go.sum) with the Go
# toolchain from the Go module proxy, and links it to third_party/bin/otelcol.
#
# The build (about 8 minutes on 2 cores, a ~34 MB static binary) goes to a cache
# folder outside the clone, keyed by the collector version, so fresh clones and
# worktrees on the same machine reuse it:
#   $FERRY_CACHE_DIR/otelcol-v0.161.0/otelcol   (FERRY_CACHE_DIR: /var/cache/ferry,
#                                                or ~/.cache/ferry if that is not writable)
# The Go module and build caches live beside it in $FERRY_CACHE_DIR/go (~1 GB;
# delete it freely, only a rebuild needs it). A stamp there holds a hash of this
# folder's sources, so editing components.go or go.mod rebuilds on the next run.
# Idempotent: when the cached binary matches and runs `--version`, this only
# (re)makes the link.
#
# Usage: tools/otelcol/install.sh            (scripts/setup.sh runs it)
# Env:   FERRY_CACHE_DIR=/path    cache root;   OTELCOL_BUILD_JOBS=N  go build -p (2)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION=0.161.0
GO_MIN=1.26  # go.mod's go line

log() { echo "[setup] otelcol: $*"; }
die() { echo "[setup] ERROR: otelcol: $*" >&2; exit 1; }

source "$ROOT/tools/lib/cache_root.sh"
DEST="$CACHE_ROOT/otelcol-v$VERSION"
BIN="$DEST/otelcol"
STAMP="$DEST/.sources"
LINK="$ROOT/third_party/bin/otelcol"
WANT="$(cd "$HERE" && cat go.mod go.sum main.go components.go | sha256sum | cut -c1-16)"

version_ok() { [[ -x "$1" ]] && "$1" --version 2>/dev/null | grep -qx "otelcol version $VERSION"; }

link() {
  mkdir -p "$ROOT/third_party/bin"
  ln -sfn "$BIN" "$LINK"
  version_ok "$LINK" || die "$LINK does not run as otelcol $VERSION"
}

if [[ "$(cat "$STAMP" 2>/dev/null || true)" == "$WANT" ]] && version_ok "$BIN"; then
  link
  log "v$VERSION already built ($BIN); linked third_party/bin/otelcol"
  exit 0
fi

command -v go >/dev/null || die "no go command on PATH (scripts/setup.sh installs one)"
go_version="$(go env GOVERSION)"; go_version="${go_version#go}"
[[ "$(printf '%s\n' "$GO_MIN" "$go_version" | sort -V | head -1)" == "$GO_MIN" ]] \
  || die "go $go_version is older than the go $GO_MIN that the collector v$VERSION modules need"

mkdir -p "$DEST" "$CACHE_ROOT/go"
LOGF="$DEST/build.log"
log "building v$VERSION with go $go_version into $DEST (first build takes several minutes)"
start=$SECONDS
# Private module and build caches (not the user's); -modcacherw lets `rm -rf` clear
# them. go.sum pins every module; -mod=readonly refuses to change go.mod/go.sum.
# CGO off: one static binary that runs on any Linux of this architecture.
if ! (cd "$HERE" && env GOPATH="$CACHE_ROOT/go" GOMODCACHE="$CACHE_ROOT/go/mod" \
      GOCACHE="$CACHE_ROOT/go/build" CGO_ENABLED=0 \
      GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw -mod=readonly -p=${OTELCOL_BUILD_JOBS:-2}" \
      go build -trimpath -ldflags='-s -w' -o "$BIN.tmp" .) >"$LOGF" 2>&1; then
  tail -n 40 "$LOGF" >&2
  rm -f "$BIN.tmp"
  die "go build failed (full log: $LOGF)"
fi
version_ok "$BIN.tmp" || { "$BIN.tmp" --version >&2 || true; rm -f "$BIN.tmp"; die "built binary does not report otelcol version $VERSION"; }
mv -f "$BIN.tmp" "$BIN"
echo "$WANT" >"$STAMP"  # last: an interrupted run builds again next time
link
log "built v$VERSION in $((SECONDS - start))s ($(du -h "$BIN" | cut -f1)); linked third_party/bin/otelcol -> $BIN"
