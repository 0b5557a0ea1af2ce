#!/usr/bin/env bash
# Runs a command as on a machine that lacks some shared libraries: in a private mount
# namespace, the multiarch library folder is replaced by a copy made of symlinks to the
# real files, minus those matching the --lib globs, and each --dir is covered by an
# empty tmpfs. The dynamic loader then really finds nothing where those libraries were
# (its cache still names them, and the files are gone). Nothing changes outside the
# namespace, which ends with the command.
#
# usage: unshare -m --propagation private hide_libraries.sh --stash DIR [--lib GLOB]... [--dir DIR]... -- CMD...
#   --stash DIR  an empty folder for the symlink copy (the caller removes it)
# Needs root (mount) and the mount namespace that unshare(1) makes.
set -euo pipefail
libdir="/usr/lib/$(uname -m)-linux-gnu"
stash="" globs=() dirs=()
while (($#)) && [[ $1 != -- ]]; do
  case "$1" in
    --stash) stash="$2"; shift 2 ;;
    --lib) globs+=("$2"); shift 2 ;;
    --dir) dirs+=("$2"); shift 2 ;;
    *) echo "hide_libraries.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 2 && -n "$stash" ]] || { echo "usage: hide_libraries.sh --stash DIR [--lib GLOB]... [--dir DIR]... -- CMD..." >&2; exit 2; }
shift
mkdir -p "$stash/orig" "$stash/farm"
mount --bind "$libdir" "$stash/orig"
for path in "$stash/orig"/*; do
  name="${path##*/}"
  for glob in "${globs[@]}"; do
    # shellcheck disable=SC2053  # the glob is meant to match
    [[ $name == $glob ]] && continue 2
  done
  ln -s "$path" "$stash/farm/$name"
done
mount --bind "$stash/farm" "$libdir"
for dir in "${dirs[@]}"; do mount -t tmpfs -o size=1m tmpfs "$dir"; done
exec "$@"
