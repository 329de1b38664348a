#!/usr/bin/env bash
# damaged_meta.sh — damage that a writer must refuse before it writes anything:
#   - one bit of the main tree's root in LMDB's current meta page: the named databases are
#     gone from view. Every writing command (apply, checkpoint, key rotate, erase, replay)
#     refuses with `corrupt` and leaves data.mdb byte for byte as it was, so that putting the
#     bit back gives the log back (a writable open used to create the missing databases: two
#     commits over both meta pages, and the log was lost for good);
#   - one byte of the unsigned head record (meta "head": seq, hash, time, key): apply and
#     checkpoint refuse with `corrupt` instead of signing on its word (an event dated in the
#     year 4310 that verify then accepted, an event chained to a hash no event has, an event
#     numbered 4294967322; a checkpoint that made the genuine log look rewritten);
#   - and damage a reader should step around: the free tree's page counts in the meta page,
#     which only LMDB's compacting copy reads (replay --into copies page for page instead).
#
# usage: damaged_meta.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=lib/checks.sh
. "$(dirname "$0")/lib/checks.sh"

B=$T/base
"$TL" init "$B" > /dev/null
"$TL" -d "$B" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"user.create","id":"sam","role":"staff","name":"Sam"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?","message_id":"m-1"}
{"op":"message.send","as":"sam","id":"m-2","project":"o-1","channel":"chat","topic":"t-1","body":"Tomorrow"}
JSON
NOTE='{"op":"note.add","as":"alice","project":"o-1","body":"on a damaged log"}'

# flip FILE OFFSET... : xor 0x01 into each byte
flip() {
  "$PY" - "$@" <<'PY'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    for off in map(int, sys.argv[2:]):
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 1]))
PY
}
# the offset of the main tree's root in the current meta page (LMDB's MDB_meta after the
# 16-byte page header: the free tree's MDB_db at 40, the main tree's at 88, its md_root at
# +40; the current page has the higher mm_txnid, at 144)
main_root_offset() {
  "$PY" - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(8192)
txn = [struct.unpack_from("<Q", d, p * 4096 + 144)[0] for p in (0, 1)]
print((0 if txn[0] > txn[1] else 1) * 4096 + 128)
PY
}
# every copy of the head record's byte N: the head is u64be(seq) || hash || u64be(ts) || key,
# found by its seq and hash, which the whole-log export's header names
head_offsets() {
  "$PY" - "$1" "$2" "$3" <<'PY'
import json, sys
path, export, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = json.loads(open(export).readline())["head"]
needle = h["seq"].to_bytes(8, "big") + bytes.fromhex(h["hash"])
data = open(path, "rb").read()
at, found = data.find(needle), []
while at >= 0:
    found.append(at + n); at = data.find(needle, at + 1)
assert found, "the head record was not found"
print(" ".join(map(str, found)))
PY
}
events() { "$TL" -d "$1" --json log | wc -l; }

# ---- the main tree's root
D=$T/root
cp -a "$B" "$D"
OFF=$(main_root_offset "$D/data.mdb")
flip "$D/data.mdb" "$OFF"
cp "$D/data.mdb" "$T/damaged.mdb"
status 1 "$TL" -d "$D" --json verify
jcheck "$OUT" 'o["error"] == "corrupt" and "writable" not in o["message"]'
echo "$NOTE" > "$T/note.jsonl"
status 1 "$TL" -d "$D" --json apply "$T/note.jsonl"
jcheck "$OUT" 'o["error"] == "corrupt"'
for cmd in "checkpoint" "key rotate" "erase m-2 --reason r" "replay" "note --as alice --project o-1 --body x"; do
  # shellcheck disable=SC2086
  status 1 "$TL" -d "$D" --json $cmd
  jcheck "$OUT" 'o["error"] == "corrupt"'
  cmp -s "$D/data.mdb" "$T/damaged.mdb" || fail "$cmd wrote to a log whose main tree root is damaged"
done
flip "$D/data.mdb" "$OFF"
status 0 "$TL" -d "$D" verify
[ "$(events "$D")" = "$(events "$B")" ] || fail "the log did not come back whole once the bit was put back"

# ---- the head record
"$TL" -d "$B" export > "$T/export.jsonl"
for byte in 40 41 20 3; do # the time's top bytes, a byte of the hash, a byte of the seq
  D=$T/head$byte
  cp -a "$B" "$D"
  # shellcheck disable=SC2046
  flip "$D/data.mdb" $(head_offsets "$D/data.mdb" "$T/export.jsonl" "$byte")
  cp "$D/data.mdb" "$T/damaged.mdb"
  status 1 "$TL" -d "$D" --json verify
  jcheck "$OUT" 'o["error"] == "corrupt"'
  status 1 "$TL" -d "$D" --json apply "$T/note.jsonl" # the log failed: exit 1
  jcheck "$OUT" 'o["ok"] is False and o["error"] == "corrupt" and "head record" in o["message"]'
  for cmd in "checkpoint" "key rotate" "note --as alice --project o-1 --body x"; do
    # shellcheck disable=SC2086
    status 1 "$TL" -d "$D" --json $cmd
    jcheck "$OUT" 'o["error"] == "corrupt" and "head record" in o["message"]'
  done
  cmp -s "$D/data.mdb" "$T/damaged.mdb" || fail "a writer wrote on the word of a damaged head (byte $byte)"
done

# ---- the free tree's page counts in the current meta page (offsets 48-71: branch, leaf and
# overflow pages), which nothing reads but LMDB's compacting copy, which then refused
# (MDB_INCOMPATIBLE, reported as `storage`): replay --into takes a page-for-page copy instead
D=$T/counts
cp -a "$B" "$D"
ROOT=$(main_root_offset "$D/data.mdb")
flip "$D/data.mdb" $((ROOT - 128 + 56)) # the free tree's leaf page count
status 0 "$TL" -d "$D" verify
status 0 "$TL" -d "$D" --json replay --into "$T/counts-copy"
[ "$("$TL" -d "$T/counts-copy" --json digest)" = "$("$TL" -d "$B" --json digest)" ] || fail "the copy of a log with damaged page counts differs"
status 0 "$TL" -d "$T/counts-copy" verify

echo "damaged_meta: ok"
