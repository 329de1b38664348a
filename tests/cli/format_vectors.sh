#!/usr/bin/env bash
# format_vectors.sh — docs/FORMAT.md is enough to rebuild the format: an independent Python
# encoder (tools/format_vectors.py: its own msgpack writer, hashlib BLAKE2b, PyNaCl or
# `cryptography` Ed25519) rebuilds the golden vectors and finds each of them in the
# document, where tests/test_codec.c checks the C encoder's. Passes with a notice when
# python3 has no Ed25519 implementation.
#
# usage: format_vectors.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
SRC="$2"
status=0
python3 "$SRC/tools/format_vectors.py" --check "$SRC/docs/FORMAT.md" || status=$?
[ "$status" = 77 ] && exit 0
exit "$status"
