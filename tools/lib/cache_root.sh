# Sourced by tools/*/install.sh: sets CACHE_ROOT to the folder that keeps slow downloads
# and builds outside the clone, keyed by version underneath: $FERRY_CACHE_DIR when set,
# else /var/cache/ferry, else ~/.cache/ferry. The caller defines die().
writable_dir() { mkdir -p "$1" 2>/dev/null && [[ -w "$1" ]]; }
if [[ -n "${FERRY_CACHE_DIR:-}" ]]; then
  CACHE_ROOT="$FERRY_CACHE_DIR"
  writable_dir "$CACHE_ROOT" || die "FERRY_CACHE_DIR=$CACHE_ROOT is not a writable folder"
else
  CACHE_ROOT=/var/cache/ferry
  writable_dir "$CACHE_ROOT" || CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/ferry"
  writable_dir "$CACHE_ROOT" || die "no writable cache folder (tried /var/cache/ferry and $CACHE_ROOT); set FERRY_CACHE_DIR"
fi
