#!/usr/bin/env bash
# log_storage.sh — the log on storage an operator meets: a read-only copy owned by someone
# else (an auditor's snapshot), a log on a read-only mount, and a full disk where LMDB must
# create its lock file. Each needs root (setpriv, mount, tmpfs) and says so when it is
# skipped.
#
# usage: log_storage.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
cleanup() {
  if mountpoint -q "$T/rom" 2> /dev/null; then umount "$T/rom" || true; fi
  if mountpoint -q "$T/full" 2> /dev/null; then umount "$T/full" || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib/checks.sh
. "$(dirname "$0")/lib/checks.sh"

# a log with a key rotation and a few messages
D=$T/log
"$TL" init "$D" > /dev/null
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"note.add","as":"alice","id":"n-1","project":"o-1","body":"Check stock"}
JSON
"$TL" -d "$D" key rotate > /dev/null
"$TL" -d "$D" --json note --as alice --project o-1 --body "After the rotation" > /dev/null
status 0 "$TL" -d "$D" verify

# ---- a read-only copy (an auditor's snapshot): no lock file, nothing writable, another user.
# verify, digest and the queries read it without LMDB's lock table; appending is refused as
# read_only (the writer key is there and readable by that user: the directory is the reason).
# Runs as root with setpriv (util-linux) and the user nobody; the binary is copied where
# nobody can reach it, wherever the checkout is.
RO=$T/readonly
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null && id nobody > /dev/null 2>&1; then
  chmod 755 "$T"
  cp "$TL" "$T/threadlog-ro" && chmod 755 "$T/threadlog-ro"
  mkdir -p "$RO" && cp "$D/data.mdb" "$D/writer.key" "$RO/" && chown nobody "$RO/writer.key"
  chmod 444 "$RO/data.mdb" && chmod 555 "$RO"
  as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
  status 0 as_nobody "$T/threadlog-ro" -d "$RO" --json verify
  jcheck "$OUT" 'o["ok"] is True'
  status 0 as_nobody "$T/threadlog-ro" -d "$RO" --json digest
  [ "$OUT" = "$("$TL" -d "$D" --json digest)" ] || fail "read-only digest differs: $OUT"
  status 1 as_nobody "$T/threadlog-ro" -d "$RO" --json key rotate
  jcheck "$OUT" 'o["error"] == "read_only"'
  [ ! -e "$RO/lock.mdb" ] || fail "a lock file appeared in the read-only copy"
  chmod 755 "$RO"
else
  echo "log_storage: read-only copy not tested (needs root, setpriv and the user nobody)"
fi

# ---- a log on a read-only mount (a bind mount remounted read-only, as root): writes are
# read_only, reads work. Skipped where mounting is not allowed (an unprivileged container).
ROM=$T/rom
mkdir -p "$ROM" "$T/rom-src" && cp -a "$D/." "$T/rom-src/"
if [ "$(id -u)" = 0 ] && mount --bind "$T/rom-src" "$ROM" 2> /dev/null; then
  if mount -o remount,bind,ro "$ROM" 2> /dev/null; then
    status 1 "$TL" -d "$ROM" --json account --id rom --name R
    jcheck "$OUT" 'o["error"] == "read_only" and "read-only file system" in o["message"]'
    status 1 "$TL" -d "$ROM" --json key rotate
    jcheck "$OUT" 'o["error"] == "read_only"'
    status 0 "$TL" -d "$ROM" --json verify
  else
    echo "log_storage: read-only mount not tested (remount refused)"
  fi
  umount "$ROM"
else
  echo "log_storage: read-only mount not tested (needs root and mount)"
fi

# ---- a full disk where LMDB must create its lock file (a 3 MiB tmpfs, a few KiB left): LMDB
# writes a new lock file through a map, so a full disk faulted (SIGBUS) and was reported as a
# damaged file (`corrupt`); init left its staging directory with a key in it. Now: `storage`,
# nothing left behind, and the log is fine once space is freed.
FULL=$T/full
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=3m tmpfs "$FULL" 2> /dev/null; then
  fill_but() { # leave $1 KiB free
    rm -f "$FULL/fill"
    dd if=/dev/zero of="$FULL/fill" bs=1k count=$(( $(df -k --output=avail "$FULL" | tail -1) - $1 )) 2> /dev/null || true
  }
  for left in 4 6; do
    fill_but $left
    status 1 "$TL" --json init "$FULL/new"
    jcheck "$OUT" 'o["error"] == "storage"'
    [ ! -e "$FULL/new" ] || fail "init on a full disk left $(ls -A "$FULL/new")"
  done
  rm -f "$FULL/fill"
  mkdir -p "$FULL/copy" && cp "$D/data.mdb" "$FULL/copy/" # a copy: data.mdb only, no lock file
  fill_but 0
  status 1 "$TL" -d "$FULL/copy" --json verify
  jcheck "$OUT" 'o["error"] == "storage"'
  status 1 "$TL" -d "$FULL/copy" --json account --id full --name F
  jcheck "$OUT" 'o["error"] == "storage"'
  rm -f "$FULL/fill"
  status 0 "$TL" -d "$FULL/copy" --json verify
  umount "$FULL"
else
  echo "log_storage: full disk not tested (needs root and a tmpfs mount)"
fi

echo "log_storage: ok"
