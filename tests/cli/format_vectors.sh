#!/usr/bin/env bash
# format_vectors.sh — docs/FORMAT.md is enough to rebuild the format: an independent Python
# encoder (tools/format_vectors.py: its own msgpack writer, hashlib BLAKE2b, PyNaCl or
# `cryptography` Ed25519) rebuilds the golden vectors and finds each of them in the
# document, where tests/test_codec_golden.c checks the C encoder's. Passes with a notice when
# no python3 on the machine has an Ed25519 implementation.
#
# usage: format_vectors.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
SRC="$2"
for py in /usr/bin/python3 python3; do
  command -v "$py" > /dev/null || continue
  status=0
  "$py" "$SRC/tools/format_vectors.py" --check "$SRC/docs/FORMAT.md" || status=$?
  [ "$status" = 77 ] && continue
  exit "$status"
done
echo "format_vectors: skipped (no python3 with PyNaCl or cryptography)"
