#!/usr/bin/env bash
# erase_live_writer.sh — erased content stays out of the data file while the process that wrote
# it keeps writing: a long-running `apply` (a back office's writer) sends messages and uploads,
# another process erases them, and the same `apply` then writes 300 more messages. LMDB builds
# each page it writes in a spare buffer of that process, reused without clearing; before the
# fix about half the erased items came back into data.mdb that way (found by a privacy audit).
# Now a writer that sees the file's count of erasures move drops those buffers first. And the
# unused end of a value's overflow page, built in such a buffer too, is cleared by the scrub.
#
# usage: erase_live_writer.sh THREADLOG_BINARY SOURCE_DIR
set -euo pipefail
TL="$1"
T=$(mktemp -d)
APPLY=
cleanup() {
  exec 8>&- 2> /dev/null || true
  [ -n "$APPLY" ] && kill "$APPLY" 2> /dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib/checks.sh
. "$(dirname "$0")/lib/checks.sh"

D=$T/log
"$TL" init "$D" > /dev/null
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
{"op":"topic.create","as":"alice","id":"t-1","project":"o-1","title":"Shipping","body":"When?"}
JSON
mkfifo "$T/in"
"$TL" -d "$D" apply < "$T/in" > "$T/out" 2>&1 &
APPLY=$!
exec 8> "$T/in"
# answered N : wait until the apply has answered N lines (each answer follows its commit)
answered() {
  for _ in $(seq 600); do
    [ "$(wc -l < "$T/out")" -ge "$1" ] && return 0
    sleep 0.05
  done
  fail "the apply answered $(wc -l < "$T/out") lines, want $1: $(tail -3 "$T/out")"
}
secrets() { (grep -a -o 'QZXJ-SECRET-[0-9]*' "$D/data.mdb" || true) | sort -u | wc -l; }

for i in $(seq 10 29); do
  data=$(printf 'QZXJ-SECRET-%d in an attachment the writer uploaded' "$i" | base64 -w0)
  echo "{\"op\":\"attachment.upload\",\"as\":\"alice\",\"id\":\"a-$i\",\"project\":\"o-1\",\"name\":\"f.bin\",\"data\":\"$data\"}" >&8
  echo "{\"op\":\"message.send\",\"as\":\"alice\",\"id\":\"m-$i\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"QZXJ-SECRET-$i in a body the writer sent\"}" >&8
done
answered 40
[ "$(secrets)" -ge 20 ] || fail "the secrets are not all in data.mdb before the erasure: $(secrets)"
for i in $(seq 10 29); do
  status 0 "$TL" -d "$D" --json erase "a-$i" --reason "a person's request"
  status 0 "$TL" -d "$D" --json erase "m-$i" --reason "a person's request"
done
[ "$(secrets)" = 0 ] || fail "erased content in data.mdb right after the erasures: $(secrets) of 20"
for i in $(seq 300); do
  echo "{\"op\":\"message.send\",\"as\":\"alice\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"filler $i\"}" >&8
done
answered 340
[ "$(secrets)" = 0 ] || fail "the writer put erased content back into data.mdb: $(secrets) of 20"
exec 8>&-
wait "$APPLY"
APPLY=
status 0 "$TL" -d "$D" verify

# ---- the unused end of a value's overflow page: a writer uploads 40 files of 2,500 bytes,
# then 40 of 2,100 (each one overflow page, its end built in a buffer that held one of the
# first ones); the first 40 are erased: none of their bytes may stay in the second ones' pages
# (before: 2 of 40 stayed, the scrub skipped overflow pages whole)
D=$T/overflow
"$TL" init "$D" > /dev/null
"$TL" -d "$D" apply > /dev/null <<'JSON'
{"op":"account.create","id":"acme","name":"Acme"}
{"op":"user.create","id":"alice","role":"member","account":"acme","name":"Alice"}
{"op":"project.create","as":"alice","id":"o-1","account":"acme","type":"order","title":"Order"}
JSON
"$PY" - > "$T/uploads.jsonl" <<'PY'
import base64, json
def up(id, data):
    return json.dumps({"op": "attachment.upload", "as": "alice", "id": id, "project": "o-1", "name": "f",
                       "data": base64.b64encode(data).decode()})
for i in range(40): print(up("X%03d" % i, (("OVFL-SECRET-%03d|" % i) * 200)[:2500].encode()))
for i in range(40): print(up("F%03d" % i, b"F" * 2100))
PY
"$TL" -d "$D" apply --sync-every 1 "$T/uploads.jsonl" > /dev/null
for i in $(seq -f %03g 0 39); do status 0 "$TL" -d "$D" erase "X$i" --reason r; done
left=$( (grep -a -o 'OVFL-SECRET-[0-9]*' "$D/data.mdb" || true) | sort -u | wc -l)
[ "$left" = 0 ] || fail "$left erased files left bytes in data.mdb (the unused end of overflow pages)"
status 0 "$TL" -d "$D" verify
echo "erase_live_writer: ok"
