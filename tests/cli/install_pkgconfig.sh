#!/usr/bin/env bash
# `cmake --install` lays down the header, the libraries, the CLI, the docs the header names
# and a pkg-config file with which an outside program builds against threadlog and runs
# (examples/embed.c).
set -euo pipefail
cli="$1"; src="$2"
build="$(cd "$(dirname "$cli")" && pwd)"
# an ASan+UBSan library needs the sanitizer runtime in whatever links it: the outside program
# built here with plain cc would not have it, so this check belongs to the normal build only
if grep -q '^TL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "install + pkg-config: skipped in the sanitizer build (checked in the normal build)"
  exit 0
fi
prefix="$(mktemp -d /tmp/tlinstall.XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/threadlog include/threadlog.h share/doc/threadlog/OPERATIONS.md share/doc/threadlog/FORMAT.md \
         share/doc/threadlog/tools/verify_export.py; do
  [ -e "$prefix/$f" ] || { echo "missing $f"; exit 1; }
done
pc=$(find "$prefix" -name threadlog.pc | head -1)
[ -n "$pc" ] || { echo "no threadlog.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/embed.c" $(pkg-config --cflags --libs threadlog) -o "$prefix/embed"
LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")" "$prefix/embed" >/dev/null
"$prefix/bin/threadlog" --version | grep -q "^threadlog "
echo "install + pkg-config: ok"
