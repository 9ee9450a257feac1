#!/bin/sh
# Prints a PATH on which the named tools do not exist, to see what a machine without them sees
# (a fresh Debian one has Node and the compiler toolchain, no QEMU, Chromium, tmux, ...):
#   PATH=$(scripts/without-tools.sh tmux chromium 'qemu-*' 'aarch64-linux-gnu-*') npm test
# The PATH is one folder of symlinks to every executable on the current PATH (first one wins)
# except those matching the shell patterns given.
set -eu
dir=$(mktemp -d "${TMPDIR:-/tmp}/hwsq-path-XXXXXX")
IFS=:
for d in $PATH; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    name=${f##*/}
    [ -x "$f" ] && [ ! -d "$f" ] && [ ! -e "$dir/$name" ] || continue
    hide=
    for pattern in "$@"; do
      case $name in $pattern) hide=1 ;; esac
    done
    [ -n "$hide" ] || ln -s "$f" "$dir/$name"
  done
done
echo "$dir"
