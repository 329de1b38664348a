#!/usr/bin/env bash
# `cmake --install` lays down the header, the libraries, the CLI and a pkg-config file with
# which an outside program builds against threadlog and runs (examples/embed.c).
set -euo pipefail
cli="$1"; src="$2"
build="$(cd "$(dirname "$cli")" && pwd)"
prefix="$(mktemp -d /tmp/tlinstall.XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/threadlog include/threadlog.h; do [ -e "$prefix/$f" ] || { echo "missing $f"; exit 1; }; done
pc=$(find "$prefix" -name threadlog.pc | head -1)
[ -n "$pc" ] || { echo "no threadlog.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/embed.c" $(pkg-config --cflags --libs threadlog) -o "$prefix/embed"
LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")" "$prefix/embed" >/dev/null
"$prefix/bin/threadlog" --version | grep -q "^threadlog "
echo "install + pkg-config: ok"
